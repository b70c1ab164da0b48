"""The one evaluation reader: padded, masked batches of a prepared split.

The trainer's evaluation and every evaluation suite read through `batches`.
The suites read many TFDS datasets (ImageNet and its variants, CUB,
digit_scenes), each with its own label features (ReaL sets, Shankar et
al.'s multi-labels, boxes); `batches` reads one split in order with the
eval preprocessing (centre `crop_pct` crop, resized to the run's image
size, uint8) and returns host batches padded to a fixed size with a
'mask', plus any extra per-example tensors the caller asks for.
`create_eval_iterator` is the trainer's view: the config's eval split,
with its labels and file names (`jaxmix.data.source.DataSource`).

Under `jax.distributed` every process reads its own contiguous slice of the
split (`process_slices`, nothing dropped; `align` keeps groups such as
pairs `(2k, 2k + 1)` in one batch of one process) and yields the same
number of batches of `batch_size // process_count` rows; a process whose
slice runs out yields all-padding batches. Each row carries its 'index' in
the split, so results gathered from all processes can be put back in the
split's order.

An image that cannot be decoded stops the pass with a `CorruptImageError`
naming it, or is skipped with `on_corrupt='skip'`. Nothing downloads: a
split that is not prepared raises a `ValueError` that says how to prepare
it (`jaxmix.data.tfds_source.checked_builder`).
"""

from collections.abc import Callable, Iterator, Mapping

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from jaxmix.data import preprocess, tfds_source
from jaxmix.data.preprocess import CorruptImageError
from jaxmix.data.source import (
  BatchIterator,
  local_batch_size,
  pad_batch,
  process_args,
)

Extra = Callable[[dict], tf.Tensor]
Batch = dict[str, np.ndarray]
ON_CORRUPT = preprocess.ON_CORRUPT


def _absolute(
  found: tfds.core.DatasetBuilder, split: str, why: str
) -> tuple[str, int, int]:
  """(split name, start, end) of a single, optionally sliced, split."""
  parts = tfds.core.ReadInstruction.from_spec(split).to_absolute(
    found.info.splits
  )
  if len(parts) != 1:
    raise ValueError(
      f'{why} needs a single (optionally sliced) split, got {split!r}.'
    )
  (part,) = parts
  end = part.to
  if end is None:
    end = found.info.splits[part.splitname].num_examples
  return part.splitname, part.from_ or 0, end


def limited_split(
  found: tfds.core.DatasetBuilder, split: str, limit: int | None
) -> str:
  """`split` cut to its first `limit` examples, as a TFDS split string."""
  if limit is None:
    return split
  if limit < 1:
    raise ValueError(f'limit={limit} must be a positive number of examples.')
  name, start, end = _absolute(found, split, f'limit={limit}')
  return f'{name}[{start}:{min(end, start + limit)}]'


