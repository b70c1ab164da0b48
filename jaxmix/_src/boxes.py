"""Pixel boxes for CutMix and Cutout: the convention, samplers and masks.

Convention, used everywhere in jaxmix: a `Box` holds integer pixel
coordinates `(top, left, bottom, right)` in the image's own frame, y first,
half-open (`top <= y < bottom`, `left <= x < right`), int32. Each field is a
scalar for one box per batch or has shape `[B]` (any batch shape) for one box
per example. A box with `bottom <= top` or `right <= left` is empty.

Masks are built from `iota` comparisons, so a box of random size keeps static
shapes under `jit` and `vmap`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import checks


class Box(NamedTuple):
  """A half-open integer pixel box, y first (see the module docstring).

  Attributes:
    top: first row inside the box, int32 ``[...]``.
    left: first column inside the box, int32 ``[...]``.
    bottom: one past the last row inside the box, int32 ``[...]``.
    right: one past the last column inside the box, int32 ``[...]``.
  """

  top: jax.Array
  left: jax.Array
  bottom: jax.Array
  right: jax.Array


def box_area(box: Box) -> jax.Array:
  """Number of pixels inside `box`; 0 for an empty box.

  Args:
    box: a `Box` with fields of any (common) shape ``[...]``.

  Returns:
    int32 ``[...]``, the area of each box.

  Examples:
    >>> box_area(Box(1, 2, 4, 3))
    Array(3, dtype=int32)
  """
  height = jnp.maximum(jnp.asarray(box.bottom) - box.top, 0)
  width = jnp.maximum(jnp.asarray(box.right) - box.left, 0)
  return (height * width).astype(jnp.int32)


def kept_fraction(box: Box, *, height: int, width: int) -> jax.Array:
  """The share of an `H x W` image outside `box`: `1 - area / (H * W)`.

  The label weight of CutMix-style ops (the corrected lambda), float32
  ``[...]``.
  """
  return 1.0 - box_area(box).astype(jnp.float32) / (height * width)


def empty_unless(apply: jax.Array, box: Box) -> Box:
  """Keeps `box` where `apply` and puts an empty box elsewhere."""
  return Box(*(jnp.where(apply, field, 0) for field in box))


def box_mask(
  box: Box, *, height: int, width: int, channels: int = 1
) -> jax.Array:
  """Boolean mask that is True on the pixels inside `box`.

  With `channels` C > 1 the mask is laid out on images viewed as rows of
  pixels ``[H, W * C]`` (entry `[y, x * C + c]` for pixel `(y, x)`):
  selecting along the contiguous row runs several times faster on CPUs than
  broadcasting a ``[..., H, W, 1]`` mask over the channels.

  Args:
    box: a `Box` with fields of shape ``[...]`` (scalars or ``[B]``).
    height: image height H. Static.
    width: image width W. Static.
    channels: C, the entries per pixel of a row. Static.

  Returns:
    bool ``[..., H, W * C]``.

  Examples:
    >>> box_mask(Box(0, 1, 1, 3), height=2, width=3).astype(int)
    Array([[0, 1, 1],
           [0, 0, 0]], dtype=int32)
  """
  rows = jnp.arange(height, dtype=jnp.int32)[:, None]
  cols = (jnp.arange(width * channels, dtype=jnp.int32) // channels)[None, :]
  top, left, bottom, right = (
    jnp.asarray(field, jnp.int32)[..., None, None] for field in box
  )
  return (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)


def centered_box(
  center_y: ArrayLike,
  center_x: ArrayLike,
  *,
  cut_height: ArrayLike,
  cut_width: ArrayLike,
  height: int,
  width: int,
) -> Box:
  """The box `center +- cut // 2`, clipped to the image.

  This is the placement rule of the official CutMix and Cutout code: the box
  is `2 * (cut // 2)` pixels on a side before clipping, and clipping at the
  border makes boxes near the edges smaller.

  Args:
    center_y: integer row of the centre ``[...]``.
    center_x: integer column of the centre ``[...]``.
    cut_height: nominal box height ``[...]``.
    cut_width: nominal box width ``[...]``.
    height: image height H. Static.
    width: image width W. Static.

  Returns:
    A `Box` with int32 fields ``[...]``.

  Examples:
    >>> centered_box(0, 5, cut_height=4, cut_width=4, height=8, width=8)
    Box(top=Array(0, dtype=int32), left=Array(3, dtype=int32), bottom=Array(2, dtype=int32), right=Array(7, dtype=int32))
  """
  half_h = jnp.asarray(cut_height, jnp.int32) // 2
  half_w = jnp.asarray(cut_width, jnp.int32) // 2
  center_y = jnp.asarray(center_y, jnp.int32)
  center_x = jnp.asarray(center_x, jnp.int32)
  return Box(
    top=jnp.clip(center_y - half_h, 0, height),
    left=jnp.clip(center_x - half_w, 0, width),
    bottom=jnp.clip(center_y + half_h, 0, height),
    right=jnp.clip(center_x + half_w, 0, width),
  )


def sample_cutmix_box(
  key: jax.Array, *, height: int, width: int, weight: ArrayLike
) -> Box:
  """Samples the CutMix box of the official rule for mix weight `weight`.

  The box side is `floor(H * sqrt(1 - weight))` by `floor(W * sqrt(1 -
  weight))`, its integer centre is uniform over the whole image, and it spans
  `centre +- side // 2`, clipped to the image. Clipping makes the pasted area
  smaller than `1 - weight` on average; `cutmix` therefore weights the labels
  by the exact kept-pixel fraction by default.

  Args:
    key: a PRNG key.
    height: image height H. Static.
    width: image width W. Static.
    weight: the sampled mix weight (lambda) in [0, 1], a scalar or ``[B]``.
      May be traced.

  Returns:
    A `Box` whose fields have the shape of `weight`.

  Examples:
    >>> import jax
    >>> box = sample_cutmix_box(jax.random.key(0), height=8, width=8,
    ...                         weight=0.75)
    >>> int(box.bottom - box.top) <= 4
    True

  References:
    Yun et al., CutMix: Regularization Strategy to Train Strong Classifiers
    with Localizable Features, https://arxiv.org/abs/1905.04899
  """
  checks.check_key(key)
  weight = jnp.asarray(weight, jnp.float32)
  ratio = jnp.sqrt(jnp.clip(1.0 - weight, 0.0, 1.0))
  cut_height = jnp.floor(height * ratio).astype(jnp.int32)
  cut_width = jnp.floor(width * ratio).astype(jnp.int32)
  key_y, key_x = jax.random.split(key)
  center_y = jax.random.randint(key_y, weight.shape, 0, height)
  center_x = jax.random.randint(key_x, weight.shape, 0, width)
  return centered_box(
    center_y,
    center_x,
    cut_height=cut_height,
    cut_width=cut_width,
    height=height,
    width=width,
  )


def sample_cutmix_box_minmax(
  key: jax.Array,
  *,
  height: int,
  width: int,
  minmax: tuple[float, float],
  shape: tuple[int, ...] = (),
) -> Box:
  """Samples a box whose sides are a uniform fraction of the image sides.

  timm's `cutmix_minmax` rule: the box height is a uniform integer in
  `[int(H * min), int(H * max))`, the width independently in
  `[int(W * min), int(W * max))`, and the box is placed uniformly among the
  `H - side + 1` (and `W - side + 1`) positions that keep it wholly inside
  the image (no clipping; timm's `randint(0, H - side)` leaves out the
  position flush with the bottom and right edges, which jaxmix keeps). No
  mix weight is drawn: the label weight is always the kept-pixel fraction.

  Args:
    key: a PRNG key.
    height: image height H. Static.
    width: image width W. Static.
    minmax: `(min, max)` side fractions with `0 <= min <= max <= 1`, e.g.
      `(0.2, 0.8)`. Static.
    shape: batch shape of the boxes, `()` for one box. Static.

  Returns:
    A `Box` with int32 fields of shape `shape`.

  Examples:
    >>> import jax
    >>> box = sample_cutmix_box_minmax(jax.random.key(0), height=10, width=10,
    ...                                minmax=(0.2, 0.8))
    >>> 2 <= int(box.bottom - box.top) < 8
    True
  """
  checks.check_key(key)
  checks.check_range('minmax', tuple(minmax), 0.0, 1.0)
  key_h, key_w, key_y, key_x = jax.random.split(key, 4)
  low_h, high_h = int(height * minmax[0]), int(height * minmax[1])
  low_w, high_w = int(width * minmax[0]), int(width * minmax[1])
  cut_height = jax.random.randint(key_h, shape, low_h, max(high_h, low_h + 1))
  cut_width = jax.random.randint(key_w, shape, low_w, max(high_w, low_w + 1))
  top = jax.random.randint(key_y, shape, 0, height - cut_height + 1)
  left = jax.random.randint(key_x, shape, 0, width - cut_width + 1)
  return Box(top, left, top + cut_height, left + cut_width)
