"""Input validation shared by the public ops.

Only Python-level facts are checked (ranks, shapes, dtypes, and knob values
given as Python numbers), so every check also works while tracing under `jit`.
Errors name the argument and what it was.
"""

import numbers

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# Channel counts of images (grey, RGB, RGBA), for telling [B, C, H, W] apart.
IMAGE_CHANNELS = (1, 3, 4)


def check_images(images: ArrayLike, name: str = 'images') -> None:
  """Images must be a float channels-last `[B, H, W, C]` array.

  Channels-first batches are rejected by one rule: axis 1 holds 1, 3 or 4
  entries while the last axis holds another count (`[B, 3, H, W]` with
  `W` not in {1, 3, 4}), which would otherwise be read as an image of height
  3. Channels-last images of any channel count pass (`[B, H, W, 8]` with
  `H` >= 5).
  """
  shape = jnp.shape(images)
  if len(shape) != 4:
    raise ValueError(
      f'`{name}` must have rank 4 [B, H, W, C], got shape {shape}.'
    )
  check_channels_last(shape, name)
  if not jnp.issubdtype(jnp.result_type(images), jnp.floating):
    raise TypeError(
      f'`{name}` must be a float array (float32 or bfloat16), got dtype '
      f'{jnp.result_type(images)}; convert uint8 images with '
      '`images.astype(jnp.float32)` (and normalise) first.'
    )


def check_channels_last(shape: tuple[int, ...], name: str = 'images') -> None:
  """A rank-4 image `shape` must not look channels-first (`check_images`)."""
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


def check_batch(images: ArrayLike, labels: ArrayLike) -> None:
  """Checks the `(images, labels)` pair of the augmentation contract."""
  check_images(images)
  check_labels(labels, jnp.shape(images)[0])


def _is_python_number(value) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value) -> None:
  """A concentration such as `alpha` must be > 0 when given as a number."""
  if _is_python_number(value) and not value > 0:
    raise ValueError(f'`{name}` must be > 0, got {value}.')


def check_probability(name: str, value) -> None:
  """A probability must lie in [0, 1] when given as a number."""
  if _is_python_number(value) and not 0.0 <= value <= 1.0:
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
