"""Cutout and Random Erasing: occlude boxes of each image.

Both take and return images only, as dm_pix's ops do:
`op(key, images, *, knobs) -> images` (labels do not change). The call of
jaxmix 0.1, `op(key, images, labels, ...) -> (images, labels)`, still works
for one release with a `DeprecationWarning` (the labels, dense float
``[B, K]``, come back unchanged beside the images). Boxes are drawn per
example, as in the original papers. Apply them to normalised images: a fill of 0 is then
the dataset mean. Both only select where they write a fixed value (Cutout
always, Random Erasing with `fill='zero'`), so they also take uint8 images,
bit-identical to the float path cast back. A batch of one image is fine.
"""

import math
import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, sharding

Array = jax.Array

# Random Erasing tries this many (area, aspect) draws per box and keeps the
# first that fits inside the image, as the reference implementations do.
_ERASING_ATTEMPTS = 10
_FILLS = ('zero', 'random', 'pixel')


def _labels_argument(op: str, images: ArrayLike, labels: tuple) -> bool:
  """Checks the deprecated labels argument; whether one was given."""
  if not labels:
    return False
  if len(labels) > 1:
    raise TypeError(
      f'{op} takes (key, images) and keyword knobs, got {2 + len(labels)} '
      'positional arguments.'
    )
  warnings.warn(
    f'jaxmix.{op}(key, images, labels, ...) is deprecated and will be '
    f'removed in the next release: call jaxmix.{op}(key, images, ...), '
    'which returns the images only (the labels do not change).',
    DeprecationWarning,
    stacklevel=3,
  )
  checks.check_select_batch(images, labels[0])
  return True


def cutout(
  key: Array,
  images: ArrayLike,
  *labels: ArrayLike,
  size: int,
  prob: ArrayLike = 1.0,
  count: int = 1,
  fill_value: float = 0.0,
  axis_name: str | None = None,
) -> Array:
  """Cutout: fills `count` square boxes of each image with `fill_value`.

  Each box is centred on a uniform integer pixel and spans `centre +-
  size // 2`, clipped at the border, exactly as the authors' code (so boxes
  near the edges are partly outside the image and smaller).

  Args:
    key: a PRNG key.
    images: float or uint8 ``[B, H, W, C]`` (Cutout only overwrites pixels,
      so it may run before normalisation; then choose `fill_value` in pixel
      units).
    *labels: the deprecated labels (module docstring).
    size: side of the square in pixels (16 for CIFAR-10 in the paper). Static.
    prob: probability of applying Cutout to each example. May be traced.
    count: number of boxes per image (`n_holes`). Static.
    fill_value: value written inside the boxes, in [0, 255] for uint8
      images. Static.
    axis_name: the shared knob of `jaxmix._src.knobs`.

  Returns:
    The images, input shape and dtype, with the boxes filled.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = cutout(jax.random.key(0), jnp.ones((1, 8, 8, 1)), size=4)
    >>> float(x.sum()) < 64
    True

  References:
    DeVries and Taylor, Improved Regularization of Convolutional Neural
    Networks with Cutout, https://arxiv.org/abs/1708.04552
  """
  checks.check_key(key)
  with_labels = _labels_argument('cutout', images, labels)
  checks.check_pixels(images)
  checks.check_probability('prob', prob)
  checks.check_int('size', size, minimum=0)
  checks.check_int('count', count)
  images = jnp.asarray(images)
  if images.dtype == jnp.uint8 and not 0 <= fill_value <= 255:
    raise ValueError(
      f'`fill_value` must be in [0, 255] for uint8 images, got {fill_value}.'
    )
  batch_size, height, width, channels = images.shape
  key = sharding.device_key(key, axis_name)
  key_y, key_x, key_gate = jax.random.split(key, 3)
  shape = (batch_size, count)
  box = boxes_lib.centered_box(
    jax.random.randint(key_y, shape, 0, height),
    jax.random.randint(key_x, shape, 0, width),
    cut_height=size,
    cut_width=size,
    height=height,
    width=width,
  )
  apply = jax.random.uniform(key_gate, (batch_size,)) < prob
  # Select on rows of pixels [B, H, W * C], one box at a time: both keep the
  # select a fast contiguous pass (see `boxes.box_mask`).
  rows = images.reshape(batch_size, height, width * channels)
  fill = jnp.asarray(fill_value, images.dtype)
  for hole in range(count):
    hole_box = boxes_lib.Box(*(field[:, hole] for field in box))
    mask = boxes_lib.box_mask(
      hole_box, height=height, width=width, channels=channels
    )
    rows = jnp.where(mask & apply[:, None, None], fill, rows)
  images = rows.reshape(images.shape)
  return (images, labels[0]) if with_labels else images


