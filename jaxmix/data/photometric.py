"""Stateless colour jitter and PCA lighting on float images in [0, 255].

These are the photometric augmentations of the CutMix and ReLabel ImageNet
recipes (colour jitter 0.4 then AlexNet-style `Lighting(0.1)`), written as
TensorFlow ops for the input pipeline and seeded statelessly per example:
the `data.photometric='host'` placement. The recipes' default, 'device',
runs the same laws inside the train step (`jaxmix.photometric`).

Colour jitter has torchvision's `ColorJitter` law: each factor uniform in
[max(0, 1 - s), 1 + s] (the hue shift in [-h, h]), independent, and the
adjustments applied in a uniformly random order. The CutMix code's own
`ColorJitter` (from fb.resnet.torch: `img.lerp(gray, alpha)` with
alpha ~ U(-s, s)) has the same factor law and order; it differs only in
not clipping between steps, which `clip=False` reproduces.

Differences from the PyTorch code, all small:
- the pipeline emits uint8, so the final image is rounded and clipped to
  [0, 255] (torch keeps the float values after lighting, a few of which
  leave [0, 1] by ~1e-2);
- the ReLabel code jitters PIL images, which PIL rounds to uint8 after each
  step (its grey level too, with integer luma weights); here every step
  stays in float;
- the grey image uses the ITU-R 601-2 weights (0.299, 0.587, 0.114) of
  PIL and of the CutMix code; torchvision's tensor path uses 0.2989 for red;
- the random numbers come from TF's stateless generator, not torch's.
"""

from __future__ import annotations

import tensorflow as tf

from jaxmix._src import photometric as device_photometric

# The constants are shared with the device implementation.
_LUMA = device_photometric.LUMA
IMAGENET_EIGVAL = device_photometric.IMAGENET_EIGVAL
IMAGENET_EIGVEC = device_photometric.IMAGENET_EIGVEC

# The jitter adjustments, by their index in `jitter_params`' order.
ADJUSTMENTS = ('brightness', 'contrast', 'saturation', 'hue')


