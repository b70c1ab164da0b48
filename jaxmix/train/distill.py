"""Knowledge distillation with an online teacher (Hinton et al. 2015).

A run with `config.distill.enabled` trains its model against a frozen
teacher evaluated inside the jitted step on every augmented crop: the very
images the student sees, after the occlusions and the mixing (a CutMix
crop's teacher targets are the teacher's view of the pasted image). The
per-example loss is Hinton et al.'s

    (1 - alpha) * CE(targets, softmax(s))
      + alpha * T^2 * KL(softmax(t / T) || softmax(s / T)),

with `s` the student's logits, `t` the teacher's, `T =
config.distill.temperature`, `alpha = config.distill.alpha`, and `targets`
the step's own (one-hot, smoothed, mixed by the run's mixing; the T^2 keeps
the soft term's gradient on the hard term's scale as T grows). The soft
targets are `teacher_targets(t, T) = softmax(t / T)`. With `alpha = 1` and
`T = 1` the student learns the teacher's predictions alone, as a ReLabel
student learns the annotator's label maps alone: the comparison of
ReLabel's talk (the same machine annotator, online on every crop against
ReLabel's one-off maps).

The teacher is a trained jaxmix run (its directory: `config.json` and
checkpoints, the EMA parameters when it kept them) or a torchvision / timm
state dict read by `jaxmix.models.load_torch_weights`
(`config.distill.teacher_model` names the model); synthetic data without a
teacher gets a randomly initialised `teacher_model` (its `:smoke`). It runs in eval mode
(BatchNorm by its running averages, no dropout or drop path), in the
student's compute dtype (a run directory's teacher: its own), its logits
behind `jax.lax.stop_gradient`, and its variables are an argument of the
jitted step (`jaxmix.train.steps.FrozenInputs`), never part of the train
state: they are neither updated nor checkpointed. Its input is the
student's normalised crop, re-normalised with the teacher's own channel
statistics when they differ (a run's `data.mean/std`; ImageNet's for a
state dict).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmix.io import paths
from jaxmix.train import build, steps, trained
from jaxmix.train import state as state_lib

LossFn = steps.LossFn


def teacher_targets(teacher_logits: jax.Array, temperature: float) -> jax.Array:
  """The soft targets `softmax(t / T)`, float32 `[B, K]`."""
  return jax.nn.softmax(teacher_logits.astype(jnp.float32) / temperature)


def distillation_loss(
  logits: jax.Array, teacher_logits: jax.Array, temperature: float
) -> jax.Array:
  """`T^2 KL(softmax(t / T) || softmax(s / T))` per example, float32 `[B]`.

  Args:
    logits: the student's `[B, K]`.
    teacher_logits: the teacher's `[B, K]` (no gradient flows to them).
    temperature: T > 0.
  """
  t = jax.lax.stop_gradient(teacher_logits.astype(jnp.float32)) / temperature
  log_p = jax.nn.log_softmax(t)
  log_q = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature)
  kl = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
  return temperature**2 * kl


@dataclasses.dataclass(frozen=True)
class Teacher:
  """A frozen teacher: its graph, variables and input statistics.

  Attributes:
    model_def: its graph definitions (eval mode is used).
    variables: `(params, batch_stats)`, replicated on the mesh.
    mean: its per-channel input mean on the 0..255 scale, `[3]`.
    std: its per-channel input standard deviation, `[3]`.
    num_classes: the size of its classifier.
    source: what it was loaded from, for the log.
  """

  model_def: state_lib.ModelDef
  variables: Any
  mean: tuple[float, ...]
  std: tuple[float, ...]
  num_classes: int
  source: str

  def logits(
    self,
    variables: Any,
    images: jax.Array,
    *,
    student_mean: tuple[float, ...],
    student_std: tuple[float, ...],
  ) -> jax.Array:
    """The teacher's float32 logits `[B, K]` on the student's input.

    Args:
      variables: `(params, batch_stats)` (traced inside the step).
      images: the student's normalised images `[B, H, W, 3]`.
      student_mean, student_std: the statistics they were normalised with.
    """
    if (tuple(student_mean), tuple(student_std)) != (self.mean, self.std):
      dtype = images.dtype
      pixels = images.astype(jnp.float32) * jnp.asarray(student_std)
      pixels = pixels + jnp.asarray(student_mean)
      images = (
        (pixels - jnp.asarray(self.mean)) / jnp.asarray(self.std)
      ).astype(dtype)
    params, batch_stats = variables
    model = self.model_def.merge(params, batch_stats, train=False)
    return jax.lax.stop_gradient(model(images).astype(jnp.float32))


def _is_run_dir(path) -> bool:
  return (path / 'config.json').exists()


def random_teacher(config: ml_collections.ConfigDict, mesh: Mesh) -> Teacher:
  """`config.distill.teacher_model`, randomly initialised (synthetic runs).

  Seeded by `config.seed + 1`; its input statistics and compute dtype are
  the student's.
  """
  from jaxmix.models import create_model

  model = create_model(
    config.distill.teacher_model,
    num_classes=config.data.num_classes,
    rngs=nnx.Rngs(config.seed + 1),
    dtype=build.DTYPES[config.model.dtype],
  )
  model_def, params, batch_stats = state_lib.split_model(model)
  replicated = NamedSharding(mesh, PartitionSpec())
  return Teacher(
    model_def=model_def,
    variables=jax.device_put((params, batch_stats), replicated),
    mean=tuple(float(v) for v in config.data.mean),
    std=tuple(float(v) for v in config.data.std),
    num_classes=int(config.data.num_classes),
    source=f'a random {config.distill.teacher_model} (synthetic data)',
  )


def load_teacher(config: ml_collections.ConfigDict, mesh: Mesh) -> Teacher:
  """The teacher `config.distill` names, replicated on `mesh`.

  Raises:
    ValueError: naming `config.distill.teacher` or
      `config.distill.teacher_model` when the teacher is missing, of the
      wrong kind, or does not predict the run's classes.
  """
  distill = config.distill
  if distill.teacher is None:
    if config.data.dataset == 'synthetic':  # a random teacher
      return random_teacher(config, mesh)
    raise ValueError(
      'config.distill.enabled needs config.distill.teacher: a jaxmix run '
      'directory or a torchvision / timm state dict (with '
      'config.distill.teacher_model), e.g. --config.distill.teacher=FILE.'
    )
  where = paths.resolve(distill.teacher)
  if not where.exists():
    raise ValueError(
      f'config.distill.teacher={distill.teacher!r} does not exist: give a '
      'jaxmix run directory (config.json and checkpoints/) or a torchvision '
      '/ timm state dict (.safetensors or .pth) with '
      'config.distill.teacher_model.'
    )
  if where.is_dir():
    if not _is_run_dir(where):
      raise ValueError(
        f'config.distill.teacher={distill.teacher!r} is a directory without '
        'config.json: not a jaxmix run directory.'
      )
    run_config, model_def, variables, step, ema = trained.restore_variables(
      where, mesh=mesh
    )
    name = run_config.model.name
    if distill.teacher_model not in (None, name):
      raise ValueError(
        f'config.distill.teacher_model={distill.teacher_model!r} but the '
        f'teacher run {distill.teacher!r} trained {name!r}: leave '
        'config.distill.teacher_model unset for a run directory.'
      )
    mean, std = tuple(run_config.data.mean), tuple(run_config.data.std)
    num_classes = int(run_config.data.num_classes)
    source = f'run {os.fspath(where)} (step {step}{", EMA" if ema else ""})'
  else:
    if not distill.teacher_model:
      raise ValueError(
        f'config.distill.teacher={distill.teacher!r} is a state dict: name '
        'its model with config.distill.teacher_model (e.g. '
        "'resnet152', 'tf_efficientnet_l2_ns_475')."
      )
    from jaxmix.configs import default
    from jaxmix.models import load_torch_weights

    try:
      model = load_torch_weights(
        distill.teacher_model,
        os.fspath(where),
        dtype=build.DTYPES[config.model.dtype],
      )
    except ValueError as e:
      raise ValueError(
        f'config.distill.teacher / config.distill.teacher_model: {e}'
      ) from e
    model_def, params, batch_stats = state_lib.split_model(model)
    replicated = NamedSharding(mesh, PartitionSpec())
    variables = jax.device_put((params, batch_stats), replicated)
    mean, std = default.IMAGENET_MEAN, default.IMAGENET_STD
    num_classes = int(model.head.out_features)
    source = f'{distill.teacher_model} weights {os.fspath(where)}'
  if num_classes != config.data.num_classes:
    raise ValueError(
      f'config.distill.teacher {distill.teacher!r} predicts {num_classes} '
      f'classes, config.data.num_classes is {config.data.num_classes}: the '
      'teacher must share the label space.'
    )
  return Teacher(
    model_def=model_def,
    variables=variables,
    mean=tuple(float(v) for v in mean),
    std=tuple(float(v) for v in std),
    num_classes=num_classes,
    source=source,
  )


def create_loss_fn(
  teacher: Teacher,
  *,
  temperature: float,
  alpha: float,
  step_config: steps.StepConfig,
) -> Callable[[Any], LossFn]:
  """The step's loss with the teacher, as a function of its variables.

  Args:
    teacher: the frozen teacher.
    temperature: T > 0.
    alpha: the weight of the distillation term, in [0, 1].
    step_config: the step's static settings (the hard term's targets and
      the student's normalisation).

  Returns:
    `bind(variables) -> loss_fn`, `loss_fn(model, augmented, key, schedule)
    -> (losses [B], logits [B, K])` the train step's `loss_fn` with the
    teacher's `(params, batch_stats)` bound (traced by the jitted step).
  """

  def bind(variables: Any) -> LossFn:
    def loss_fn(model, augmented, key, schedule):
      del key, schedule  # the teacher is deterministic in eval mode
      logits = model(augmented.images)
      hard = steps.loss_of_targets(logits, augmented.targets, step_config)
      teacher_logits = teacher.logits(
        variables,
        augmented.images,
        student_mean=tuple(step_config.mean),
        student_std=tuple(step_config.std),
      )
      soft = distillation_loss(logits, teacher_logits, temperature)
      return (1.0 - alpha) * hard + alpha * soft, logits

    return loss_fn

  return bind


def frozen_inputs(
  config: ml_collections.ConfigDict,
  mesh: Mesh,
  *,
  step_config: steps.StepConfig,
  teacher: Teacher | None = None,
) -> steps.FrozenInputs:
  """The jitted step's frozen argument and loss of a distillation run."""
  teacher = load_teacher(config, mesh) if teacher is None else teacher
  return steps.FrozenInputs(
    variables=teacher.variables,
    loss_fn=create_loss_fn(
      teacher,
      temperature=float(config.distill.temperature),
      alpha=float(config.distill.alpha),
      step_config=step_config,
    ),
  )
