"""Where RandAugment / AutoAugment are cheapest: device JAX or host PIL.

  python benchmarks/auto_augment_cost.py --batch 64 --size 224

Per image, on one uint8 `[B, size, size, 3]` batch of noise:

* `jax.vmap` of `jaxmix._src.auto_augment.rand_augment` / `auto_augment`,
  jit-compiled, on the default JAX backend (the step's placement; median of
  `--repeats` calls after a warm-up, each ending in `block_until_ready`);
* the input pipeline's placement, `jaxmix.data.auto_augment_host.augment`
  (timm's PIL calls): one thread, then inside tf.data's parallel map
  (`jaxmix.data.preprocess.apply_policy` with the pipeline's options, one
  thread per core), wall time per image and the cores it had.

Policies: `rand-m9-mstd0.5-inc1` (DeiT, ConvNeXt) and `original`
(AutoAugment's ImageNet policy).
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix._src import auto_augment as aa
from jaxmix.data import auto_augment_host

POLICIES = ('rand-m9-mstd0.5-inc1', 'original')


def _median(fn, repeats: int) -> float:
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _device(images: np.ndarray, repeats: int) -> None:
  x = jnp.asarray(images)
  keys = jax.random.split(jax.random.key(0), len(images))
  fns = {
    POLICIES[0]: jax.jit(jax.vmap(aa.rand_augment)),
    POLICIES[1]: jax.jit(jax.vmap(aa.auto_augment)),
  }
  for spec, fn in fns.items():
    t = _median(lambda fn=fn: jax.block_until_ready(fn(keys, x)), repeats)
    print(
      f'{spec:22s} JAX vmap ({jax.default_backend()}): '
      f'{t * 1e3 / len(images):7.3f} ms/image'
    )


def _host(images: np.ndarray, repeats: int) -> None:
  import tensorflow as tf

  from jaxmix.data import input_pipeline, preprocess

  cores = len(os.sched_getaffinity(0))
  seeds = np.stack([np.arange(len(images)), np.zeros(len(images))], 1)
  seeds = seeds.astype(np.int64)
  for spec in POLICIES:

    def serial(spec=spec):
      for image, seed in zip(images, seeds):
        auto_augment_host.augment(image, seed, spec)

    t = _median(serial, repeats)
    print(
      f'{spec:22s} PIL, 1 thread:      {t * 1e3 / len(images):7.3f} ms/image'
    )
    ds = tf.data.Dataset.from_tensor_slices((images, seeds)).map(
      lambda x, s, spec=spec: preprocess.apply_policy(x, s, spec),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True,
    )
    ds = ds.with_options(input_pipeline.dataset_options())

    def parallel(ds=ds):
      for _ in ds:
        pass

    t = _median(parallel, repeats)
    print(
      f'{spec:22s} PIL in tf.data map ({cores} cores): '
      f'{t * 1e3 / len(images):7.3f} ms/image wall'
    )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--skip-device', action='store_true')
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (args.batch, args.size, args.size, 3))
  images = images.astype(np.uint8)
  _host(images, args.repeats)
  if not args.skip_device:
    _device(images, args.repeats)


if __name__ == '__main__':
  main()
