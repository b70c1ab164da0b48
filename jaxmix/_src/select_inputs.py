"""Input checks of the ops that only select pixels, which accept uint8.

CutMix-style pasting and Cutout copy or overwrite pixels and never compute
with them, so they can run on uint8 images before normalisation (timm's
`FastCollateMixup` mixes uint8 batches for the same reason). These checks
accept float and uint8 images of a given layout; labels stay dense float.
"""

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import checks

IMAGE_LAYOUT = '[B, H, W, C]'
VIDEO_LAYOUT = '[B, T, H, W, C]'


def check_pixels(
  pixels: ArrayLike, *, name: str = 'images', layout: str = IMAGE_LAYOUT
) -> None:
  """`pixels` must be float or uint8 with the rank of `layout`."""
  shape = jnp.shape(pixels)
  rank = layout.count(',') + 1
  if len(shape) != rank:
    raise ValueError(
      f'`{name}` must have rank {rank} {layout}, got shape {shape}.'
    )
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
