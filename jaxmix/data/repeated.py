"""Repeated augmentation: DeiT's `RASampler` law (`data.repeated_augmentation`).

DeiT (facebookresearch/deit `samplers.py`, Hoffer et al.'s repeated
augmentation) with `r` repeats and `R` replicas (one per GPU) builds each
epoch's sequence from the epoch's permutation of the N images, every index
`r` times in a row; replica `k` reads positions `k, k + R, k + 2R, ...` and
stops after `floor(N // 256 * 256 / R)` of them. So an epoch has as many
samples as the data set (not r times as many): it shows the first
`N / r` images of its permutation, each `r` times, and the copies of one
image sit at consecutive positions, that is on different replicas of
(mostly) the same step, each copy augmented on its own.

jaxmix keeps that law with its own epoch length, the trainer's
`steps_per_epoch` full batches as without repetition (`n // B` for a
global batch B; DeiT's `(N // 256 * 256) // B` is the same whenever B is a
multiple of 256, as DeiT's 1024), and its data layout:

* `epoch_sequence`: the first `ceil(n / r)` examples of the epoch's order,
  each `r` times in a row (copy numbers 0..r-1), cut to the epoch's `n`;
* `replica_rows`: each batch is `batch_size` consecutive positions of that
  sequence laid out over the batch's replicas as DeiT's ranks read them
  (position `t` of the batch on replica `t % R`, its row `t // R` there),
  in the device-major row order of a sharded batch.

The synthetic source lays the global batch over all devices (DeiT's law
exactly); the tf.data pipeline, whose processes each read their own slice
of the split, lays each process's batch over its local devices.
"""

from __future__ import annotations

import numpy as np


def check(repeats) -> int:
  """`data.repeated_augmentation` as an int >= 1 (1: off), or ValueError."""
  if isinstance(repeats, bool) or int(repeats) != repeats or repeats < 1:
    raise ValueError(
      'data.repeated_augmentation must be an integer >= 1 (1: off; DeiT '
      f'uses 3), got {repeats!r}.'
    )
  return int(repeats)


def distinct(n: int, repeats: int) -> int:
  """Distinct examples in an epoch of `n` samples: `ceil(n / repeats)`."""
  return -(-n // repeats)


def epoch_sequence(
  order: np.ndarray, n: int, repeats: int
) -> tuple[np.ndarray, np.ndarray]:
  """The epoch's `n` samples: (examples `[n]`, copy numbers `[n]`).

  Args:
    order: the epoch's order of the examples (at least `distinct(n, r)`).
    n: samples in the epoch.
    repeats: copies of each example (r).
  """
  k = distinct(n, repeats)
  if len(order) < k:
    raise ValueError(
      f'an epoch of {n} samples with {repeats} repeats needs {k} examples; '
      f'the order has {len(order)}.'
    )
  examples = np.repeat(np.asarray(order)[:k], repeats)[:n]
  copies = np.tile(np.arange(repeats), k)[:n]
  return examples, copies


def replica_rows(batch_size: int, replicas: int) -> np.ndarray:
  """int `[batch_size]`: the batch position each row takes.

  Row `i` of replica `d = i // (batch_size / replicas)` takes position
  `(i % per) * replicas + d`: DeiT's rank `t % R`, row `t // R`.
  """
  if replicas < 1 or batch_size % replicas:
    raise ValueError(
      f'repeated augmentation lays a batch of {batch_size} over {replicas} '
      'replicas (devices); the batch must be a multiple of them.'
    )
  per = batch_size // replicas
  rows = np.arange(batch_size)
  return (rows % per) * replicas + rows // per
