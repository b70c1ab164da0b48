"""Images/s of the train input pipeline against a plain reference, one run.

Two pipelines read the same prepared imagenet2012 split on the same cores:

* reference: the structure of the flax ImageNet example, written here --
  TFDS read with `SkipDecoding`, repeat, shuffle, a parallel (AUTOTUNE,
  non-deterministic) map of an Inception crop decoded with
  `decode_and_crop_jpeg` (centre-crop fallback), bicubic resize, random
  flip, batch, prefetch, a private thread pool. It yields uint8 images and
  labels only (jaxmix normalises on the device, so the flax example's host
  normalisation is left out of both).
* jaxmix: `jaxmix.data.input_pipeline.create_train_iterator`, with all it
  adds (crop box, flip bit, file name, savable position, per-example
  stateless randomness, optional colour jitter / PCA lighting), its resize
  law `--train-resize` (default 'area', the recipes' default; with
  `--compare-antialias` also a row with 'antialias'), and with `--relabel`
  its batches joined with label maps from a memory-mapped store
  (`jaxmix.data.label_maps.join`, in the background thread of `prefetch_to_mesh`).

Recipe rows (unless `--no-recipe`): jaxmix with the data config of
`--recipe` (default the ReLabel ResNet-50 recipe: torchvision crop, area
resize, flip, colour jitter 0.4 and lighting 0.1 placed on the device, so
the host decodes, crops, resizes and flips only) and, for a ReLabel
recipe, the label-map join; `--host-photometric` adds the same recipe with
`data.photometric='host'` (jitter and lighting as TF ops on the host).
`--policy SPEC` adds jaxmix with `data.auto_augment=SPEC` (RandAugment or
AutoAugment through PIL in the parallel map); a recipe row uses its
recipe's policy.

Each round builds a fresh iterator of each pipeline in turn, warms it up and
times `--steps` batches (crossing epoch boundaries on a small set); rounds
alternate so that load from other jobs hits all alike. Printed per row:
images/s and the process CPU time per image, each as the median and range
over the rounds, and the medians' ratios to the reference's.

  python -c "from jaxmix.datasets import imagenet_fixture as f; \
    f.build('MANUAL', num_classes=20, images_per_class=100, \
    num_validation=50, min_side=240, max_side=500)"
  tfds build imagenet2012 --data_dir DATA \
    --manual_dir MANUAL
  python benchmarks/input_pipeline.py --data-dir DATA

`--stages` also times variants of the reference to show where the time
goes: 'read' (bytes only), 'decode' (+ the crop decoded, no resize),
the same two cut-downs of jaxmix ('read': its epoch interleave's examples;
'decode': + its stateless seeds, crop window and partial decode),
'antialias' (the full reference with jaxmix's antialiased bilinear resize
instead of bicubic), and jaxmix with the reference's bicubic resize (in
place of either jaxmix law).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxmix.data import input_pipeline


def _data_config(args):
  """The schema's data section (every field, off by default), set up here."""
  from jaxmix.configs import default

  config = default.get_config().data
  config.update(
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
      crop_scale=(0.08, 1.0),
      crop_ratio=(3 / 4, 4 / 3),
      crop_pct=0.875,
      random_flip=True,
      crop_sampler=args.crop_sampler,
      train_resize=args.train_resize,
      color_jitter=args.color_jitter,
      color_jitter_clip=True,
      pca_lighting=args.pca_lighting,
      photometric=args.photometric,
      auto_augment=getattr(args, 'auto_augment', ''),
      shuffle_buffer=16384,
      on_corrupt='error',
      mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
      std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    )
  )
  return config


# The reference: the flax example's published structure.


