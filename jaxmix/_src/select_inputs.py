"""Input checks that tell the ops which select pixels from those that blend.

CutMix-style pasting, Cutout and Random Erasing's zero fill copy or overwrite
pixels and never compute with them, so they can run on uint8 images before
normalisation (timm's `FastCollateMixup` mixes uint8 batches for the same
reason): their output is bit-identical to the float path on the same values
cast back. Mixup blends pixel values, so it refuses integer images with an
error that says so. Labels stay dense float either way.
"""

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import checks

IMAGE_LAYOUT = '[B, H, W, C]'
VIDEO_LAYOUT = '[B, T, H, W, C]'


def is_float(pixels: ArrayLike) -> bool:
  """Whether `pixels` has a floating dtype (static)."""
  return jnp.issubdtype(jnp.result_type(pixels), jnp.floating)


def check_pixels(
  pixels: ArrayLike, *, name: str = 'images', layout: str = IMAGE_LAYOUT
) -> None:
  """`pixels` must be float or uint8 with the rank of `layout`.

  Images (`IMAGE_LAYOUT`) must also be channels-last, by the rule of
  `checks.check_images`.
  """
  shape = jnp.shape(pixels)
  rank = layout.count(',') + 1
  if len(shape) != rank:
    raise ValueError(
      f'`{name}` must have rank {rank} {layout}, got shape {shape}.'
    )
  if layout == IMAGE_LAYOUT:
    checks.check_channels_last(shape, name)
  dtype = jnp.result_type(pixels)
  if not (jnp.issubdtype(dtype, jnp.floating) or dtype == jnp.uint8):
    raise TypeError(
      f'`{name}` must be a float or uint8 array {layout}, got dtype {dtype}.'
    )


def check_select_batch(
  pixels: ArrayLike,
  labels: ArrayLike,
  *,
  name: str = 'images',
  layout: str = IMAGE_LAYOUT,
) -> None:
  """The `(pixels, labels)` pair of a select-only op."""
  check_pixels(pixels, name=name, layout=layout)
  checks.check_labels(labels, jnp.shape(pixels)[0])


def check_blend_batch(
  images: ArrayLike, labels: ArrayLike, *, op: str, hint: str = ''
) -> None:
  """The `(images, labels)` pair of an op that blends pixel values.

  Args:
    images: must be float ``[B, H, W, C]``.
    labels: dense float ``[B, K]``.
    op: the op's name, for the error.
    hint: how to run the op without blending, if it can (appended).
  """
  shape = jnp.shape(images)
  if len(shape) == 4 and not is_float(images):
    raise TypeError(
      f'`images` must be a float array for {op}, which blends pixel values, '
      f'got dtype {jnp.result_type(images)}: convert (and normalise) first, '
      '`images.astype(jnp.float32)`. The ops that only select pixels '
      '(cutmix, cutout, videomix, saliency_cutmix, cmo) accept uint8'
      f'{hint}.'
    )
  checks.check_batch(images, labels)