def _sample_erasing_boxes(
  key: Array,
  *,
  shape: tuple[int, ...],
  height: int,
  width: int,
  area: tuple[float, float],
  aspect: tuple[float, float],
  area_scale: Array,
) -> tuple[boxes_lib.Box, Array]:
  """Draws boxes of random area and aspect wholly inside the image.

  Returns the boxes and whether any of the attempts fitted (`[...]` bool).
  """
  key_area, key_aspect, key_y, key_x = jax.random.split(key, 4)
  tries = (*shape, _ERASING_ATTEMPTS)
  target_area = jax.random.uniform(
    key_area, tries, minval=area[0], maxval=area[1]
  )
  target_area = target_area * (height * width) * area_scale[..., None]
  log_aspect = jax.random.uniform(
    key_aspect, tries, minval=math.log(aspect[0]), maxval=math.log(aspect[1])
  )
  box_h = jnp.round(jnp.sqrt(target_area * jnp.exp(log_aspect)))
  box_w = jnp.round(jnp.sqrt(target_area / jnp.exp(log_aspect)))
  fits = (box_h < height) & (box_w < width)
  first = jnp.argmax(fits, axis=-1)[..., None]
  box_h = jnp.take_along_axis(box_h, first, -1)[..., 0].astype(jnp.int32)
  box_w = jnp.take_along_axis(box_w, first, -1)[..., 0].astype(jnp.int32)
  top = jax.random.randint(key_y, shape, 0, height - box_h + 1)
  left = jax.random.randint(key_x, shape, 0, width - box_w + 1)
  box = boxes_lib.Box(top, left, top + box_h, left + box_w)
  return box, fits.any(axis=-1)


def random_erasing(
  key: Array,
  images: ArrayLike,
  *labels: ArrayLike,
  prob: ArrayLike = 0.5,
  area: tuple[float, float] = (0.02, 1 / 3),
  aspect: tuple[float, float] = (0.3, 1 / 0.3),
  fill: str = 'zero',
  max_count: int = 1,
  axis_name: str | None = None,
) -> Array:
  """Random Erasing: replaces random boxes of each image with a fill.

  With probability `prob` per example, draws `n` boxes (`n` uniform in
  `[1, max_count]`); each has area `U(area) * H * W / n` and log-aspect
  uniform in `log(aspect)`, tried up to 10 times until it fits inside the
  image, then placed uniformly among the positions inside the image.

  Args:
    key: a PRNG key.
    images: float ``[B, H, W, C]``; uint8 too with `fill='zero'`, which
      only selects (it then writes 0, black in pixel units, where in
      normalised images it writes the mean).
    *labels: the deprecated labels (module docstring).
    prob: probability of erasing in each example. May be traced.
    area: `(min, max)` fraction of the image area per box. Static.
    aspect: `(min, max)` aspect ratio (height / width) of a box. Static.
    fill: 'zero' (the mean of normalised images), 'random' (one N(0, 1)
      value per box and channel) or 'pixel' (N(0, 1) per pixel). Static.
    max_count: largest number of boxes per image. Static.
    axis_name: the shared knob of `jaxmix._src.knobs`.

  Returns:
    The images, input shape and dtype, with the erased boxes painted.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = random_erasing(jax.random.key(0), jnp.ones((2, 16, 16, 3)),
    ...                    prob=1.0)
    >>> bool((x == 0).any())
    True

  References:
    Zhong et al., Random Erasing Data Augmentation,
    https://arxiv.org/abs/1708.04896
  """
  checks.check_key(key)
  if fill not in _FILLS:
    raise ValueError(f'`fill` must be one of {_FILLS}, got {fill!r}.')
  with_labels = _labels_argument('random_erasing', images, labels)
  checks.check_pixels(images)
  if fill != 'zero' and not checks.is_float(images):
    raise TypeError(
      f'`images` must be float for fill={fill!r}, which writes N(0, 1) '
      f'values of normalised images, got dtype {jnp.result_type(images)}; '
      "uint8 images take fill='zero' (it only selects)."
    )
  checks.check_probability('prob', prob)
  checks.check_range('area', tuple(area), 0.0, 1.0)
  checks.check_range('aspect', tuple(aspect), 1e-6, math.inf)
  checks.check_int('max_count', max_count)
  images = jnp.asarray(images)
  batch_size, height, width, channels = images.shape
  key = sharding.device_key(key, axis_name)
  key_gate, key_count, key_boxes, key_fill = jax.random.split(key, 4)
  count = jax.random.randint(key_count, (batch_size,), 1, max_count + 1)
  box, fits = _sample_erasing_boxes(
    key_boxes,
    shape=(batch_size, max_count),
    height=height,
    width=width,
    area=area,
    aspect=aspect,
    area_scale=1.0 / jnp.broadcast_to(count[:, None], (batch_size, max_count)),
  )
  apply = jax.random.uniform(key_gate, (batch_size,)) < prob
  active = fits & (jnp.arange(max_count) < count[:, None]) & apply[:, None]
  rows_shape = (batch_size, height, width * channels)
  masks = boxes_lib.box_mask(box, height=height, width=width, channels=channels)
  masks = masks & active[..., None, None]  # [B, max_count, H, W * C]

  if fill == 'pixel':
    noise = jax.random.normal(key_fill, rows_shape, jnp.float32)
    erased = jnp.where(masks.any(axis=1), noise, images.reshape(rows_shape))
    erased = erased.astype(images.dtype)
  else:
    erased = _paint(key_fill, images, masks, fill, rows_shape)
  erased = erased.reshape(images.shape)
  return (erased, labels[0]) if with_labels else erased


def _paint(key, images, masks, fill, rows_shape):
  """Writes one value per box and channel (0 or N(0, 1)) into its box."""
  batch_size, _, width, channels = images.shape
  max_count = masks.shape[1]
  if fill == 'zero':
    values = jnp.zeros((batch_size, max_count, channels), jnp.float32)
  else:
    values = jax.random.normal(key, (batch_size, max_count, channels))
  # A value per (example, box, channel), laid out along the W * C rows.
  values = jnp.tile(values, (1, 1, width)).astype(images.dtype)
  erased = images.reshape(rows_shape)
  for slot in range(max_count):  # Later boxes paint over earlier ones.
    erased = jnp.where(masks[:, slot], values[:, slot, None, :], erased)
  return erased