def _gray(image: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(image * tf.constant(_LUMA), axis=-1, keepdims=True)


def _blend(image: tf.Tensor, other: tf.Tensor, factor: tf.Tensor, clip=True):
  out = other + factor * (image - other)
  return tf.clip_by_value(out, 0.0, 255.0) if clip else out


def _shift_hue(image: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
  # HSV hue rotation by `shift` turns (torchvision: h = (h + shift) mod 1).
  # The hexcone model needs values in range, so the input is clipped first.
  unit = tf.clip_by_value(image, 0.0, 255.0) / 255.0
  return tf.image.adjust_hue(unit, shift) * 255.0


def jitter_params(
  seed: tf.Tensor,
  *,
  brightness: float,
  contrast: float,
  saturation: float,
  hue: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Draws torchvision ColorJitter's factors and order.

  Args:
    seed: int `[2]` stateless seed.
    brightness, contrast, saturation: strengths s >= 0; each factor is
      uniform in [max(0, 1 - s), 1 + s].
    hue: strength h in [0, 0.5]; the shift is uniform in [-h, h].

  Returns:
    (factors float32 `[3]` (brightness, contrast, saturation), hue shift
    float32 `[]`, order int32 `[4]`: a uniformly random permutation of the
    indices of `ADJUSTMENTS`, applied first to last).
  """
  seeds = tf.random.experimental.stateless_split(seed, num=2)
  strengths = tf.constant([brightness, contrast, saturation], tf.float32)
  low = tf.concat([tf.maximum(1.0 - strengths, 0.0), [-hue]], axis=0)
  high = tf.concat([1.0 + strengths, [hue]], axis=0)
  u = tf.random.stateless_uniform([4], seeds[0])
  values = low + (high - low) * u
  # argsort of i.i.d. uniforms: each of the 4! orders equally likely.
  order = tf.argsort(tf.random.stateless_uniform([4], seeds[1]))
  return values[:3], values[3], tf.cast(order, tf.int32)


def apply_color_jitter(
  image: tf.Tensor,
  factors: tf.Tensor,
  order: tf.Tensor,
  *,
  shift: tf.Tensor | None = None,
  clip: bool = True,
) -> tf.Tensor:
  """The adjustments of `color_jitter`, given its factors and order.

  Deterministic: `color_jitter` is `jitter_params` then this function (and
  `jaxmix.apply_photometric` computes the same on the device).

  Args:
    image: float32 `[H, W, 3]` in [0, 255].
    factors: float32 `[3]` brightness, contrast and saturation factors.
    order: int32 `[n]`, indices of `ADJUSTMENTS` applied first to last (n
      is 3 or 4; the hue index is the identity when `shift` is None).
    shift: float32 `[]` hue shift in [-0.5, 0.5], or None for no hue step.
    clip: clip after each step.

  Returns:
    float32 `[H, W, 3]`, in [0, 255] when `clip`.
  """
  ops = [
    lambda x: _blend(x, tf.zeros_like(x), factors[0], clip),
    lambda x: _blend(x, tf.reduce_mean(_gray(x)), factors[1], clip),
    lambda x: _blend(x, _gray(x), factors[2], clip),
    (lambda x: x) if shift is None else (lambda x: _shift_hue(x, shift)),
  ]
  for step in range(order.shape[0]):
    branches = [lambda f=f, x=image: f(x) for f in ops]
    image = tf.switch_case(order[step], branches)
  return image


def color_jitter(
  image: tf.Tensor,
  seed: tf.Tensor,
  *,
  brightness: float = 0.4,
  contrast: float = 0.4,
  saturation: float = 0.4,
  hue: float = 0.0,
  clip: bool = True,
) -> tf.Tensor:
  """torchvision ColorJitter: four adjustments in a random order.

  Brightness blends with black, contrast with the mean of the grey image,
  saturation with the grey image, hue rotates the HSV hue; each factor as
  `jitter_params`. With `clip=True` the result is clipped to [0, 255] after
  each step, as torchvision does; `clip=False` leaves the blends unclipped
  (the CutMix code's jitter on float tensors). A zero strength is the
  identity.

  Args:
    image: float32 `[H, W, 3]` in [0, 255].
    seed: int `[2]` stateless seed.
    brightness, contrast, saturation: strengths s.
    hue: hue strength h in [0, 0.5].
    clip: clip after each step.

  Returns:
    float32 `[H, W, 3]`, in [0, 255] when `clip`.
  """
  if not 0.0 <= hue <= 0.5:
    raise ValueError(f'hue must be in [0, 0.5], got {hue}')
  factors, shift, order = jitter_params(
    seed,
    brightness=brightness,
    contrast=contrast,
    saturation=saturation,
    hue=hue,
  )
  return apply_color_jitter(
    image, factors, order, shift=shift if hue > 0 else None, clip=clip
  )


def lighting_alpha(seed: tf.Tensor, alphastd: float = 0.1) -> tf.Tensor:
  """float32 `[3]` alpha ~ N(0, alphastd^2) of `pca_lighting`."""
  return tf.random.stateless_normal([3], seed, stddev=alphastd)


def apply_pca_lighting(image: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
  """`pca_lighting` given its alpha (float32 `[3]`); clipped to [0, 255]."""
  rgb = tf.linalg.matvec(
    tf.constant(IMAGENET_EIGVEC), alpha * tf.constant(IMAGENET_EIGVAL)
  )
  return tf.clip_by_value(image + 255.0 * rgb, 0.0, 255.0)


def pca_lighting(
  image: tf.Tensor, seed: tf.Tensor, alphastd: float = 0.1
) -> tf.Tensor:
  """AlexNet PCA lighting noise, scaled to [0, 255] pixels.

  Adds `eigvec @ (alpha * eigval) * 255` to every pixel, with
  `alpha ~ N(0, alphastd^2)` i.i.d. per principal component: the official
  `Lighting(alphastd, eigval, eigvec)` (CutMix, ReLabel), whose shift on
  [0, 1] images is `sum_j eigvec[i, j] * alpha[j] * eigval[j]`.

  Args:
    image: float32 `[H, W, 3]` in [0, 255].
    seed: int `[2]` stateless seed.
    alphastd: standard deviation of alpha.

  Returns:
    float32 `[H, W, 3]` in [0, 255] (clipped).
  """
  return apply_pca_lighting(image, lighting_alpha(seed, alphastd))
