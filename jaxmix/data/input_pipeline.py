"""tf.data/TFDS image-classification pipelines with savable positions.

Train: each process reads its own slice of the split
(`tfds.split_for_jax_process`, remainder dropped so every process has the
same number of steps), in one tf.data pipeline for all epochs:

  epochs e, e+1, ...: files shuffled(seed, e) -> read bytes -> enumerate
  (example index) -> shuffle buffer(seed, e) -> [repeated augmentation:
  the first ceil(n / r) examples, each r times with its copy number] ->
  the epoch's full batches -> enumerate (position) -> skip(restored
  position, first epoch only) -> decode + crop + flip + colour + policy
  (parallel, deterministic) -> batch [-> rows laid over the local devices,
  `jaxmix.data.repeated`]

With torchvision's crop (`preprocess.drawn_per_block`) the map is split in
two: each example's image shape is read with its bytes, then blocks of
`BLOCK` examples draw their seeds, windows, boxes and flips in one set of
vectorised ops (`preprocess.train_block`), and the parallel per-example map
only decodes, resizes and flips (`preprocess.train_crop`): the same
batches, with a few ops per example instead of a hundred. An error (a bad
image stops the run with `on_corrupt='error'`) switches the iterator to the
per-example map from its position on, so it comes at the same batch.

Every random choice is a stateless op seeded by (seed, epoch, example
index), and each epoch's order by (seed, epoch), so the same seed gives the
same batches, and a restored position skips the consumed examples before
they are decoded. The examples that would make a partial last batch of an
epoch are never read. With `on_corrupt='skip'` the few undecodable images
are dropped after decoding, so a batch may then end in the next epoch.

Eval: `create_eval_iterator` is the evaluation suites' reader
(`jaxmix.data.eval_batches`) on the config's eval split: one ordered pass,
centre crop of `crop_pct` of the short side, batches padded to the full
size with `mask` False; every process yields the same number of batches.

Images leave as uint8; normalisation by (mean, std) happens on the device.
"""

from __future__ import annotations

import jax
import numpy as np
import tensorflow as tf
from absl import logging

from jaxmix.data import preprocess as preprocess_lib
from jaxmix.data import repeated, tfds_source
from jaxmix.data.eval_batches import create_eval_iterator
from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.data.preprocess import CorruptImageError
from jaxmix.data.source import (
  Batch,
  BatchIterator,
  local_batch_size,
  process_args,
)
from jaxmix.data.tfds_source import dataset_options, num_examples, prepare

__all__ = [
  'BatchIterator',
  'CorruptImageError',
  'create_eval_iterator',
  'create_minority_iterator',
  'create_train_iterator',
  'num_examples',
  'prefetch_to_mesh',
  'prepare',
  'steps_per_epoch',
]


def steps_per_epoch(
  data_config, global_batch_size: int, *, process_count: int | None = None
) -> int:
  """Full global batches per train epoch (remainders dropped)."""
  count = jax.process_count() if process_count is None else process_count
  per_process = num_examples(data_config, data_config.train_split) // count
  return per_process // local_batch_size(global_batch_size, count)


# Examples per vectorised draw of windows and flips.
BLOCK = 64


def _to_numpy(batch) -> Batch:
  return {k: v.numpy() for k, v in batch.items()}


def epoch_seeds(seed: int, epoch: tf.Tensor) -> tf.Tensor:
  """int64 `[2]`: the seeds of `epoch`'s file order and shuffle buffer."""
  key = tf.stack([tf.constant(seed % 2**63, tf.int64), epoch])
  seeds = tf.random.stateless_uniform(
    [2], seed=key, minval=None, maxval=None, dtype=tf.int64
  )
  # Non-negative, and never (0, 0), which tf.data would replace by a
  # random seed.
  return seeds % (2**62) + 1


