"""RandAugment and AutoAugment on uint8 images, per example, in JAX.

The ops and their magnitude laws are timm's (`timm/data/auto_augment.py`),
which are PIL calls; each op here reproduces its PIL call on uint8 RGB
images (`ImageOps`, `ImageEnhance`, `Image.transform` with bicubic
resampling and a fill colour):

* per-channel lookup tables: AutoContrast, Equalize, Invert, Posterize,
  Solarize, SolarizeAdd;
* blends `degenerate + f * (image - degenerate)`, truncated to uint8:
  Color (degenerate: PIL's integer luma), Contrast (the luma's rounded
  mean), Brightness (black), Sharpness (PIL's 3x3 SMOOTH filter, borders
  kept);
* affine warps with PIL's bicubic kernel (a = -1) sampled at pixel centres,
  the fill colour outside the image: Rotate, ShearX/Y, TranslateX/YRel.

Every op of a layer is one of these three kinds, so a layer computes one
table lookup, one blend and one warp per image and selects, whatever the
number of ops: `vmap` over a batch costs three ops, not fifteen.

RandAugment (`rand_augment`, timm's `rand-m9-mstd0.5-inc1` by default, as
DeiT and ConvNeXt use it): two layers, each an op drawn uniformly (with
replacement) from the 15 "increasing" ops, applied with probability 0.5 at
magnitude `m ~ N(9, 0.5)` clipped to [0, 10]; signed ops flip their sign
with probability 0.5. AutoAugment (`auto_augment`): one of the 25
sub-policies of the AutoAugment paper's ImageNet policy (timm's
'original'), each of its two ops applied with its probability at its
magnitude.

Differences from PIL (tests/auto_augment_test.py measures them): the warps
compute in float32 where PIL uses float64, so a few pixels of a warp may
differ by one level, or take the fill colour on the image border.
"""

import dataclasses
import functools
import math
import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# timm's img_mean fill for ImageNet's mean: round(255 * (0.485, 0.456, 0.406)).
IMAGENET_FILL = (124, 116, 104)

# The ops of RandAugment's increasing set, in timm's order.
RAND_INCREASING_OPS = (
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'PosterizeIncreasing',
  'SolarizeIncreasing',
  'SolarizeAdd',
  'ColorIncreasing',
  'ContrastIncreasing',
  'BrightnessIncreasing',
  'SharpnessIncreasing',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
)
# RandAugment's original set (timm's `inc0`): magnitude weakens some ops.
RAND_OPS = (
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'Posterize',
  'Solarize',
  'SolarizeAdd',
  'Color',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
)

# AutoAugment's ImageNet policy (Cubuk et al. 2019, appendix), as timm's
# 'original': (op, probability, magnitude 0..10) pairs.
IMAGENET_POLICY = (
  (('PosterizeOriginal', 0.4, 8), ('Rotate', 0.6, 9)),
  (('Solarize', 0.6, 5), ('AutoContrast', 0.6, 5)),
  (('Equalize', 0.8, 8), ('Equalize', 0.6, 3)),
  (('PosterizeOriginal', 0.6, 7), ('PosterizeOriginal', 0.6, 6)),
  (('Equalize', 0.4, 7), ('Solarize', 0.2, 4)),
  (('Equalize', 0.4, 4), ('Rotate', 0.8, 8)),
  (('Solarize', 0.6, 3), ('Equalize', 0.6, 7)),
  (('PosterizeOriginal', 0.8, 5), ('Equalize', 1.0, 2)),
  (('Rotate', 0.2, 3), ('Solarize', 0.6, 8)),
  (('Equalize', 0.6, 8), ('PosterizeOriginal', 0.4, 6)),
  (('Rotate', 0.8, 8), ('Color', 0.4, 0)),
  (('Rotate', 0.4, 9), ('Equalize', 0.6, 2)),
  (('Equalize', 0.0, 7), ('Equalize', 0.8, 8)),
  (('Invert', 0.6, 4), ('Equalize', 1.0, 8)),
  (('Color', 0.6, 4), ('Contrast', 1.0, 8)),
  (('Rotate', 0.8, 8), ('Color', 1.0, 2)),
  (('Color', 0.8, 8), ('Solarize', 0.8, 7)),
  (('Sharpness', 0.4, 7), ('Invert', 0.6, 8)),
  (('ShearX', 0.6, 5), ('Equalize', 1.0, 9)),
  (('Color', 0.4, 0), ('Equalize', 0.6, 3)),
  (('Equalize', 0.4, 7), ('Solarize', 0.2, 4)),
  (('Solarize', 0.6, 5), ('AutoContrast', 0.6, 5)),
  (('Invert', 0.6, 4), ('Equalize', 1.0, 8)),
  (('Color', 0.6, 4), ('Contrast', 1.0, 8)),
  (('Equalize', 0.8, 8), ('Equalize', 0.6, 3)),
)