def _reference_crop(image_bytes, size, stage):
  shape = tf.io.extract_jpeg_shape(image_bytes)
  begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
    shape,
    bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
    min_object_covered=0.1,
    aspect_ratio_range=(3 / 4, 4 / 3),
    area_range=(0.08, 1.0),
    max_attempts=10,
    use_image_if_no_bounding_boxes=True,
  )
  y, x, _ = tf.unstack(begin)
  h, w, _ = tf.unstack(crop_size)
  # Whole image back = every attempt failed: centre crop of 224/256.
  bad = tf.reduce_all(tf.equal(crop_size[:2], shape[:2]))
  short = tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
  side = tf.cast(short * 0.875, tf.int32)
  centre = tf.stack(
    [(shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2, side, side]
  )
  window = tf.where(bad, centre, tf.stack([y, x, h, w]))
  image = tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)
  if stage == 'decode':
    return tf.image.resize_with_crop_or_pad(image, size, size)
  if stage == 'antialias':  # jaxmix's resize law, for comparison
    image = tf.image.resize(image, [size, size], antialias=True)
  else:
    image = tf.image.resize([image], [size, size], method='bicubic')[0]
  image = tf.image.random_flip_left_right(image)
  return tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)


def reference_dataset(args, *, stage: str = 'full') -> tf.data.Dataset:
  """The reference pipeline ('read' and 'decode' stop early)."""
  builder = tfds.builder('imagenet2012', data_dir=args.data_dir)
  ds = builder.as_dataset(
    split='train',
    shuffle_files=True,
    decoders={'image': tfds.decode.SkipDecoding()},
  )
  options = tf.data.Options()
  options.threading.private_threadpool_size = len(os.sched_getaffinity(0))
  ds = ds.with_options(options).repeat().shuffle(16384, seed=0)

  def decode(ex):
    if stage == 'read':
      return {'image': tf.strings.length(ex['image']), 'label': ex['label']}
    image = _reference_crop(ex['image'], args.image_size, stage)
    return {'image': image, 'label': ex['label']}

  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(args.batch_size, drop_remainder=True).prefetch(
    tf.data.AUTOTUNE
  )


def _numpy_batches(ds):
  for batch in ds:
    yield {k: v.numpy() for k, v in batch.items()}


def _label_map_store(args, directory: str):
  """A store with a map for every train file name (random maps)."""
  from jaxmix.data.label_maps.store import LabelMapStore
  from jaxmix.data.label_maps.writer import LabelMapWriter

  builder = tfds.builder('imagenet2012', data_dir=args.data_dir)
  names = [
    ex['file_name']
    for ex in tfds.as_numpy(
      builder.as_dataset(
        split='train', decoders={'image': tfds.decode.SkipDecoding()}
      )
    )
  ]
  rng = np.random.default_rng(0)
  n = len(names)
  scores = rng.random((n, 15, 15, 5), np.float32).astype(np.float16)
  indices = rng.integers(0, 1000, (n, 15, 15, 5)).astype(np.uint16)
  writer = LabelMapWriter(directory, size=15, k=5, num_classes=1000)
  writer.add(names, scores, indices)
  writer.finalize()
  return LabelMapStore.open(directory, missing='error')


def _bicubic(image, size):
  image = tf.image.resize([image], [size, size], method='bicubic')[0]
  return tf.clip_by_value(image, 0.0, 255.0)


def _jaxmix_batches(args, store=None, *, bicubic=False):
  from jaxmix.data import crops

  it = input_pipeline.create_train_iterator(
    _data_config(args),
    global_batch_size=args.batch_size,
    image_size=args.image_size,
    seed=0,
    process_index=0,
    process_count=1,
  )
  if bicubic:  # the reference's resize law instead of jaxmix's
    laws = crops.resize, crops.resize_area
    crops.resize = crops.resize_area = _bicubic
    try:  # the pipeline (and its map function) is built at the first batch
      first = next(it)
    finally:
      crops.resize, crops.resize_area = laws
    it = itertools.chain([first], it)
  if store is None:
    return it
  import jax

  from jaxmix.data.label_maps import join

  it = join.join_label_maps(it, join.store_maps_fn(store))
  # The join runs in the prefetcher's background thread, as in training.
  mesh = jax.make_mesh((1,), ('data',), devices=jax.devices()[:1])
  return input_pipeline.prefetch_to_mesh(it, mesh)


