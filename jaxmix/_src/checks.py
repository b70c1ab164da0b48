"""Input validation shared by the public ops.

Only Python-level facts are checked (ranks, shapes, dtypes, and knob values
given as Python numbers), so every check also works while tracing under `jit`.
Errors name the argument and what it was.

Ops that select pixels (CutMix-style pasting, Cutout, Random Erasing's zero
fill) copy or overwrite pixels and never compute with them, so they also run
on uint8 images before normalisation, bit-identical to the float path cast
back (`check_select_batch`); Mixup blends pixel values and refuses integer
images with an error that says so (`check_blend_batch`).
"""

import numbers

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# Channel counts of images (grey, RGB, RGBA), for telling [B, C, H, W] apart.
IMAGE_CHANNELS = (1, 3, 4)
IMAGE_LAYOUT = '[B, H, W, C]'
VIDEO_LAYOUT = '[B, T, H, W, C]'


def check_images(images: ArrayLike, name: str = 'images') -> None:
  """Images must be a float channels-last `[B, H, W, C]` array."""
  check_pixels(images, name=name)
  if not is_float(images):
    raise TypeError(
      f'`{name}` must be a float array (float32, bfloat16 or float16), got '
      f'dtype {jnp.result_type(images)}; convert uint8 images with '
      '`images.astype(jnp.float32)` (and normalise) first.'
    )


def check_channels_last(shape: tuple[int, ...], name: str = 'images') -> None:
  """A rank-4 image `shape` must not look channels-first.

  Channels-first batches are rejected by one rule: axis 1 holds 1, 3 or 4
  entries while the last axis holds another count (`[B, 3, H, W]` with
  `W` not in {1, 3, 4}), which would otherwise be read as an image of height
  3. Channels-last images of any channel count pass (`[B, H, W, 8]` with
  `H` >= 5).
  """
  if shape[1] in IMAGE_CHANNELS and shape[3] not in IMAGE_CHANNELS:
    raise ValueError(
      f'`{name}` of shape {shape} looks channels-first [B, C, H, W]; jaxmix '
      f'takes channels-last [B, H, W, C]: pass '
      f'`jnp.transpose({name}, (0, 2, 3, 1))`.'
    )


def check_labels(labels: ArrayLike, batch_size: int) -> None:
  """Labels must be dense float `[B, K]` with the images' batch size."""
  shape = jnp.shape(labels)
  if len(shape) != 2:
    raise ValueError(
      f'`labels` must be dense [B, K] (use jaxmix.one_hot for integer '
      f'labels), got shape {shape}.'
    )
  if not jnp.issubdtype(jnp.result_type(labels), jnp.floating):
    raise TypeError(
      f'`labels` must be a float array [B, K] (one-hot, smoothed or soft), '
      f'got dtype {jnp.result_type(labels)}; use jaxmix.one_hot first.'
    )
  if shape[0] != batch_size:
    raise ValueError(
      f'`labels` has batch size {shape[0]} (shape {shape}) but `images` has '
      f'batch size {batch_size}.'
    )


def is_number(value) -> bool:
  """Whether a knob is a Python number (checked now; traced ones are not)."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value, *, minimum: int = 1) -> None:
  """A static size or count must be a Python int >= `minimum` (1 or 0)."""
  if not isinstance(value, int) or value < minimum:
    kind = 'positive' if minimum == 1 else 'non-negative'
    raise ValueError(f'`{name}` must be a {kind} Python int, got {value!r}.')


def check_positive(name: str, value) -> None:
  """A concentration such as `alpha` must be > 0 when given as a number."""
  if is_number(value) and not value > 0:
    raise ValueError(f'`{name}` must be > 0, got {value}.')


def check_probability(name: str, value) -> None:
  """A probability must lie in [0, 1] when given as a number."""
  if is_number(value) and not 0.0 <= value <= 1.0:
    raise ValueError(f'`{name}` must be in [0, 1], got {value}.')


def check_range(name: str, value, low: float, high: float) -> None:
  """A `(min, max)` pair must be ordered and inside `[low, high]`."""
  if len(value) != 2 or not low <= value[0] <= value[1] <= high:
    raise ValueError(
      f'`{name}` must be a (min, max) pair with {low} <= min <= max <= '
      f'{high}, got {value}.'
    )


def check_key(key: jax.Array) -> None:
  """The first argument must be a PRNG key, not an image batch."""
  dtype = jnp.result_type(key)
  is_new_style = jnp.issubdtype(dtype, jax.dtypes.prng_key)
  is_raw = dtype == jnp.uint32 and jnp.ndim(key) == 1
  if not (is_new_style or is_raw):
    raise TypeError(
      '`key` must be a PRNG key (jax.random.key or jax.random.PRNGKey), '
      f'got an array of shape {jnp.shape(key)} and dtype {dtype}.'
    )


def check_batch_size(batch_size, *, name: str = 'batch_size') -> None:
  """A batch that is mixed within itself needs two examples or more.

  Mixing pairs each example with another of its batch (under `pmap` or
  `shard_map`, of its device's shard): with one example there is nothing to
  mix, so a size under two is an error rather than a silent identity.
  """
  if not isinstance(batch_size, int) or isinstance(batch_size, bool):
    raise ValueError(f'`{name}` must be a Python int, got {batch_size!r}.')
  if batch_size < 2:
    raise ValueError(
      f'`{name}` is {batch_size}: mixing pairs each example with another '
      "of its batch (or, under pmap or shard_map, of its device's shard), "
      'so it needs at least 2 examples.'
    )


def is_float(pixels: ArrayLike) -> bool:
  """Whether `pixels` has a floating dtype (static)."""
  return jnp.issubdtype(jnp.result_type(pixels), jnp.floating)


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
  if layout == IMAGE_LAYOUT:
    check_channels_last(shape, name)
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
  check_labels(labels, jnp.shape(pixels)[0])


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
  if jnp.ndim(images) == 4 and not is_float(images):
    raise TypeError(
      f'`images` must be a float array for {op}, which blends pixel values, '
      f'got dtype {jnp.result_type(images)}: convert (and normalise) first, '
      '`images.astype(jnp.float32)`. The ops that only select pixels '
      '(cutmix, cutout, videomix, saliency_cutmix, cmo) accept uint8'
      f'{hint}.'
    )
  check_select_batch(images, labels)