class _TrainIterator(BatchIterator):
  """Infinite over epochs: one deterministic tf.data pipeline for all.

  The stream is a sequence of epochs, each `steps * batch_size` examples
  (the tail that would make a partial batch is never read), each in its own
  order: files shuffled and a shuffle buffer filled with seeds of
  (seed, epoch). The next epoch is opened (files, shuffle buffer) while the
  current one is consumed, so no epoch starts with a drained pipeline or an
  empty shuffle buffer; the price is a second buffer's worth of host memory
  (`data.shuffle_buffer` encoded images). With `repeats` > 1 an epoch's
  samples are its first examples, each `repeats` times
  (`jaxmix.data.repeated`), and each batch's rows are laid over
  `replicas` devices as DeiT's ranks read them.
  """

  def __init__(
    self,
    source: tfds_source.Source,
    preprocess_fn,
    *,
    batch_size,
    seed,
    steps,
    repeats=1,
    replicas=1,
    block_fns=None,
  ):
    self._source = source
    # (train_block, train_crop), or None to map preprocess_fn per example.
    self._block_fns = block_fns
    self._repeats = repeats
    self._rows = (
      repeated.replica_rows(batch_size, replicas) if repeats > 1 else None
    )
    self._preprocess_fn = preprocess_fn
    # Traced once, for one-by-one decoding when looking for a bad image.
    self._preprocess = tf.function(preprocess_fn)
    self._batch_size = batch_size
    self._per_epoch = steps * batch_size
    self._seed = seed
    self._skip = source.config.on_corrupt == 'skip'
    self.num_skipped = 0
    self._epoch, self._batch, self._position = 0, 0, 0
    self._iterator = None

  def _raw(
    self, epoch: int, position: int, *, shapes: bool = False
  ) -> tf.data.Dataset:
    """Undecoded examples from (epoch, position) on, over all epochs.

    `shapes`: with each image's shape ('shape', `preprocess.with_shape`).
    """
    buffer = min(self._source.config.shuffle_buffer, max(self._source.size, 1))
    per_epoch, repeats = self._per_epoch, self._repeats
    annotate = preprocess_lib.with_shape if shapes else (lambda ex: ex)

    def copies(ex):
      numbers = tf.data.Dataset.range(repeats)
      return numbers.map(lambda copy: {**ex, 'copy': copy})

    def one_epoch(e):
      seeds = epoch_seeds(self._seed, e)
      ds = self._source.read_epoch(seeds[0])
      ds = ds.shuffle(buffer, seed=seeds[1], reshuffle_each_iteration=False)
      if repeats > 1:
        ds = ds.take(repeated.distinct(per_epoch, repeats)).flat_map(copies)
      ds = ds.take(per_epoch).enumerate()
      ds = ds.skip(tf.where(e == epoch, tf.constant(position, tf.int64), 0))
      # After the skip: a consumed example's image is never opened.
      return ds.map(
        lambda pos, ex: annotate({**ex, 'position': pos, 'epoch': e})
      )

    # Epoch by epoch, in order: each epoch is one block of the interleave;
    # the second slot opens the next epoch (its shuffle buffer fills) in the
    # background while the current one is read.
    return tf.data.Dataset.counter(epoch).interleave(
      one_epoch,
      cycle_length=2,
      block_length=per_epoch,
      num_parallel_calls=2,
      deterministic=True,
    )

  def _start(self) -> None:
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if self._block_fns is None:
      ds = self._raw(self._epoch, self._position)
      ds = ds.map(self._preprocess_fn, **parallel)
    else:
      block_fn, crop_fn = self._block_fns
      ds = self._raw(self._epoch, self._position, shapes=True)
      ds = ds.batch(BLOCK).map(block_fn, **parallel).unbatch()
      ds = ds.map(crop_fn, **parallel)
    if self._skip:
      ds = ds.ignore_errors()
    ds = ds.batch(self._batch_size).prefetch(tf.data.AUTOTUNE)
    self._iterator = iter(ds.with_options(dataset_options()))

  def __next__(self) -> Batch:
    if self._iterator is None:
      self._start()
    try:
      batch = _to_numpy(next(self._iterator))
    except tf.errors.OpError as e:
      if self._block_fns is not None:
        # A bad image fails its whole block (and its header is read ahead
        # of the map): go on per example from this position, where the
        # error comes with the image's own batch, as without blocks.
        self._block_fns = None
        self._start()
        return next(self)
      raw = self._raw(self._epoch, self._position)
      raise self._source.find_corrupt(raw, self._preprocess, e) from e
    positions, epochs = batch.pop('position'), batch.pop('epoch')
    batch.pop('index'), batch.pop('copy', None)
    if self._rows is not None and len(self._rows) == len(positions):
      batch = {k: v[self._rows] for k, v in batch.items()}
    epoch, position = int(epochs[-1]), int(positions[-1]) + 1
    if self._skip:
      # Examples read (up to this batch's last) that did not arrive.
      read = (epoch - self._epoch) * self._per_epoch + position
      skipped = read - self._position - self._batch_size
      if skipped > 0:
        self.num_skipped += skipped
        logging.warning(
          'skipped %d undecodable images of %s (%d so far)',
          skipped,
          self._source.describe(),
          self.num_skipped,
        )
    self._batch = self._batch + 1 if epoch == self._epoch else 1
    self._epoch, self._position = epoch, position
    return batch

  def get_state(self) -> dict[str, int]:
    return {
      'epoch': self._epoch,
      'batch_in_epoch': self._batch,
      'position': self._position,
    }

  def set_state(self, state: dict[str, int]) -> None:
    try:
      epoch, batch = int(state['epoch']), int(state['batch_in_epoch'])
      position = int(state.get('position', batch * self._batch_size))
    except (KeyError, TypeError, ValueError) as e:
      raise ValueError(
        f"state must hold integer 'epoch' and 'batch_in_epoch'; got {state}"
      ) from e
    if min(epoch, batch, position) < 0:
      raise ValueError(f'state values must be >= 0; got {state}')
    self._epoch, self._batch, self._position = epoch, batch, position
    self._iterator = None


