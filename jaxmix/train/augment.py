"""Builds the batch augmentation of the train step from the config.

Only the public jaxmix API is used, on normalised images and dense
targets (or integer labels, below), in timm's and DeiT's order: first the per-example occlusions
(`jaxmix.cutout`, `jaxmix.random_erasing`) when enabled, as their loaders
erase each sample before batching, then the mixing op named by
`config.mix.method` (`jaxmix.mixup`, `jaxmix.cutmix` or
`jaxmix.mixup_or_cutmix`; 'mixtoken' mixes inside the model,
`jaxmix.train.token_labeling`). So erasing never paints over a blend and a
pasted CutMix box carries the partner's erased pixels, as in those codes.

The composition runs under `jaxmix.per_shard`, so partners are drawn inside
each device's shard (no cross-device traffic). `config.mix.draw` sets how
many lambdas and boxes a step draws:

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
  (`jaxmix.mixup_or_cutmix(pairs=True)`; `b` must be even). 'mixup' and
  'cutmix' take this mode through the same op with the other alpha 0.

The occlusions draw per example on every device (device index folded in).

Alpha 0 (timm's rule): with 'mixup_or_cutmix', `mixup_alpha=0` cuts every
mixed example and `cutmix_alpha=0` blends every one (`config.mix.minmax`
boxes switch CutMix on whatever its alpha, as timm sets it to 1).

Targets (`config.mix.targets`). 'dense': the step passes one-hot
(smoothed) targets `[B, K]` and the ops mix them. 'two_target': single
integer labels `[B]` go in, and out come `TwoTargets` (own label, partner's
label, own weight, each `[B]`): the op mixes the images as in 'dense' (bit
for bit), its sampler (`jaxmix.draw_mixup`, `draw_cutmix`,
`draw_mixup_or_cutmix`, which spend the key as the ops do) gives the
partners and weights, and the partners' labels are gathered inside the
shard; the step's loss is then
`jaxmix.two_target_cross_entropy` with `config.label_smoothing`, and no
`[B, K]` target is built (358 MB at batch 4,096 with ImageNet-21k's 21,843
classes). Both forms draw the same and give the same loss and gradients up
to float rounding (the loss is linear in the target); 'dense' is the
default so that recorded runs keep their exact arithmetic, and ReLabel,
token labels and CMO, whose targets are soft or mixed elsewhere, need it.

`config.mix.prob` is not baked in: the step passes the current mixing
probability as a traced scalar (`mix_prob`), which the loop sets to 0.0 for
the last `config.mix.off_epoch` epochs without recompiling. Alphas and the
other knobs are fixed for a run.

ReLabel runs pass their targets in as `labels`, so every mixing method mixes
ReLabel targets; `config.mix.method == 'cutmix'` on them is the official
ReLabel + CutMix rule (it equals `jaxmix.relabel_cutmix` with
`localized=False`). With `config.relabel.localized_cutmix` the mixing op is
`jaxmix.relabel_cutmix(localized=True)`, which pools the pasted box from the
partner's label map; it needs the maps (`maps=` from the step) and applies
`config.label_smoothing` to the targets it makes.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

import jaxmix

MIX_METHODS = ('none', 'mixup', 'cutmix', 'mixup_or_cutmix', 'mixtoken')
# Methods that mix inside the model, not here (jaxmix.train.token_labeling).
MODEL_MIX_METHODS = ('mixtoken',)
MIX_DRAWS = ('batch', 'device', 'example', 'pair')
MIX_TARGETS = ('dense', 'two_target')


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


def unmixed_targets(labels: jax.Array) -> TwoTargets:
  """`TwoTargets` of a batch that was not mixed: weight 1 on each label."""
  labels = jnp.asarray(labels, jnp.int32)
  return TwoTargets(labels, labels, jnp.ones(labels.shape, jnp.float32))


def targets(config: Any) -> str:
  """`config.mix.targets`, one of `MIX_TARGETS`.

  Configs written before the field existed (run directories) used dense
  targets, so that is what a missing field means.
  """
  return config.mix.get('targets', 'dense')


def _mix_op(config: Any) -> tuple[str, dict[str, Any]]:
  """The name of the public op `config.mix` runs, and its static knobs.

  Pair mode is an option of `mixup_or_cutmix` only; a 'mixup' or 'cutmix'
  run in that mode runs it with the other branch's alpha 0 (timm's way of
  switching a branch off), which is Mixup or CutMix drawn per pair.
  """
  mix = config.mix
  minmax = None if mix.minmax is None else tuple(mix.minmax)
  per_example = mix.draw == 'example'
  if mix.method not in ('mixup', 'cutmix', 'mixup_or_cutmix'):
    raise ValueError(
      f'config.mix.method must be one of {MIX_METHODS}, got {mix.method!r}.'
    )
  if mix.method == 'mixup_or_cutmix' or mix.draw == 'pair':
    mixes_up = mix.method in ('mixup', 'mixup_or_cutmix')
    cuts = mix.method in ('cutmix', 'mixup_or_cutmix')
    return 'mixup_or_cutmix', {
      'mixup_alpha': mix.mixup_alpha if mixes_up else 0.0,
      'cutmix_alpha': mix.cutmix_alpha if cuts else 0.0,
      'switch_prob': mix.switch_prob,
      'per_example': per_example,
      'pairs': mix.draw == 'pair',
      'correct_lam': mix.correct_lam,
      'minmax': minmax if cuts else None,
    }
  if mix.method == 'mixup':
    return 'mixup', {'alpha': mix.mixup_alpha, 'per_example': per_example}
  return 'cutmix', {
    # `minmax` boxes do not use the alpha (timm sets it to 1 then).
    'alpha': mix.cutmix_alpha if minmax is None else 1.0,
    'per_example': per_example,
    'correct_lam': mix.correct_lam,
    'minmax': minmax,
  }


def _mix(config: Any, key, images, labels, prob):
  """Applies the mixing op named by `config.mix.method` to dense targets."""
  name, knobs = _mix_op(config)
  # Looked up at call time: the ops are the public API, as users call it.
  return getattr(jaxmix, name)(key, images, labels, prob=prob, **knobs)


def _mix_two_targets(config: Any, key, images, labels, prob):
  """The same draw as `_mix`, applied to images and integer labels.

  The images go through the op itself (its fused pass, so they equal the
  dense form's bit for bit; a ``[B, 1]`` stand-in takes the labels' place),
  and the draw's partners and weights come from the op's sampler with the
  same key, which draws exactly what the op drew. Returns `(images,
  TwoTargets)`; `labels` are int ``[B]``.
  """
  name, knobs = _mix_op(config)
  batch, height, width = images.shape[:3]
  stand_in = jnp.zeros((batch, 1), jnp.float32)
  images, _ = getattr(jaxmix, name)(key, images, stand_in, prob=prob, **knobs)
  size = {} if name == 'mixup' else {'height': height, 'width': width}
  sampler = getattr(jaxmix, f'draw_{name}')
  draw = sampler(key, batch_size=batch, prob=prob, **size, **knobs)
  labels = jnp.asarray(labels, jnp.int32)
  return images, TwoTargets(labels, labels[draw.partners], draw.weight)


def _localized_relabel_cutmix(config: Any, key, images, maps, prob):
  """ReLabel + CutMix pooling each region from its own map, smoothed."""
  scores, indices, crop_boxes, flips = maps
  images, targets = jaxmix.relabel_cutmix(
    key,
    images,
    scores,
    indices,
    crop_boxes,
    flips,
    num_classes=config.data.num_classes,
    alpha=config.mix.cutmix_alpha,
    prob=prob,
    localized=True,
    official_box_order=bool(config.relabel.official_box_order),
    temperature=float(config.relabel.temperature),
  )
  if config.label_smoothing > 0:
    targets = jaxmix.smooth_labels(targets, config.label_smoothing)
  return images, targets


def create_augment_fn(
  config: Any, mesh: Mesh
) -> Callable[..., tuple[jax.Array, Any]] | None:
  """The train step's batch augmentation, or None when nothing is enabled.

  Args:
    config: the trainer config (reads `mix`, `cutout`, `random_erasing`).
    mesh: the 'data' mesh the batch is sharded over.

  Returns:
    `fn(key, images, labels, *, mix_prob, maps=None) -> (images, labels)`
    on float `[B, H, W, C]` normalised images, where `mix_prob` is a float32
    scalar `jax.Array` and `maps` the ReLabel `(scores, indices,
    crop_boxes, flips)` (needed only by the localised ReLabel + CutMix).
    With `config.mix.targets='dense'` the labels are dense `[B, K]` targets
    in and out; with 'two_target' they are int `[B]` in and `TwoTargets`
    out.
  """
  use_mix = config.mix.method not in ('none', *MODEL_MIX_METHODS)
  relabel = config.get('relabel') or {}
  localized = bool(
    relabel.get('enabled', False)
    and relabel.get('localized_cutmix', False)
    and config.mix.method == 'cutmix'
  )
  use_cutout = config.cutout.size > 0
  erasing = config.random_erasing
  use_erasing = erasing.prob > 0
  if not (use_mix or use_cutout or use_erasing):
    return None
  if config.mix.method not in MIX_METHODS:
    raise ValueError(
      f'config.mix.method must be one of {MIX_METHODS}, got '
      f'{config.mix.method!r}.'
    )

  if config.mix.draw not in MIX_DRAWS:
    raise ValueError(
      f'config.mix.draw must be one of {MIX_DRAWS}, got {config.mix.draw!r}.'
    )
  mode = targets(config)
  if mode not in MIX_TARGETS:
    raise ValueError(
      f'config.mix.targets must be one of {MIX_TARGETS}, got {mode!r}.'
    )
  two_target = mode == 'two_target'
  if two_target and localized:
    raise ValueError(
      "config.mix.targets='two_target' cannot be combined with "
      'config.relabel.localized_cutmix (its targets are soft).'
    )
  same_draw_everywhere = config.mix.draw == 'batch'

  def augment(key, images, labels, *maps, mix_prob):
    mix_key, cutout_key, erasing_key = jax.random.split(key, 3)
    device = jax.lax.axis_index('data')
    # The occlusions return their labels untouched; integer labels skip
    # them (a [B, 1] stand-in satisfies their dense-label check).
    occluded = jnp.zeros((images.shape[0], 1)) if two_target else labels
    if use_cutout:
      images, occluded = jaxmix.cutout(
        jax.random.fold_in(cutout_key, device),
        images,
        occluded,
        size=config.cutout.size,
        prob=config.cutout.prob,
        count=config.cutout.count,
      )
    if use_erasing:
      images, occluded = jaxmix.random_erasing(
        jax.random.fold_in(erasing_key, device),
        images,
        occluded,
        prob=erasing.prob,
        area=tuple(erasing.area),
        aspect=tuple(erasing.aspect),
        fill=erasing.fill,
        max_count=erasing.max_count,
      )
    if not two_target:
      labels = occluded
    if not same_draw_everywhere:
      mix_key = jax.random.fold_in(mix_key, device)
    if localized:
      return _localized_relabel_cutmix(config, mix_key, images, maps, mix_prob)
    if not use_mix:
      return images, unmixed_targets(labels) if two_target else labels
    if two_target:
      return _mix_two_targets(config, mix_key, images, labels, mix_prob)
    return _mix(config, mix_key, images, labels, mix_prob)

  # Keys are folded per device above, where each draw needs it.
  sharded = jaxmix.per_shard(augment, mesh, axis='data', per_device_keys=False)

  def augment_fn(key, images, labels, *, mix_prob, maps=None):
    prob = jnp.asarray(mix_prob)
    if two_target and (
      jnp.ndim(labels) != 1 or not jnp.issubdtype(labels.dtype, jnp.integer)
    ):
      raise ValueError(
        "config.mix.targets='two_target' takes integer labels [B], got shape "
        f'{jnp.shape(labels)} and dtype {labels.dtype}.'
      )
    if not localized:
      return sharded(key, images, labels, mix_prob=prob)
    if maps is None:
      raise ValueError(
        'config.relabel.localized_cutmix needs the label maps: pass '
        'maps=(scores, indices, crop_boxes, flips).'
      )
    return sharded(key, images, labels, *maps, mix_prob=prob)

  return augment_fn
