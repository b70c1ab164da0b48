"""Label-map store: a dataset's top-k ReLabel maps in a few large files.

A store is a directory written once per dataset (by
`jaxmix.data.label_maps.convert` or an annotator) and read by every host:

  scores.npy     float16 `[N, S, S, k]`  top-k annotator logits, channels last
  indices.npy    uint16  `[N, S, S, k]`  their class ids
  names.npy      bytes   `[N]`           the TFDS `file_name`s, sorted
  rows.npy       int64   `[N]`           the array row of each sorted name
  metadata.json  S, k, num_classes, source, annotator, num_rows, and per
                 array file its bytes, shape, dtype and SHA-256 ('files')

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

A store proves it is whole. Opening it checks, cheaply, every array file's
size, shape and dtype against the metadata and that `rows.npy` is a
permutation of the rows and `names.npy` sorted; `verify(path)` (or
`open(..., verify=True)`, or `python -m jaxmix.apps.verify_label_maps`)
also recomputes the SHA-256 digests recorded at write time and scans every
value. Every batch looked up is checked (scores finite, class ids in
`[0, num_classes)`). Each failure is a `LabelMapStoreError` naming the
store, the file and, for a value, the row and image.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from absl import logging

SCORES, INDICES = 'scores.npy', 'indices.npy'
NAMES, ROWS = 'names.npy', 'rows.npy'
METADATA, PROGRESS = 'metadata.json', 'progress.json'
_POLICIES = ('error', 'one_hot')
FileNames = Sequence[str | bytes] | np.ndarray  # [b] str, bytes or object


_ARRAYS = (SCORES, INDICES, NAMES, ROWS)
_REQUIRED = ('num_rows', 'size', 'k', 'num_classes')
_SCAN_ROWS = 65536  # rows per chunk of a full-value scan
_HEADER_READERS = {
  (1, 0): np.lib.format.read_array_header_1_0,
  (2, 0): np.lib.format.read_array_header_2_0,
}
_RECORD_KEYS = {'bytes', 'shape', 'dtype', 'sha256'}


class MissingLabelMapError(ValueError):
  """A training example has no label map in the store."""


class LabelMapStoreError(ValueError):
  """A store's files disagree with its metadata or hold invalid values."""


def encode_name(name: str | bytes) -> bytes:
  """A file name (str or bytes) as the store's key: non-empty UTF-8 bytes."""
  raw = name if isinstance(name, bytes) else str(name).encode('utf-8')
  if not raw or b'\n' in raw or b'\0' in raw:
    raise ValueError(
      f'label-map file names must be non-empty, one line and '
      f'without NUL bytes; got {raw!r}.'
    )
  return raw


def file_record(path: str) -> dict[str, Any]:
  """`{'bytes', 'shape', 'dtype', 'sha256'}` of a written .npy file."""
  array = np.load(path, mmap_mode='r')
  with open(path, 'rb') as f:
    digest = hashlib.file_digest(f, 'sha256').hexdigest()
  return {
    'bytes': os.path.getsize(path),
    'shape': list(array.shape),
    'dtype': array.dtype.str,
    'sha256': digest,
  }


def _read_metadata(path: str) -> dict[str, Any]:
  meta_path = os.path.join(path, METADATA)
  try:
    with open(meta_path, 'rb') as f:
      metadata = json.loads(f.read().decode('utf-8'))
  except (ValueError, OSError) as error:  # JSON and Unicode errors
    raise LabelMapStoreError(
      f'label-map store {path}: {METADATA} is unreadable or not JSON '
      f'({type(error).__name__}: {error}); the store is damaged, write it '
      'again.'
    ) from None
  absent = (
    [key for key in _REQUIRED if key not in metadata]
    if isinstance(metadata, dict)
    else list(_REQUIRED)
  )
  bad = [
    key
    for key in _REQUIRED
    if key not in absent
    and not (isinstance(metadata[key], int) and metadata[key] >= 0)
  ]
  if absent or bad:
    raise LabelMapStoreError(
      f'label-map store {path}: {METADATA} lacks {absent} or has values '
      f'that are not counts in {bad}; the store is damaged, write it again.'
    )
  files = metadata.get('files', {})
  if not (
    isinstance(files, dict)
    and all(
      isinstance(r, dict) and _RECORD_KEYS <= set(r) for r in files.values()
    )
  ):
    raise LabelMapStoreError(
      f'label-map store {path}: the file records of {METADATA} are damaged '
      f'(each needs {sorted(_RECORD_KEYS)}); write the store again.'
    )
  return metadata


def _expected(metadata: dict[str, Any]) -> dict[str, tuple[tuple, str]]:
  """`{file: (shape, dtype str)}` that the metadata implies."""
  n, size, k = metadata['num_rows'], metadata['size'], metadata['k']
  expected = {
    SCORES: ((n, size, size, k), np.dtype(np.float16).str),
    INDICES: ((n, size, size, k), np.dtype(np.uint16).str),
    ROWS: ((n,), np.dtype(np.int64).str),
  }
  for name, record in metadata.get('files', {}).items():
    if name == NAMES:
      expected[NAMES] = (tuple(record['shape']), record['dtype'])
  return expected