_LUT_OPS = {
  'AutoContrast',
  'Equalize',
  'Invert',
  'Posterize',
  'PosterizeIncreasing',
  'PosterizeOriginal',
  'Solarize',
  'SolarizeIncreasing',
  'SolarizeAdd',
}
_BLEND_OPS = {
  'Color': 0,
  'Contrast': 1,
  'Brightness': 2,
  'Sharpness': 3,
}
_AFFINE_OPS = {
  'Rotate',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
}
_INCREASING_BLENDS = {f'{b}Increasing' for b in _BLEND_OPS}
ALL_OPS = tuple(
  sorted(_LUT_OPS | _AFFINE_OPS | set(_BLEND_OPS) | _INCREASING_BLENDS)
)

# --- the PIL ops ---------------------------------------------------------------


def _check_image(image: jax.Array) -> None:
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != jnp.uint8:
    raise ValueError(
      '`image` must be one uint8 RGB image [H, W, 3] (vmap for a batch), '
      f'got {image.dtype} {image.shape}.'
    )


def histogram(image: jax.Array) -> jax.Array:
  """int32 `[3, 256]`: each channel's histogram."""
  flat = image.reshape(-1, 3).astype(jnp.int32)
  return jax.vmap(lambda c: jnp.bincount(c, length=256), in_axes=1)(flat)


def apply_lut(image: jax.Array, lut: jax.Array) -> jax.Array:
  """`image[..., c] -> lut[c, image[..., c]]`; lut `[3, 256]` of 0..255."""
  channels = [lut[c][image[..., c].astype(jnp.int32)] for c in range(3)]
  return jnp.stack(channels, -1).astype(jnp.uint8)


@functools.cache
def _autocontrast_shortfalls() -> np.ndarray:
  """Where PIL's float64 stretch lands one below the exact integer floor.

  PIL's table is `int(i * scale + offset)`, scale = 255 / (hi - lo),
  offset = -lo * scale, in float64: where `(i - lo) * 255 / (hi - lo)` is
  an integer, rounding may give one less (e.g. lo 0, hi 25 maps 25 to 254).
  Returns the sorted keys `lo * 65536 + hi * 256 + i` of those levels
  (about 12,000), computed once with NumPy's float64, PIL's arithmetic.
  """
  keys = []
  i = np.arange(256)
  for lo in range(255):
    hi = np.arange(lo + 1, 256)[:, None]
    scale = 255.0 / (hi - lo)
    pil = (i * scale + -lo * scale).astype(np.int64)
    exact = ((i - lo) * 255) // (hi - lo)
    inside = (i >= lo) & (i <= hi)
    rows, cols = np.nonzero(inside & (pil < exact))
    keys.append(lo * 65536 + hi[rows, 0] * 256 + cols)
  return np.sort(np.concatenate(keys)).astype(np.int32)


def autocontrast_lut(hist: jax.Array) -> jax.Array:
  """`ImageOps.autocontrast` (cutoff 0): each channel stretched to 0..255.

  The exact floor of `(i - lo) * 255 / (hi - lo)`, less one where PIL's
  float64 arithmetic falls short (`_autocontrast_shortfalls`).
  """
  levels = jnp.arange(256)
  present = hist > 0
  lo = jnp.argmax(present, axis=1)[:, None]
  hi = (255 - jnp.argmax(present[:, ::-1], axis=1))[:, None]
  span = jnp.maximum(hi - lo, 1)
  stretched = ((levels - lo) * 255) // span
  table = jnp.asarray(_autocontrast_shortfalls())
  keys = lo * 65536 + hi * 256 + levels
  found = table[jnp.clip(jnp.searchsorted(table, keys), 0, table.size - 1)]
  stretched = jnp.clip(stretched - (found == keys), 0, 255)
  return jnp.where(hi <= lo, levels, stretched)


