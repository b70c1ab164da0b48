"""Tests of jaxmix._src.labels: one-hot, smoothing and soft cross-entropy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix


def test_one_hot_with_smoothing_exact_values():
  targets = jaxmix.one_hot(jnp.array([1, 3]), 4, smoothing=0.1)
  np.testing.assert_allclose(
    targets,
    [[0.025, 0.925, 0.025, 0.025], [0.025, 0.025, 0.025, 0.925]],
    rtol=1e-6,
  )
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)


def test_one_hot_dtype_and_errors():
  assert jaxmix.one_hot(jnp.array([0]), 3, dtype=jnp.bfloat16).dtype == (
    jnp.bfloat16
  )
  with pytest.raises(TypeError, match='integer class indices'):
    jaxmix.one_hot(jnp.array([0.5]), 3)
  with pytest.raises(ValueError, match='`num_classes` must be a positive'):
    jaxmix.one_hot(jnp.array([0]), 0)
  with pytest.raises(ValueError, match=r'`smoothing` must be in \[0, 1\]'):
    jaxmix.one_hot(jnp.array([0]), 3, smoothing=1.5)


def test_smoothing_commutes_with_mixing():
  a, b = jaxmix.one_hot(jnp.array([0, 2]), 3)
  weight, smoothing = 0.3, 0.1
  mixed_then_smoothed = jaxmix.smooth_labels(
    weight * a + (1 - weight) * b, smoothing
  )
  smoothed_then_mixed = weight * jaxmix.smooth_labels(a, smoothing) + (
    1 - weight
  ) * jaxmix.smooth_labels(b, smoothing)
  np.testing.assert_allclose(
    mixed_then_smoothed, smoothed_then_mixed, rtol=1e-6
  )


def test_smooth_labels_rejects_integer_labels():
  with pytest.raises(TypeError, match='must be float'):
    jaxmix.smooth_labels(jnp.array([[0, 1]]), 0.1)


def test_soft_cross_entropy_matches_the_definition():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
  labels = jnp.array([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]])
  expected = -np.sum(
    np.asarray(labels) * np.asarray(jax.nn.log_softmax(logits)), axis=-1
  )
  loss = jaxmix.soft_cross_entropy(logits, labels)
  assert loss.shape == (2,) and loss.dtype == jnp.float32
  np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_soft_cross_entropy_is_linear_in_the_target():
  # The CutMix loss w * CE(y_a) + (1 - w) * CE(y_b) equals CE(mixed target).
  logits = jax.random.normal(jax.random.key(0), (4, 5))
  y_a = jaxmix.one_hot(jnp.array([0, 1, 2, 3]), 5)
  y_b = jaxmix.one_hot(jnp.array([4, 4, 0, 1]), 5)
  weight = 0.37
  mixed = jaxmix.soft_cross_entropy(logits, weight * y_a + (1 - weight) * y_b)
  separate = weight * jaxmix.soft_cross_entropy(logits, y_a) + (
    1 - weight
  ) * jaxmix.soft_cross_entropy(logits, y_b)
  np.testing.assert_allclose(mixed, separate, rtol=1e-5)


def test_soft_cross_entropy_is_stable_in_bfloat16_logits():
  logits = jnp.array([[1000.0, -1000.0]], jnp.bfloat16)
  loss = jaxmix.soft_cross_entropy(logits, jnp.array([[1.0, 0.0]]))
  assert np.isfinite(loss).all() and float(loss[0]) == pytest.approx(0.0)


def test_soft_cross_entropy_shape_errors():
  with pytest.raises(
    ValueError, match=r'same shape, got \(2, 3\) and \(2, 4\)'
  ):
    jaxmix.soft_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
