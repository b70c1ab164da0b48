"""Joins host train batches with their ReLabel label maps, by file name.

`join_label_maps(iterator, maps_fn)` wraps a train `BatchIterator` (the
tf.data pipeline or synthetic data); every batch it returns also holds

  'label_map_scores'   float16 `[b, S, S, k]`
  'label_map_indices'  uint16  `[b, S, S, k]`
  'label_map_found'    bool    `[b]`

looked up on the host (a memory-mapped gather of 4.5 KB per image from the
store). In training the join is pulled by the background thread of
`jaxmix.data.mesh_prefetch.prefetch_to_mesh`, a bounded queue ahead of the
step, so a slow page-cache miss never stalls the training thread. The
position (`get_state`/`set_state`) is the wrapped iterator's, so a resumed
run rejoins exactly the batches it would have seen.

`open_label_maps(store_dir, missing=..., num_classes=...)` opens a store
with a missing-map policy. Synthetic data (the `:smoke` configs) has no
store: without `store_dir` it gets `synthetic_label_maps`, maps made from
each example's label, so a ReLabel recipe's smoke run exercises the whole
path. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from jaxmix._src import label_map_pooling as pooling
from jaxmix.data.label_maps.store import LabelMapStore

MapsFn = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, ...]]
SYNTHETIC_SIZE, SYNTHETIC_K = 7, 2


class LabelMapJoin:
  """A train iterator whose batches carry their label maps (see module)."""

  def __init__(
    self, iterator: Any, maps_fn: MapsFn, num_classes: int | None = None
  ):
    self._source = iterator
    self._iterator = iter(iterator)
    self._maps_fn = maps_fn
    self._num_classes = num_classes

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = dict(next(self._iterator))
    if 'file_name' not in batch:
      raise ValueError(
        'ReLabel needs the file_name of every train example to find its '
        f'label map; the batch has only {sorted(batch)}.'
      )
    scores, indices, found = self._maps_fn(batch)
    if self._num_classes is not None:
      self._check(batch, indices)
    batch['label_map_scores'] = scores
    batch['label_map_indices'] = indices
    batch['label_map_found'] = np.asarray(found, bool)
    return batch

  def _check(self, batch: dict, indices: np.ndarray) -> None:
    """Crop boxes and class ids as pooling needs them, naming the file."""
    boxes, check = batch['crop_box'], pooling.check_label_map_inputs
    try:
      check(indices, boxes, self._num_classes)
    except ValueError as error:  # rare: find the first bad file
      for row, name in enumerate(batch['file_name']):
        try:
          check(indices[row : row + 1], boxes[row : row + 1], self._num_classes)
        except ValueError:
          raise ValueError(f'label map of {name!r}: {error}') from None
      raise

  def get_state(self) -> dict[str, Any]:
    return self._source.get_state()

  def set_state(self, state: dict[str, Any]) -> None:
    self._source.set_state(state)


def join_label_maps(
  iterator: Any, maps_fn: MapsFn, *, num_classes: int | None = None
) -> LabelMapJoin:
  """Wraps `iterator`; `maps_fn(batch) -> (scores, indices, found)`.

  With `num_classes`, every batch's crop boxes and class ids are checked
  on the host (`jaxmix._src.label_map_pooling.check_label_map_inputs`), naming
  the file of a bad row: pooling under `jit` cannot see values.
  """
  return LabelMapJoin(iterator, maps_fn, num_classes)


def store_maps_fn(store: LabelMapStore) -> MapsFn:
  """Looks each batch's 'file_name's up in `store` (its missing policy)."""
  return lambda batch: store.lookup(batch['file_name'])


def synthetic_label_maps(
  batch: dict[str, np.ndarray], *, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Made-up maps for synthetic data: the label in the middle, a neighbour
  class (label + 1) around it.

  Returns:
    float16 scores and uint16 indices `[b, 7, 7, 2]`, `found` all True.
  """
  labels = np.asarray(batch['label'], np.int64)
  size, count = SYNTHETIC_SIZE, len(labels)
  rows = np.arange(size)
  middle = (np.abs(rows - size // 2) <= size // 4)[:, None] & (
    np.abs(rows - size // 2) <= size // 4
  )[None, :]
  scores = np.empty((count, size, size, SYNTHETIC_K), np.float16)
  scores[..., 0] = np.where(middle, 6.0, 1.0)
  scores[..., 1] = np.where(middle, 0.5, 3.0)
  indices = np.empty((count, size, size, SYNTHETIC_K), np.uint16)
  indices[..., 0] = labels[:, None, None]
  indices[..., 1] = ((labels + 1) % num_classes)[:, None, None]
  return scores, indices, np.ones(count, bool)


def open_label_maps(
  store_dir: str | None,
  *,
  missing: str,
  num_classes: int,
  synthetic: bool = False,
) -> tuple[MapsFn, LabelMapStore | None]:
  """The maps of a ReLabel run: `(maps_fn, store)` (store None if made up).

  Args:
    store_dir: the label-map store (a recipe's `config.relabel.store_dir`);
      None only for synthetic data.
    missing: the policy for a file name without a map ('error' or
      'one_hot', `LabelMapStore.open`).
    num_classes: the classifier's classes; the store must have as many.
    synthetic: the data is synthetic: without a store, maps are made up
      from each example's label (`synthetic_label_maps`).

  Raises:
    ValueError: no `store_dir` for real data, or a store whose class count
      differs from `num_classes`.
  """
  if store_dir is None:
    if synthetic:
      return (
        lambda batch: synthetic_label_maps(batch, num_classes=num_classes)
      ), None
    raise ValueError(
      'ReLabel needs store_dir (config.relabel.store_dir), a label-map '
      'store made by python -m jaxmix.apps.convert_label_maps (the official '
      'ReLabel maps) or python -m jaxmix.apps.annotate (your own annotator).'
    )
  store = LabelMapStore.open(store_dir, missing=missing)
  if store.num_classes != num_classes:
    raise ValueError(
      f'label-map store {store_dir} has {store.num_classes} classes, '
      f'num_classes is {num_classes} (config.data.num_classes).'
    )
  return store_maps_fn(store), store