def equalize_lut(hist: jax.Array) -> jax.Array:
  """`ImageOps.equalize`: PIL's integer cumulative-histogram table."""
  levels = jnp.arange(256)
  last = jnp.max(jnp.where(hist > 0, levels, -1), axis=1, keepdims=True)
  last_count = jnp.take_along_axis(hist, last, axis=1)
  step = (jnp.sum(hist, axis=1, keepdims=True) - last_count) // 255
  cumulative = jnp.cumsum(hist, axis=1) - hist  # counts below each level
  lut = (step // 2 + cumulative) // jnp.maximum(step, 1)
  return jnp.where(step == 0, levels, jnp.clip(lut, 0, 255))


def posterize_lut(bits: jax.Array) -> jax.Array:
  """`ImageOps.posterize`: keep the `bits` high bits (0..8)."""
  bits = jnp.asarray(bits, jnp.int32)
  mask = (0xFF << (8 - bits)) & 0xFF
  return jnp.broadcast_to(jnp.arange(256) & mask, (3, 256))


def solarize_lut(threshold: jax.Array) -> jax.Array:
  """`ImageOps.solarize`: levels >= threshold inverted."""
  levels = jnp.arange(256)
  return jnp.broadcast_to(
    jnp.where(levels < threshold, levels, 255 - levels), (3, 256)
  )


def solarize_add_lut(add: jax.Array, threshold: int = 128) -> jax.Array:
  """timm's solarize_add: `add` to the levels below `threshold`, clipped."""
  levels = jnp.arange(256)
  return jnp.broadcast_to(
    jnp.where(levels < threshold, jnp.minimum(levels + add, 255), levels),
    (3, 256),
  )


def luma(image: jax.Array) -> jax.Array:
  """PIL's `convert('L')`: int32 `[H, W]`, (19595 R + 38470 G + 7471 B +
  0x8000) >> 16."""
  rgb = image.astype(jnp.int32)
  weighted = 19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2]
  return (weighted + 0x8000) >> 16


def smooth(image: jax.Array) -> jax.Array:
  """PIL's `ImageFilter.SMOOTH` (3x3, centre 5, total 13), borders kept."""
  x = image.astype(jnp.float32)
  padded = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
  h, w = image.shape[:2]
  total = sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3))
  filtered = (total + 4.0 * x) / 13.0
  rounded = jnp.clip(jnp.floor(filtered + 0.5), 0, 255)
  border = jnp.zeros((h, w), bool).at[[0, -1], :].set(True)
  border = border.at[:, [0, -1]].set(True)
  return jnp.where(border[..., None], x, rounded)


def blend(
  degenerate: jax.Array, image: jax.Array, factor: jax.Array
) -> jax.Array:
  """`Image.blend(degenerate, image, factor)`: float32, truncated, clipped."""
  d = degenerate.astype(jnp.float32)
  diff = image.astype(jnp.float32) - d
  # PIL rounds the product before the sum; the compiler would contract the
  # two into a fused multiply-add, whose single rounding can truncate to
  # another level. A select between them keeps them apart (0 * f = 0).
  scaled = jnp.where(diff == 0, 0.0, jnp.float32(factor) * diff)
  value = d + scaled
  return jnp.clip(value, 0.0, 255.0).astype(jnp.uint8)


def degenerates(image: jax.Array) -> jax.Array:
  """float32 `[4, H, W, 3]`: the degenerate images of Color, Contrast,
  Brightness and Sharpness (PIL's ImageEnhance), in `_BLEND_OPS` order."""
  gray = luma(image)
  n = gray.size
  mean = (2 * jnp.sum(gray) + n) // (2 * n)  # int(mean + 0.5)
  shape = image.shape
  return jnp.stack(
    [
      jnp.broadcast_to(gray[..., None], shape).astype(jnp.float32),
      jnp.full(shape, mean, jnp.float32),
      jnp.zeros(shape, jnp.float32),
      smooth(image),
    ]
  )


