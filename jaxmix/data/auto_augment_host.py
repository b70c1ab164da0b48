"""RandAugment and AutoAugment on the host, as timm runs them: PIL calls.

The input pipeline's placement of `data.auto_augment` (docs/benchmarks.md
measures it: PIL on the host costs a fraction of the JAX ops of
`jaxmix._src.auto_augment` on a CPU). The tables (op sets, the ImageNet
policy, `parse_rand_augment`) are the library's; this module holds timm's
level -> argument laws in float64 and the PIL call of each op, so each op
equals timm's output bit for bit (tests/augment_policy_test.py checks them
against the golden file of timm's own ops).

One policy application is a plan drawn first (`draw_plan`: the ops, their
magnitudes and signs, from a NumPy generator), then applied (`apply_plan`),
so the law of the draws is testable apart from the pixels. `augment` draws
the plan from an example's seed, so the pipeline stays a pure function of
(seed, epoch, example).

One difference from timm: posterize to 0 bits (RandAugment's increasing
set at magnitude 10) gives black, as older Pillow and TensorFlow's
AutoAugment do; Pillow >= 10 raises there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from jaxmix._src import auto_augment as aa

# The values `data.auto_augment` takes besides timm's 'rand-...' strings.
OFF = ''
AUTO_AUGMENT = 'original'  # AutoAugment's ImageNet policy, timm's name

_ENHANCE = {
  'Color': ImageEnhance.Color,
  'Contrast': ImageEnhance.Contrast,
  'Brightness': ImageEnhance.Brightness,
  'Sharpness': ImageEnhance.Sharpness,
}
_SIGNED = {
  'Rotate',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
  'ColorIncreasing',
  'ContrastIncreasing',
  'BrightnessIncreasing',
  'SharpnessIncreasing',
}


@dataclasses.dataclass(frozen=True)
class Step:
  """One op of a plan: `name` at `magnitude` (0..10) with `sign` (+-1)."""

  name: str
  magnitude: float
  sign: float


def check_spec(spec: str) -> None:
  """Raises ValueError naming `data.auto_augment` for an unknown policy."""
  if spec in (OFF, AUTO_AUGMENT):
    return
  try:
    aa.parse_rand_augment(spec)
  except ValueError as e:
    raise ValueError(
      f"data.auto_augment must be '' (off), {AUTO_AUGMENT!r} (AutoAugment's "
      'ImageNet policy) or a timm RandAugment string such as '
      f"'rand-m9-mstd0.5-inc1'; got {spec!r}: {e}"
    ) from None


def draw_plan(rng: np.random.Generator, spec: str) -> list[Step]:
  """The ops one image gets under policy `spec` (timm's draw law).

  RandAugment: `num_layers` ops drawn uniformly with replacement, each kept
  with probability `prob` at magnitude N(m, mstd) clipped to [0, mmax]
  (uniform in [0, m] for mstd inf). AutoAugment: one sub-policy drawn
  uniformly, each op kept with its own probability at its own magnitude.
  Signed ops get a sign of +-1 with probability one half each.
  """
  steps = []
  if spec == AUTO_AUGMENT:
    sub = aa.IMAGENET_POLICY[rng.integers(len(aa.IMAGENET_POLICY))]
    for name, prob, magnitude in sub:
      keep = rng.random() < prob
      sign = -1.0 if rng.random() < 0.5 else 1.0
      if keep:
        steps.append(Step(name, float(magnitude), sign))
    return steps
  config = aa.parse_rand_augment(spec)
  ops = config.ops
  for _ in range(config.num_layers):
    name = ops[rng.integers(len(ops))]
    keep = rng.random() < config.prob
    if config.magnitude_std == 0:
      m = config.magnitude
    elif np.isinf(config.magnitude_std):
      m = rng.uniform(0.0, config.magnitude)
    else:
      m = rng.normal(config.magnitude, config.magnitude_std)
    m = float(min(max(m, 0.0), config.magnitude_max))
    sign = -1.0 if rng.random() < 0.5 else 1.0
    if keep:
      steps.append(Step(name, m, sign))
  return steps


def _lut(img: Image.Image, table: Sequence[int]) -> Image.Image:
  return img.point(list(table) * 3)


def apply_op(
  img: Image.Image,
  name: str,
  magnitude: float,
  sign: float = 1.0,
  *,
  fill: Sequence[int] = aa.IMAGENET_FILL,
) -> Image.Image:
  """timm's op `name` at `magnitude` (0..10) on an RGB PIL image.

  `sign` is the outcome of timm's random negation of signed ops.
  """
  level = magnitude / 10.0
  s = sign if name in _SIGNED else 1.0
  kwargs = dict(resample=Image.BICUBIC, fillcolor=tuple(fill))
  w, h = img.size
  if name == 'AutoContrast':
    return ImageOps.autocontrast(img)
  if name == 'Equalize':
    return ImageOps.equalize(img)
  if name == 'Invert':
    return ImageOps.invert(img)
  if name == 'Rotate':
    return img.rotate(s * level * 30.0, **kwargs)
  if name in ('ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'):
    shear, shift = s * level * 0.3, s * level * 0.45
    matrix = {
      'ShearX': (1, shear, 0, 0, 1, 0),
      'ShearY': (1, 0, 0, shear, 1, 0),
      'TranslateXRel': (1, 0, shift * w, 0, 1, 0),
      'TranslateYRel': (1, 0, 0, 0, 1, shift * h),
    }[name]
    return img.transform(img.size, Image.AFFINE, matrix, **kwargs)
  if name.startswith('Posterize'):
    bits = int(level * 4)
    bits = {
      'Posterize': bits,
      'PosterizeIncreasing': 4 - bits,
      'PosterizeOriginal': bits + 4,
    }[name]
    if bits >= 8:
      return img
    mask = ~(2 ** (8 - bits) - 1) & 0xFF  # ImageOps.posterize's table
    return _lut(img, [i & mask for i in range(256)])
  if name == 'SolarizeAdd':
    add = min(128, int(level * 110))
    return _lut(img, [min(255, i + add) if i < 128 else i for i in range(256)])
  if name in ('Solarize', 'SolarizeIncreasing'):
    threshold = min(256, int(level * 256))
    if name == 'SolarizeIncreasing':
      threshold = 256 - threshold
    return ImageOps.solarize(img, threshold)
  base = name.removesuffix('Increasing')
  if base not in _ENHANCE:
    raise ValueError(f'Unknown op {name!r}; known: {aa.ALL_OPS}.')
  if name.endswith('Increasing'):
    factor = max(0.1, 1.0 + s * level * 0.9)
  else:
    factor = level * 1.8 + 0.1
  return _ENHANCE[base](img).enhance(factor)


def apply_plan(
  image: np.ndarray,
  plan: Sequence[Step],
  *,
  fill: Sequence[int] = aa.IMAGENET_FILL,
) -> np.ndarray:
  """`plan`'s ops, in order, on one uint8 `[H, W, 3]` image."""
  if not plan:
    return image
  img = Image.fromarray(np.ascontiguousarray(image))
  for step in plan:
    img = apply_op(img, step.name, step.magnitude, step.sign, fill=fill)
  return np.asarray(img, np.uint8)


def generator(seed: np.ndarray) -> np.random.Generator:
  """The NumPy generator of one example's int64 `[2]` stateless seed."""
  return np.random.default_rng(np.asarray(seed, np.int64).view(np.uint64))


def augment(image: np.ndarray, seed: np.ndarray, spec: str) -> np.ndarray:
  """Policy `spec` on one uint8 `[H, W, 3]` image, drawn from `seed`.

  Args:
    image: uint8 `[H, W, 3]`.
    seed: int64 `[2]`, the example's stateless seed.
    spec: a `data.auto_augment` value (not '').

  Returns:
    uint8 `[H, W, 3]`.
  """
  return apply_plan(image, draw_plan(generator(seed), spec))
