"""Tests of jaxmix._src.cmo: the minority stream's law and the paste.

The host-side weights and the epoch window are tested with the trainer
(tests/cmo_train_test.py).
"""

import jax
import numpy as np
import pytest

import jaxmix
from jaxmix.data import minority
from tests.augment_cases import make_batch

KEY = jax.random.key(0)
NUM_DEVICES = 8


def _long_tail(num_classes=5, ratio=100):
  """Class c has round(ratio ** (-c / (K - 1)) * 200) examples."""
  counts = np.round(
    200 * ratio ** (-np.arange(num_classes) / (num_classes - 1))
  )
  classes = np.repeat(np.arange(num_classes), counts.astype(int))
  return classes, counts


@pytest.mark.parametrize('alpha', [1.0, 0.5])
def test_sampled_class_frequencies_follow_one_over_count_to_the_alpha(alpha):
  classes, counts = _long_tail()
  weights = minority.minority_example_weights(
    classes, num_classes=5, alpha=alpha
  )
  np.testing.assert_allclose(weights.sum(), 1.0)
  # Every example of a class has weight proportional to 1 / n_c ** alpha.
  np.testing.assert_allclose(
    weights / weights[0], (counts[classes] / counts[0]) ** -alpha, rtol=1e-9
  )
  picks = jaxmix.sample_minority_indices(KEY, weights, num_samples=40000)
  frequencies = np.bincount(classes[np.asarray(picks)], minlength=5) / 40000
  expected = counts ** (1 - alpha) / (counts ** (1 - alpha)).sum()
  np.testing.assert_allclose(frequencies, expected, atol=0.01)


def _streams(batch=8):
  images, labels = make_batch(batch_size=batch, height=12, width=10)
  minority, minority_labels = make_batch(
    batch_size=batch, height=12, width=10, seed=1
  )
  return images, labels, minority, minority_labels


@pytest.mark.parametrize('per_example', [False, True])
def test_cmo_pastes_the_same_position_and_weights_labels_by_area(per_example):
  images, labels, minority, minority_labels = _streams()
  for key in jax.random.split(KEY, 3):
    out, out_labels = jaxmix.cmo(
      key,
      images,
      labels,
      minority,
      minority_labels,
      prob=1.0,
      per_example=per_example,
    )
    for i in range(8):
      inside = np.asarray((out[i] != images[i]).any(-1))
      np.testing.assert_array_equal(
        np.asarray(out[i])[inside], np.asarray(minority[i])[inside]
      )
      np.testing.assert_array_equal(
        np.asarray(out[i])[~inside], np.asarray(images[i])[~inside]
      )
      kept = 1 - inside.mean()
      expected = kept * labels[i] + (1 - kept) * minority_labels[i]
      np.testing.assert_allclose(out_labels[i], expected, atol=1e-6)