def create_train_iterator(
  data_config,
  *,
  global_batch_size: int,
  image_size: int,
  seed: int,
  process_index: int | None = None,
  process_count: int | None = None,
  replicas: int | None = None,
) -> BatchIterator:
  """Infinite train batches of this process (see the module docstring).

  Yields dicts: 'image' uint8 `[b, S, S, 3]`, 'label' int32 `[b]`,
  'crop_box' float32 `[b, 4]` (ymin, xmin, ymax, xmax) normalised in the
  original image, 'flip' bool `[b]`, 'file_name' bytes `[b]`, with
  b = global_batch_size // process_count and S = image_size. `replicas`:
  the devices a batch is sharded over, over which repeated augmentation
  spreads an example's copies (None: this process's local devices).
  """
  tfds_source.hide_accelerators()
  index, count = process_args(process_index, process_count)
  batch_size = local_batch_size(global_batch_size, count)
  preprocess_lib.check_config(data_config)
  source = tfds_source.Source(
    data_config, data_config.train_split, index, count, drop_remainder=True
  )

  steps = source.size // batch_size
  if steps < 1:
    raise ValueError(
      f'{source.describe()} has fewer than one batch of {batch_size} '
      'examples in this process.'
    )
  preprocess_fn = preprocess_lib.train_preprocess(
    data_config, image_size=image_size, seed=seed
  )
  repeats = repeated.check(data_config.repeated_augmentation)
  if repeats > 1:
    replicas = jax.local_device_count() if replicas is None else replicas
    repeated.replica_rows(batch_size, replicas)  # a ValueError if uneven
  block_fns = None
  if preprocess_lib.drawn_per_block(data_config):
    block_fns = (
      preprocess_lib.train_block(data_config, seed=seed),
      preprocess_lib.train_crop(data_config, image_size=image_size),
    )
  return _TrainIterator(
    source,
    preprocess_fn,
    batch_size=batch_size,
    seed=seed,
    steps=steps,
    repeats=repeats,
    replicas=replicas or 1,
    block_fns=block_fns,
  )


def create_minority_iterator(
  data_config,
  *,
  global_batch_size: int,
  image_size: int,
  seed: int,
  alpha: float,
  process_index: int | None = None,
  process_count: int | None = None,
) -> BatchIterator:
  """CMO's second stream (`jaxmix.data.minority.MinorityStream`).

  This process's train examples (the long-tailed subset when configured)
  are held encoded in host memory, so any of them can be drawn; each drawn
  batch is decoded and augmented by the train map function with its own
  seed. Meant for CIFAR-LT-sized splits (CIFAR-100-LT: 10,847 images,
  about 30 MB); ImageNet-LT would hold its 116k JPEGs (about 13 GB).
  """
  from jaxmix.data import minority

  tfds_source.hide_accelerators()
  index, count = process_args(process_index, process_count)
  batch_size = local_batch_size(global_batch_size, count)
  preprocess_lib.check_config(data_config)
  source = tfds_source.Source(
    data_config, data_config.train_split, index, count, drop_remainder=True
  )
  columns = {'image_bytes': [], 'label': [], 'file_name': []}
  for ex in source.read(shuffle_seed=None):
    for key, values in columns.items():
      values.append(ex[key].numpy())
  table = {key: np.asarray(values) for key, values in columns.items()}
  preprocess = preprocess_lib.train_preprocess(
    data_config, image_size=image_size, seed=seed + minority.MINORITY_SEED
  )

  # One traced decoder for every batch (a tf.data pipeline per batch would
  # trace the map function again each step).
  sample = {key: tf.constant(values[0]) for key, values in table.items()}
  sample.update(epoch=tf.constant(0, tf.int64), index=tf.constant(0, tf.int64))
  signature = {
    key: tf.TensorSpec(value.shape, value.dtype)
    for key, value in preprocess(sample).items()
  }
  decode = tf.function(
    lambda columns: tf.map_fn(
      preprocess, columns, fn_output_signature=signature
    )
  )

  def fetch(indices, epoch, first):
    columns = {key: values[indices] for key, values in table.items()}
    columns['epoch'] = np.full(len(indices), epoch, np.int64)
    columns['index'] = np.arange(first, first + len(indices), dtype=np.int64)
    batch = _to_numpy(decode(columns))
    batch.pop('epoch'), batch.pop('index')
    return batch

  return minority.MinorityStream(
    table['label'],
    fetch,
    num_classes=data_config.num_classes,
    batch_size=batch_size,
    seed=seed,
    process_index=index,
    alpha=alpha,
  )
