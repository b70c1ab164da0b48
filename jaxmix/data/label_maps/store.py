"""Label-map store: a dataset's top-k ReLabel maps, read by file name.

The files and their checks are described in
`jaxmix.data.label_maps.manifest` (scores and class ids `[N, S, S, k]`, the
sorted names and their rows, `metadata.json` with each file's bytes, shape,
dtype and SHA-256); the digests and the value checks are in
`jaxmix.data.label_maps.integrity`. This module reads a store.

Examples are joined with their maps on the host, by
`LabelMapStore.lookup(file_names)` on each numpy batch of the train iterator
(`jaxmix.data.label_maps.join`): the arrays are memory-mapped, so a host
holds only the name index (~40 MB for ImageNet) and the page cache serves
the rows it reads. The device gets float16 scores and uint16 indices beside the
image and crop box, and `jaxmix.pool_label_map` pools them in the train step.
A file name without a map raises `MissingLabelMapError` naming it, unless the
store was opened with `missing='one_hot'`: then its row is zeros, `found` is
False (the trainer uses the one-hot label there) and the store counts it.

A store proves it is whole. Opening it checks, cheaply, every array file's
size, shape and dtype against the metadata and that `rows.npy` is a
permutation of the rows and `names.npy` sorted; `verify(path)` (or
`open(..., verify=True)`, or `python -m jaxmix.apps.verify_label_maps`)
also recomputes the SHA-256 digests recorded at write time and scans every
value. Every batch looked up is checked (scores finite, class ids in
`[0, num_classes)`). Each failure is a `LabelMapStoreError` naming the
store, the file and, for a value, the row and image.

The layout's names (`SCORES`, `METADATA`, ...), the errors, `encode_name`,
`file_record` and `check_values` are importable from here too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import logging

from jaxmix.data.label_maps import integrity, manifest
from jaxmix.data.label_maps.integrity import check_values  # noqa: F401
from jaxmix.data.label_maps.manifest import (  # noqa: F401
  INDICES,
  METADATA,
  NAMES,
  PROGRESS,
  ROWS,
  SCORES,
  LabelMapStoreError,
  MissingLabelMapError,
  encode_name,
  file_record,
)

_POLICIES = ('error', 'one_hot')
FileNames = Sequence[str | bytes] | np.ndarray  # [b] str, bytes or object


def verify(path: str) -> dict[str, Any]:
  """Checks a whole store: what `open` checks, the digests, every value.

  Reads every byte (minutes for ImageNet's 5.8 GB). A store written before
  digests were recorded (format 1) gets every check but the digests.

  Returns:
    `{'num_rows', 'digests_checked'}`.

  Raises:
    LabelMapStoreError: naming the store, the file and the first bad row.
  """
  return LabelMapStore.open(path).verify()


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
  def open(
    cls, path: str, *, missing: str = 'error', verify: bool = False
  ) -> LabelMapStore:
    """Opens the store at `path` (arrays memory-mapped, names in memory).

    Args:
      path: the store directory.
      missing: 'error' or 'one_hot' (see the class).
      verify: also run `verify(path)` (digests and every value).

    Raises:
      LabelMapStoreError: a file disagrees with the metadata (size, shape,
        dtype; with `verify`, digest or values), naming store and file.
    """
    meta_path = os.path.join(path, METADATA)
    if not os.path.exists(meta_path):
      state = (
        'unfinished' if os.path.exists(os.path.join(path, PROGRESS)) else 'no'
      )
      raise ValueError(
        f'{path} is {state} label-map store (no {METADATA}); '
        'write it with python -m jaxmix.apps.convert_label_maps.'
      )
    metadata = manifest.read_metadata(path)
    scores, indices, names, rows = (
      manifest.load_array(path, name, metadata) for name in manifest.ARRAYS
    )
    manifest.check_index(path, names, rows)
    store = cls(path, scores, indices, names, rows, metadata, missing)
    if verify:
      store.verify()
    return store

  def verify(self) -> dict[str, Any]:
    """The digests recorded at write time and every value (see `verify`)."""
    digests = integrity.check_digests(self.path, self.metadata)
    integrity.scan_values(
      self.path,
      self.scores,
      self.indices,
      self._names,
      self._rows,
      self.num_classes,
    )
    return {'num_rows': len(self), 'digests_checked': digests}

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

  def check_batch(
    self,
    file_names: FileNames,
    rows: np.ndarray,
    scores: np.ndarray,
    indices: np.ndarray,
  ) -> None:
    """The found rows' scores finite and class ids in [0, num_classes).

    Raises:
      LabelMapStoreError: naming the store, the file, the row and the image.
    """
    rows = np.asarray(rows, np.int64).reshape(-1)
    found = rows >= 0
    if not found.any():
      return
    names = np.ravel(file_names)[found]
    integrity.check_values(
      self.path,
      scores[found],
      indices[found],
      self.num_classes,
      lambda i: manifest.image_name(names, i),
      rows[found],
    )

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
    scores, indices = self.gather(rows)
    self.check_batch(file_names, rows, scores, indices)
    return scores, indices, found