def warp_affine(
  image: jax.Array, matrix: jax.Array, fill: Sequence[int]
) -> jax.Array:
  """`Image.transform(size, AFFINE, matrix, BICUBIC, fillcolor=fill)`.

  Output pixel (x, y) samples the input at `(a x' + b y' + c, d x' + e y'
  + f)` with `x' = x + 0.5`, `y' = y + 0.5` (PIL's pixel centres), with
  PIL's cubic kernel (a = -1), neighbours clipped to the image; samples
  outside the image take `fill`.

  Args:
    image: uint8 `[H, W, 3]`.
    matrix: `[6]`, PIL's (a, b, c, d, e, f), output -> input.
    fill: the RGB fill colour.
  """
  h, w = image.shape[:2]
  a, b, c, d, e, f = (matrix[i] for i in range(6))
  ys, xs = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32) + 0.5,
    jnp.arange(w, dtype=jnp.float32) + 0.5,
    indexing='ij',
  )
  xin = a * xs + b * ys + c
  yin = d * xs + e * ys + f
  inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
  xin, yin = xin - 0.5, yin - 0.5
  x0, y0 = jnp.floor(xin), jnp.floor(yin)
  dx, dy = xin - x0, yin - y0
  x0, y0 = x0.astype(jnp.int32) - 1, y0.astype(jnp.int32) - 1
  src = image.astype(jnp.float32)

  def cubic(v1, v2, v3, v4, t):
    p2 = v3 - v1
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = v2 - v1 + v4 - v3
    return v2 + t * (p2 + t * (p3 + t * p4))

  cols = [jnp.clip(x0 + k, 0, w - 1) for k in range(4)]
  rows = []
  for k in range(4):
    r = jnp.clip(y0 + k, 0, h - 1)
    taps = [src[r, col] for col in cols]
    rows.append(cubic(*taps, dx[..., None]))
  value = cubic(*rows, dy[..., None])
  value = jnp.clip(value, 0.0, 255.0).astype(jnp.uint8)
  fill = jnp.asarray(fill, jnp.uint8)
  return jnp.where(inside[..., None], value, fill)


def rotate_matrix(degrees: jax.Array, height: int, width: int) -> jax.Array:
  """PIL's `Image.rotate` matrix (counter-clockwise about the centre)."""
  angle = -jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  cx, cy = width / 2.0, height / 2.0
  return jnp.stack(
    [
      cos,
      sin,
      cos * -cx + sin * -cy + cx,
      -sin,
      cos,
      -sin * -cx + cos * -cy + cy,
    ]
  )


# --- magnitudes -----------------------------------------------------------------


# Magnitude laws: timm's `level / 10 * k` in float64, here as one rounding
# of `level * k' / d` in float32, so that the short levels of the policies
# (7.5, 9, ...) give the float32 argument that PIL receives.


def _div(numerator: jax.Array, denominator: float) -> jax.Array:
  """One correctly rounded float32 division.

  XLA turns a division by a constant into a product with its rounded
  reciprocal (10 / 100 -> 0.099999994); a traced denominator keeps the
  IEEE division, whose result is the float32 PIL receives.
  """
  return numerator / (denominator + 0.0 * numerator)


def _affine_matrix(
  name: str, level: jax.Array, sign: jax.Array, height: int, width: int
) -> jax.Array:
  """timm's level -> argument of an affine op, as PIL's matrix."""
  one, zero = jnp.float32(1.0), jnp.float32(0.0)
  if name == 'Rotate':
    return rotate_matrix(sign * level * 3.0, height, width)
  if name in ('ShearX', 'ShearY'):
    s = _div(sign * level * 3.0, 100.0)
    if name == 'ShearX':
      return jnp.stack([one, s, zero, zero, one, zero])
    return jnp.stack([one, zero, zero, s, one, zero])
  pct = _div(sign * level * 45.0, 1000.0)
  if name == 'TranslateXRel':
    return jnp.stack([one, zero, pct * width, zero, one, zero])
  return jnp.stack([one, zero, zero, zero, one, pct * height])


def _lut(name: str, level: jax.Array, hist: jax.Array) -> jax.Array:
  """timm's level -> argument of a lookup-table op, as its table."""
  if name == 'AutoContrast':
    return autocontrast_lut(hist)
  if name == 'Equalize':
    return equalize_lut(hist)
  if name == 'Invert':
    return jnp.broadcast_to(255 - jnp.arange(256), (3, 256))
  if name.startswith('Posterize'):
    bits = jnp.floor(_div(level * 4.0, 10.0)).astype(jnp.int32)
    bits = {
      'Posterize': bits,
      'PosterizeIncreasing': 4 - bits,
      'PosterizeOriginal': bits + 4,
    }[name]
    return posterize_lut(bits)
  if name == 'SolarizeAdd':
    return solarize_add_lut(jnp.minimum(128, jnp.floor(level * 11.0)))
  threshold = jnp.minimum(256, jnp.floor(_div(level * 256.0, 10.0)))
  if name == 'SolarizeIncreasing':
    threshold = 256 - threshold
  return solarize_lut(threshold)


