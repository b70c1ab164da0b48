"""Host batches to global `jax.Array`s on a mesh, a few steps ahead.

No TensorFlow: any iterator of host-local numpy dicts works (the tf.data
pipeline, synthetic data, a plain generator).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


class _MeshPrefetcher:
  """Keeps `size` global batches in flight; remembers each one's position."""

  def __init__(self, iterator, mesh, axis: str, size: int):
    self._source = iterator
    self._iterator = iter(iterator)
    self._sharding = NamedSharding(mesh, P(axis))
    self._size = size
    self._queue: collections.deque = collections.deque()
    # Plain iterators (no get_state) are fine; their state is empty.
    self._get_state = getattr(iterator, 'get_state', dict)
    self._state: dict[str, Any] = self._get_state()

  def _put(self) -> None:
    try:
      batch = next(self._iterator)
    except StopIteration:
      return
    arrays = {
      k: jax.make_array_from_process_local_data(self._sharding, v)
      for k, v in batch.items()
      if np.asarray(v).dtype.kind in 'biuf'
    }
    self._queue.append((arrays, self._get_state()))

  def __iter__(self) -> Iterator[dict[str, jax.Array]]:
    return self

  def __next__(self) -> dict[str, jax.Array]:
    while len(self._queue) <= self._size:
      before = len(self._queue)
      self._put()
      if len(self._queue) == before:
        break
    if not self._queue:
      raise StopIteration
    arrays, self._state = self._queue.popleft()
    return arrays

  def get_state(self) -> dict[str, Any]:
    """Position after the last batch returned (not the prefetched ones)."""
    return dict(self._state)

  def set_state(self, state: dict[str, Any]) -> None:
    self._queue.clear()
    self._source.set_state(state)
    self._state = dict(state)


def prefetch_to_mesh(
  iterator: Iterator[dict[str, np.ndarray]],
  mesh,
  *,
  axis: str = 'data',
  size: int = 2,
) -> _MeshPrefetcher:
  """Global `jax.Array` batches sharded over `axis`, `size` batches ahead.

  Host-local numpy batches become global arrays with
  `jax.make_array_from_process_local_data(NamedSharding(mesh, P(axis)))`;
  non-numeric keys (file_name) are dropped. The copies are asynchronous, so
  while the caller uses batch k, batches k+1 .. k+size are in flight.
  `get_state()` gives the position after the last batch handed out.
  """
  if size < 1:
    raise ValueError(f'size must be >= 1, got {size}')
  if axis not in mesh.axis_names:
    raise ValueError(f'axis {axis!r} not in mesh axes {mesh.axis_names}')
  return _MeshPrefetcher(iterator, mesh, axis, size)