def process_slices(
  found: tfds.core.DatasetBuilder, split: str, count: int, align: int = 1
) -> list[tuple[str, int, int]]:
  """(split string, first index, size) of each process's slice of `split`.

  Contiguous slices in process order, no example dropped, every one
  starting at a multiple of `align` of the split: the groups of `align`
  examples are shared as evenly as possible, the first processes taking
  one more (with `align` 1 the slices of `tfds.split_for_jax_process`);
  the last group may be short.
  """
  if align < 1:
    raise ValueError(f'align={align} must be a positive number of examples.')
  if count == 1:
    return [(split, 0, found.info.splits[split].num_examples)]
  name, first, end = _absolute(found, split, f'process_count={count}')
  total, out, start = end - first, [], 0
  groups = -(-total // align)
  for index in range(count):
    share = groups // count + (index < groups % count)
    size = max(min(share * align, total - start), 0)
    out.append((f'{name}[{first + start}:{first + start + size}]', start, size))
    start += size
  return out


def batches(
  name: str,
  split: str,
  *,
  data_dir: str | None,
  image_size: int,
  batch_size: int,
  crop_pct: float = 0.875,
  image_key: str = 'image',
  extras: Mapping[str, Extra] | None = None,
  manual_dir: str | None = None,
  limit: int | None = None,
  process_index: int | None = None,
  process_count: int | None = None,
  align: int = 1,
  on_corrupt: str = 'error',
  name_key: str | None = None,
) -> Iterator[Batch]:
  """One ordered pass over this process's slice of a split, padded.

  Args:
    name: TFDS name (with config, e.g. 'imagenet2012_corrupted/fog_3').
    split: the split ('validation', 'test[:1000]', ...).
    data_dir: the TFDS data_dir (TFDS's default if None).
    image_size: output side; the centre `crop_pct` of the short side is
      resized to it (crop_pct=1.0 keeps the whole square image).
    batch_size: global rows per batch (all processes together), a multiple
      of the process count; the last batches are padded.
    crop_pct: centre-crop fraction (the trainer's eval crop).
    image_key: the image feature.
    extras: output key -> fn(TFDS example) -> tensor of a fixed rank
      (sequences are zero-padded to the longest in the batch). The example
      holds its TFDS id at 'tfds_id'.
    manual_dir: named in the not-prepared error for manual builders.
    limit: read at most this many examples (the first of the split, over
      all processes together).
    process_index: this process (default `jax.process_index()`).
    process_count: the processes (default `jax.process_count()`).
    align: every process's slice starts at a multiple of `align` of the
      split, and `batch_size // process_count` must be a multiple of it,
      so rows `(align k, ..., align k + align - 1)` of the split are
      always consecutive rows of one batch of one process, whatever the
      process count and batch size (2: pairs `(2k, 2k + 1)`).
    on_corrupt: 'error' (an undecodable image raises `CorruptImageError`
      naming it) or 'skip' (it is dropped, and the count logged).
    name_key: the feature that names an example in that error (its TFDS
      id if None).

  Yields:
    dicts of b = batch_size // process_count rows: 'image' uint8
    `[b, S, S, 3]`, 'crop_box' float32 `[b, 4]` (the crop in the original
    image, normalised (ymin, xmin, ymax, xmax)), 'index' int32 `[b]` (the
    position in the split, -1 on padding), 'mask' bool `[b]`, and the
    extras. Every process yields the same number of batches.
  """
  index, count = process_args(process_index, process_count)
  local_size = local_batch_size(batch_size, count)
  if align < 1 or local_size % align:
    raise ValueError(
      f'batch_size={batch_size} over process_count={count} gives '
      f'{local_size} rows per process, not a multiple of align={align}.'
    )
  if on_corrupt not in ON_CORRUPT:
    raise ValueError(f'on_corrupt={on_corrupt!r} must be one of {ON_CORRUPT}.')
  extras = dict(extras or {})
  for key in ('image', 'crop_box', 'index', 'mask'):
    if key in extras:
      raise ValueError(f'extras must not redefine the {key!r} output.')
  found = tfds_source.checked_builder(
    name,
    split,
    data_dir=data_dir,
    manual_dir=manual_dir,
    features=(image_key,),
  )
  tfds_source.hide_accelerators()
  limited = limited_split(found, split, limit)
  if count == 1:  # read to the end: needs no per-process sizes
    local, first, num_batches = limited, 0, None
    size = found.info.splits[limited].num_examples
  else:
    slices = process_slices(found, limited, count, align)
    local, first, size = slices[index]
    most = max(s[2] for s in slices)
    num_batches = max(-(-most // local_size), 1)
  decoders = {
    key: tfds.decode.SkipDecoding()
    for key, feature in found.info.features.items()
    if isinstance(feature, tfds.features.Image)
  }
  take = None
  if not size:  # read one example for its specs, keep none
    local, take = f'{split.split("[")[0]}[:1]', 0

  def read() -> tf.data.Dataset:
    ds = found.as_dataset(
      split=local,
      shuffle_files=False,
      decoders=decoders,
      read_config=tfds.ReadConfig(add_tfds_id=True),
    )
    return ds if take is None else ds.take(take)

  config = ml_collections.ConfigDict({'crop_pct': crop_pct})
  crop = preprocess.eval_preprocess(config, image_size=image_size)

  def convert(position, ex):
    out = crop({'image_bytes': ex[image_key]})
    result = {
      'image': out['image'],
      'crop_box': out['crop_box'],
      'index': tf.cast(position + first, tf.int32),
    }
    result.update({key: fn(ex) for key, fn in extras.items()})
    return result

  ds = (
    read()
    .enumerate()
    .map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  )
  if on_corrupt == 'skip':
    ds = ds.ignore_errors()
  ds = ds.padded_batch(local_size).prefetch(tf.data.AUTOTUNE)
  ds = ds.with_options(tfds_source.dataset_options())
  # All-padding batches for a slice that ends early.
  empty = {
    k: np.zeros(
      [0, *(d or 0 for d in spec.shape[1:])],
      np.dtype(object)
      if spec.dtype == tf.string
      else spec.dtype.as_numpy_dtype,
    )
    for k, spec in ds.element_spec.items()
  }
  iterator = iter(tfds.as_numpy(ds))
  done = seen = 0
  while num_batches is None or done < num_batches:
    try:
      batch = next(iterator, None)
    except tf.errors.OpError as error:
      where = f'TFDS dataset {name!r} split {split!r}'
      raise _corrupt(read(), crop, image_key, name_key, where, error) from error
    if batch is None and num_batches is None:
      break
    batch = dict(empty if batch is None else batch)
    seen += len(batch['index'])
    done += 1
    out = pad_batch(batch, local_size)
    out['index'] = np.where(out['mask'], out['index'], -1).astype(np.int32)
    yield out
  if seen < size:
    logging.warning(
      'skipped %d undecodable images of TFDS dataset %s split %s',
      size - seen,
      name,
      local,
    )


def _corrupt(
  raw: tf.data.Dataset,
  crop: Callable,
  image_key: str,
  name_key: str | None,
  where: str,
  error: tf.errors.OpError,
) -> Exception:
  """Decodes `raw` one by one; the first failure names the bad image."""
  for position, ex in enumerate(raw):
    try:
      crop({'image_bytes': ex[image_key]})
    except tf.errors.OpError as e:
      label = ex[name_key] if name_key in ex else ex['tfds_id']
      label = label.numpy().decode(errors='replace')
      return CorruptImageError(
        f"cannot decode image '{label}' (example {position} of this "
        f"process's slice of {where}): {e.message.strip()}. Set "
        "data.on_corrupt='skip' (on_corrupt='skip') to skip it."
      )
  return error


class _Pass(BatchIterator):
  """A `BatchIterator` over one pass of `batches` (no position to save)."""

  def __init__(self, passes: Iterator[Batch]):
    self._batches = passes

  def __next__(self) -> Batch:
    return next(self._batches)


def create_eval_iterator(
  data_config,
  *,
  global_batch_size: int,
  image_size: int,
  process_index: int | None = None,
  process_count: int | None = None,
) -> BatchIterator:
  """`batches` of the eval split with the train keys: 'image', 'label'
  int32, 'crop_box', 'flip' (False), 'file_name' (the TFDS id where the
  dataset has no `data.file_name_key`), 'index' and 'mask' bool `[b]`."""
  preprocess.check_config(data_config)
  found = tfds_source.builder_for_config(data_config, data_config.eval_split)
  label_key, name_key = data_config.label_key, data_config.file_name_key
  if name_key not in found.info.features:
    name_key = 'tfds_id'
  extras = {
    'label': lambda ex: tf.cast(ex[label_key], tf.int32),
    'file_name': lambda ex: ex[name_key],
    'flip': lambda ex: tf.constant(False),
  }
  return _Pass(
    batches(
      data_config.dataset,
      data_config.eval_split,
      data_dir=data_config.data_dir,
      image_size=image_size,
      batch_size=global_batch_size,
      crop_pct=data_config.crop_pct,
      image_key=data_config.image_key,
      extras=extras,
      manual_dir=data_config.manual_dir,
      process_index=process_index,
      process_count=process_count,
      on_corrupt=data_config.on_corrupt,
      name_key=name_key,
    )
  )


def multi_hot(num_classes: int) -> Callable[[tf.Tensor], tf.Tensor]:
  """fn(label sequence [n]) -> bool `[K]` (all False for an empty set)."""

  def fn(labels: tf.Tensor) -> tf.Tensor:
    hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.int32)
    return tf.reduce_sum(hot, axis=0) > 0

  return fn
