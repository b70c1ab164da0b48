"""Stateless colour jitter and PCA lighting on float images in [0, 255].

These are the photometric augmentations of the CutMix and ReLabel ImageNet
recipes (torchvision `ColorJitter(0.4, 0.4, 0.4)` then AlexNet-style
`Lighting(0.1)`), written as TensorFlow ops for the input pipeline and
seeded statelessly per example.

Differences from the PyTorch recipe, both small: the pipeline emits uint8,
so the lit image is rounded and clipped to [0, 255] (torch keeps the float
values, a few of which leave [0, 1] by ~1e-2); and the jitter factors are
drawn from TF's stateless generator rather than torch's.
"""

from __future__ import annotations

import tensorflow as tf

# torchvision's grayscale weights (ITU-R 601-2 luma).
_LUMA = (0.299, 0.587, 0.114)

# AlexNet PCA of ImageNet RGB in [0, 1] (the values of fb.resnet.torch and of
# the CutMix/ReLabel training scripts).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
  (-0.5675, 0.7192, 0.4009),
  (-0.5808, -0.0045, -0.8140),
  (-0.5836, -0.6948, 0.4203),
)


def _gray(image: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(image * tf.constant(_LUMA), axis=-1, keepdims=True)


def _blend(image: tf.Tensor, other: tf.Tensor, factor: tf.Tensor):
  return tf.clip_by_value(other + factor * (image - other), 0.0, 255.0)


def color_jitter(
  image: tf.Tensor,
  seed: tf.Tensor,
  *,
  brightness: float = 0.4,
  contrast: float = 0.4,
  saturation: float = 0.4,
) -> tf.Tensor:
  """torchvision ColorJitter (no hue): three blends in a random order.

  Each factor is uniform in [max(0, 1 - s), 1 + s]. Brightness blends with
  black, contrast with the mean gray level, saturation with the gray image;
  the result is clipped to [0, 255] after each step, as torchvision does.

  Args:
    image: float32 `[H, W, 3]` in [0, 255].
    seed: int `[2]` stateless seed.
    brightness: brightness strength s.
    contrast: contrast strength s.
    saturation: saturation strength s.

  Returns:
    float32 `[H, W, 3]` in [0, 255].
  """
  seeds = tf.random.experimental.stateless_split(seed, num=4)
  strengths = tf.constant([brightness, contrast, saturation], tf.float32)
  factors = tf.random.stateless_uniform(
    [3], seeds[0], minval=tf.maximum(1.0 - strengths, 0.0), maxval=1.0
  )
  factors = factors + tf.random.stateless_uniform([3], seeds[1]) * strengths
  order = tf.argsort(tf.random.stateless_uniform([3], seeds[2]))

  ops = [
    lambda x: _blend(x, tf.zeros_like(x), factors[0]),
    lambda x: _blend(x, tf.reduce_mean(_gray(x)), factors[1]),
    lambda x: _blend(x, _gray(x), factors[2]),
  ]
  for step in range(3):
    branches = [lambda f=f, x=image: f(x) for f in ops]
    image = tf.switch_case(order[step], branches)
  return image


def pca_lighting(
  image: tf.Tensor, seed: tf.Tensor, alphastd: float = 0.1
) -> tf.Tensor:
  """AlexNet PCA lighting noise, scaled to [0, 255] pixels.

  Adds `eigvec @ (alpha * eigval) * 255` to every pixel, with
  `alpha ~ N(0, alphastd^2)` per channel.

  Args:
    image: float32 `[H, W, 3]` in [0, 255].
    seed: int `[2]` stateless seed.
    alphastd: standard deviation of alpha.

  Returns:
    float32 `[H, W, 3]` in [0, 255] (clipped).
  """
  alpha = tf.random.stateless_normal([3], seed, stddev=alphastd)
  rgb = tf.linalg.matvec(
    tf.constant(IMAGENET_EIGVEC), alpha * tf.constant(IMAGENET_EIGVAL)
  )
  return tf.clip_by_value(image + 255.0 * rgb, 0.0, 255.0)
