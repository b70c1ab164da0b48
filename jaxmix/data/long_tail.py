"""Long-tailed subsets of a train split, by CIFAR-LT's rule.

CIFAR-10/100-LT (Cao et al. 2019; the CMO code's `IMBALANCECIFAR`) keep
`int(n_max * (1 / ratio) ** (c / (K - 1)))` examples of class `c` (the
exponential profile), so class 0 keeps `n_max` and class `K - 1` keeps
`n_max / ratio`; the kept examples of each class are a seeded random subset.
`n_max` is the smallest class's count, which is the per-class count `N / K`
of a balanced split (CIFAR's), and never asks a class for more examples than
it has.

Pure NumPy: `jaxmix.data.tfds_source` reads a split's labels once and
filters its examples with `kept_indices`.
"""

from __future__ import annotations

import numpy as np


def class_counts(
  num_max: int, *, num_classes: int, imbalance_ratio: float
) -> np.ndarray:
  """int64 `[K]`: the examples kept of each class (exponential profile).

  Examples:
    >>> class_counts(500, num_classes=100, imbalance_ratio=100)[[0, 50, 99]]
    array([500,  48,   5])
  """
  if num_classes < 2:
    raise ValueError(f'A long tail needs >= 2 classes, got {num_classes}.')
  if not imbalance_ratio >= 1:
    raise ValueError(f'imbalance_ratio must be >= 1, got {imbalance_ratio}.')
  exponents = np.arange(num_classes) / (num_classes - 1.0)
  # int() of a float, as the reference code: truncation, not rounding.
  return np.array(
    [int(num_max * (1.0 / imbalance_ratio) ** e) for e in exponents], np.int64
  )


def kept_indices(
  labels: np.ndarray, *, num_classes: int, imbalance_ratio: float, seed: int
) -> np.ndarray:
  """The sorted positions in `labels` that the long-tailed subset keeps.

  Args:
    labels: int `[N]`, the class of every example of the split, in a fixed
      order.
    num_classes: K.
    imbalance_ratio: n_max / n_min, >= 1 (100 for CIFAR-100-LT).
    seed: picks the kept examples of each class.

  Returns:
    int64 `[M]` ascending positions; class `c` has `class_counts(...)[c]`.

  Examples:
    >>> kept_indices(np.array([0, 0, 1, 1]), num_classes=2,
    ...              imbalance_ratio=2, seed=0).size
    3
  """
  labels = np.asarray(labels)
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'labels must be integer [N], got {labels.shape}.')
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(
      f'labels must lie in [0, {num_classes}), got [{labels.min()}, '
      f'{labels.max()}].'
    )
  present = np.bincount(labels, minlength=num_classes)
  if present.min() == 0:
    raise ValueError(
      f'Class {int(np.argmin(present))} has no example: a long tail needs '
      'every class.'
    )
  counts = class_counts(
    int(present.min()),
    num_classes=num_classes,
    imbalance_ratio=imbalance_ratio,
  )
  rng = np.random.default_rng(seed)
  kept = [
    rng.permutation(np.flatnonzero(labels == c))[: counts[c]]
    for c in range(num_classes)
  ]
  return np.sort(np.concatenate(kept)).astype(np.int64)
