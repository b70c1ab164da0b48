"""Colour jitter, PCA lighting and normalisation of uint8 batches, on device.

The photometric augmentations of the CutMix and ReLabel ImageNet recipes
(torchvision `ColorJitter(0.4, 0.4, 0.4)`, then AlexNet `Lighting(0.1)`,
then `Normalize`), per example, fused with the conversion of the uint8
crops the input pipeline sends to the compute dtype. Split as the mixing
ops are: `sample_photometric` draws the random numbers (`PhotometricDraw`),
`apply_photometric` is deterministic given them, `photometric` composes the
two.

The laws are those of the host implementation (`jaxmix.data.photometric`)
and of torchvision: each jitter factor uniform in [max(0, 1 - s), 1 + s],
independent; the three adjustments (brightness, contrast, saturation) in a
uniformly random order per example (one of the six); lighting's
`alpha ~ N(0, alphastd^2)` per principal component. Brightness blends with
black, contrast with the mean of the grey image, saturation with the grey
image (ITU-R 601-2 luma, as PIL and the CutMix code); with `clip` each
blend is clipped to [0, 255], as torchvision does (the three blends commute
but for this clipping, so the order matters only through it). No hue: no
recipe uses it.

Given the same factors, order and alpha, `apply_photometric` computes what
the host ops compute, in the same float32 arithmetic (equal up to the
summation order of the grey mean). The placements differ in one rounding:
the host jitters the resized crop before rounding it to uint8, the device
jitters the rounded uint8 crop; and, the output being float, the device
does not clip after lighting (the official `Lighting` does not either).
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

# ITU-R 601-2 luma (PIL's `convert('L')`, the CutMix code's Grayscale).
LUMA = (0.299, 0.587, 0.114)

# AlexNet PCA of ImageNet RGB in [0, 1] (fb.resnet.torch, and the CutMix and
# ReLabel training scripts' `Lighting`).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
  (-0.5675, 0.7192, 0.4009),
  (-0.5808, -0.0045, -0.8140),
  (-0.5836, -0.6948, 0.4203),
)

# The jitter adjustments, by their index in `PhotometricDraw.order`.
JITTER_OPS = ('brightness', 'contrast', 'saturation')


class PhotometricDraw(NamedTuple):
  """The random numbers of one batch's photometric augmentation.

  Attributes:
    factors: float32 `[B, 3]` jitter factors, in `JITTER_OPS`' order (1 is
      the identity).
    order: int32 `[B, 3]`, per example a permutation of (0, 1, 2): the
      indices of `JITTER_OPS`, applied first to last.
    alpha: float32 `[B, 3]` lighting coefficients of the principal
      components (0 is the identity).
  """

  factors: jax.Array
  order: jax.Array
  alpha: jax.Array


def sample_photometric(
  key: jax.Array,
  batch_size: int,
  *,
  color_jitter: float | jax.Array = 0.4,
  lighting: float | jax.Array = 0.1,
) -> PhotometricDraw:
  """Draws torchvision ColorJitter's factors and order, and lighting's alpha.

  Each example draws from its own key (`jax.random.split(key,
  batch_size)`), so under `jit` with the batch sharded over devices the
  draws are computed where the examples live, without communication, and
  do not depend on the number of devices.

  Args:
    key: a PRNG key.
    batch_size: B. Static.
    color_jitter: strength s >= 0 of brightness, contrast and saturation;
      each factor is uniform in [max(0, 1 - s), 1 + s]. May be traced.
    lighting: alphastd >= 0; alpha ~ N(0, alphastd^2). May be traced.

  Returns:
    A `PhotometricDraw` of `batch_size` examples.

  Examples:
    >>> import jax, jaxmix
    >>> draw = jaxmix.sample_photometric(jax.random.key(0), 8)
    >>> draw.factors.shape, draw.order.shape, draw.alpha.shape
    ((8, 3), (8, 3), (8, 3))
  """
  strength = jnp.asarray(color_jitter, jnp.float32)
  alphastd = jnp.asarray(lighting, jnp.float32)
  low = jnp.maximum(1.0 - strength, 0.0)
  high = 1.0 + strength

  def one(k):
    k_factor, k_order, k_alpha = jax.random.split(k, 3)
    u = jax.random.uniform(k_factor, (3,))
    # argsort of i.i.d. uniforms: each of the 3! orders equally likely.
    order = jnp.argsort(jax.random.uniform(k_order, (3,))).astype(jnp.int32)
    alpha = alphastd * jax.random.normal(k_alpha, (3,))
    return low + (high - low) * u, order, alpha

  factors, order, alpha = jax.vmap(one)(jax.random.split(key, batch_size))
  return PhotometricDraw(factors=factors, order=order, alpha=alpha)


def _gray(image: jax.Array) -> jax.Array:
  # Channel slices, not a reduction over the last axis: XLA then fuses the
  # grey level into the elementwise chain instead of materialising it.
  r, g, b = (image[..., c : c + 1] for c in range(3))
  return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def _blend(image, other, factor, clip):
  out = other + factor * (image - other)
  return jnp.clip(out, 0.0, 255.0) if clip else out


def _steps(images, factors, order, clip, contrast_mean, until):
  """The adjustments in each example's order, all elementwise.

  With `until` (int32 `[B]`), step s of example i is applied only when
  s < until[i] (contrast, the one adjustment that needs a reduction, is
  then never among them and `contrast_mean` is unused).
  """
  f = factors[:, None, None, None, :]
  x = images
  for step in range(order.shape[1]):
    op = order[:, step, None, None, None]
    contrast = x if contrast_mean is None else contrast_mean
    y = jnp.where(
      op == 0,
      _blend(x, jnp.zeros_like(x), f[..., 0], clip),
      jnp.where(
        op == 1,
        _blend(x, contrast, f[..., 1], clip),
        _blend(x, _gray(x), f[..., 2], clip),
      ),
    )
    if until is not None:
      y = jnp.where((step < until)[:, None, None, None], y, x)
    x = y
  return x


def _jitter(images, factors, order, clip):
  """`[B, H, W, 3]`, each example's adjustments in its own order.

  Two passes over the batch, each one fused loop: the steps before
  contrast, reduced to the grey mean contrast blends with; then every
  step from the input again, with that mean. Batched with selects (not a
  `vmap` of a `switch`), so it also runs on batches sharded over an
  Explicit mesh axis.
  """
  contrast_at = jnp.argmax(order == 1, axis=1)
  before = _steps(images, factors, order, clip, None, contrast_at)
  mean = jnp.mean(_gray(before), axis=(1, 2, 3), keepdims=True)
  return _steps(images, factors, order, clip, mean, None)


def _lighting_shift(alpha: jax.Array) -> jax.Array:
  """`[B, 3]` alpha -> `[B, 3]` RGB shift on the 0..255 scale."""
  eigval = jnp.asarray(IMAGENET_EIGVAL, jnp.float32)
  eigvec = jnp.asarray(IMAGENET_EIGVEC, jnp.float32)
  return 255.0 * jnp.einsum('ij,bj->bi', eigvec, alpha * eigval)


def apply_photometric(
  images: jax.Array,
  draw: PhotometricDraw | None,
  *,
  mean: Sequence[float] = (0.0, 0.0, 0.0),
  std: Sequence[float] = (1.0, 1.0, 1.0),
  jitter: bool = True,
  lighting: bool = True,
  clip: bool = True,
  dtype: Any = jnp.float32,
) -> jax.Array:
  """Jitters, lights and normalises a uint8 batch with the given draw.

  Computed in float32 on the 0..255 scale and rounded once to `dtype`
  (XLA fuses the whole chain with the uint8 conversion): colour jitter in
  each example's order, then `x + eigvec @ (alpha * eigval) * 255`, then
  `(x - mean) / std`.

  Args:
    images: uint8 (or float on the 0..255 scale) `[B, H, W, 3]`.
    draw: from `sample_photometric` for B examples; None with both
      `jitter` and `lighting` off (normalisation only).
    mean: per-channel mean on the 0..255 scale, `[3]`.
    std: per-channel standard deviation on the 0..255 scale, `[3]`.
    jitter: apply the colour jitter. Static.
    lighting: apply the PCA lighting. Static.
    clip: clip to [0, 255] after each jitter step (torchvision); False
      blends unclipped (the CutMix code's jitter). Static.
    dtype: the output dtype (the step's compute dtype).

  Returns:
    `[B, H, W, 3]` in `dtype`.

  Raises:
    ValueError: if `images` is not `[B, H, W, 3]`, or the draw is missing
      or of another batch size.

  Examples:
    >>> import jax, jax.numpy as jnp, jaxmix
    >>> images = jnp.full((2, 4, 4, 3), 100, jnp.uint8)
    >>> draw = jaxmix.PhotometricDraw(
    ...   factors=jnp.array([[1.25, 1.0, 1.0], [1.0, 1.0, 1.0]]),
    ...   order=jnp.array([[0, 1, 2], [2, 1, 0]]),
    ...   alpha=jnp.zeros((2, 3)),
    ... )
    >>> out = jaxmix.apply_photometric(images, draw)
    >>> out[:, 0, 0, 0].tolist()  # brightness 1.25 on the first image
    [125.0, 100.0]
  """
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(
      f'`images` must be [B, H, W, 3] (RGB), got shape {images.shape}.'
    )
  x = images.astype(jnp.float32)
  if jitter or lighting:
    if draw is None:
      raise ValueError('`draw` is None but `jitter` or `lighting` is on.')
    b = images.shape[0]
    for name in ('factors', 'order', 'alpha'):
      shape = getattr(draw, name).shape
      if shape != (b, 3):
        raise ValueError(
          f'`draw.{name}` must have shape ({b}, 3) for {b} images, got {shape}.'
        )
  if jitter:
    x = _jitter(x, draw.factors, draw.order, clip)
  if lighting:
    x = x + _lighting_shift(draw.alpha)[:, None, None, :]
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return ((x - mean) / std).astype(dtype)


def photometric(
  key: jax.Array,
  images: jax.Array,
  *,
  color_jitter: float = 0.4,
  lighting: float = 0.1,
  mean: Sequence[float] = (0.0, 0.0, 0.0),
  std: Sequence[float] = (1.0, 1.0, 1.0),
  clip: bool = True,
  dtype: Any = jnp.float32,
) -> jax.Array:
  """torchvision ColorJitter, AlexNet Lighting and Normalize, per example.

  `sample_photometric` then `apply_photometric`; a strength of 0 switches
  its op off.

  Args:
    key: a PRNG key.
    images: uint8 `[B, H, W, 3]`.
    color_jitter: brightness, contrast and saturation strength s >= 0.
      Static (0 is off).
    lighting: alphastd >= 0 of the PCA lighting. Static (0 is off).
    mean, std: normalisation on the 0..255 scale, `[3]` each.
    clip: clip after each jitter step. Static.
    dtype: output dtype.

  Returns:
    `[B, H, W, 3]` in `dtype`.

  Raises:
    ValueError: on a negative strength or a batch not `[B, H, W, 3]`.

  Examples:
    >>> import jax, jax.numpy as jnp, jaxmix
    >>> images = jnp.zeros((4, 32, 32, 3), jnp.uint8)
    >>> out = jaxmix.photometric(
    ...   jax.random.key(0), images, mean=(124, 116, 104), std=(58, 57, 57),
    ...   dtype=jnp.bfloat16)
    >>> out.shape, out.dtype
    ((4, 32, 32, 3), dtype(bfloat16))
  """
  for name, value in (('color_jitter', color_jitter), ('lighting', lighting)):
    if value < 0:
      raise ValueError(f'`{name}` must be >= 0, got {value}.')
  draw = None
  if color_jitter > 0 or lighting > 0:
    draw = sample_photometric(
      key, images.shape[0], color_jitter=color_jitter, lighting=lighting
    )
  return apply_photometric(
    images,
    draw,
    mean=mean,
    std=std,
    jitter=color_jitter > 0,
    lighting=lighting > 0,
    clip=clip,
    dtype=dtype,
  )
