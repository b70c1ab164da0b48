"""Every public augmentation op with representative knobs, for shared tests."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxmix

# name -> op(key, images, labels) with fixed knobs.
OPS = {
  'mixup': functools.partial(jaxmix.mixup, alpha=0.4),
  'mixup_elem': functools.partial(jaxmix.mixup, alpha=0.4, per_example=True),
  'cutmix': functools.partial(jaxmix.cutmix, alpha=1.0),
  'cutmix_elem': functools.partial(jaxmix.cutmix, per_example=True),
  'cutmix_uncorrected': functools.partial(jaxmix.cutmix, correct_lam=False),
  'cutmix_minmax': functools.partial(jaxmix.cutmix, minmax=(0.2, 0.8)),
  'mixup_or_cutmix': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0.8, cutmix_alpha=1.0
  ),
  'mixup_or_cutmix_minmax': functools.partial(
    jaxmix.mixup_or_cutmix,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    minmax=(0.2, 0.8),
  ),
  'mixup_or_cutmix_elem': functools.partial(
    jaxmix.mixup_or_cutmix,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    per_example=True,
  ),
  # timm's conventions: an alpha of 0 switches its branch off; 'pair' mode.
  'mixup_or_cutmix_cut_only': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0.0, cutmix_alpha=1.0
  ),
  'mixup_or_cutmix_mix_only': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0.8, cutmix_alpha=0.0
  ),
  'mixup_or_cutmix_pairs': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0.8, cutmix_alpha=1.0, pairs=True
  ),
  # The occlusions take images only; their labels pass through.
  'cutout': lambda key, x, y, **kw: (jaxmix.cutout(key, x, size=4, **kw), y),
  'random_erasing': lambda key, x, y, **kw: (
    jaxmix.random_erasing(key, x, **{'prob': 1.0, **kw}),
    y,
  ),
  'random_erasing_pixel': lambda key, x, y, **kw: (
    jaxmix.random_erasing(
      key, x, **{'prob': 1.0, 'fill': 'pixel', 'max_count': 3, **kw}
    ),
    y,
  ),
}

# One entry per public op (and per CutMix box mode), for the costlier tests
# that compile each op on 8 devices.
PUBLIC_OPS = (
  'mixup',
  'cutmix',
  'cutmix_elem',
  'mixup_or_cutmix',
  'mixup_or_cutmix_pairs',
  'cutout',
  'random_erasing',
)

# Ops that leave labels untouched.
LABEL_PRESERVING = ('cutout', 'random_erasing', 'random_erasing_pixel')


def make_batch(
  batch_size: int = 8,
  height: int = 12,
  width: int = 10,
  channels: int = 3,
  num_classes: int | None = None,
  dtype=jnp.float32,
  seed: int = 0,
):
  """Random images `[B, H, W, C]` and one-hot labels of distinct classes."""
  num_classes = num_classes or batch_size + 2
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(batch_size, height, width, channels))
  classes = rng.permutation(num_classes)[:batch_size]
  labels = jax.nn.one_hot(classes, num_classes)
  return jnp.asarray(images, dtype), labels
