"""Synthetic image-classification data with the input pipeline's interface.

Used when `config.data.dataset == 'synthetic'`: smoke runs, tests and speed
runs on machines without TensorFlow. The data set is a pure function of the
example index (content, label) and the shuffle order a pure function of
`(seed, epoch)`, so every process can read its own slice of each global
batch and a resumed run sees exactly the batches it would have seen.

Each global batch of `global_batch_size` examples is split into
`process_count` contiguous slices; process `p` gets slice `p`. This is the
order `jax.make_array_from_process_local_data` expects, so the global batch
is the same whatever the number of processes.

The train stream honours the data config's sample-level augmentations
that need no decoding: `data.auto_augment` (the host policy of
`jaxmix.data.auto_augment_host`, per example from (seed, epoch, example,
copy)) and `data.repeated_augmentation` (DeiT's law over the global batch
laid on all devices, `jaxmix.data.repeated`); crops and flips are not
simulated.
"""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxmix.data import repeated
from jaxmix.data.source import BatchIterator

# Distinct noise tiles reused across examples, so that making a batch costs a
# copy rather than a random draw per pixel.
_NUM_TILES = 17


def file_name(index: int) -> str:
  """The name of synthetic example `index` (its 'file_name')."""
  return f'synthetic_{index:08d}'


def train_indices(data_config: Any) -> np.ndarray:
  """The train split's example indices: all of them, those `data.keep_list`
  names (`jaxmix.data.keep_list`), and of those the long-tailed subset of
  `data.long_tail` (`jaxmix.data.long_tail`)."""
  size = int(data_config.synthetic.train_examples)
  indices = np.arange(size)
  path = data_config.get('keep_list')
  if path:
    from jaxmix.data import keep_list

    record = keep_list.read(path)
    names = [file_name(i) for i in indices]
    keep_list.check_known(
      record['kept'], names, path=path, where='the synthetic train split'
    )
    wanted = set(record['kept'])
    indices = np.array([i for i, n in zip(indices, names) if n in wanted])
  ratio = data_config.get('long_tail', {}).get('imbalance_ratio', 1.0)
  if ratio <= 1.0:
    return indices.astype(np.int64)
  from jaxmix.data import long_tail

  examples = _Examples(data_config.num_classes, 1, 0)
  return indices[
    long_tail.kept_indices(
      examples.labels(indices),
      num_classes=data_config.num_classes,
      imbalance_ratio=ratio,
      seed=int(data_config.long_tail.seed),
    )
  ]


def num_examples(data_config: Any, split: str) -> int:
  """Number of examples of `split` ('train' or anything else = eval)."""
  synthetic = data_config.synthetic
  if split == data_config.train_split:
    return len(train_indices(data_config))
  return int(synthetic.eval_examples)


def steps_per_epoch(data_config: Any, global_batch_size: int) -> int:
  """Training steps per epoch (the remainder of an epoch is dropped)."""
  steps = num_examples(data_config, data_config.train_split) // (
    global_batch_size
  )
  if steps < 1:
    raise ValueError(
      f'data.synthetic.train_examples '
      f'({data_config.synthetic.train_examples}) is smaller than '
      f'global_batch_size ({global_batch_size}).'
    )
  return steps


def _process_slice(
  global_batch_size: int, process_index: int | None, process_count: int | None
) -> tuple[int, int]:
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  if global_batch_size % count:
    raise ValueError(
      f'global_batch_size ({global_batch_size}) must be divisible by the '
      f'process count ({count}).'
    )
  local = global_batch_size // count
  return index * local, local


