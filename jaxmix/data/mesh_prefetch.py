"""Host batches to global `jax.Array`s on a mesh, in a background thread.

No TensorFlow: any iterator of host-local numpy dicts works (the tf.data
pipeline, synthetic data, a plain generator, the ReLabel label-map join).

A worker thread pulls host batches (so whatever the host iterator does --
tf.data's numpy conversion, the label-map lookup of `jaxmix.data.label_maps.join`
-- runs off the training thread), starts their asynchronous copies to the
devices and keeps up to `size` of them in a bounded queue. The training
thread only takes finished arrays off the queue.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

_END = object()  # the host iterator is exhausted
_WORKERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_workers() -> None:
  # A thread still inside TensorFlow or JAX while the interpreter shuts
  # down can crash it; let each finish its batch first.
  for worker in list(_WORKERS):
    worker.stop.set()
  for worker in list(_WORKERS):
    worker.thread.join(timeout=10)


class _Worker:
  """Fills `out` with (arrays, state) until told to stop.

  It holds no reference to the prefetcher, so that an abandoned prefetcher
  can be collected (and stop its worker).
  """

  def __init__(self, iterator, get_state, sharding, out: queue.Queue):
    self._iterator, self._get_state = iterator, get_state
    self._sharding, self._out = sharding, out
    self.stop = threading.Event()
    self.thread = threading.Thread(
      target=self._run, name='prefetch_to_mesh', daemon=True
    )
    _WORKERS.add(self)
    self.thread.start()

  def _put(self, item) -> bool:
    while not self.stop.is_set():
      try:
        self._out.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def _run(self) -> None:
    while not self.stop.is_set():
      try:
        batch = next(self._iterator)
        arrays = {
          k: jax.make_array_from_process_local_data(self._sharding, v)
          for k, v in batch.items()
          if np.asarray(v).dtype.kind in 'biuf'
        }
        item = (arrays, self._get_state())
      except StopIteration:
        self._put((_END, None))
        return
      except BaseException as error:  # re-raised by the consuming thread
        self._put((error, None))
        return
      if not self._put(item):
        return


class _MeshPrefetcher:
  """Keeps `size` global batches in flight; remembers each one's position."""

  def __init__(self, iterator, mesh, axis: str, size: int):
    self._source = iterator
    self._sharding = NamedSharding(mesh, P(axis))
    self._size = size
    # Plain iterators (no get_state) are fine; their state is empty.
    self._get_state = getattr(iterator, 'get_state', dict)
    self._state: dict[str, Any] = self._get_state()
    self._worker: _Worker | None = None
    self._done = False

  def _start(self) -> None:
    self._queue: queue.Queue = queue.Queue(maxsize=self._size)
    self._worker = _Worker(
      iter(self._source), self._get_state, self._sharding, self._queue
    )

  def __iter__(self) -> Iterator[dict[str, jax.Array]]:
    return self

  def __next__(self) -> dict[str, jax.Array]:
    if self._done:
      raise StopIteration
    if self._worker is None:
      self._start()
    arrays, state = self._queue.get()
    if arrays is _END:
      self._done = True
      raise StopIteration
    if isinstance(arrays, BaseException):
      self._done = True
      raise arrays
    self._state = state
    return arrays

  def close(self) -> None:
    """Stops the worker thread (it finishes the batch it is reading).

    The host iterator is moved back to the last batch handed out (when it
    has `set_state`), so a later `next` goes on from there.
    """
    if self._stop_worker() and hasattr(self._source, 'set_state'):
      self._source.set_state(self._state)

  def _stop_worker(self) -> bool:
    """Stops and joins the worker; whether there was one."""
    if self._worker is None:
      return False
    self._worker.stop.set()
    self._worker.thread.join()
    self._worker = None
    return True

  def __del__(self) -> None:
    worker = getattr(self, '_worker', None)
    if worker is not None:
      worker.stop.set()

  def get_state(self) -> dict[str, Any]:
    """Position after the last batch returned (not the prefetched ones)."""
    return dict(self._state)

  def set_state(self, state: dict[str, Any]) -> None:
    self._stop_worker()
    self._source.set_state(state)
    self._state = dict(state)
    self._done = False


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
  non-numeric keys (file_name) are dropped. A background thread reads the
  host iterator and starts the (asynchronous) copies, so while the caller
  uses batch k, batches k+1 .. k+size are read and in flight. Errors of the
  host iterator are raised by the `next` call that would have returned
  that batch. `get_state()` gives the position after the last batch handed
  out; `set_state` stops the thread, moves the host iterator and starts
  again from there; `close()` stops the thread.
  """
  if size < 1:
    raise ValueError(f'size must be >= 1, got {size}')
  if axis not in mesh.axis_names:
    raise ValueError(f'axis {axis!r} not in mesh axes {mesh.axis_names}')
  return _MeshPrefetcher(iterator, mesh, axis, size)
