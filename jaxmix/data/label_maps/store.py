"""Label-map store: a dataset's top-k ReLabel maps in a few large files.

A store is a directory written once per dataset (by
`jaxmix.data.label_maps.convert` or an annotator) and read by every host:

  scores.npy     float16 `[N, S, S, k]`  top-k annotator logits, channels last
  indices.npy    uint16  `[N, S, S, k]`  their class ids
  names.npy      bytes   `[N]`           the TFDS `file_name`s, sorted
  rows.npy       int64   `[N]`           the array row of each sorted name
  metadata.json  S, k, num_classes, source, annotator, num_rows

That is `S * S * k * 4` bytes per image (4,500 B at S = 15, k = 5; 5.8 GB
for ImageNet's 1,281,167 training images). While a store is written, rows
are appended in chunks and `progress.json` records the committed rows, so
an interrupted writer resumes; `metadata.json` appears only at the end.

Examples are joined with their maps on the host, by
`LabelMapStore.lookup(file_names)` on each numpy batch of the train iterator
(`jaxmix.data.label_maps.join`): the arrays are memory-mapped, so a host
holds only the name index (~40 MB for ImageNet) and the page cache serves
the rows it reads. The device gets float16 scores and uint16 indices beside the
image and crop box, and `jaxmix.pool_label_map` pools them in the train step.
A file name without a map raises `MissingLabelMapError` naming it, unless the
store was opened with `missing='one_hot'`: then its row is zeros, `found` is
False (the trainer uses the one-hot label there) and the store counts it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from absl import logging

SCORES, INDICES = 'scores.npy', 'indices.npy'
NAMES, ROWS = 'names.npy', 'rows.npy'
METADATA, PROGRESS = 'metadata.json', 'progress.json'
_POLICIES = ('error', 'one_hot')
FileNames = Sequence[str | bytes] | np.ndarray  # [b] str, bytes or object


class MissingLabelMapError(ValueError):
  """A training example has no label map in the store."""


def encode_name(name: str | bytes) -> bytes:
  """A file name (str or bytes) as the store's key: non-empty UTF-8 bytes."""
  raw = name if isinstance(name, bytes) else str(name).encode('utf-8')
  if not raw or b'\n' in raw or b'\0' in raw:
    raise ValueError(
      f'label-map file names must be non-empty, one line and '
      f'without NUL bytes; got {raw!r}.'
    )
  return raw


