"""Writing a label-map store (its layout: `label_maps.manifest`).

`LabelMapWriter` appends rows in chunks to `scores.npy` and `indices.npy`,
whose fixed-size .npy headers are rewritten in place when the store is
finished, so nothing is ever copied. Each commit records the committed row
count in `progress.json`; a writer opened with `resume=True` cuts the files
back to that count and goes on, so a conversion killed half-way loses at
most one chunk. `finalize` sorts the names into the index and writes
`metadata.json`, the mark of a finished store, with each array file's
size, shape, dtype and SHA-256 (one read of the files: about 10 s per GB).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence

import numpy as np
from numpy.lib import format as npy_format

from jaxmix.data.label_maps.manifest import (
  INDICES,
  METADATA,
  NAMES,
  PROGRESS,
  ROWS,
  SCORES,
  encode_name,
  file_record,
)
from jaxmix.data.label_maps.store import LabelMapStore

_PENDING_NAMES = 'names.txt'  # Committed names in row order, one a line.
_HEADER_BYTES = 128  # Room for any [N, S, S, k] shape in a v1.0 header.
_DTYPES = {SCORES: np.dtype(np.float16), INDICES: np.dtype(np.uint16)}


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
  """A v1.0 `.npy` header by `numpy.lib.format`, `_HEADER_BYTES` long.

  NumPy pads the header so the first axis can grow to 21 digits without
  changing its length, so it is rewritten in place as rows are added.
  """
  out = io.BytesIO()
  npy_format.write_array_header_1_0(
    out,
    {
      'descr': npy_format.dtype_to_descr(dtype),
      'fortran_order': False,
      'shape': shape,
    },
  )
  header = out.getvalue()
  if len(header) != _HEADER_BYTES:
    raise ValueError(
      f'The .npy header of shape {shape} is {len(header)} bytes, not '
      f'{_HEADER_BYTES}.'
    )
  return header


class LabelMapWriter:
  """Appends top-k label maps to a new (or unfinished) store.

  Args:
    path: the store directory; created if needed.
    size: S, the map's side in cells.
    k: maps keep the top k classes per cell.
    num_classes: K; every index must be below it (and K <= 65,536).
    source: free text saying where the maps come from.
    annotator: free text naming the model that made them.
    resume: continue an unfinished store written with the same settings;
      without it, an unfinished store at `path` is an error.
    chunk: rows buffered in memory before they are committed to disk.
  """

  def __init__(
    self,
    path: str,
    *,
    size: int,
    k: int,
    num_classes: int,
    source: str = '',
    annotator: str = '',
    resume: bool = False,
    chunk: int = 4096,
  ):
    if not 0 < num_classes <= 65536:
      raise ValueError(
        f'num_classes must be in [1, 65536] for uint16 indices, got '
        f'{num_classes}.'
      )
    if min(size, k) < 1:
      raise ValueError(f'size and k must be positive, got {size} and {k}.')
    self.path, self.chunk = path, chunk
    self.settings = dict(
      size=size,
      k=k,
      num_classes=num_classes,
      source=source,
      annotator=annotator,
    )
    self.shape = (size, size, k)
    if os.path.exists(os.path.join(path, METADATA)):
      raise ValueError(f'label-map store {path} is already complete.')
    os.makedirs(path, exist_ok=True)
    self.num_rows, names = 0, []
    if os.path.exists(os.path.join(path, PROGRESS)):
      with open(os.path.join(path, PROGRESS)) as f:
        state = json.load(f)
      if not resume:
        raise ValueError(
          f'{path} holds an unfinished label-map store with '
          f'{state["num_rows"]} rows; resume it or remove the directory.'
        )
      if state['settings'] != self.settings:
        raise ValueError(
          f'cannot resume {path}: it was written with {state["settings"]}, '
          f'asked for {self.settings}.'
        )
      self.num_rows = state['num_rows']
      with open(os.path.join(path, _PENDING_NAMES), 'rb') as f:
        names = f.read().split(b'\n')[: self.num_rows]
    self._names_done = set(names)
    # Start the files afresh, or cut them back to the committed rows.
    mode = 'r+b' if self.num_rows else 'wb'
    for name, dtype in _DTYPES.items():
      with open(os.path.join(path, name), mode) as f:
        f.truncate(_HEADER_BYTES + self.num_rows * self._row_bytes(dtype))
        f.write(_npy_header(dtype, (self.num_rows, *self.shape)))
    with open(os.path.join(path, _PENDING_NAMES), mode) as f:
      f.truncate(sum(len(n) + 1 for n in names))
    self._buffer: list[tuple[list[bytes], np.ndarray, np.ndarray]] = []
    self._buffered = 0
    self._save_progress()

  def _row_bytes(self, dtype: np.dtype) -> int:
    return int(np.prod(self.shape)) * dtype.itemsize

  def __contains__(self, name) -> bool:
    """Whether a map for file name `name` was already added."""
    return encode_name(name) in self._names_done

  def add(self, names: Sequence, scores, indices) -> None:
    """Adds maps: `scores` float `[n, S, S, k]`, `indices` `[n, S, S, k]`.

    Scores are stored as float16 and must be finite there; indices must be
    whole numbers in [0, num_classes). Names must be new to the store.
    """
    names = [encode_name(n) for n in names]
    scores, indices = np.asarray(scores), np.asarray(indices)
    want = (len(names), *self.shape)
    if scores.shape != want or indices.shape != want:
      raise ValueError(
        f'scores and indices must be [n, S, S, k] = {want}; got '
        f'{scores.shape} and {indices.shape}.'
      )
    with np.errstate(over='ignore'):  # Overflow to inf is reported below.
      half = scores.astype(np.float16)
    num_classes = self.settings['num_classes']
    ok = np.isfinite(half) & (indices == np.round(indices))
    ok &= (indices >= 0) & (indices < num_classes)
    bad = ~ok.reshape(len(names), -1).all(axis=1)
    if bad.any():
      raise ValueError(
        f'label maps of {[n.decode() for n, b in zip(names, bad) if b]} have '
        'scores that are not finite in float16 or indices that are not '
        f'class ids in [0, {num_classes}).'
      )
    for name in names:
      if name in self._names_done:
        raise ValueError(
          f'a label map for {name.decode()!r} was already added to {self.path}.'
        )
      self._names_done.add(name)
    self._buffer.append((names, half, indices.astype(np.uint16)))
    self._buffered += len(names)
    if self._buffered >= self.chunk:
      self.commit()

  def commit(self) -> None:
    """Writes the buffered rows and records them as committed."""
    if not self._buffer:
      return
    parts = {
      SCORES: [s for _, s, _ in self._buffer],
      INDICES: [i for _, _, i in self._buffer],
      _PENDING_NAMES: [
        b''.join(n + b'\n' for n in ns) for ns, _, _ in self._buffer
      ],
    }
    for name, chunks in parts.items():
      with open(os.path.join(self.path, name), 'ab') as f:
        for chunk in chunks:
          f.write(chunk if isinstance(chunk, bytes) else chunk.tobytes())
        f.flush()
        os.fsync(f.fileno())
    self.num_rows += self._buffered
    self._buffer, self._buffered = [], 0
    self._save_progress()

  def _save_progress(self) -> None:
    tmp = os.path.join(self.path, PROGRESS + '.tmp')
    with open(tmp, 'w') as f:
      json.dump({'num_rows': self.num_rows, 'settings': self.settings}, f)
    os.replace(tmp, os.path.join(self.path, PROGRESS))

  def finalize(self) -> LabelMapStore:
    """Commits, writes the sorted name index and metadata; opens the store."""
    self.commit()
    for name, dtype in _DTYPES.items():
      with open(os.path.join(self.path, name), 'r+b') as f:
        f.write(_npy_header(dtype, (self.num_rows, *self.shape)))
    pending = os.path.join(self.path, _PENDING_NAMES)
    with open(pending, 'rb') as f:
      names = np.array(f.read().split(b'\n')[: self.num_rows], dtype=bytes)
    order = np.argsort(names, kind='stable')
    np.save(os.path.join(self.path, NAMES), names[order])
    np.save(os.path.join(self.path, ROWS), order.astype(np.int64))
    files = {
      name: file_record(os.path.join(self.path, name))
      for name in (SCORES, INDICES, NAMES, ROWS)
    }
    metadata = {
      'format': 2,
      'num_rows': self.num_rows,
      **self.settings,
      'files': files,
    }
    with open(os.path.join(self.path, METADATA), 'w') as f:
      json.dump(metadata, f, indent=2)
    os.remove(pending)
    os.remove(os.path.join(self.path, PROGRESS))
    return LabelMapStore.open(self.path)
