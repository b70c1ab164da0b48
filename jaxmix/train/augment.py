"""The train step's augmentation hook, built from the config.

`create_augment_fn` gives the step one function, `fn(key, images, batch,
schedule) -> Augmented`, that makes everything the loss needs from the
normalised images and the host batch: the targets (one-hot, smoothed,
ReLabel's pooled targets, or integer labels), the pixel augmentation, and
CMO. Its parts, in timm's and DeiT's order:

1. The per-example occlusions (Cutout, Random Erasing) when enabled, as
   those loaders erase each sample before batching; so erasing never paints
   over a blend and a pasted CutMix box carries the partner's erased pixels.
2. One draw per shard (`create_mix_fn`): the sampler that `config.mix`
   names, or CMO's (`jaxmix.train.samplers.mix_sampler`, `cmo_sampler`,
   never looked up by name), draws a `jaxmix.MixDraw`, `jaxmix.apply_draw`
   applies it to the images, and every kind of target is built from that
   same draw: dense targets blend with `draw.weight`; 'two_target' gathers
   `labels[draw.partners]` beside `draw.weight` (`TwoTargets`, no ``[B, K]``
   target); the localised ReLabel + CutMix pools the pasted box from the
   partner's label map (`jaxmix.localized_cutmix_targets`) and smooths;
   CMO's partner is the minority example at the same position
   (`jaxmix.train.cmo`, with the schedule's `cmo_prob`). CMO runs without
   pixel mixing, so a step draws at most once. 'mixtoken' and
   'manifold_mixup' mix inside the model (`jaxmix.train.token_labeling`,
   `jaxmix.train.manifold_mixup`).

The occlusions and the draw run in one function under `jaxmix.per_shard`,
so partners are drawn inside each device's shard (no cross-device
traffic). `config.mix.draw` sets how many
draws a step makes:

- 'batch': one for the whole global batch, the same key on every device
  (CutMix-PyTorch's ImageNet run: one process, `nn.DataParallel`). Pairing
  stays inside each device's shard; the data is shuffled, so the pairs
  follow the same law as a permutation of the whole batch.
- 'device': one per device, each device folding its index into the key
  (per-process draws of DDP runs such as the official ReLabel's).
- 'example': one per example (timm's 'elem' mode).
- 'pair': one per mirrored pair of each device's shard (timm's 'pair'
  mode): example `i` and example `b - 1 - i` of a shard of `b` are each
  other's partners and share the gate, the branch, lambda and the box
  (`b` must be even). 'mixup' and 'cutmix' take this mode through the
  Mixup-or-CutMix sampler with the other alpha 0.

The occlusions draw per example on every device (device index folded in).

Alpha 0 (timm's rule): with 'mixup_or_cutmix', `mixup_alpha=0` cuts every
mixed example and `cutmix_alpha=0` blends every one (`config.mix.minmax`
boxes switch CutMix on whatever its alpha, as timm sets it to 1).

Targets (`config.mix.targets`): 'dense' (the default, so that recorded runs
keep their exact arithmetic; ReLabel, token labels and CMO need it) or
'two_target'. Both draw the same and give the same loss and gradients up to
float rounding (the loss is linear in the target); 'two_target' builds no
``[B, K]`` target (358 MB at batch 4,096 with ImageNet-21k's 21,843
classes) and its loss is `jaxmix.two_target_cross_entropy` with
`config.label_smoothing`.

The probabilities are not baked in: the step passes the epoch's
`jaxmix.train.augment_schedule.Schedule` (traced float32 scalars), so
switching mixing or CMO off late in training does not recompile. Alphas
and the other knobs are fixed for a run. The config's combinations are
checked by `jaxmix.train.validation` alone.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

import jaxmix
from jaxmix.train import augment_schedule, samplers
from jaxmix.train import cmo as cmo_lib
from jaxmix.train import relabel as train_targets

MIX_METHODS = (
  'none',
  'mixup',
  'cutmix',
  'mixup_or_cutmix',
  'mixtoken',
  'manifold_mixup',
)
# Methods that mix inside the model, not here (jaxmix.train.token_labeling,
# jaxmix.train.manifold_mixup).
MODEL_MIX_METHODS = ('mixtoken', 'manifold_mixup')
MIX_DRAWS = ('batch', 'device', 'example', 'pair')
MIX_TARGETS = ('dense', 'two_target')

Batch = dict[str, jax.Array]


class TwoTargets(NamedTuple):
  """The targets of `config.mix.targets='two_target'`, each ``[B]``.

  Attributes:
    labels: int32, each example's own class.
    partner_labels: int32, its partner's class (its own when not mixed).
    weight: float32, the share of the own class in the mixed target.
  """

  labels: jax.Array
  partner_labels: jax.Array
  weight: jax.Array


class Augmented(NamedTuple):
  """What the augmentation hook gives the loss.

  Attributes:
    images: the augmented images ``[B, H, W, C]``, the input's dtype.
    targets: float32 ``[B, K]`` dense targets, or `TwoTargets`.
    maps: ReLabel's `(scores, indices, crop_boxes, flips)` (unmixed, for
      token labeling), or None in a run without label maps.
  """

  images: jax.Array
  targets: Any
  maps: tuple[jax.Array, ...] | None


AugmentFn = Callable[
  [jax.Array, jax.Array, Batch, augment_schedule.Schedule], Augmented
]


def unmixed_targets(labels: jax.Array) -> TwoTargets:
  """`TwoTargets` of a batch that was not mixed: weight 1 on each label."""
  labels = jnp.asarray(labels, jnp.int32)
  return TwoTargets(labels, labels, jnp.ones(labels.shape, jnp.float32))


def _localized(config: Any) -> bool:
  relabel = config.relabel
  return bool(
    relabel.enabled
    and relabel.localized_cutmix
    and config.mix.method == 'cutmix'
  )


def create_mix_fn(config: Any, mesh: Mesh) -> Callable[..., tuple[Any, Any]]:
  """The occlusions and the one draw of a shard (mixing or CMO), on targets.

  Args:
    config: the trainer config (reads `mix`, `cmo`, `cutout`,
      `random_erasing`, `relabel`), validated by `jaxmix.train.validation`.
    mesh: the 'data' mesh the batch is sharded over.

  Returns:
    `fn(key, images, labels, *, mix_prob, cmo_prob=0, maps=None,
    minority=None) -> (images, targets)` on float `[B, H, W, C]` normalised
    images, where `mix_prob` and `cmo_prob` are float32 scalars, `maps` the
    ReLabel `(scores, indices, crop_boxes, flips)` (read by the localised
    ReLabel + CutMix only) and `minority` CMO's `(images, targets)` of the
    minority stream (`jaxmix.train.cmo.minority_inputs`). With dense
    targets the labels are ``[B, K]`` in and out; with 'two_target' they
    are int ``[B]`` in and `TwoTargets` out. With nothing enabled the
    function returns its inputs (`unmixed_targets` for 'two_target').
  """
  use_cmo = bool(config.cmo.enabled)
  use_mix = config.mix.method not in ('none', *MODEL_MIX_METHODS)
  localized = _localized(config)
  use_cutout = config.cutout.size > 0
  use_erasing = config.random_erasing.prob > 0
  # Read once: the function keeps what the config said when it was built.
  cutout_knobs = dict(
    size=config.cutout.size, prob=config.cutout.prob, count=config.cutout.count
  )
  erasing = config.random_erasing
  erasing_knobs = dict(
    prob=erasing.prob,
    area=tuple(erasing.area),
    aspect=tuple(erasing.aspect),
    fill=erasing.fill,
    max_count=erasing.max_count,
  )
  num_classes, smoothing = config.data.num_classes, config.label_smoothing
  two_target = config.mix.targets == 'two_target'
  # CMO is a run's only draw (validation: it needs mix.method='none').
  sampler = None
  if use_mix:
    sampler = samplers.mix_sampler(config)
  elif use_cmo:
    sampler = samplers.cmo_sampler(config)
  same_draw_everywhere = use_mix and config.mix.draw == 'batch'
  official_box_order = bool(config.relabel.official_box_order)
  temperature = float(config.relabel.temperature)

  def occlude(cutout_key, erasing_key, images):
    device = jax.lax.axis_index('data')
    if use_cutout:
      images = samplers.cutout(
        jax.random.fold_in(cutout_key, device), images, **cutout_knobs
      )
    if use_erasing:
      images = samplers.random_erasing(
        jax.random.fold_in(erasing_key, device), images, **erasing_knobs
      )
    return images

  def mixed_targets(draw, labels, extras, size):
    """Every kind of target, from the draw that mixed the images."""
    if two_target:
      labels = jnp.asarray(labels, jnp.int32)
      return TwoTargets(labels, labels[draw.partners], draw.weight)
    if use_cmo:  # The minority example at the same position.
      return jaxmix.apply_draw(
        labels, draw, roles='target', partner_tree=extras[1]
      )
    if not localized:
      return jaxmix.apply_draw(labels, draw, roles='target')
    scores, indices, crop_boxes, flips = extras
    pooled = jaxmix.localized_cutmix_targets(
      scores,
      indices,
      crop_boxes,
      flips,
      box=draw.box,
      partners=draw.partners,
      num_classes=num_classes,
      height=size[0],
      width=size[1],
      official_box_order=official_box_order,
      temperature=temperature,
    )
    if smoothing > 0:
      pooled = jaxmix.smooth_labels(pooled, smoothing)
    return pooled

  def augment(key, images, labels, *extras, prob):
    mix_key, cutout_key, erasing_key = jax.random.split(key, 3)
    images = occlude(cutout_key, erasing_key, images)
    if sampler is None:
      return images, unmixed_targets(labels) if two_target else labels
    if use_cmo:
      # CMO's key of old (`fold_in(key, 2)`), so recorded runs keep their
      # draws; the mixing's split keys are never replayed.
      mix_key = jax.random.fold_in(key, 2)
    if not same_draw_everywhere:
      mix_key = jax.random.fold_in(mix_key, jax.lax.axis_index('data'))
    batch_size, height, width = images.shape[:3]
    draw = sampler(
      mix_key, batch_size=batch_size, height=height, width=width, prob=prob
    )
    if use_cmo:  # CMO only selects: pixels of the minority example.
      images = jaxmix.apply_draw(
        images, draw, roles='mask', partner_tree=extras[0]
      )
    else:
      images = jaxmix.apply_draw(images, draw, roles='image')
    return images, mixed_targets(draw, labels, extras, (height, width))

  # Keys are folded per device above, where each draw needs it.
  sharded = jaxmix.per_shard(augment, mesh, axis='data', per_device_keys=False)

  def mix_fn(
    key, images, labels, *, mix_prob, cmo_prob=0.0, maps=None, minority=None
  ):
    if two_target and (
      jnp.ndim(labels) != 1 or not jnp.issubdtype(labels.dtype, jnp.integer)
    ):
      raise ValueError(
        "config.mix.targets='two_target' takes integer labels [B], got shape "
        f'{jnp.shape(labels)} and dtype {labels.dtype}.'
      )
    if not (sampler or use_cutout or use_erasing):
      return images, unmixed_targets(labels) if two_target else labels
    extras = ()
    if localized:
      extras = tuple(maps)
    elif use_cmo:
      extras = tuple(minority)
    prob = cmo_prob if use_cmo else mix_prob
    return sharded(key, images, labels, *extras, prob=jnp.asarray(prob))

  return mix_fn


def create_augment_fn(
  config: Any,
  mesh: Mesh,
  *,
  prepare_images: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> AugmentFn:
  """The train step's augmentation hook.

  Args:
    config: the trainer config, validated by `jaxmix.train.validation`.
    mesh: the 'data' mesh the batch is sharded over.
    prepare_images: `fn(key, uint8 images) -> float images` as the step prepares
      its batch; needed by CMO for the minority images.

  Returns:
    `fn(key, images, batch, schedule) -> Augmented`: `images` float
    ``[B, H, W, C]`` as the step prepared them, `batch` the host batch
    ('label' int ``[B]``, and the label maps, crop boxes and flips of a
    ReLabel run, the minority stream of a CMO run), `schedule` the epoch's
    `Schedule`.
  """
  num_classes, smoothing = config.data.num_classes, config.label_smoothing
  two_target = config.mix.targets == 'two_target'
  relabel_fn = None
  if config.relabel.enabled:
    relabel_fn = train_targets.create_targets_fn(
      train_targets.RelabelSettings.from_config(config), mesh
    )
  use_cmo = bool(config.cmo.enabled)
  if use_cmo and prepare_images is None:
    raise ValueError(
      'config.cmo.enabled: create_augment_fn needs prepare_images, the '
      "step's preparation of the minority images."
    )
  mix_fn = create_mix_fn(config, mesh)

  def augment_fn(key, images, batch, schedule):
    maps = None
    if two_target:
      labels = jnp.asarray(batch['label'], jnp.int32)
    elif relabel_fn is None:
      labels = jaxmix.one_hot(batch['label'], num_classes, smoothing=smoothing)
    else:
      labels, maps = relabel_fn(batch)
    minority = None
    if use_cmo:
      minority = cmo_lib.minority_inputs(
        key, batch, images, labels, config=config, normalize=prepare_images
      )
    images, labels = mix_fn(
      key,
      images,
      labels,
      mix_prob=schedule.mix_prob,
      cmo_prob=schedule.cmo_prob,
      maps=maps,
      minority=minority,
    )
    return Augmented(images, labels, maps)

  return augment_fn
