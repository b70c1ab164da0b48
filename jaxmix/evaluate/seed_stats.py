"""Means over seeds and paired differences with 95 % intervals.

A method's gain over the baseline is measured seed by seed: run s of the
method and run s of the baseline share the seed (the same initial weights,
the same data order), so their difference cancels the variation both share.
The interval is Student's t over the per-seed differences:

  d_s = method_s - baseline_s,   mean(d) +- t_{0.975, n-1} * sd(d) / sqrt(n)

with the sample standard deviation (ddof 1). A difference is
distinguishable from zero when its interval excludes zero. With n = 3 seeds
t_{0.975, 2} = 4.30: only differences of about 2.5 standard deviations of
the per-seed difference count.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

CONFIDENCE = 0.95


class Summary(NamedTuple):
  """Mean and sample standard deviation of one quantity over seeds."""

  mean: float
  std: float  # ddof 1; nan for one seed.
  count: int


class PairedDifference(NamedTuple):
  """A method minus the baseline, paired by seed, with its interval."""

  mean: float
  low: float
  high: float
  count: int

  @property
  def distinguishable(self) -> bool:
    """Whether the interval excludes zero (needs >= 2 seeds)."""
    return self.count >= 2 and (self.low > 0 or self.high < 0)


def summarize(values: Sequence[float]) -> Summary:
  """Mean and standard deviation (ddof 1) of per-seed values [n]."""
  x = np.asarray(values, np.float64)
  if x.ndim != 1 or not len(x):
    raise ValueError(f'Need a non-empty 1-D sequence, got shape {x.shape}.')
  std = float(x.std(ddof=1)) if len(x) > 1 else float('nan')
  return Summary(float(x.mean()), std, len(x))


def t_quantile(count: int, confidence: float = CONFIDENCE) -> float:
  """Two-sided Student's t quantile for `count` paired values."""
  from scipy import stats

  if count < 2:
    raise ValueError(f'An interval needs >= 2 seeds, got {count}.')
  return float(stats.t.ppf(0.5 + confidence / 2, count - 1))


def paired_difference(
  method: Sequence[float],
  baseline: Sequence[float],
  confidence: float = CONFIDENCE,
) -> PairedDifference:
  """Method minus baseline over seeds [n] (same order), t interval.

  With one seed the interval is the point itself (not distinguishable).
  """
  a = np.asarray(method, np.float64)
  b = np.asarray(baseline, np.float64)
  if a.shape != b.shape or a.ndim != 1 or not len(a):
    raise ValueError(
      f'Need two 1-D sequences of one length, got {a.shape} and {b.shape}.'
    )
  d = a - b
  mean = float(d.mean())
  if len(d) == 1:
    return PairedDifference(mean, mean, mean, 1)
  half = t_quantile(len(d), confidence) * d.std(ddof=1) / np.sqrt(len(d))
  return PairedDifference(mean, mean - half, mean + half, len(d))