def _load(path: str, name: str, metadata: dict[str, Any]) -> np.ndarray:
  """A store array memory-mapped, its size, shape and dtype checked."""
  file = os.path.join(path, name)
  where = f'label-map store {path}, file {name}'
  record = metadata.get('files', {}).get(name)
  try:
    if record is not None and os.path.getsize(file) != record['bytes']:
      raise LabelMapStoreError(
        f'{where}: {os.path.getsize(file)} bytes, written with '
        f'{record["bytes"]}; the file was truncated or altered.'
      )
    with open(file, 'rb') as f:
      version = np.lib.format.read_magic(f)
      read_header = _HEADER_READERS.get(version)
      if read_header is None:
        raise ValueError(f'.npy format version {version} is not supported')
      shape, fortran, dtype = read_header(f)
      data_bytes = os.path.getsize(file) - f.tell()
  except FileNotFoundError:
    raise LabelMapStoreError(f'{where}: the file is missing.') from None
  except (ValueError, OSError, SyntaxError) as error:
    raise LabelMapStoreError(
      f'{where}: not a readable .npy file ({error}).'
    ) from None
  want = _expected(metadata).get(name)
  if want is not None and (tuple(shape), dtype.str) != want:
    raise LabelMapStoreError(
      f'{where}: holds {dtype.str}{list(shape)}, the metadata says '
      f'{want[1]}{list(want[0])}.'
    )
  need = int(np.prod(shape)) * dtype.itemsize
  if data_bytes != need or fortran:
    raise LabelMapStoreError(
      f'{where}: {data_bytes} bytes of data for {dtype.str}{list(shape)}, '
      f'which needs {need}; the file was truncated or altered.'
    )
  if name in (SCORES, INDICES):
    return np.load(file, mmap_mode='r')
  return np.load(file, allow_pickle=False)


def _check_index(path: str, names: np.ndarray, rows: np.ndarray) -> None:
  """`rows.npy` a permutation of the rows, `names.npy` sorted and unique."""
  n = len(rows)
  outside = np.flatnonzero((rows < 0) | (rows >= n))
  if outside.size:
    i = outside[0]
    raise LabelMapStoreError(
      f'label-map store {path}, file {ROWS}: {outside.size} entries are not '
      f'rows in [0, {n}), first row {rows[i]} of image {_name(names, i)!r}.'
    )
  if n and np.bincount(rows, minlength=n).max() > 1:
    raise LabelMapStoreError(
      f'label-map store {path}, file {ROWS}: some rows are listed twice.'
    )
  if n > 1 and not (names[1:] > names[:-1]).all():
    raise LabelMapStoreError(
      f'label-map store {path}, file {NAMES}: the names are not sorted and '
      'unique.'
    )


def _name(names: np.ndarray, i: int) -> str:
  raw = names[i]
  return raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else str(raw)


def check_values(
  store_path: str,
  scores: np.ndarray,
  indices: np.ndarray,
  num_classes: int,
  image_names: Callable[[int], str],
  rows: np.ndarray,
) -> None:
  """Raises `LabelMapStoreError` unless scores are finite and ids < K.

  Args:
    store_path: named in the message.
    scores: float16 `[b, S, S, k]`.
    indices: uint16 `[b, S, S, k]`.
    num_classes: K.
    image_names: position in the batch -> the image's name.
    rows: int64 `[b]`, the store rows of the batch (named in the message).
  """
  flat = len(scores)
  bad_scores = ~np.isfinite(scores).reshape(flat, -1).all(axis=1)
  bad_ids = (indices >= num_classes).reshape(flat, -1).any(axis=1)
  for name, bad, what in (
    (SCORES, bad_scores, 'scores that are not finite'),
    (INDICES, bad_ids, f'class ids outside [0, {num_classes})'),
  ):
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      raise LabelMapStoreError(
        f'label-map store {store_path}, file {name}: row {rows[i]} (image '
        f'{image_names(i)!r}) has {what}'
        + (f', and {int(bad.sum()) - 1} more rows' if bad.sum() > 1 else '')
        + '; the store is damaged (verify it with python -m '
        'jaxmix.apps.verify_label_maps).'
      )


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
    metadata = _read_metadata(path)
    scores, indices, names, rows = (
      _load(path, name, metadata) for name in _ARRAYS
    )
    if names.shape != rows.shape:
      raise LabelMapStoreError(
        f'label-map store {path}, file {NAMES}: {names.shape[0]} names for '
        f'{rows.shape[0]} rows.'
      )
    _check_index(path, names, rows)
    store = cls(path, scores, indices, names, rows, metadata, missing)
    if verify:
      store.verify()
    return store

  def verify(self) -> dict[str, Any]:
    """The digests recorded at write time and every value (see `verify`)."""
    files = self.metadata.get('files', {})
    for name in _ARRAYS:
      record = files.get(name)
      if record is None:
        continue
      with open(os.path.join(self.path, name), 'rb') as f:
        digest = hashlib.file_digest(f, 'sha256').hexdigest()
      if digest != record['sha256']:
        raise LabelMapStoreError(
          f'label-map store {self.path}, file {name}: SHA-256 '
          f'{digest[:16]}... differs from the {record["sha256"][:16]}... '
          'recorded at write time; the file was altered.'
        )
    row_names = np.empty(len(self), self._names.dtype)
    row_names[self._rows] = self._names
    for start in range(0, len(self), _SCAN_ROWS):
      stop = min(start + _SCAN_ROWS, len(self))
      check_values(
        self.path,
        np.asarray(self.scores[start:stop]),
        np.asarray(self.indices[start:stop]),
        self.num_classes,
        lambda i, start=start: _name(row_names, start + i),
        np.arange(start, stop),
      )
    return {'num_rows': len(self), 'digests_checked': bool(files)}

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
    check_values(
      self.path,
      scores[found],
      indices[found],
      self.num_classes,
      lambda i: _name(names, i),
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
