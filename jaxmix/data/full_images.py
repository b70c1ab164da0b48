"""One ordered pass over a split: whole images squashed to a square.

A machine annotator (`python -m jaxmix.apps.annotate`) looks at every training
image whole, as ReLabel's did: the image is resized to `R x R` without
keeping its aspect ratio (torchvision's `Resize((R, R))`), so normalised
image coordinates map linearly onto the label map's grid. Crop boxes of the
train pipeline are normalised in the same original image, which is what
makes a stored map poolable over any crop.

`create_full_image_iterator` yields host-local numpy batches

  'image'      uint8  `[b, R, R, 3]`  (bilinear, antialiased)
  'label'      int32  `[b]`
  'file_name'  object `[b]` bytes (the TFDS `file_name`, else the TFDS id)
  'mask'       bool   `[b]`           False on the padding of the last batch

in the split's stored order, every example once; this process reads its
slice of the split (`tfds.split_for_jax_process`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from jaxmix.data import crops, source, tfds_source

Batch = dict[str, np.ndarray]


def _squash(image_size: int):
  def fn(example):
    image = crops.decode_full(example['image_bytes'])
    image = crops.resize(image, image_size)
    return {
      'image': tf.cast(tf.round(image), tf.uint8),
      'label': example['label'],
      'file_name': example['file_name'],
    }

  return fn


class FullImageIterator:
  """Padded batches of whole images of one split slice (see module).

  Attributes:
    size: examples in this process's slice.
    num_batches: batches this iterator yields.
  """

  def __init__(
    self,
    data_config,
    split: str,
    *,
    batch_size: int,
    image_size: int,
    process_index: int | None = None,
    process_count: int | None = None,
  ):
    if batch_size < 1 or image_size < 1:
      raise ValueError(
        f'batch_size and image_size must be positive, got {batch_size} and '
        f'{image_size}.'
      )
    tfds_source.hide_accelerators()
    index, count = source.process_args(process_index, process_count)
    self._source = tfds_source.Source(
      data_config, split, index, count, drop_remainder=False
    )
    self.size = self._source.size
    self.num_batches = -(-self.size // batch_size)
    self._batch_size = batch_size
    ds = self._source.read(shuffle_seed=None)
    ds = ds.map(
      _squash(image_size),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True,
    )
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    self._dataset = ds.with_options(tfds_source.dataset_options())

  def __iter__(self) -> Iterator[Batch]:
    for batch in self._dataset.as_numpy_iterator():
      yield source.pad_batch(batch, self._batch_size)


def create_full_image_iterator(
  data_config,
  split: str,
  *,
  batch_size: int,
  image_size: int,
  process_index: int | None = None,
  process_count: int | None = None,
) -> FullImageIterator:
  """One ordered pass over `split`, whole images at `image_size` squared.

  Args:
    data_config: the data config (dataset, data_dir, image/label/file-name
      keys, num_classes).
    split: TFDS split name; slices like 'train[:1%]' work.
    batch_size: examples per batch of this process (the last is padded).
    image_size: R, the side of the squashed images.
    process_index: this process (default `jax.process_index()`).
    process_count: processes (default `jax.process_count()`).
  """
  return FullImageIterator(
    data_config,
    split,
    batch_size=batch_size,
    image_size=image_size,
    process_index=process_index,
    process_count=process_count,
  )