class LabelMapStore:
  """A finished store, memory-mapped; open with `LabelMapStore.open`.

  Attributes:
    path: the store directory.
    scores: float16 `[N, S, S, k]`, memory-mapped.
    indices: uint16 `[N, S, S, k]`, memory-mapped.
    metadata: dict with 'size', 'k', 'num_classes', 'source', 'annotator'.
    missing: 'error' or 'one_hot', what `lookup` does for unknown names.
    num_looked_up: names looked up so far.
    num_missing: those without a map (only grows under 'one_hot').
  """

  def __init__(
    self,
    path: str,
    scores: np.ndarray,
    indices: np.ndarray,
    names: np.ndarray,
    rows: np.ndarray,
    metadata: dict,
    missing: str,
  ):
    if missing not in _POLICIES:
      raise ValueError(f'missing must be one of {_POLICIES}, got {missing!r}.')
    self.path, self.scores, self.indices = path, scores, indices
    self._names, self._rows = names, rows
    self.metadata, self.missing = metadata, missing
    self.num_looked_up = self.num_missing = 0

  @classmethod
  def open(cls, path: str, *, missing: str = 'error') -> LabelMapStore:
    """Opens the store at `path` (arrays memory-mapped, names in memory)."""
    meta_path = os.path.join(path, METADATA)
    if not os.path.exists(meta_path):
      state = (
        'unfinished' if os.path.exists(os.path.join(path, PROGRESS)) else 'no'
      )
      raise ValueError(
        f'{path} is {state} label-map store (no {METADATA}); '
        'write it with python -m jaxmix.apps.convert_label_maps.'
      )
    with open(meta_path) as f:
      metadata = json.load(f)
    load = lambda name: np.load(os.path.join(path, name), mmap_mode='r')  # noqa: E731
    scores, indices = load(SCORES), load(INDICES)
    names = np.load(os.path.join(path, NAMES))
    rows = np.load(os.path.join(path, ROWS))
    want = (
      metadata['num_rows'],
      metadata['size'],
      metadata['size'],
      metadata['k'],
    )
    if (
      scores.shape != want
      or indices.shape != want
      or scores.dtype != np.float16
      or indices.dtype != np.uint16
      or names.shape != want[:1]
      or rows.shape != want[:1]
    ):
      raise ValueError(
        f'label-map store {path} is damaged: metadata says {want}, found '
        f'scores {scores.dtype}{scores.shape}, indices {indices.dtype}'
        f'{indices.shape}, {names.shape[0]} names, {rows.shape[0]} rows.'
      )
    return cls(path, scores, indices, names, rows, metadata, missing)

  @property
  def num_classes(self) -> int:
    return self.metadata['num_classes']

  def __len__(self) -> int:
    return self.metadata['num_rows']

  def rows_of(self, file_names: FileNames) -> tuple[np.ndarray, np.ndarray]:
    """Rows int64 `[b]` (-1 where absent) and `found` bool `[b]` of names."""
    # No validation here: a name that cannot be stored is simply absent.
    query = np.asarray(
      [
        n if isinstance(n, bytes) else str(n).encode()
        for n in np.ravel(file_names)
      ],
      bytes,
    )
    if not len(self) or not query.size:
      return np.full(query.shape, -1, np.int64), np.zeros(query.shape, bool)
    # Longer names than any stored one cannot match; cast the rest.
    fits = (np.char.str_len(query) <= self._names.dtype.itemsize) & (
      np.char.str_len(query) > 0
    )
    query = query.astype(self._names.dtype)
    position = np.minimum(np.searchsorted(self._names, query), len(self) - 1)
    found = fits & (self._names[position] == query)
    rows = np.where(found, self._rows[position], -1)
    return rows.astype(np.int64), found.astype(bool)

  def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores float16 and indices uint16 `[b, S, S, k]`; zeros for row -1."""
    rows = np.asarray(rows, np.int64).reshape(-1)
    cell = (len(rows), *self.scores.shape[1:])
    scores, indices = np.zeros(cell, np.float16), np.zeros(cell, np.uint16)
    found = rows >= 0
    scores[found], indices[found] = (
      self.scores[rows[found]],
      self.indices[rows[found]],
    )
    return scores, indices

  def check_found(self, file_names: FileNames, found: np.ndarray) -> None:
    """Counts lookups; raises or logs for names without maps (see class)."""
    found = np.asarray(found, bool)
    self.num_looked_up += found.size
    if found.all():
      return
    missing = [
      n.decode() if isinstance(n, bytes) else str(n)
      for n in np.ravel(file_names)[~found]
    ]
    if self.missing == 'error':
      raise MissingLabelMapError(
        f'no label map for file_name {missing[0]!r}'
        + (
          f' (and {len(missing) - 1} more: {missing[1:4]})'
          if len(missing) > 1
          else ''
        )
        + f' in label-map store {self.path} ({len(self)} maps, source: '
        f'{self.metadata.get("source") or "unknown"}). Every training image '
        "needs a map, or open the store with missing='one_hot' to train such "
        'images on their one-hot labels.'
      )
    before = self.num_missing
    self.num_missing += len(missing)
    if before == 0 or self.num_missing.bit_length() > before.bit_length():
      logging.warning(
        'label maps missing for %d of %d examples looked up so far (e.g. %s);'
        ' they train on one-hot labels.',
        self.num_missing,
        self.num_looked_up,
        missing[0],
      )

  def lookup(
    self, file_names: FileNames
  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maps of a batch of file names (bytes or str) `[b]`.

    Returns:
      scores float16 `[b, S, S, k]`, indices uint16 `[b, S, S, k]` and
      `found` bool `[b]`. Missing names raise `MissingLabelMapError`, or
      under `missing='one_hot'` get zero rows and `found` False.
    """
    rows, found = self.rows_of(file_names)
    self.check_found(file_names, found)
    return (*self.gather(rows), found)