def _jaxmix_stage(args, stage: str):
  """jaxmix cut down: 'read' (the examples of its epoch interleave, bytes
  only) or 'decode' (+ its seeds, crop window and decode, no resize)."""
  from jaxmix.data import preprocess

  def read_only(data_config, *, image_size, seed):
    del data_config, image_size, seed

    def fn(example):
      out = {k: v for k, v in example.items() if k != 'image_bytes'}
      out['image'] = tf.strings.length(example['image_bytes'])
      return out

    return fn

  def crop_or_pad(crop, size, law='antialias'):
    del law
    image = tf.image.resize_with_crop_or_pad(crop, size, size)
    return tf.cast(image, tf.float32)

  patches = {
    # Bytes only: the per-example map, without the block draw.
    'read': {'train_preprocess': read_only, 'drawn_per_block': lambda c: False},
    'decode': {'_resize': crop_or_pad},
  }[stage]
  originals = {name: getattr(preprocess, name) for name in patches}
  for name, patch in patches.items():
    setattr(preprocess, name, patch)
  try:  # the map function is built and traced at the first batch
    it = _jaxmix_batches(args)
    first = next(it)
  finally:
    for name, original in originals.items():
      setattr(preprocess, name, original)
  return itertools.chain([first], it)


def _recipe_args(args, placement: str) -> argparse.Namespace:
  """`args` with the data fields of the recipe `--recipe`, at `placement`."""
  from jaxmix.train import recipes

  data = recipes.load(args.recipe).data
  return argparse.Namespace(
    **{
      **vars(args),
      'augment': data.augment,
      'crop_sampler': data.crop_sampler,
      'train_resize': data.train_resize,
      'color_jitter': data.color_jitter,
      'pca_lighting': data.pca_lighting,
      'photometric': placement,
      'auto_augment': data.auto_augment,
    }
  )