class _Examples:
  """Deterministic examples: label and uint8 image from the global index."""

  def __init__(self, num_classes: int, image_size: int, split_id: int):
    self.num_classes = num_classes
    rng = np.random.default_rng([7, split_id])
    self.colours = rng.integers(40, 216, (num_classes, 3)).astype(np.int16)
    self.tiles = rng.integers(
      -40, 41, (_NUM_TILES, image_size, image_size, 3)
    ).astype(np.int16)

  def labels(self, indices: np.ndarray) -> np.ndarray:
    return ((indices * 37 + 11) % self.num_classes).astype(np.int32)

  def images(self, indices: np.ndarray) -> np.ndarray:
    size = self.tiles.shape[1]
    out = np.empty((len(indices), size, size, 3), np.uint8)
    labels = self.labels(indices)
    for row, (index, label) in enumerate(zip(indices, labels)):
      tile = np.roll(self.tiles[index % _NUM_TILES], index % size, axis=1)
      out[row] = np.clip(tile + self.colours[label], 0, 255)
    return out

  def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    count = len(indices)
    return {
      'image': self.images(indices),
      'label': self.labels(indices),
      'crop_box': np.tile(np.array([0, 0, 1, 1], np.float32), (count, 1)),
      'flip': np.zeros((count,), bool),
      'file_name': np.array(
        [file_name(i).encode() for i in indices], dtype=object
      ),
    }


class SyntheticTrainIterator(BatchIterator):
  """Infinite iterator over shuffled epochs of host-local training batches.

  Yields dicts: 'image' uint8 `[b, S, S, 3]`, 'label' int32 `[b]`, 'crop_box'
  float32 `[b, 4]` (the whole image), 'flip' bool `[b]`, 'file_name` `[b]`.
  `replicas`: the devices a global batch is sharded over (None: all), over
  which repeated augmentation spreads an example's copies.
  """

  def __init__(
    self,
    data_config: Any,
    *,
    global_batch_size: int,
    image_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
    replicas: int | None = None,
  ):
    self._examples = _Examples(data_config.num_classes, image_size, 0)
    self._policy = data_config.get('auto_augment', '')
    if self._policy:
      from jaxmix.data import auto_augment_host  # Pillow, only when asked

      auto_augment_host.check_spec(self._policy)
      self._augment = auto_augment_host.augment
    self._repeats = repeated.check(data_config.get('repeated_augmentation', 1))
    self._rows = None
    if self._repeats > 1:
      count = jax.device_count() if replicas is None else replicas
      self._rows = repeated.replica_rows(global_batch_size, count)
    self._indices = train_indices(data_config)
    self._size = len(self._indices)
    self._steps = steps_per_epoch(data_config, global_batch_size)
    self._global_batch = global_batch_size
    self._start, self._local = _process_slice(
      global_batch_size, process_index, process_count
    )
    self._seed = seed
    self._epoch = 0
    self._batch_in_epoch = 0
    self._order = None

  def __next__(self) -> dict[str, np.ndarray]:
    if self._order is None:
      rng = np.random.default_rng([self._seed, self._epoch])
      self._order = self._indices[rng.permutation(self._size)]
      self._copies = np.zeros(self._size, np.int64)
      if self._repeats > 1:
        self._order, self._copies = repeated.epoch_sequence(
          self._order, self._steps * self._global_batch, self._repeats
        )
    first = self._batch_in_epoch * self._global_batch
    rows = np.arange(self._global_batch)
    if self._rows is not None:
      rows = self._rows
    rows = first + rows[self._start : self._start + self._local]
    indices, copies = self._order[rows], self._copies[rows]
    batch = self._examples.batch(indices)
    if self._policy:
      for row, (index, copy) in enumerate(zip(indices, copies)):
        seed = np.array([self._seed, self._epoch, index, copy], np.int64)
        batch['image'][row] = self._augment(
          batch['image'][row], seed, self._policy
        )
    self._batch_in_epoch += 1
    if self._batch_in_epoch == self._steps:
      self._epoch, self._batch_in_epoch, self._order = self._epoch + 1, 0, None
    return batch

  def get_state(self) -> dict[str, int]:
    """The position: `{'epoch': e, 'batch_in_epoch': k}` (JSON-friendly)."""
    return {'epoch': self._epoch, 'batch_in_epoch': self._batch_in_epoch}

  def set_state(self, state: Mapping[str, int]) -> None:
    """Moves to a position returned by `get_state`."""
    if set(state) != {'epoch', 'batch_in_epoch'}:
      raise ValueError(
        f"Iterator state must have keys 'epoch' and 'batch_in_epoch', got "
        f'{dict(state)!r}.'
      )
    if not 0 <= state['batch_in_epoch'] < self._steps:
      raise ValueError(
        f"state['batch_in_epoch'] must be in [0, {self._steps}), got "
        f'{state["batch_in_epoch"]}.'
      )
    self._epoch = int(state['epoch'])
    self._batch_in_epoch = int(state['batch_in_epoch'])
    self._order = None


