"""Per-example train and eval preprocessing of the input pipeline (TF ops).

`train_preprocess` and `eval_preprocess` return the functions that tf.data
maps over examples {'image_bytes', 'label', 'file_name', 'index'}. They
decode (only the crop, for JPEGs), resize to `image_size`, flip (and colour,
with `data.photometric='host'`) the image, apply `data.auto_augment`'s
policy (timm's order: crop, flip, policy), and emit the crop box and flip
bit beside it. All randomness is stateless, seeded by (seed, epoch, example
index, and the copy of a repeated example).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from jaxmix.data import auto_augment_host, crops, philox, photometric

AUGMENTS = ('inception', 'cifar', 'none')
# The law of the 'inception' (random-resized) crop; see jaxmix.data.crops.
CROP_SAMPLERS = ('torchvision', 'tensorflow')
ON_CORRUPT = ('error', 'skip')
# Where colour jitter and PCA lighting run (`data.photometric`).
PHOTOMETRIC = ('host', 'device')
# The train resize law (`data.train_resize`): 'antialias' is
# `crops.resize` (bilinear with antialiasing, torchvision's law on PIL
# images); 'area' is `crops.resize_area` (box-filtered shrink, ~3x cheaper).
TRAIN_RESIZES = ('antialias', 'area')

Example = dict[str, tf.Tensor]
# Seeds per example: window, flip, colour jitter, lighting, policy.
_SEEDS = 5


class CorruptImageError(ValueError):
  """An image of the dataset cannot be decoded; the message names it."""


def check_config(data_config) -> None:
  """Raises ValueError on data-config values the pipeline cannot honour."""
  if data_config.augment not in AUGMENTS:
    raise ValueError(
      f'data.augment must be one of {AUGMENTS}, got {data_config.augment!r}'
    )
  if data_config.crop_sampler not in CROP_SAMPLERS:
    raise ValueError(
      f'data.crop_sampler must be one of {CROP_SAMPLERS}, '
      f'got {data_config.crop_sampler!r}'
    )
  if data_config.train_resize not in TRAIN_RESIZES:
    raise ValueError(
      f'data.train_resize must be one of {TRAIN_RESIZES}, '
      f'got {data_config.train_resize!r}'
    )
  if data_config.photometric not in PHOTOMETRIC:
    raise ValueError(
      f'data.photometric must be one of {PHOTOMETRIC}, '
      f'got {data_config.photometric!r}'
    )
  auto_augment_host.check_spec(data_config.auto_augment)
  if data_config.on_corrupt not in ON_CORRUPT:
    raise ValueError(
      f'data.on_corrupt must be one of {ON_CORRUPT}, '
      f'got {data_config.on_corrupt!r}'
    )
  lo, hi = data_config.crop_scale
  if not 0 < lo <= hi <= 1:
    raise ValueError(
      f'data.crop_scale must satisfy 0 < min <= max <= 1, got {(lo, hi)}'
    )
  lo, hi = data_config.crop_ratio
  if not 0 < lo <= hi:
    raise ValueError(f'data.crop_ratio must satisfy 0 < min <= max: {(lo, hi)}')
  if not 0 < data_config.crop_pct <= 1:
    raise ValueError(
      f'data.crop_pct must be in (0, 1], got {data_config.crop_pct}'
    )
  for field in ('color_jitter', 'pca_lighting'):
    if data_config[field] < 0:
      raise ValueError(f'data.{field} must be >= 0, got {data_config[field]}')


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def _upscale(crop: tf.Tensor, image_size: int) -> tf.Tensor:
  image = tf.image.resize(crop, [image_size, image_size], method='bilinear')
  return tf.clip_by_value(image, 0.0, 255.0)


def _resize(
  crop: tf.Tensor, image_size: int, law: str = 'antialias'
) -> tf.Tensor:
  """`crops.resize` (or `crops.resize_area`), skipping needless work.

  The antialiasing filter of `crops.resize` widens only when it shrinks: a
  crop no larger than the output on both sides gets the plain bilinear
  values (equal up to float rounding: at most one level after rounding to
  uint8), at about a third of the cost. `law` is one of `TRAIN_RESIZES`.
  """
  shrink = crops.resize_area if law == 'area' else crops.resize
  hw = tf.shape(crop)[:2]
  # Keep exact pixels when the crop already has the output size (CIFAR).
  same = tf.reduce_all(hw == image_size)
  grows = tf.reduce_all(hw <= image_size)
  image = tf.case(
    [
      (same, lambda: tf.cast(crop, tf.float32)),
      (grows, lambda: _upscale(crop, image_size)),
    ],
    default=lambda: shrink(crop, image_size),
    exclusive=False,
  )
  image.set_shape([image_size, image_size, 3])
  return image


def example_seed(
  seed: int, epoch: tf.Tensor, index: tf.Tensor, copy: tf.Tensor | None = None
) -> tf.Tensor:
  """int64 `[2]` stateless seed of one example in one epoch.

  `copy` (repeated augmentation: which of an example's copies) is folded in
  when given, so each copy is augmented independently.
  """
  base = tf.stack(
    [tf.constant(seed % 2**63, tf.int64), tf.cast(epoch, tf.int64)]
  )
  key = tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))
  if copy is not None:
    key = tf.random.experimental.stateless_fold_in(key, tf.cast(copy, tf.int64))
  return key


def block_seeds(
  seed: int, epoch: tf.Tensor, index: tf.Tensor, copy: tf.Tensor | None = None
) -> tf.Tensor:
  """int64 `[N, 5, 2]`: `stateless_split(example_seed(...), 5)` of a block.

  The same values as the per-example ops (`jaxmix.data.philox`), from one
  set of vectorised ops for the `[N]` examples.
  """
  epoch = tf.cast(epoch, tf.int64)
  seed = tf.constant(seed % 2**63, tf.int64)
  base = tf.stack([tf.fill(tf.shape(epoch), seed), epoch], axis=-1)
  key = philox.fold_in(base, index)
  if copy is not None:
    key = philox.fold_in(key, copy)
  return philox.split(key, _SEEDS)


def apply_policy(image: tf.Tensor, seed: tf.Tensor, spec: str) -> tf.Tensor:
  """`auto_augment_host.augment` of one uint8 `[S, S, 3]` image, in a graph.

  PIL releases the GIL in its pixel loops, so tf.data's parallel map runs
  the ops of several images at once.
  """
  out = tf.numpy_function(
    lambda x, s: auto_augment_host.augment(x, s, spec),
    [image, seed],
    tf.uint8,
    stateful=False,
  )
  out.set_shape(image.shape)
  return out


def _finish(
  cfg, crop: tf.Tensor, flip: tf.Tensor, seeds, image_size: int
) -> tf.Tensor:
  """Resize, flip, host colour and policy of a train crop: uint8 `[S, S, 3]`.

  `seeds` (the example's five) are read only for host colour and policy.
  """
  image = _resize(crop, image_size, cfg.train_resize)
  # With 'device' the train step jitters and lights the uint8 crop.
  on_host = cfg.photometric == 'host'
  jitter = on_host and cfg.color_jitter > 0
  lighting = on_host and cfg.pca_lighting > 0
  if not (jitter or lighting):
    # Nothing more in float: round now (the resize output is already in
    # [0, 255]) and flip a quarter of the bytes; the same pixels.
    image = tf.cast(tf.round(image), tf.uint8)
  if cfg.random_flip:
    image = crops.flip_image(image, flip)
  if jitter:
    s = float(cfg.color_jitter)
    image = photometric.color_jitter(
      image,
      seeds[2],
      brightness=s,
      contrast=s,
      saturation=s,
      clip=cfg.color_jitter_clip,
    )
  if lighting:
    image = photometric.pca_lighting(image, seeds[3], cfg.pca_lighting)
  if jitter or lighting:
    image = _to_uint8(image)
  if cfg.auto_augment:
    image = apply_policy(image, seeds[4], cfg.auto_augment)
  return image


def _needs_seeds(cfg) -> bool:
  """Whether the per-example part reads seeds beyond the window and flip."""
  on_host = cfg.photometric == 'host'
  colour = on_host and (cfg.color_jitter > 0 or cfg.pca_lighting > 0)
  return colour or bool(cfg.auto_augment)


def train_preprocess(
  data_config, *, image_size: int, seed: int
) -> Callable[[Example], Example]:
  """The train map function.

  Args:
    data_config: the data config (augment, crop_sampler, crop_*,
      train_resize, random_flip, color_jitter, color_jitter_clip,
      pca_lighting, photometric: jitter and lighting only when 'host',
      auto_augment).
    image_size: output side S.
    seed: run seed.

  Returns:
    fn(example) -> {'image' uint8 `[S, S, 3]`, 'label', 'crop_box' float32
    `[4]`, 'flip' bool, 'file_name', ...the other input keys}; the example
    needs int64 'index' and 'epoch', which seed its random choices (and
    'copy' under repeated augmentation).
  """
  cfg = data_config
  sampler = cfg.crop_sampler

  def fn(example: Example) -> Example:
    key = example_seed(
      seed, example['epoch'], example['index'], example.get('copy')
    )
    # Prefix-stable: the first four are those of a split into four.
    seeds = tf.unstack(
      tf.random.experimental.stateless_split(key, num=_SEEDS), num=_SEEDS
    )
    if cfg.augment == 'inception' and sampler == 'torchvision':

      def window_fn(shape):
        return crops.torchvision_window(
          shape, seeds[0], scale=cfg.crop_scale, ratio=cfg.crop_ratio
        )[0]

    elif cfg.augment == 'inception':

      def window_fn(shape):
        return crops.inception_window(
          shape,
          seeds[0],
          scale=cfg.crop_scale,
          ratio=cfg.crop_ratio,
          crop_pct=cfg.crop_pct,
        )[0]

    elif cfg.augment == 'cifar':

      def window_fn(shape):
        return crops.cifar_window(shape, seeds[0])

    else:

      def window_fn(shape):
        return crops.center_window(shape, cfg.crop_pct)

    # Only CIFAR's padded window may stick out of the image.
    crop, window, shape = crops.decode_and_crop(
      example['image_bytes'], window_fn, inside=cfg.augment != 'cifar'
    )
    flip = tf.constant(False)
    if cfg.random_flip:
      flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
    out = {k: v for k, v in example.items() if k != 'image_bytes'}
    out.update(
      image=_finish(cfg, crop, flip, seeds, image_size),
      crop_box=crops.window_to_box(window, shape),
      flip=flip,
    )
    return out

  return fn


def drawn_per_block(data_config) -> bool:
  """Whether the train pipeline draws windows and flips per block.

  True for torchvision's random-resized crop (every ImageNet recipe's) when
  a bad image stops the run: `train_block` then draws a block of examples'
  windows and flips in one set of vectorised ops, and `train_crop` decodes
  each, the same batches as `train_preprocess`. With `on_corrupt='skip'`
  one bad image would drop its whole block, so the pipeline maps
  `train_preprocess` per example.
  """
  cfg = data_config
  return (
    cfg.augment == 'inception'
    and cfg.crop_sampler == 'torchvision'
    and cfg.on_corrupt == 'error'
  )


def with_shape(example: Example) -> Example:
  """`example` with int32 'shape' `[3]`, its image's (`train_block` reads it)."""
  return {**example, 'shape': crops.image_shape(example['image_bytes'])}


def train_block(data_config, *, seed: int) -> Callable[[Example], Example]:
  """The draws of `train_preprocess` for a block of examples at once.

  Args:
    data_config: as `train_preprocess`'s, with `drawn_per_block` true.
    seed: run seed.

  Returns:
    fn(block) -> block: a batch of `[N]` examples with 'shape' (int32
    `[N, 3]`, `with_shape`), 'epoch', 'index' (and 'copy') in; out without
    'shape', with 'window' int32 `[N, 4]`, 'crop_box' float32 `[N, 4]`,
    'flip' bool `[N]` (and 'seeds' int64 `[N, 5, 2]` where host colour or
    a policy reads them), each example's values those of
    `train_preprocess`.
  """
  cfg = data_config
  per_attempt = crops.UNIFORMS_PER_ATTEMPT

  def fn(block: Example) -> Example:
    block = dict(block)
    shape = block.pop('shape')
    seeds = block_seeds(seed, block['epoch'], block['index'], block.get('copy'))
    uniforms = philox.uniform_float64(
      seeds[:, 0], crops.MAX_ATTEMPTS * per_attempt
    )
    uniforms = tf.reshape(uniforms, [-1, crops.MAX_ATTEMPTS, per_attempt])
    windows, _ = crops.torchvision_crop_windows(
      shape[:, 0],
      shape[:, 1],
      uniforms,
      scale=cfg.crop_scale,
      ratio=cfg.crop_ratio,
    )
    if cfg.random_flip:
      flip = philox.uniform_float32(seeds[:, 1], 1)[:, 0] < 0.5
    else:
      flip = tf.zeros(tf.shape(windows)[:1], tf.bool)
    block.update(
      window=windows, crop_box=crops.window_to_box(windows, shape), flip=flip
    )
    if _needs_seeds(cfg):
      block['seeds'] = seeds
    return block

  return fn


def train_crop(data_config, *, image_size: int) -> Callable[[Example], Example]:
  """The per-example rest of `train_preprocess` after `train_block`.

  Returns:
    fn(example) -> the example of `train_preprocess`: decodes 'window' of
    'image_bytes', resizes, flips by 'flip' (host colour and policy from
    'seeds'), and drops 'image_bytes', 'window' and 'seeds'.
  """
  cfg = data_config

  def fn(example: Example) -> Example:
    crop = crops.decode_window(example['image_bytes'], example['window'])
    seeds = None
    if 'seeds' in example:
      seeds = tf.unstack(example['seeds'], num=_SEEDS)
    drop = ('image_bytes', 'window', 'seeds')
    out = {k: v for k, v in example.items() if k not in drop}
    out['image'] = _finish(cfg, crop, example['flip'], seeds, image_size)
    return out

  return fn


def eval_preprocess(
  data_config, *, image_size: int
) -> Callable[[Example], Example]:
  """The eval map function: centre `crop_pct` of the short side, resized.

  Equivalent to resizing the short side to image_size / crop_pct and
  cutting the centre image_size square, up to rounding; only the crop is
  decoded for JPEGs.
  """
  crop_pct = data_config.crop_pct

  def fn(example: Example) -> Example:
    crop, window, shape = crops.decode_and_crop(
      example['image_bytes'],
      lambda s: crops.center_window(s, crop_pct),
      inside=True,
    )
    out = {k: v for k, v in example.items() if k != 'image_bytes'}
    out.update(
      image=_to_uint8(_resize(crop, image_size)),
      crop_box=crops.window_to_box(window, shape),
      flip=tf.constant(False),
    )
    return out

  return fn