def _time(make, args) -> tuple[float, float]:
  """(images/s, process CPU ms per image) of `--steps` batches."""
  it = iter(make())
  for _ in range(args.warmup):
    next(it)
  cpu, start = time.process_time(), time.perf_counter()
  for _ in range(args.steps):
    next(it)
  seconds = time.perf_counter() - start
  cpu = time.process_time() - cpu
  close = getattr(it, 'close', None)
  if close is not None:
    close()
  del it
  images = args.steps * args.batch_size
  return images / seconds, 1000 * cpu / images


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data-dir', required=True)
  parser.add_argument('--batch-size', type=int, default=128)
  parser.add_argument('--image-size', type=int, default=224)
  parser.add_argument('--steps', type=int, default=40)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--augment', default='inception')
  parser.add_argument(
    '--crop-sampler',
    default='torchvision',
    choices=('torchvision', 'tensorflow'),
  )
  parser.add_argument(
    '--train-resize', default='area', choices=('area', 'antialias')
  )
  parser.add_argument('--color-jitter', type=float, default=0.0)
  parser.add_argument('--pca-lighting', type=float, default=0.0)
  parser.add_argument(
    '--photometric',
    default='host',
    choices=('host', 'device'),
    help="Placement of the 'jaxmix' row's jitter and lighting.",
  )
  parser.add_argument(
    '--recipe',
    default='imagenet/relabel_resnet50.py',
    help='Recipe of the recipe rows (its data config, with the ReLabel '
    'join when it uses ReLabel).',
  )
  parser.add_argument(
    '--no-recipe', action='store_true', help='Leave the recipe rows out.'
  )
  parser.add_argument(
    '--host-photometric',
    action='store_true',
    help="Also time the recipe with data.photometric='host'.",
  )
  parser.add_argument(
    '--relabel', action='store_true', help='Also join label maps.'
  )
  parser.add_argument(
    '--stages', action='store_true', help='Also time cut-down pipelines.'
  )
  parser.add_argument(
    '--policy',
    default='',
    help='Also time jaxmix with data.auto_augment=POLICY (e.g. '
    "'rand-m9-mstd0.5-inc1').",
  )
  parser.add_argument(
    '--json',
    help='Append each round of each row to this file (JSON lines), to '
    'interleave runs of this script with benchmarks/torch_loader.py.',
  )
  parser.add_argument(
    '--compare-antialias',
    action='store_true',
    help="Also time jaxmix with data.train_resize='antialias'.",
  )
  args = parser.parse_args()
  tf.config.set_visible_devices([], 'GPU')

  rows = {
    'reference': lambda: _numpy_batches(reference_dataset(args)),
    'jaxmix': lambda: _jaxmix_batches(args),
  }
  if args.policy:
    policy = argparse.Namespace(**{**vars(args), 'auto_augment': args.policy})
    rows[f'jaxmix + {args.policy}'] = lambda: _jaxmix_batches(policy)
  if args.compare_antialias:
    exact = argparse.Namespace(**{**vars(args), 'train_resize': 'antialias'})
    rows['jaxmix, antialias resize'] = lambda: _jaxmix_batches(exact)
  store = None
  if args.relabel or not args.no_recipe:
    directory = tempfile.mkdtemp(prefix='label_maps_')
    store = _label_map_store(args, directory)
  if args.relabel:
    rows['jaxmix + ReLabel join'] = lambda: _jaxmix_batches(args, store)
  if not args.no_recipe:
    from jaxmix.train import recipes

    join = store if recipes.load(args.recipe).relabel.enabled else None
    placements = ('device', 'host') if args.host_photometric else ('device',)
    for placement in placements:
      recipe = _recipe_args(args, placement)
      rows[f'recipe, {placement} photometric'] = lambda r=recipe: (
        _jaxmix_batches(r, join)
      )
  if args.stages:
    rows['jaxmix, bicubic resize'] = lambda: _jaxmix_batches(args, bicubic=True)
    for stage in ('read', 'decode'):
      rows[f'jaxmix, {stage}'] = lambda s=stage: _jaxmix_stage(args, s)
    for stage in ('read', 'decode', 'antialias'):
      rows[f'reference, {stage}'] = lambda s=stage: _numpy_batches(
        reference_dataset(args, stage=s)
      )
  results = {name: [] for name in rows}
  for _ in range(args.rounds):
    for name, make in rows.items():
      results[name].append(_time(make, args))
      if args.json:
        rate, cpu = results[name][-1]
        with open(args.json, 'a') as f:
          row = {'row': name, 'img_s': rate, 'cpu_ms': cpu}
          f.write(json.dumps(row) + '\n')

  cores = len(os.sched_getaffinity(0))
  load = os.getloadavg()[0]
  print(
    f'batch {args.batch_size}, {args.image_size} px, augment={args.augment} '
    f'jitter={args.color_jitter} pca={args.pca_lighting} '
    f'train_resize={args.train_resize}; {cores} cores, '
    f'load average {load:.1f}; medians of {args.rounds} rounds of '
    f'{args.steps} batches'
  )
  ref = statistics.median(r for r, _ in results['reference'])
  ref_cpu = statistics.median(c for _, c in results['reference'])
  print(
    f'{"pipeline":<30} {"img/s median (range)":>22} {"x ref":>6} '
    f'{"cpu ms/img median (range)":>26} {"x ref":>6}'
  )
  for name, values in results.items():
    rates = [r for r, _ in values]
    cpus = [c for _, c in values]
    rate, cpu = statistics.median(rates), statistics.median(cpus)
    print(
      f'{name:<30} {rate:8.0f} ({min(rates):5.0f}-{max(rates):5.0f}) '
      f'{rate / ref:6.2f} {cpu:12.2f} ({min(cpus):4.2f}-{max(cpus):4.2f}) '
      f'{cpu / ref_cpu:6.2f}'
    )


if __name__ == '__main__':
  main()
