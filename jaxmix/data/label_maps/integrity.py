"""The label-map store's deep checks: digests and values.

`check_values` is what every batch looked up goes through (scores finite,
class ids in `[0, num_classes)`); `check_digests` recomputes the SHA-256 of
each array file recorded at write time (`manifest.file_record`), and
`scan_values` runs `check_values` over a whole store in chunks. Together
they are `LabelMapStore.verify` (`jaxmix.data.label_maps.store.verify`,
`python -m jaxmix.apps.verify_label_maps`). Each failure is a
`LabelMapStoreError` naming the store, the file and, for a value, the row
and the image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxmix.data.label_maps.manifest import (
  ARRAYS,
  INDICES,
  SCORES,
  LabelMapStoreError,
  image_name,
  sha256,
)

_SCAN_ROWS = 65536  # rows per chunk of a full-value scan


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


def check_digests(path: str, metadata: dict[str, Any]) -> bool:
  """Each array file's SHA-256 against the one recorded at write time.

  Reads every byte (minutes for ImageNet's 5.8 GB).

  Returns:
    Whether digests were recorded (False for a format-1 store).

  Raises:
    LabelMapStoreError: naming the store and the file that differs.
  """
  files = metadata.get('files', {})
  for name in ARRAYS:
    record = files.get(name)
    if record is None:
      continue
    digest = sha256(os.path.join(path, name))
    if digest != record['sha256']:
      raise LabelMapStoreError(
        f'label-map store {path}, file {name}: SHA-256 {digest[:16]}... '
        f'differs from the {record["sha256"][:16]}... recorded at write '
        'time; the file was altered.'
      )
  return bool(files)


def scan_values(
  path: str,
  scores: np.ndarray,
  indices: np.ndarray,
  names: np.ndarray,
  rows: np.ndarray,
  num_classes: int,
) -> None:
  """`check_values` over every row of a store, in chunks.

  Args:
    path: the store (named in the message).
    scores, indices: `[N, S, S, k]`, e.g. memory-mapped.
    names: `[N]` the sorted names; `rows`: `[N]` the row of each name.
    num_classes: K.
  """
  row_names = np.empty(len(rows), names.dtype)
  row_names[rows] = names
  for start in range(0, len(rows), _SCAN_ROWS):
    stop = min(start + _SCAN_ROWS, len(rows))
    check_values(
      path,
      np.asarray(scores[start:stop]),
      np.asarray(indices[start:stop]),
      num_classes,
      lambda i, start=start: image_name(row_names, start + i),
      np.arange(start, stop),
    )