def _blend_factor(name: str, level: jax.Array, sign: jax.Array) -> jax.Array:
  if name.endswith('Increasing'):
    return jnp.maximum(0.1, _div(100.0 + sign * level * 9.0, 100.0))
  return _div(level * 18.0 + 10.0, 100.0)


def _kind(name: str) -> int:
  if name in _LUT_OPS:
    return 0
  if name in _AFFINE_OPS:
    return 2
  return 1


def apply_op(
  image: jax.Array,
  op: jax.Array,
  level: jax.Array,
  sign: jax.Array,
  *,
  ops: Sequence[str],
  fill: Sequence[int] = IMAGENET_FILL,
) -> jax.Array:
  """Applies `ops[op]` at magnitude `level` (0..10) to one image.

  Args:
    image: uint8 `[H, W, 3]`.
    op: int32 scalar index into `ops` (may be traced).
    level: float32 magnitude, already clipped to [0, 10].
    sign: +1 or -1, the random sign of signed ops (ignored by the others).
    ops: timm op names (`ALL_OPS`).
    fill: RGB fill of the warps.

  Returns:
    uint8 `[H, W, 3]`.
  """
  _check_image(image)
  unknown = [n for n in ops if n not in ALL_OPS]
  if unknown:
    raise ValueError(f'Unknown ops {unknown}; known: {ALL_OPS}.')
  h, w = image.shape[:2]
  level = jnp.asarray(level, jnp.float32)
  sign = jnp.asarray(sign, jnp.float32)
  hist = histogram(image)
  identity_lut = jnp.broadcast_to(jnp.arange(256), (3, 256))
  luts, matrices, factors, which = [], [], [], []
  eye = jnp.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], jnp.float32)
  for name in ops:
    kind = _kind(name)
    luts.append(_lut(name, level, hist) if kind == 0 else identity_lut)
    matrices.append(
      _affine_matrix(name, level, sign, h, w) if kind == 2 else eye
    )
    factors.append(
      _blend_factor(name, level, sign) if kind == 1 else jnp.float32(1.0)
    )
    which.append(_BLEND_OPS.get(name.removesuffix('Increasing'), 0))
  kinds = jnp.array([_kind(n) for n in ops])
  kind = kinds[op]
  lut_out = apply_lut(image, jnp.stack(luts)[op].astype(jnp.int32))
  blend_out = blend(
    degenerates(image)[jnp.array(which)[op]], image, jnp.stack(factors)[op]
  )
  warp_out = warp_affine(image, jnp.stack(matrices)[op], fill)
  return jnp.select([kind == 0, kind == 1], [lut_out, blend_out], warp_out)


# --- the policies ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RandAugmentConfig:
  """timm's RandAugment settings (`parse_rand_augment` reads its strings).

  Attributes:
    magnitude: mean magnitude M, 0..10.
    magnitude_std: standard deviation of the per-op magnitude noise
      (`inf`: uniform in [0, M]).
    num_layers: ops per image.
    prob: probability of applying each drawn op.
    increasing: timm's increasing-magnitude op set (`inc1`).
    magnitude_max: the clip of the noisy magnitude (timm: 10).
  """

  magnitude: float = 9.0
  magnitude_std: float = 0.5
  num_layers: int = 2
  prob: float = 0.5
  increasing: bool = True
  magnitude_max: float = 10.0

  @property
  def ops(self) -> tuple[str, ...]:
    return RAND_INCREASING_OPS if self.increasing else RAND_OPS


