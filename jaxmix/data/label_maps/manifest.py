"""The label-map store's files and what its metadata says of them.

A store is a directory written once per dataset (by
`jaxmix.data.label_maps.writer`) and read by every host
(`jaxmix.data.label_maps.store`):

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

This module holds the layout and the cheap checks made at every open: the
metadata's fields, each array file's size, shape and dtype against it (from
the `.npy` header, nothing else read), `rows.npy` a permutation of the rows
and `names.npy` sorted. Each failure is a `LabelMapStoreError` naming the
store and the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

SCORES, INDICES = 'scores.npy', 'indices.npy'
NAMES, ROWS = 'names.npy', 'rows.npy'
METADATA, PROGRESS = 'metadata.json', 'progress.json'
ARRAYS = (SCORES, INDICES, NAMES, ROWS)

_REQUIRED = ('num_rows', 'size', 'k', 'num_classes')
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


def sha256(path: str) -> str:
  """The hex SHA-256 of the file at `path` (read in chunks)."""
  with open(path, 'rb') as f:
    return hashlib.file_digest(f, 'sha256').hexdigest()


def file_record(path: str) -> dict[str, Any]:
  """`{'bytes', 'shape', 'dtype', 'sha256'}` of a written .npy file."""
  array = np.load(path, mmap_mode='r')
  return {
    'bytes': os.path.getsize(path),
    'shape': list(array.shape),
    'dtype': array.dtype.str,
    'sha256': sha256(path),
  }


def read_metadata(path: str) -> dict[str, Any]:
  """The store's `metadata.json`, its counts and file records checked."""
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


def load_array(path: str, name: str, metadata: dict[str, Any]) -> np.ndarray:
  """A store array, its size, shape and dtype checked against `metadata`.

  The scores and indices are memory-mapped, the names and rows read.
  """
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


def image_name(names: np.ndarray, i: int) -> str:
  """The `i`-th name of a names array, as text."""
  raw = names[i]
  return raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else str(raw)


def check_index(path: str, names: np.ndarray, rows: np.ndarray) -> None:
  """`rows.npy` a permutation of the rows, `names.npy` sorted and unique."""
  if names.shape != rows.shape:
    raise LabelMapStoreError(
      f'label-map store {path}, file {NAMES}: {names.shape[0]} names for '
      f'{rows.shape[0]} rows.'
    )
  n = len(rows)
  outside = np.flatnonzero((rows < 0) | (rows >= n))
  if outside.size:
    i = outside[0]
    raise LabelMapStoreError(
      f'label-map store {path}, file {ROWS}: {outside.size} entries are not '
      f'rows in [0, {n}), first row {rows[i]} of image '
      f'{image_name(names, i)!r}.'
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
