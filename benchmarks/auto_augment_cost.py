"""Cost of jaxmix's RandAugment / AutoAugment per image, against timm's PIL.

  python benchmarks/auto_augment_cost.py --batch 64 --size 224

Times `jax.vmap(rand_augment)` and `jax.vmap(auto_augment)` jit-compiled
on one uint8 `[B, size, size, 3]` batch on the default JAX backend (the
median of `--repeats` calls after one warm-up, each ending in
`jax.block_until_ready`), and, for the host reference, the same policy's
ops through PIL one image at a time (timm's RandAugment is these PIL
calls): the RandAugment of `rand-m9-mstd0.5-inc1` drawn with NumPy, the
PIL op per image and layer. Prints milliseconds per image for each.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from jaxmix._src import auto_augment as aa


def _time(fn, repeats: int) -> float:
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _pil_op(img: Image.Image, name: str, m: float, sign: float):
  """timm's op `name` at magnitude m through PIL (the host reference)."""
  fill, bicubic = aa.IMAGENET_FILL, Image.BICUBIC
  w, h = img.size
  if name == 'AutoContrast':
    return ImageOps.autocontrast(img)
  if name == 'Equalize':
    return ImageOps.equalize(img)
  if name == 'Invert':
    return ImageOps.invert(img)
  if name == 'Rotate':
    return img.rotate(sign * m * 3, resample=bicubic, fillcolor=fill)
  if name == 'PosterizeIncreasing':
    return ImageOps.posterize(img, max(1, 4 - int(m / 10 * 4)))
  if name == 'SolarizeIncreasing':
    return ImageOps.solarize(img, 256 - min(256, int(m / 10 * 256)))
  if name == 'SolarizeAdd':
    add = min(128, int(m / 10 * 110))
    lut = [min(255, i + add) if i < 128 else i for i in range(256)]
    return img.point(lut * 3)
  enhance = {
    'ColorIncreasing': ImageEnhance.Color,
    'ContrastIncreasing': ImageEnhance.Contrast,
    'BrightnessIncreasing': ImageEnhance.Brightness,
    'SharpnessIncreasing': ImageEnhance.Sharpness,
  }
  if name in enhance:
    return enhance[name](img).enhance(max(0.1, 1 + sign * m / 10 * 0.9))
  s = sign * m / 10 * 0.3
  t = sign * m / 10 * 0.45
  matrix = {
    'ShearX': (1, s, 0, 0, 1, 0),
    'ShearY': (1, 0, 0, s, 1, 0),
    'TranslateXRel': (1, 0, t * w, 0, 1, 0),
    'TranslateYRel': (1, 0, 0, 0, 1, t * h),
  }[name]
  return img.transform(img.size, Image.AFFINE, matrix, bicubic, fillcolor=fill)


def _pil_rand_augment(images: np.ndarray, rng: np.random.Generator):
  ops = aa.RAND_INCREASING_OPS
  out = []
  for image in images:
    img = Image.fromarray(image)
    for _ in range(2):
      name = ops[rng.integers(len(ops))]
      if rng.random() < 0.5:
        m = float(np.clip(rng.normal(9, 0.5), 0, 10))
        img = _pil_op(img, name, m, 1.0 if rng.random() < 0.5 else -1.0)
    out.append(np.asarray(img))
  return np.stack(out)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (args.batch, args.size, args.size, 3))
  images = images.astype(np.uint8)
  x = jnp.asarray(images)
  keys = jax.random.split(jax.random.key(0), args.batch)
  rand = jax.jit(jax.vmap(aa.rand_augment))
  auto = jax.jit(jax.vmap(aa.auto_augment))
  per = 1e3 / args.batch
  backend = jax.default_backend()
  t = _time(lambda: rand(keys, x), args.repeats)
  print(f'jaxmix rand_augment ({backend}): {t * per:.3f} ms/image')
  t = _time(lambda: auto(keys, x), args.repeats)
  print(f'jaxmix auto_augment ({backend}): {t * per:.3f} ms/image')
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    _pil_rand_augment(images, rng)
    times.append(time.perf_counter() - start)
  t = statistics.median(times)
  print(f'PIL rand_augment (host, 1 thread): {t * per:.3f} ms/image')


if __name__ == '__main__':
  main()
