"""Tests of jaxmix.evaluate.seed_stats: means over seeds, paired intervals."""

import math

import numpy as np
import pytest

from jaxmix.evaluate import seed_stats

T_975_2 = 4.302652729911275  # Student's t, 97.5 % quantile, 2 dof (tables)


def test_summary_is_mean_and_sample_std():
  s = seed_stats.summarize([1.0, 2.0, 6.0])
  assert s.mean == 3.0 and s.count == 3
  assert s.std == pytest.approx(math.sqrt(7.0))  # ddof 1: (4 + 1 + 9) / 2
  assert math.isnan(seed_stats.summarize([5.0]).std)
  with pytest.raises(ValueError, match='non-empty'):
    seed_stats.summarize([])


def test_paired_difference_exact_values():
  d = seed_stats.paired_difference([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])
  half = T_975_2 / math.sqrt(3.0)  # differences 2, 3, 4: sd 1
  assert d.mean == pytest.approx(3.0)
  assert d.low == pytest.approx(3.0 - half) and d.high == pytest.approx(
    3.0 + half
  )
  assert d.distinguishable and d.count == 3
  assert seed_stats.t_quantile(3) == pytest.approx(T_975_2, rel=1e-9)


def test_pairing_cancels_what_both_share():
  # Seed effects of +-10 shared by both: unpaired, the gain of 1 would be
  # lost in them; paired, it is exact.
  baseline = np.array([50.0, 60.0, 70.0])
  d = seed_stats.paired_difference(baseline + 1.0, baseline)
  assert (d.mean, d.low, d.high) == pytest.approx((1.0, 1.0, 1.0))
  noisy = seed_stats.paired_difference([51.0, 59.0, 73.0], baseline)
  assert noisy.low < 0 < noisy.high and not noisy.distinguishable


def test_interval_covers_the_true_difference_95_percent_of_the_time():
  rng = np.random.default_rng(0)
  trials, n, true = 4000, 3, 0.7
  covered = 0
  for _ in range(trials):
    base = rng.normal(0, 5, n)  # shared seed effects, large
    method = base + true + rng.normal(0, 1, n)
    d = seed_stats.paired_difference(method, base)
    covered += d.low <= true <= d.high
  # Binomial(4000, 0.95): standard deviation 0.0034; 4 of them.
  assert abs(covered / trials - 0.95) < 0.014


def test_one_seed_is_a_point_and_not_distinguishable():
  d = seed_stats.paired_difference([2.0], [1.0])
  assert (d.mean, d.low, d.high, d.count) == (1.0, 1.0, 1.0, 1)
  assert not d.distinguishable


def test_mismatched_seeds_are_refused():
  with pytest.raises(ValueError, match='one length'):
    seed_stats.paired_difference([1.0, 2.0], [1.0])
  with pytest.raises(ValueError, match='>= 2 seeds'):
    seed_stats.t_quantile(1)