def parse_rand_augment(spec: str) -> RandAugmentConfig:
  """timm's config string, e.g. 'rand-m9-mstd0.5-inc1' (DeiT, ConvNeXt).

  Sections: m (magnitude), mstd, n (layers), p (op probability), inc (0 or
  1), mmax. timm's defaults apply to omitted sections (m 10, mstd 0, n 2,
  p 0.5, inc 0), so 'rand-m9-mstd0.5-inc1' is DeiT's and ConvNeXt's
  RandAugment.
  """
  parts = spec.split('-')
  if parts[0] != 'rand':
    raise ValueError(f"RandAugment spec must start with 'rand', got {spec!r}.")
  values = dict(
    magnitude=10.0, magnitude_std=0.0, num_layers=2, prob=0.5, increasing=False
  )
  keys = {
    'm': ('magnitude', float),
    'mstd': ('magnitude_std', float),
    'n': ('num_layers', int),
    'p': ('prob', float),
    'inc': ('increasing', lambda v: bool(int(v))),
    'mmax': ('magnitude_max', float),
  }
  for part in parts[1:]:
    match = re.fullmatch(r'([a-z]+)(\d.*|inf)', part)
    if not match or match.group(1) not in keys:
      raise ValueError(
        f'Unknown RandAugment section {part!r} in {spec!r}; known: '
        f'{sorted(keys)}.'
      )
    field, cast = keys[match.group(1)]
    values[field] = cast(match.group(2))
  return RandAugmentConfig(**values)


def _noisy_magnitude(
  key: jax.Array, magnitude: float, std: float, upper: float
) -> jax.Array:
  if std == 0:
    m = jnp.float32(magnitude)
  elif math.isinf(std):
    m = jax.random.uniform(key, (), jnp.float32, 0.0, magnitude)
  else:
    m = magnitude + std * jax.random.normal(key, (), jnp.float32)
  return jnp.clip(m, 0.0, upper)


def rand_augment(
  key: jax.Array,
  image: jax.Array,
  config: RandAugmentConfig = RandAugmentConfig(),
  *,
  fill: Sequence[int] = IMAGENET_FILL,
) -> jax.Array:
  """timm's RandAugment of one uint8 `[H, W, 3]` image (vmap for a batch).

  Each of `config.num_layers` layers draws an op uniformly (with
  replacement), applies it with probability `config.prob` at a magnitude
  drawn for that op, with a random sign for the signed ops.
  """
  _check_image(image)
  ops = config.ops
  for layer_key in jax.random.split(key, config.num_layers):
    k_op, k_apply, k_mag, k_sign = jax.random.split(layer_key, 4)
    op = jax.random.randint(k_op, (), 0, len(ops))
    level = _noisy_magnitude(
      k_mag, config.magnitude, config.magnitude_std, config.magnitude_max
    )
    sign = jnp.where(jax.random.bernoulli(k_sign), -1.0, 1.0)
    out = apply_op(image, op, level, sign, ops=ops, fill=fill)
    applied = jax.random.bernoulli(k_apply, config.prob)
    image = jnp.where(applied, out, image)
  return image


def auto_augment(
  key: jax.Array,
  image: jax.Array,
  policy: Sequence[Sequence[tuple[str, float, float]]] = IMAGENET_POLICY,
  *,
  fill: Sequence[int] = IMAGENET_FILL,
) -> jax.Array:
  """AutoAugment of one uint8 `[H, W, 3]` image (vmap for a batch).

  Draws one sub-policy uniformly; applies each of its ops with its own
  probability at its own magnitude (random sign for signed ops).
  """
  _check_image(image)
  ops = tuple(sorted({name for sub in policy for name, _, _ in sub}))
  width = {len(sub) for sub in policy}
  if len(width) != 1:
    raise ValueError('Every sub-policy must have the same number of ops.')
  index = jnp.array([[ops.index(n) for n, _, _ in sub] for sub in policy])
  probs = jnp.array([[p for _, p, _ in sub] for sub in policy], jnp.float32)
  levels = jnp.array([[m for _, _, m in sub] for sub in policy], jnp.float32)
  k_sub, *layer_keys = jax.random.split(key, 1 + width.pop())
  sub = jax.random.randint(k_sub, (), 0, len(policy))
  for j, layer_key in enumerate(layer_keys):
    k_apply, k_sign = jax.random.split(layer_key)
    sign = jnp.where(jax.random.bernoulli(k_sign), -1.0, 1.0)
    out = apply_op(
      image, index[sub, j], levels[sub, j], sign, ops=ops, fill=fill
    )
    image = jnp.where(jax.random.bernoulli(k_apply, probs[sub, j]), out, image)
  return image
