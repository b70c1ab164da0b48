"""Builds the batch augmentation of the train step from the config.

Only the public jaxmix API is used, on normalised images and dense
targets, in timm's and DeiT's order: first the per-example occlusions
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

The occlusions draw per example on every device (device index folded in).

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
from typing import Any

import jax
from jax.sharding import Mesh

import jaxmix

MIX_METHODS = ('none', 'mixup', 'cutmix', 'mixup_or_cutmix', 'mixtoken')
# Methods that mix inside the model, not here (jaxmix.train.token_labeling).
MODEL_MIX_METHODS = ('mixtoken',)
MIX_DRAWS = ('batch', 'device', 'example')


def _mix(config: Any, key, images, labels, prob):
  """Applies the mixing op named by `config.mix.method`."""
  mix = config.mix
  if mix.method == 'mixup':
    return jaxmix.mixup(
      key,
      images,
      labels,
      alpha=mix.mixup_alpha,
      prob=prob,
      per_example=mix.draw == 'example',
    )
  if mix.method == 'cutmix':
    return jaxmix.cutmix(
      key,
      images,
      labels,
      alpha=mix.cutmix_alpha,
      prob=prob,
      per_example=mix.draw == 'example',
      correct_lam=mix.correct_lam,
      minmax=None if mix.minmax is None else tuple(mix.minmax),
    )
  if mix.method == 'mixup_or_cutmix':
    return jaxmix.mixup_or_cutmix(
      key,
      images,
      labels,
      mixup_alpha=mix.mixup_alpha,
      cutmix_alpha=mix.cutmix_alpha,
      switch_prob=mix.switch_prob,
      prob=prob,
      per_example=mix.draw == 'example',
      correct_lam=mix.correct_lam,
    )
  raise ValueError(
    f'config.mix.method must be one of {MIX_METHODS}, got {mix.method!r}.'
  )


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
) -> Callable[..., tuple[jax.Array, jax.Array]] | None:
  """The train step's batch augmentation, or None when nothing is enabled.

  Args:
    config: the trainer config (reads `mix`, `cutout`, `random_erasing`).
    mesh: the 'data' mesh the batch is sharded over.

  Returns:
    `fn(key, images, labels, *, mix_prob, maps=None) -> (images, labels)`
    on float `[B, H, W, C]` normalised images and dense `[B, K]` targets,
    where `mix_prob` is a float32 scalar `jax.Array` and `maps` the ReLabel
    `(scores, indices, crop_boxes, flips)` (needed only by the localised
    ReLabel + CutMix).
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
  same_draw_everywhere = config.mix.draw == 'batch'

  def augment(key, images, labels, *maps, mix_prob):
    mix_key, cutout_key, erasing_key = jax.random.split(key, 3)
    device = jax.lax.axis_index('data')
    if use_cutout:
      images, labels = jaxmix.cutout(
        jax.random.fold_in(cutout_key, device),
        images,
        labels,
        size=config.cutout.size,
        prob=config.cutout.prob,
        count=config.cutout.count,
      )
    if use_erasing:
      images, labels = jaxmix.random_erasing(
        jax.random.fold_in(erasing_key, device),
        images,
        labels,
        prob=erasing.prob,
        area=tuple(erasing.area),
        aspect=tuple(erasing.aspect),
        fill=erasing.fill,
        max_count=erasing.max_count,
      )
    if not same_draw_everywhere:
      mix_key = jax.random.fold_in(mix_key, device)
    if localized:
      images, labels = _localized_relabel_cutmix(
        config, mix_key, images, maps, mix_prob
      )
    elif use_mix:
      images, labels = _mix(config, mix_key, images, labels, mix_prob)
    return images, labels

  # Keys are folded per device above, where each draw needs it.
  sharded = jaxmix.per_shard(augment, mesh, axis='data', per_device_keys=False)

  def augment_fn(key, images, labels, *, mix_prob, maps=None):
    prob = jax.numpy.asarray(mix_prob)
    if not localized:
      return sharded(key, images, labels, mix_prob=prob)
    if maps is None:
      raise ValueError(
        'config.relabel.localized_cutmix needs the label maps: pass '
        'maps=(scores, indices, crop_boxes, flips).'
      )
    return sharded(key, images, labels, *maps, mix_prob=prob)

  return augment_fn
