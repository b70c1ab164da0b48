"""The class ids of every host batch, checked before the device step.

On the device an out-of-range id is silent: `jax.nn.one_hot` gives an
all-zero row (a target that sums to less than one, a partner's row
contaminated by mixing), and the integer-label losses gather a wrapped or
clamped logit. The trainer therefore checks each host batch's 'label' (and
a CMO run's 'minority_label') against `num_classes` with NumPy, a few
microseconds per batch, and stops naming the example.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

LABEL_KEYS = ('label', 'minority_label')


def check_labels(batch: Mapping[str, Any], num_classes: int) -> None:
  """Raises ValueError when a class id of `batch` is outside `[0, K)`.

  Args:
    batch: a host batch; its 'label' and 'minority_label' (when present)
      are integer ``[B]``. 'file_name' (when present) names the example.
    num_classes: K.
  """
  for key in LABEL_KEYS:
    if key not in batch:
      continue
    labels = np.asarray(batch[key])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
      raise ValueError(
        f"The batch's {key!r} must be integer class ids [B], got shape "
        f'{labels.shape} and dtype {labels.dtype}.'
      )
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size == 0:
      continue
    first = int(bad[0])
    names = batch.get('file_name') if key == 'label' else None
    example = f'example {first} of the batch'
    if names is not None:
      example += f' ({_text(names[first])})'
    raise ValueError(
      f'{key} {int(labels[first])} of {example} is outside [0, '
      f'{num_classes}) (config.data.num_classes); {bad.size} such '
      f'example(s) in this batch, at positions {bad[:8].tolist()}.'
    )


def _text(name: Any) -> str:
  return repr(name.decode() if isinstance(name, bytes) else str(name))


class CheckedLabels:
  """A host batch iterator whose batches pass `check_labels`.

  Keeps the wrapped iterator's savable position (`get_state`/`set_state`).
  """

  def __init__(self, iterator: Any, num_classes: int):
    self._source = iterator
    self._iterator = iter(iterator)
    self._num_classes = num_classes

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._iterator)
    check_labels(batch, self._num_classes)
    return batch

  def get_state(self) -> dict[str, Any]:
    return self._source.get_state()

  def set_state(self, state: Mapping[str, Any]) -> None:
    self._source.set_state(state)
