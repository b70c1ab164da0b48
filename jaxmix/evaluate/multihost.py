"""Multi-host helpers of the evaluation suites (`jax.distributed`).

Every process feeds its own host batches (`to_device` builds global arrays
over the run's 'data' axis), takes back its own rows of the outputs
(`local_rows`) or the global values (`fetch`), and `gather_batches`
collects the rows of all processes on every process, in the order of the
global batches (and of the split where batches carry an 'index'), so that
every process computes the same metrics. Only the primary process
(`is_primary`) writes files. With one process all of them are plain
conversions to numpy.
"""

from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.evaluate.runs import Run


def is_primary() -> bool:
  """Whether this process writes the files (process 0)."""
  return jax.process_index() == 0


def _data_sharding(run: Run) -> NamedSharding:
  return NamedSharding(run.mesh, PartitionSpec('data'))


def to_device(run: Run, array: np.ndarray) -> jax.Array:
  """This process's host rows -> a global array over the 'data' axis.

  Args:
    run: the run (its mesh).
    array: `[b, ...]`, this process's rows of the global batch.

  Returns:
    `[b * process_count, ...]` sharded over the run's 'data' axis.
  """
  return jax.make_array_from_process_local_data(
    _data_sharding(run), np.asarray(array)
  )


def local_rows(run: Run, array: jax.Array) -> np.ndarray:
  """The rows of a global `[B, ...]` array that this process fed.

  The inverse of `to_device`: the rows of this process's devices on the
  'data' axis, in order.
  """
  if array.is_fully_addressable:
    return np.asarray(array)
  sharding = _data_sharding(run)
  if not array.sharding.is_equivalent_to(sharding, array.ndim):
    array = jax.jit(_identity, out_shardings=sharding)(array)
  shards = {}
  for shard in array.addressable_shards:
    shards.setdefault(shard.index[0].start or 0, shard.data)
  return np.concatenate([np.asarray(shards[k]) for k in sorted(shards)])


def _identity(x):
  return x


def fetch(tree):
  """Device outputs -> numpy of their global values, on every process."""

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(x)

  return jax.tree.map(one, tree)


def _padded(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
  """Zero-pads every axis of `x` up to `shape`."""
  if tuple(x.shape) == tuple(shape):
    return x
  return np.pad(x, [(0, t - n) for n, t in zip(x.shape, shape)])


def gather(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Host arrays `[n, ...]` of every process, concatenated in process order.

  Axes after the first are zero-padded to the longest over the processes
  (e.g. a batch's box lists). With one process the arrays come back as
  they are.
  """
  arrays = {k: np.asarray(v) for k, v in arrays.items()}
  if jax.process_count() == 1:
    return arrays
  for key, value in arrays.items():
    if value.dtype.kind not in 'biuf' or value.ndim == 0:
      raise TypeError(
        f'Cannot gather {key!r}: numeric arrays [n, ...] only, got '
        f'{value.dtype} of shape {value.shape}.'
      )
  shapes = np.concatenate([np.asarray(v.shape[1:]) for v in arrays.values()])
  shapes = multihost_utils.process_allgather(shapes.astype(np.int32)).max(0)
  out, offset = {}, 0
  for key, value in arrays.items():
    rest = shapes[offset : offset + value.ndim - 1]
    offset += value.ndim - 1
    value = _padded(value, (value.shape[0], *rest))
    out[key] = multihost_utils.process_allgather(value, tiled=True)
  return out


def gather_batches(parts: Sequence[dict]) -> dict[str, np.ndarray]:
  """Per-batch host rows of every process -> the real rows, in order.

  Args:
    parts: one dict per batch of this process's rows `[b, ...]`, with a
      bool 'mask' `[b]` and optionally an int 'index' `[b]` (the position
      in the split). Every process passes as many batches with the same
      keys.

  Returns:
    The rows with a True mask of all processes: in the order of the global
    batches (batch by batch, process by process within one), or sorted by
    'index' when the batches have one. 'mask' is dropped.
  """
  if not parts:
    raise ValueError('The evaluated split is empty (no batch).')
  keys = list(parts[0])
  stacked = {}
  for key in keys:
    values = [np.asarray(p[key]) for p in parts]
    shape = np.max([v.shape for v in values], axis=0)
    stacked[key] = np.stack([_padded(v, shape) for v in values])
  num, rows = stacked['mask'].shape
  found = gather(
    {k: v.reshape(num * rows, *v.shape[2:]) for k, v in stacked.items()}
  )
  count = jax.process_count()
  # [process, batch, row] -> [batch, process, row]: the global batches.
  found = {
    k: v.reshape(count, num, rows, *v.shape[1:])
    .swapaxes(0, 1)
    .reshape(count * num * rows, *v.shape[1:])
    for k, v in found.items()
  }
  mask = found.pop('mask').astype(bool)
  found = {k: v[mask] for k, v in found.items()}
  if 'index' in found:
    order = np.argsort(found['index'], kind='stable')
    found = {k: v[order] for k, v in found.items()}
  return found


def device_batch(run: Run, batch: dict, *, index: bool = False) -> tuple:
  """(pixels float32, labels, mask[, index]) of a host batch, as global
  arrays over the run's 'data' axis."""
  keys = [('image', np.float32), ('label', np.int32), ('mask', bool)]
  keys += [('index', np.int32)] if index else []
  return tuple(to_device(run, np.asarray(batch[k], t)) for k, t in keys)