class SyntheticEvalIterator(BatchIterator):
  """One pass over the eval split; the last global batch is padded.

  Same keys as training plus 'mask' bool `[b]`, False on padding.
  """

  def __init__(
    self,
    data_config: Any,
    *,
    global_batch_size: int,
    image_size: int,
    process_index: int | None = None,
    process_count: int | None = None,
  ):
    self._examples = _Examples(data_config.num_classes, image_size, 1)
    self._size = num_examples(data_config, data_config.eval_split)
    self._global_batch = global_batch_size
    self._start, self._local = _process_slice(
      global_batch_size, process_index, process_count
    )
    self._batches = -(-self._size // global_batch_size)
    self._next = 0

  # Stateless, as BatchIterator: eval passes restart from the beginning.
  def __next__(self) -> dict[str, np.ndarray]:
    if self._next == self._batches:
      raise StopIteration
    begin = self._next * self._global_batch + self._start
    indices = np.arange(begin, begin + self._local)
    mask = indices < self._size
    batch = self._examples.batch(np.where(mask, indices, 0))
    batch['mask'] = mask
    self._next += 1
    return batch


def create_train_iterator(
  data_config: Any,
  *,
  global_batch_size: int,
  image_size: int,
  seed: int,
  process_index: int | None = None,
  process_count: int | None = None,
  replicas: int | None = None,
) -> SyntheticTrainIterator:
  """The synthetic twin of `input_pipeline.create_train_iterator`."""
  return SyntheticTrainIterator(
    data_config,
    global_batch_size=global_batch_size,
    image_size=image_size,
    seed=seed,
    process_index=process_index,
    process_count=process_count,
    replicas=replicas,
  )


def create_eval_iterator(
  data_config: Any,
  *,
  global_batch_size: int,
  image_size: int,
  process_index: int | None = None,
  process_count: int | None = None,
) -> SyntheticEvalIterator:
  """The synthetic twin of `eval_batches.create_eval_iterator`."""
  return SyntheticEvalIterator(
    data_config,
    global_batch_size=global_batch_size,
    image_size=image_size,
    process_index=process_index,
    process_count=process_count,
  )


def create_minority_iterator(
  data_config: Any,
  *,
  global_batch_size: int,
  image_size: int,
  seed: int,
  alpha: float,
  process_index: int | None = None,
  process_count: int | None = None,
) -> BatchIterator:
  """CMO's second stream over the synthetic train split
  (`jaxmix.data.minority.MinorityStream`); batches as the train iterator's.
  """
  from jaxmix.data import minority

  examples = _Examples(data_config.num_classes, image_size, 0)
  indices = train_indices(data_config)
  _, local = _process_slice(global_batch_size, process_index, process_count)
  index = jax.process_index() if process_index is None else process_index
  return minority.MinorityStream(
    examples.labels(indices),
    lambda drawn, epoch, first: examples.batch(indices[drawn]),
    num_classes=data_config.num_classes,
    batch_size=local,
    seed=seed,
    process_index=index,
    alpha=alpha,
  )
