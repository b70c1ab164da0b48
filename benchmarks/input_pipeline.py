"""Images/s of the train input pipeline on a prepared imagenet2012 fixture.

Measures the host pipeline alone (read, partial JPEG decode, random-resized
crop, flip, optional colour jitter and PCA lighting, batching), per process
and per CPU core the process may use. Build a benchmark set first, e.g.

  python -m jaxmix.datasets.imagenet_fixture --out /tmp/in1k/manual \
    --classes 10 --images-per-class 50 --data-dir /tmp/in1k/data
  python benchmarks/input_pipeline.py --data-dir /tmp/in1k/data

The fixture's images are 240-500 px high like ImageNet's (mean ~400x350);
the set is small, so later epochs read from the OS file cache, as a cached
ImageNet shard would.
"""

from __future__ import annotations

import argparse
import os
import time

from jaxmix.data import input_pipeline


def _data_config(args):
  import ml_collections

  return ml_collections.ConfigDict(
    dict(
      dataset='imagenet2012',
      data_dir=args.data_dir,
      manual_dir=None,
      train_split='train',
      eval_split='validation',
      image_key='image',
      label_key='label',
      file_name_key='file_name',
      num_classes=1000,
      augment=args.augment,
      crop_sampler=args.crop_sampler,
      crop_scale=(0.08, 1.0),
      crop_ratio=(3 / 4, 4 / 3),
      crop_pct=0.875,
      random_flip=True,
      color_jitter=args.color_jitter,
      color_jitter_clip=True,
      pca_lighting=args.pca_lighting,
      shuffle_buffer=16384,
      on_corrupt='error',
      mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
      std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    )
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data-dir', required=True)
  parser.add_argument('--batch-size', type=int, default=128)
  parser.add_argument('--image-size', type=int, default=224)
  parser.add_argument('--steps', type=int, default=30)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--augment', default='inception')
  parser.add_argument(
    '--crop-sampler',
    default='torchvision',
    choices=('torchvision', 'tensorflow'),
  )
  parser.add_argument('--color-jitter', type=float, default=0.0)
  parser.add_argument('--pca-lighting', type=float, default=0.0)
  args = parser.parse_args()

  it = input_pipeline.create_train_iterator(
    _data_config(args),
    global_batch_size=args.batch_size,
    image_size=args.image_size,
    seed=0,
    process_index=0,
    process_count=1,
  )
  for _ in range(args.warmup):
    next(it)
  start = time.perf_counter()
  for _ in range(args.steps):
    next(it)
  seconds = time.perf_counter() - start
  cores = len(os.sched_getaffinity(0))
  rate = args.steps * args.batch_size / seconds
  print(
    f'augment={args.augment} jitter={args.color_jitter} '
    f'pca={args.pca_lighting} size={args.image_size}: {rate:.0f} img/s on '
    f'{cores} cores = {rate / cores:.0f} img/s per core'
  )


if __name__ == '__main__':
  main()
