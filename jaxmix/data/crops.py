"""Stateless crops that report the box they took (TensorFlow ops).

A crop *window* is int32 `[4]` = (offset_y, offset_x, height, width) in
pixels of the original (decoded, unflipped) image. Its *box* is float32
`[4]` = (ymin, xmin, ymax, xmax) normalised by the original height and width,
TF's order, which is what ReLabel's label-map pooling consumes. The flip is
applied after the crop, so the box always describes the unflipped region; the
flip bit travels beside it.

All randomness comes from a stateless seed (int `[2]`), so the same seed
gives the same crop on every host and every run.

Random-resized crop, two samplers (`data.crop_sampler`):

- 'torchvision' (`torchvision_window`): the law of torchvision's
  `RandomResizedCrop`, the crop of the CutMix, ReLabel and DeiT PyTorch
  code. Per attempt: target area `U(scale) * H * W`, aspect ratio
  `exp(U(log r0, log r1))`, `w = round(sqrt(area * aspect))`,
  `h = round(sqrt(area / aspect))`, accepted when `0 < w <= W` and
  `0 < h <= H`, offsets uniform integers; the first accepted of 10
  attempts wins, else the whole image clamped to the ratio range, centred. The 10
  attempts are drawn at once (4 uniforms each) and the first accepted one is
  taken, which is the same law as drawing them in turn.
- 'tensorflow' (`inception_window`): the Inception crop of the flax
  ImageNet example, `tf.image.stateless_sample_distorted_bounding_box` with
  the whole image as the object and `min_object_covered=0` (the flax
  example's 0.1 would raise the area's lower bound to 0.1), 10 attempts,
  and, when they all fail, the centre crop of `crop_pct` of the short side
  (the flax example's fallback, whose 224 / (224 + 32) equals crop_pct =
  0.875). Its area range is `scale`, but not its law: the op draws the
  aspect ratio uniformly (not log-uniformly) and integer heights (so the
  area is not uniform), and clamps sizes so that more attempts succeed; its
  crops are smaller on average than torchvision's.

JPEGs are decoded only inside the window (`decode_and_crop_jpeg`); other
formats (PNG in CIFAR) are decoded whole and then cut at the same window.

CIFAR crop: zero-pad `padding` pixels on each side, cut an image-sized
window at a uniform integer offset. The window may stick out of the image;
its emitted box is clipped to [0, 1], i.e. it is the part of the original
image that the output shows (the rest of the output is zero padding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import tensorflow as tf

MAX_ATTEMPTS = 10
# Uniforms per torchvision attempt: area, log-aspect, top offset, left offset.
UNIFORMS_PER_ATTEMPT = 4
CIFAR_PADDING = 4


def _shape_hw(image_shape: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  image_shape = tf.cast(image_shape, tf.int32)
  if image_shape.shape.rank == 1 and image_shape.shape[0] is not None:
    # One unstack, not two slices: in a tf.data map function every op is
    # a node run per example, and these ops are all tiny.
    return tuple(tf.unstack(image_shape))[:2]
  return image_shape[0], image_shape[1]


def center_window(image_shape: tf.Tensor, crop_pct: float) -> tf.Tensor:
  """Centred square window of side `crop_pct` times the short side.

  Args:
    image_shape: int `[>=2]`, (height, width, ...).
    crop_pct: fraction of the short side kept, in (0, 1].

  Returns:
    int32 `[4]` window (offset_y, offset_x, height, width).
  """
  h, w = _shape_hw(image_shape)
  short = tf.cast(tf.minimum(h, w), tf.float32)
  side = tf.maximum(tf.cast(tf.round(short * crop_pct), tf.int32), 1)
  return tf.stack([(h - side + 1) // 2, (w - side + 1) // 2, side, side])


def inception_window(
  image_shape: tf.Tensor,
  seed: tf.Tensor,
  *,
  scale: Sequence[float] = (0.08, 1.0),
  ratio: Sequence[float] = (3 / 4, 4 / 3),
  crop_pct: float = 0.875,
) -> tuple[tf.Tensor, tf.Tensor]:
  """Samples a window with TensorFlow's sampler (the flax Inception crop).

  Args:
    image_shape: int `[>=2]`, (height, width, ...) of the original image.
    seed: int `[2]` stateless seed.
    scale: (min, max) crop area as a fraction of the image area.
    ratio: (min, max) crop aspect ratio width / height.
    crop_pct: short-side fraction of the fallback centre crop.

  Returns:
    (window int32 `[4]`, fell_back bool `[]`).
  """
  h, w = _shape_hw(image_shape)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
    tf.stack([h, w, 3]),
    bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
    seed=seed,
    min_object_covered=0.0,
    aspect_ratio_range=tuple(ratio),
    area_range=tuple(scale),
    max_attempts=MAX_ATTEMPTS,
    use_image_if_no_bounding_boxes=True,
  )
  sampled = tf.stack([begin[0], begin[1], size[0], size[1]])
  # The op returns the whole image when every attempt failed.
  fell_back = tf.logical_and(tf.equal(size[0], h), tf.equal(size[1], w))
  window = tf.cond(
    fell_back, lambda: center_window(image_shape, crop_pct), lambda: sampled
  )
  return window, fell_back


def torchvision_fallback_window(
  height: tf.Tensor, width: tf.Tensor, ratio: Sequence[float]
) -> tf.Tensor:
  """torchvision's fallback: the whole image clamped to `ratio`, centred.

  Args:
    height: int32 `[...]` image heights H.
    width: int32 `[...]` image widths W (the same shape).
    ratio: (min, max) aspect ratio width / height.

  Returns:
    int32 `[..., 4]` windows (offset_y, offset_x, height, width).
  """
  r_min, r_max = min(ratio), max(ratio)
  h_f, w_f = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
  in_ratio = w_f / h_f
  # Too tall: full width, height from the smallest ratio; too wide: full
  # height, width from the largest. At least one pixel, so that a degenerate
  # ratio range still yields a window (torchvision would fail there).
  tall_h = tf.maximum(tf.cast(tf.round(w_f / r_min), tf.int32), 1)
  wide_w = tf.maximum(tf.cast(tf.round(h_f * r_max), tf.int32), 1)
  crop_h = tf.where(in_ratio < r_min, tall_h, height)
  crop_w = tf.where(in_ratio > r_max, wide_w, width)
  return tf.stack(
    [(height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w], axis=-1
  )


def _uniform_index(u: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
  # floor(u * count) for u in [0, 1) is uniform on {0, ..., count - 1}; the
  # min guards the float product rounding up to `count`.
  index = tf.cast(tf.floor(u * tf.cast(count, u.dtype)), tf.int32)
  return tf.minimum(index, count - 1)


# Elements per exp call, a multiple of every CPU's SIMD width in float64.
_EXP_LANES = 16


def _exp(x: tf.Tensor) -> tf.Tensor:
  """`tf.exp(x)`, the same value for an element wherever it sits.

  Eigen computes full SIMD packets with its polynomial exp and a tail
  shorter than a packet with libm's, which differ in the last bit for about
  one value in ten; padding to a multiple of every packet width keeps every
  element on the packet path, so one example's window is the same drawn
  alone or in a block.
  """
  flat = tf.reshape(x, [-1])
  pad = -tf.size(flat) % _EXP_LANES
  out = tf.exp(tf.pad(flat, [[0, pad]]))[: tf.size(flat)]
  return tf.reshape(out, tf.shape(x))


def torchvision_crop_windows(
  height: tf.Tensor,
  width: tf.Tensor,
  uniforms: tf.Tensor,
  *,
  scale: Sequence[float] = (0.08, 1.0),
  ratio: Sequence[float] = (3 / 4, 4 / 3),
) -> tuple[tf.Tensor, tf.Tensor]:
  """torchvision's RandomResizedCrop windows of a block of images.

  Image `n`'s attempt `a` uses `uniforms[n, a] = (u_area, u_aspect, u_top,
  u_left)`: area `H * W * (s0 + (s1 - s0) * u_area)`, aspect
  `exp(log r0 + (log r1 - log r0) * u_aspect)`, rounded sizes, and, if
  accepted, `top = floor(u_top * (H - h + 1))`,
  `left = floor(u_left * (W - w + 1))`. The first accepted attempt wins;
  with none, `torchvision_fallback_window`. Geometry is computed in float64,
  element by element, so an image's window does not depend on the block.

  Args:
    height: int `[N]` image heights H.
    width: int `[N]` image widths W.
    uniforms: float64 `[N, A, 4]` in [0, 1), one row per attempt.
    scale: (min, max) crop area as a fraction of the image area.
    ratio: (min, max) crop aspect ratio width / height.

  Returns:
    (windows int32 `[N, 4]` (offset_y, offset_x, height, width),
     fell_back bool `[N]`).
  """
  height = tf.cast(height, tf.int32)
  width = tf.cast(width, tf.int32)
  u_area, u_aspect, u_top, u_left = tf.unstack(
    tf.cast(uniforms, tf.float64), num=UNIFORMS_PER_ATTEMPT, axis=-1
  )
  h_f = tf.cast(height, tf.float64)[:, None]
  w_f = tf.cast(width, tf.float64)[:, None]
  area = h_f * w_f * (scale[0] + (scale[1] - scale[0]) * u_area)
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  aspect = _exp(log_lo + (log_hi - log_lo) * u_aspect)
  # tf.round rounds half to even, as Python's round in torchvision.
  crop_w = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
  crop_h = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
  h_i, w_i = height[:, None], width[:, None]
  accepted = (crop_w > 0) & (crop_w <= w_i) & (crop_h > 0)
  accepted &= crop_h <= h_i
  # Offsets of rejected attempts are meaningless and never selected.
  top = _uniform_index(u_top, tf.maximum(h_i - crop_h + 1, 1))
  left = _uniform_index(u_left, tf.maximum(w_i - crop_w + 1, 1))
  first = tf.argmax(tf.cast(accepted, tf.int32), axis=1, output_type=tf.int32)
  sampled = tf.gather(
    tf.stack([top, left, crop_h, crop_w], axis=2), first, batch_dims=1
  )
  fell_back = tf.logical_not(tf.reduce_any(accepted, axis=1))
  fallback = torchvision_fallback_window(height, width, ratio)
  return tf.where(fell_back[:, None], fallback, sampled), fell_back


def torchvision_crop_window(
  height: tf.Tensor,
  width: tf.Tensor,
  uniforms: tf.Tensor,
  *,
  scale: Sequence[float] = (0.08, 1.0),
  ratio: Sequence[float] = (3 / 4, 4 / 3),
) -> tuple[tf.Tensor, tf.Tensor]:
  """One image's `torchvision_crop_windows`.

  Args:
    height: int `[]` image height H.
    width: int `[]` image width W.
    uniforms: float64 `[A, 4]` in [0, 1), one row per attempt.
    scale: (min, max) crop area as a fraction of the image area.
    ratio: (min, max) crop aspect ratio width / height.

  Returns:
    (window int32 `[4]` (offset_y, offset_x, height, width),
     fell_back bool `[]`).
  """
  windows, fell_back = torchvision_crop_windows(
    tf.reshape(height, [1]),
    tf.reshape(width, [1]),
    uniforms[None],
    scale=scale,
    ratio=ratio,
  )
  return windows[0], fell_back[0]


def torchvision_window(
  image_shape: tf.Tensor,
  seed: tf.Tensor,
  *,
  scale: Sequence[float] = (0.08, 1.0),
  ratio: Sequence[float] = (3 / 4, 4 / 3),
) -> tuple[tf.Tensor, tf.Tensor]:
  """Samples a window with torchvision's RandomResizedCrop law.

  Args:
    image_shape: int `[>=2]`, (height, width, ...) of the original image.
    seed: int `[2]` stateless seed.
    scale: (min, max) crop area as a fraction of the image area.
    ratio: (min, max) crop aspect ratio width / height.

  Returns:
    (window int32 `[4]`, fell_back bool `[]`).
  """
  h, w = _shape_hw(image_shape)
  uniforms = tf.random.stateless_uniform(
    [MAX_ATTEMPTS, UNIFORMS_PER_ATTEMPT], seed, dtype=tf.float64
  )
  return torchvision_crop_window(h, w, uniforms, scale=scale, ratio=ratio)


def cifar_window(
  image_shape: tf.Tensor, seed: tf.Tensor, padding: int = CIFAR_PADDING
) -> tf.Tensor:
  """Window of a pad-`padding`-and-crop, in original-image pixels.

  Args:
    image_shape: int `[>=2]`, (height, width, ...).
    seed: int `[2]` stateless seed.
    padding: zero padding on each side.

  Returns:
    int32 `[4]` (offset_y, offset_x, height, width); offsets lie in
    [-padding, padding], so the window may extend outside the image.
  """
  h, w = _shape_hw(image_shape)
  offsets = tf.random.stateless_uniform(
    [2], seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
  )
  return tf.stack([offsets[0] - padding, offsets[1] - padding, h, w])


def window_to_box(window: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
  """Normalised (ymin, xmin, ymax, xmax) of windows, clipped to [0, 1].

  Args:
    window: int `[..., 4]` (offset_y, offset_x, height, width).
    image_shape: int `[..., >=2]`, (height, width, ...) of the original
      images.

  Returns:
    float32 `[..., 4]`.
  """
  window = tf.cast(window, tf.float32)
  hw = tf.cast(image_shape[..., :2], tf.float32)
  corners = tf.concat([window[..., :2], window[..., :2] + window[..., 2:]], -1)
  return tf.clip_by_value(corners / tf.concat([hw, hw], -1), 0.0, 1.0)


def decode_full(image_bytes: tf.Tensor) -> tf.Tensor:
  """Decodes any of JPEG/PNG/GIF/BMP to uint8 `[h, w, 3]`."""
  image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def crop_decoded(image: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
  """Cuts `window` out of a decoded image, zero outside the image.

  Args:
    image: uint8 `[h, w, 3]`.
    window: int32 `[4]` (offset_y, offset_x, height, width) in pixels.

  Returns:
    uint8 `[height, width, 3]`.
  """
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  pad_top = tf.maximum(-window[0], 0)
  pad_left = tf.maximum(-window[1], 0)
  pad_bottom = tf.maximum(window[0] + window[2] - h, 0)
  pad_right = tf.maximum(window[1] + window[3] - w, 0)
  image = tf.pad(image, [[pad_top, pad_bottom], [pad_left, pad_right], [0, 0]])
  return tf.image.crop_to_bounding_box(
    image, window[0] + pad_top, window[1] + pad_left, window[2], window[3]
  )


def decode_and_crop(
  image_bytes: tf.Tensor,
  window_fn: Callable[[tf.Tensor], tf.Tensor],
  *,
  inside: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Decodes the window `window_fn(shape)` of an encoded image.

  JPEGs whose window lies inside the image are decoded only inside it
  (`decode_and_crop_jpeg`); anything else is decoded whole, then cut.

  Args:
    image_bytes: string `[]`, encoded image.
    window_fn: maps the int32 `[3]` image shape to an int32 `[4]` window.
    inside: the windows of `window_fn` always lie inside the image (random
      resized and centre crops), so a JPEG skips the check, one branch per
      example fewer; False where they may stick out (CIFAR's).

  Returns:
    (crop uint8 `[height, width, 3]`, window int32 `[4]`, shape int32 `[3]`).
  """
  is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 3), b'\xff\xd8\xff')

  def other_shape():
    image = decode_full(image_bytes)
    return tf.shape(image), image

  # The window is drawn once, outside the branches: tf.data runs a map
  # function with its conds lowered, so the ops of the branch not taken
  # are still visited (as dead) for every example.
  shape, image = tf.cond(
    is_jpeg,
    lambda: (
      tf.image.extract_jpeg_shape(image_bytes),
      tf.zeros([0, 0, 3], tf.uint8),
    ),
    other_shape,
  )
  window = tf.cast(window_fn(shape), tf.int32)

  def jpeg():
    if inside:
      return tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)
    within = tf.reduce_all(window[:2] >= 0) & tf.reduce_all(
      window[:2] + window[2:] <= shape[:2]
    )
    return tf.cond(
      within,
      lambda: tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3),
      lambda: crop_decoded(decode_full(image_bytes), window),
    )

  crop = tf.cond(is_jpeg, jpeg, lambda: crop_decoded(image, window))
  crop.set_shape([None, None, 3])
  return crop, window, shape


def decode_window(image_bytes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
  """Decodes `window` (inside the image) of an encoded image.

  The second half of `decode_and_crop(..., inside=True)`, for a window drawn
  beforehand: JPEGs are decoded only inside it, anything else whole, then
  cut.

  Args:
    image_bytes: string `[]`, encoded image.
    window: int32 `[4]` (offset_y, offset_x, height, width) in pixels.

  Returns:
    uint8 `[height, width, 3]`.
  """
  is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 3), b'\xff\xd8\xff')
  crop = tf.cond(
    is_jpeg,
    lambda: tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3),
    lambda: crop_decoded(decode_full(image_bytes), window),
  )
  crop.set_shape([None, None, 3])
  return crop


def image_shape(image_bytes: tf.Tensor) -> tf.Tensor:
  """int32 `[3]` shape of an encoded image (a JPEG's from its header)."""
  is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 3), b'\xff\xd8\xff')
  return tf.cond(
    is_jpeg,
    lambda: tf.io.extract_jpeg_shape(image_bytes),
    lambda: tf.shape(decode_full(image_bytes)),
  )


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
  """Bilinear, antialiased resize to float32 `[size, size, 3]` in [0, 255]."""
  image = tf.image.resize(
    image, [size, size], method='bilinear', antialias=True
  )
  return tf.clip_by_value(image, 0.0, 255.0)


def resize_area(image: tf.Tensor, size: int) -> tf.Tensor:
  """Box-filtered shrink, bilinear growth, to float32 `[size, size, 3]`.

  A cheaper stand-in for `resize` (about a third of its cost on CPU): each
  side longer than `size` is shrunk by pixel-area averaging (TF's 'area'
  resize, a box filter as wide as the scale factor), then each side shorter
  than `size` is grown bilinearly, which is what `resize` does on a growing
  side. Only the shrinking filter differs: a box instead of `resize`'s
  triangle of twice the width, so the output is slightly sharper (PSNR
  > 40 dB from `resize` on photos shrunk up to 2x; tests/data_crops_test.py
  bounds it).

  Args:
    image: uint8 or float `[h, w, 3]`.
    size: output side.

  Returns:
    float32 `[size, size, 3]` in [0, 255].
  """
  hw = tf.shape(image)[:2]
  mid = tf.minimum(hw, size)
  image = tf.cond(
    tf.reduce_all(mid == hw),
    lambda: tf.cast(image, tf.float32),
    lambda: tf.image.resize(image, mid, method='area'),
  )
  image = tf.cond(
    tf.reduce_all(mid == size),
    lambda: image,
    lambda: tf.image.resize(image, [size, size], method='bilinear'),
  )
  image.set_shape([size, size, 3])
  return tf.clip_by_value(image, 0.0, 255.0)


def flip_image(image: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
  """`image` `[h, w, c]` mirrored left-right when `flip` (bool `[]`)."""
  return tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)


def random_flip(
  image: tf.Tensor, seed: tf.Tensor, prob: float = 0.5
) -> tuple[tf.Tensor, tf.Tensor]:
  """Horizontally flips `[h, w, c]` with probability `prob`.

  Returns:
    (image, flip bool `[]`).
  """
  flip = tf.random.stateless_uniform([], seed) < prob
  return flip_image(image, flip), flip
