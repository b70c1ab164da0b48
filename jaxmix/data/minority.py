"""CMO's second input stream: examples drawn with class weights 1 / n_c^alpha.

`MinorityStream` draws, with replacement, from this process's train
examples: example `i` of class `c` with probability proportional to
`1 / n_c ** alpha` (`minority_example_weights`; the official
`get_weighted_sampler`). A stream epoch is `N` draws (the official
`WeightedRandomSampler(num_samples=len(dataset))`), ordered by
`numpy.random.default_rng([seed, MINORITY_SEED, process, epoch])`; batches are
consecutive draws, the remainder of an epoch dropped. So the stream is a
pure function of `(seed, epoch, batch)`, and its position
(`get_state`: `{'epoch', 'batch_in_epoch'}`) restores it exactly.

`fetch(indices, epoch, first)` turns drawn indices into a batch (decode,
crop, flip: the data source's own train augmentation, seeded by the
stream's epoch and draw number `first + row`), so the stream works over any
source that can fetch examples by index.

`PairedBatches` zips the main train iterator with the stream: every batch
also holds 'minority_image' and 'minority_label', and its position holds
both streams' (`{**main, 'minority': {...}}`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxmix.data.source import Batch, BatchIterator

MINORITY_SEED = 0x5EED  # keeps the stream's draws apart from the main order
Fetch = Callable[[np.ndarray, int, int], Batch]


def minority_example_weights(
  example_classes: Any, *, num_classes: int, alpha: float = 1.0
) -> np.ndarray:
  """Each example's probability `1 / n_c ** alpha` in the minority stream.

  Computed with NumPy on the host, once per dataset (the official
  `get_weighted_sampler`): class `c` as a whole is drawn with probability
  proportional to `n_c ** (1 - alpha)`, uniform over classes for `alpha = 1`.
  (Before jaxmix 0.2 this was `jaxmix.minority_example_weights`.)

  Args:
    example_classes: int `[N]`, the class of every training example.
    num_classes: K.
    alpha: the exponent (1 in the paper).

  Returns:
    float64 `[N]` probabilities summing to one.

  Examples:
    >>> w = minority_example_weights([0, 0, 0, 1], num_classes=2)
    >>> w.round(3).tolist()  # each class drawn half the time
    [0.167, 0.167, 0.167, 0.5]
  """
  classes = np.asarray(example_classes)
  if classes.ndim != 1 or not np.issubdtype(classes.dtype, np.integer):
    raise ValueError(
      '`example_classes` must be integer class ids [N], got shape '
      f'{classes.shape} and dtype {classes.dtype}.'
    )
  if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
    raise ValueError(
      f'`example_classes` must lie in [0, {num_classes}), got '
      f'[{classes.min()}, {classes.max()}].'
    )
  counts = np.bincount(classes, minlength=num_classes).astype(np.float64)
  weights = counts[classes] ** -float(alpha)
  return weights / weights.sum()


class MinorityStream(BatchIterator):
  """Batches of `batch_size` examples drawn by `1 / n_c ** alpha`.

  Args:
    labels: int `[N]`, the class of each example `fetch` can read.
    fetch: `fn(indices, epoch, first) -> batch` (see the module docstring).
    num_classes: K.
    batch_size: rows per batch (this process's).
    seed: the run's seed.
    process_index: this process (each draws its own stream).
    alpha: the weights' exponent (1 in the paper: classes drawn uniformly).
  """

  def __init__(
    self,
    labels: np.ndarray,
    fetch: Fetch,
    *,
    num_classes: int,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    alpha: float = 1.0,
  ):
    labels = np.asarray(labels)
    self.weights = minority_example_weights(
      labels, num_classes=num_classes, alpha=alpha
    )
    self._fetch = fetch
    self._batch_size = batch_size
    self._steps = len(labels) // batch_size
    if self._steps < 1:
      raise ValueError(
        f'The minority stream has {len(labels)} examples, fewer than one '
        f'batch of {batch_size}.'
      )
    self._seed = [seed, MINORITY_SEED, process_index]
    self._epoch, self._batch = 0, 0
    self._draws = None

  def draws(self, epoch: int) -> np.ndarray:
    """int64 `[N]`: the dataset indices of stream epoch `epoch`, in order."""
    rng = np.random.default_rng([*self._seed, epoch])
    return rng.choice(len(self.weights), size=len(self.weights), p=self.weights)

  def __next__(self) -> Batch:
    if self._draws is None:
      self._draws = self.draws(self._epoch)
    first = self._batch * self._batch_size
    indices = self._draws[first : first + self._batch_size]
    batch = self._fetch(indices, self._epoch, first)
    self._batch += 1
    if self._batch == self._steps:
      self._epoch, self._batch, self._draws = self._epoch + 1, 0, None
    return batch

  def get_state(self) -> dict[str, int]:
    return {'epoch': self._epoch, 'batch_in_epoch': self._batch}

  def set_state(self, state: Mapping[str, int]) -> None:
    try:
      epoch, batch = int(state['epoch']), int(state['batch_in_epoch'])
    except (KeyError, TypeError, ValueError) as e:
      raise ValueError(
        "the minority stream's state must hold integer 'epoch' and "
        f"'batch_in_epoch'; got {dict(state)}"
      ) from e
    if epoch < 0 or not 0 <= batch < self._steps:
      raise ValueError(
        f'minority stream state out of range (batch_in_epoch in [0, '
        f'{self._steps})): {dict(state)}'
      )
    self._epoch, self._batch, self._draws = epoch, batch, None


class PairedBatches(BatchIterator):
  """The main train batches, each with a minority batch beside it."""

  def __init__(self, main: BatchIterator, minority: BatchIterator):
    self._main, self._minority = main, minority

  def __next__(self) -> Batch:
    batch = dict(next(self._main))
    extra = next(self._minority)
    batch['minority_image'] = extra['image']
    batch['minority_label'] = extra['label']
    return batch

  def get_state(self) -> dict[str, Any]:
    return {**self._main.get_state(), 'minority': self._minority.get_state()}

  def set_state(self, state: Mapping[str, Any]) -> None:
    state = dict(state)
    if 'minority' not in state:
      raise ValueError(
        "A CMO run's data position holds the minority stream's under "
        f"'minority'; got {state} (a checkpoint of a run without CMO?)."
      )
    self._minority.set_state(state.pop('minority'))
    self._main.set_state(state)
