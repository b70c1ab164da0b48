"""The data interface of the trainer: a `DataSource` and its iterators.

The trainer reads data only through a `DataSource`, chosen by
`config.data.dataset` with `for_dataset`: 'synthetic' is the TF-free
`jaxmix.datasets.synthetic`, every other name a TFDS dataset read by the
tf.data pipeline (`jaxmix.data.input_pipeline`, which imports TensorFlow
only when chosen). Both are modules that implement the protocol.

Iterators yield host-local numpy batches (this process's rows of each global
batch) and expose their position as a small JSON-able dict, which
checkpoints save and a resumed run restores.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

import jax
import numpy as np

Batch = dict[str, np.ndarray]


def process_args(process_index, process_count) -> tuple[int, int]:
  """(index, count) of this process; None means JAX's own."""
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  if not 0 <= index < count:
    raise ValueError(
      f'process_index={index} must be in [0, process_count={count}).'
    )
  return index, count


def local_batch_size(global_batch_size: int, process_count: int) -> int:
  """Rows per process of a global batch; a ValueError unless it divides."""
  if global_batch_size < 1 or global_batch_size % process_count:
    raise ValueError(
      f'global_batch_size={global_batch_size} must be a positive multiple '
      f'of process_count={process_count}.'
    )
  return global_batch_size // process_count


def pad_batch(batch: Batch, size: int) -> Batch:
  """`batch` padded to `size` rows (zeros, b'' for strings), plus 'mask'.

  Returns:
    every field with `size` rows; 'mask' bool `[size]`, False on padding.
  """
  n = len(next(iter(batch.values())))

  def padded(v: np.ndarray) -> np.ndarray:
    shape = (size - n, *v.shape[1:])
    if v.dtype == object:  # tf.string
      return np.concatenate([v, np.full(shape, b'', object)])
    return np.concatenate([v, np.zeros(shape, v.dtype)])

  out = {k: padded(v) for k, v in batch.items()}
  out['mask'] = np.arange(size) < n
  return out


class BatchIterator:
  """Host-local numpy batches; `get_state`/`set_state` save the position."""

  def __iter__(self) -> BatchIterator:
    return self

  def __next__(self) -> Batch:
    raise NotImplementedError

  def get_state(self) -> dict[str, int]:
    """The position after the last batch returned (empty if stateless)."""
    return {}

  def set_state(self, state: Mapping[str, int]) -> None:
    """Moves to a position `get_state` returned."""
    if state:
      raise ValueError(f'this iterator has no state; got {dict(state)}')


class DataSource(Protocol):
  """What the trainer needs of a dataset (see the module docstring)."""

  def steps_per_epoch(self, data_config: Any, global_batch_size: int) -> int:
    """Train steps per epoch (partial batches are dropped)."""
    ...

  def create_train_iterator(
    self,
    data_config: Any,
    *,
    global_batch_size: int,
    image_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
  ) -> BatchIterator:
    """Infinite shuffled, augmented train batches of this process.

    Batches hold 'image' uint8 `[b, S, S, 3]`, 'label' int32 `[b]`,
    'crop_box' float32 `[b, 4]`, 'flip' bool `[b]` and 'file_name' bytes
    `[b]`, b = global_batch_size // process_count, S = image_size.
    """
    ...

  def create_eval_iterator(
    self,
    data_config: Any,
    *,
    global_batch_size: int,
    image_size: int,
    process_index: int | None = None,
    process_count: int | None = None,
  ) -> BatchIterator:
    """One ordered pass over the eval split, padded, with 'mask' `[b]`."""
    ...


def for_dataset(name: str) -> DataSource:
  """The data source of `config.data.dataset == name`."""
  if name == 'synthetic':
    module = 'jaxmix.datasets.synthetic'
  else:
    module = 'jaxmix.data.input_pipeline'  # imports TensorFlow
  return importlib.import_module(module)
