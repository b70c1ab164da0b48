"""Pure train and eval steps, and their data-parallel `jax.jit` wrappers.

The steps are functions of pytrees only (`TrainState`, a batch dict, scalars)
and are jitted over a one-axis `'data'` mesh: the batch is sharded over the
devices, the state replicated, and XLA inserts the gradient all-reduce. The
mesh is built with `AxisType.Auto` (see `create_mesh`).

BatchNorm: under `jit` the batch statistics are taken over the *global*
batch (XLA all-reduces them across devices), i.e. synchronised BatchNorm.
The CutMix and ReLabel papers used per-GPU statistics (256/4 or 1024/8
examples per GPU); with small per-device batches the two differ slightly.
"""

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

import jaxmix
from jaxmix.train import accuracy, augment, augment_schedule, optimizers
from jaxmix.train import state as state_lib

Batch = dict[str, jax.Array]
# fn(model, augmented, key, schedule) -> (losses [B], logits [B, K])
LossFn = Callable[..., tuple[jax.Array, jax.Array]]


def create_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  """A one-axis `'data'` mesh over all (global) devices, `AxisType.Auto`.

  `jax.make_mesh` defaults to Explicit axes in current JAX. The trainer uses
  Auto: the models and optimisers carry no sharding annotations, and with
  the state replicated and the batch sharded over 'data' XLA's propagation
  finds the data-parallel layout; the augmentation runs under `shard_map`
  (`jaxmix.per_shard`) either way.
  """
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh(
    (len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices
  )


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The static settings of the steps (fixed for a run).

  Attributes:
    num_classes: K.
    label_smoothing: smoothing of the one-hot targets, in [0, 1).
    mean: per-channel mean on the 0..255 scale, `[3]`.
    std: per-channel standard deviation on the 0..255 scale, `[3]`.
    seed: base seed; the step key is `fold_in(key(seed), step)`.
    ema_decay: decay of the parameter EMA (used when the state has one).
    compute_dtype: dtype of the normalised images (and so of the
      augmentation and the model's compute): float32, or bfloat16 on
      accelerators; parameters, logits, loss and optimizer state stay
      float32.
    targets: 'dense' (one-hot targets `[B, K]`, mixed by the
      augmentation) or 'two_target' (integer labels through the
      augmentation, `augment.TwoTargets` out, the two-target loss; no
      `[B, K]` target), as `config.mix.targets`.
    color_jitter: strength of the colour jitter run on the device before
      normalisation (`jaxmix.photometric`); 0 = off.
    pca_lighting: alphastd of the PCA lighting run on the device; 0 = off.
    jitter_clip: clip after each jitter step (`data.color_jitter_clip`).
  """

  num_classes: int
  label_smoothing: float = 0.0
  mean: tuple[float, ...] = (0.0, 0.0, 0.0)
  std: tuple[float, ...] = (1.0, 1.0, 1.0)
  seed: int = 0
  ema_decay: float = 0.0
  compute_dtype: Any = jnp.float32
  targets: str = 'dense'
  color_jitter: float = 0.0
  pca_lighting: float = 0.0
  jitter_clip: bool = True


def normalize(
  images: jax.Array,
  mean: Sequence[float],
  std: Sequence[float],
  dtype: Any = jnp.float32,
) -> jax.Array:
  """uint8 `[B, H, W, C]` -> `(x - mean) / std` in `dtype`.

  Computed in float32 and rounded once to `dtype` (XLA fuses the cast), so
  a bfloat16 run never holds a float32 copy of the batch.
  """
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return ((images.astype(jnp.float32) - mean) / std).astype(dtype)


def prepare_images(
  key: jax.Array, images: jax.Array, config: StepConfig
) -> jax.Array:
  """The train batch's uint8 images `[B, H, W, C]` as the model takes them.

  The one place the train step turns stored pixels into the model's input
  (the eval step normalises only): colour jitter and PCA lighting per
  example on the device (`jaxmix.photometric`, off at strength 0), then
  normalisation, fused with the cast to `config.compute_dtype`.
  """
  return jaxmix.photometric(
    jax.random.fold_in(key, 3),  # 1 and 2: MixToken's and CMO's keys
    images,
    color_jitter=config.color_jitter,
    lighting=config.pca_lighting,
    mean=config.mean,
    std=config.std,
    clip=config.jitter_clip,
    dtype=config.compute_dtype,
  )


def inputs_and_targets(
  key: jax.Array,
  batch: Batch,
  schedule: augment_schedule.Schedule,
  *,
  augment_fn: augment.AugmentFn,
  config: StepConfig,
) -> augment.Augmented:
  """The prepared, augmented images and the targets the loss uses.

  Returns:
    `augment.Augmented`: images `[B, H, W, C]` in `config.compute_dtype`,
    the targets (float32 `[B, K]`, or `augment.TwoTargets`) and the label
    maps of a ReLabel run.
  """
  images = prepare_images(key, batch['image'], config)
  return augment_fn(key, images, batch, schedule)


def loss_of_targets(
  logits: jax.Array, labels: Any, config: StepConfig
) -> jax.Array:
  """Per-example cross-entropy `[B]` against the step's targets.

  Dense targets `[B, K]` (already smoothed) go to `soft_cross_entropy`;
  `augment.TwoTargets` to `two_target_cross_entropy`, which applies
  `config.label_smoothing` itself.
  """
  if (config.targets == 'two_target') != isinstance(labels, augment.TwoTargets):
    raise ValueError(
      f'StepConfig.targets is {config.targets!r} but the augmentation gave '
      f'{type(labels).__name__} targets: build both from the same config.'
    )
  if isinstance(labels, augment.TwoTargets):
    return jaxmix.two_target_cross_entropy(
      logits, *labels, smoothing=config.label_smoothing
    )
  return jaxmix.soft_cross_entropy(logits, labels)


def train_step(
  state: state_lib.TrainState,
  batch: Batch,
  schedule: augment_schedule.Schedule,
  *,
  model_def: state_lib.ModelDef,
  tx: optax.GradientTransformation,
  learning_rate_fn: Callable[[jax.Array], jax.Array],
  augment_fn: augment.AugmentFn,
  config: StepConfig,
  loss_fn: LossFn | None = None,
) -> tuple[state_lib.TrainState, dict[str, jax.Array]]:
  """One SGD step on a global batch.

  Args:
    state: the train state (donated by the jitted wrapper).
    batch: 'image' uint8 `[B, H, W, 3]` and 'label' int32 `[B]`, and what
      the augmentation reads (label maps, the minority stream).
    schedule: the epoch's probabilities
      (`jaxmix.train.augment_schedule.schedule_at`), float32 scalars traced
      by the step: switching mixing or CMO off late in training does not
      recompile.
    model_def: graph definitions from `create_train_state`.
    tx: the optimiser.
    learning_rate_fn: the schedule, for the logged learning rate.
    augment_fn: `fn(key, images, batch, schedule) -> augment.Augmented`
      (`jaxmix.train.augment.create_augment_fn`): the targets and the batch
      augmentation.
    config: the static settings.
    loss_fn: `fn(model, augmented, key, schedule) -> (losses [B], logits
      [B, K])` when the loss runs the model itself (token labeling,
      `jaxmix.train.token_labeling.create_loss_fn`: MixToken mixes between
      the patch embedding and the blocks; Manifold Mixup,
      `jaxmix.train.manifold_mixup`; distillation,
      `jaxmix.train.distill`, through `jit_train_step`'s `frozen`); `key`
      is its own. None: the cross-entropy of `model(images)` against the
      targets.

  Returns:
    The new state and scalar metrics: 'loss' (mean soft-target
    cross-entropy, or the two-target form's), 'top1' (accuracy against the
    original labels), 'learning_rate', 'grad_norm' and 'finite' (1.0 when
    the loss, the gradient norm and the norm of the new parameters are
    finite).
  """
  key = jax.random.fold_in(jax.random.key(config.seed), state.step)
  aug_key, model_key = jax.random.split(key)
  augmented = inputs_and_targets(
    aug_key, batch, schedule, augment_fn=augment_fn, config=config
  )
  # A key of its own: MixToken must not replay the pixel augmentation's
  # draws.
  token_mix_key = jax.random.fold_in(aug_key, 1)

  def objective(params, batch_stats):
    # batch_stats is an argument (not closed over) so that BatchNorm may
    # update it inside this trace.
    model = model_def.merge(params, batch_stats, train=True, key=model_key)
    if loss_fn is None:
      logits = model(augmented.images)
      losses = loss_of_targets(logits, augmented.targets, config)
    else:
      losses, logits = loss_fn(model, augmented, token_mix_key, schedule)
    return losses.mean(), (logits, state_lib.batch_stats_of(model))

  grad_fn = jax.value_and_grad(objective, has_aux=True)
  (loss, (logits, batch_stats)), grads = grad_fn(
    state.params, state.batch_stats
  )
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params = state.ema_params
  if ema_params is not None:
    ema_params = optimizers.ema_update(ema_params, params, config.ema_decay)
  new_state = state.replace(
    step=state.step + 1,
    params=params,
    batch_stats=batch_stats,
    opt_state=opt_state,
    ema_params=ema_params,
  )
  top1 = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
  grad_norm = optax.tree.norm(grads)
  # The loss and the logged gradient norm come for free. The new parameters
  # still need one pass: no quantity the step already has implies that they
  # are finite, and a plain sum would miss values large enough to overflow
  # the next step (a norm catches those: its square overflows first).
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  finite = finite & jnp.isfinite(optax.tree.norm(params))
  metrics = {
    'loss': loss,
    'top1': top1,
    'learning_rate': learning_rate_fn(state.step),
    'grad_norm': grad_norm,
    'finite': finite.astype(jnp.float32),
  }
  return new_state, metrics


def eval_step(
  params: Any,
  batch_stats: Any,
  batch: Batch,
  *,
  model_def: state_lib.ModelDef,
  config: StepConfig,
) -> dict[str, jax.Array]:
  """Counts over one padded eval batch, to be summed over the split.

  Args:
    params: parameters (the model's or their EMA).
    batch_stats: BatchNorm statistics.
    batch: 'image' uint8 `[B, H, W, 3]`, 'label' int32 `[B]`, 'mask' bool
      `[B]` (False on padding).
    model_def: graph definitions from `create_train_state`.
    config: the static settings.

  Returns:
    Scalars: 'top1_correct', 'top5_correct' (int32 counts), 'count' (real
    examples) and 'loss_sum' (summed unsmoothed cross-entropy), all over the
    unmasked examples only.
  """
  model = model_def.merge(params, batch_stats, train=False)
  logits = model(
    normalize(batch['image'], config.mean, config.std, config.compute_dtype)
  )
  labels, mask = batch['label'], batch['mask']
  top1, top5 = accuracy.top_k_correct(
    logits, labels, (1, min(5, config.num_classes))
  )
  # From the integer labels: no [B, K] one-hot target beside the logits.
  loss = optax.softmax_cross_entropy_with_integer_labels(
    logits.astype(jnp.float32), labels
  )
  return {
    'top1_correct': jnp.sum(top1 & mask, dtype=jnp.int32),
    'top5_correct': jnp.sum(top5 & mask, dtype=jnp.int32),
    'count': jnp.sum(mask, dtype=jnp.int32),
    'loss_sum': jnp.sum(jnp.where(mask, loss, 0.0)),
  }


class FrozenInputs(NamedTuple):
  """Arrays every step reads and never updates, and the loss that reads them.

  A distillation teacher's variables (`jaxmix.train.distill`): passed to
  the jitted step as an argument, so they are neither baked into the
  compiled program as constants nor part of the train state (neither
  updated nor checkpointed).

  Attributes:
    variables: a pytree of arrays, replicated over the mesh.
    loss_fn: `fn(variables) -> LossFn`, called inside the step's trace.
  """

  variables: Any
  loss_fn: Callable[[Any], LossFn]


def jit_train_step(
  mesh: Mesh, *, frozen: FrozenInputs | None = None, **kwargs: Any
) -> Callable[..., Any]:
  """`train_step` jitted over `mesh` with the state donated.

  Args:
    mesh: the 'data' mesh.
    frozen: a distillation run's frozen inputs; the step's `loss_fn` is
      then `frozen.loss_fn(frozen.variables)` (not with `loss_fn`).
    **kwargs: the keyword arguments of `train_step`.

  Returns:
    `fn(state, batch, schedule) -> (state, metrics)`, for every config.
  """
  replicated = NamedSharding(mesh, PartitionSpec())
  data = NamedSharding(mesh, PartitionSpec('data'))
  if frozen is None:
    return jax.jit(
      functools.partial(train_step, **kwargs),
      in_shardings=(replicated, data, replicated),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
    )
  if kwargs.get('loss_fn') is not None:
    raise ValueError('jit_train_step takes `frozen` or `loss_fn`, not both.')
  kwargs.pop('loss_fn', None)

  def step(state, batch, schedule, variables):
    loss_fn = frozen.loss_fn(variables)
    return train_step(state, batch, schedule, **kwargs, loss_fn=loss_fn)

  jitted = jax.jit(
    step,
    in_shardings=(replicated, data, replicated, replicated),
    out_shardings=(replicated, replicated),
    donate_argnums=0,
  )
  variables = frozen.variables
  return lambda state, batch, schedule: jitted(
    state, batch, schedule, variables
  )


def jit_eval_step(mesh: Mesh, **kwargs: Any) -> Callable[..., Any]:
  """`eval_step` jitted over `mesh`: `fn(params, batch_stats, batch)`."""
  replicated = NamedSharding(mesh, PartitionSpec())
  data = NamedSharding(mesh, PartitionSpec('data'))
  return jax.jit(
    functools.partial(eval_step, **kwargs),
    in_shardings=(replicated, replicated, data),
    out_shardings=replicated,
  )
