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


# ------------------------------------------------------------------ class ids

_BAD = jnp.array([0, 5, 2, -1])  # 5 and -1 are outside [0, 5)


@pytest.mark.parametrize(
  'call',
  [
    lambda y: jaxmix.mixup(
      jax.random.key(0), jnp.ones((4, 4, 4, 1)), y, num_classes=5
    ),
    lambda y: jaxmix.cutmix(
      jax.random.key(0), jnp.ones((4, 4, 4, 1)), y, num_classes=5
    ),
    lambda y: jaxmix.mixup_or_cutmix(
      jax.random.key(0),
      jnp.ones((4, 4, 4, 1)),
      y,
      num_classes=5,
      mixup_alpha=1.0,
      cutmix_alpha=1.0,
    ),
    lambda y: jaxmix.videomix(
      jax.random.key(0), jnp.ones((4, 2, 4, 4, 1)), y, num_classes=5
    ),
    lambda y: jaxmix.saliency_cutmix(
      jax.random.key(0),
      jnp.ones((4, 4, 4, 1)),
      y,
      num_classes=5,
      saliency=jnp.ones((4, 2, 2)),
    ),
    lambda y: jaxmix.mixed_cross_entropy(
      jnp.zeros((4, 5)), y, jaxmix.sample_mixup(jax.random.key(0), batch_size=4)
    ),
    lambda y: jaxmix.two_target_cross_entropy(
      jnp.zeros((4, 5)), y, jnp.zeros(4, jnp.int32), 0.5
    ),
    lambda y: jaxmix.check_class_ids(y, 5),
  ],
  ids=[
    'mixup',
    'cutmix',
    'mixup_or_cutmix',
    'videomix',
    'saliency_cutmix',
    'mixed_cross_entropy',
    'two_target_cross_entropy',
    'check_class_ids',
  ],
)
def test_concrete_class_ids_outside_the_range_are_named(call):
  with pytest.raises(
    ValueError,
    match=r'\[0, 5\), got \[5, -1\] at positions'
    r' \[1, 3\]',
  ):
    call(_BAD)


def test_the_partner_labels_of_the_two_target_loss_are_checked_too():
  with pytest.raises(ValueError, match=r'`partner_labels`.*got \[7\]'):
    jaxmix.two_target_cross_entropy(
      jnp.zeros((2, 5)), jnp.array([0, 1]), jnp.array([7, 1]), 0.5
    )


def test_traced_class_ids_are_caught_under_checkify():
  from jax.experimental import checkify

  def step(labels):
    labels = jaxmix.check_class_ids(labels, 5)
    return jaxmix.one_hot(labels, 5).sum()

  checked = jax.jit(checkify.checkify(step, errors=checkify.user_checks))
  error, _ = checked(jnp.array([0, 4, 1]))
  assert error.get() is None
  error, _ = checked(_BAD)
  with pytest.raises(
    checkify.JaxRuntimeError, match='value 5 at flat position 1'
  ):
    error.throw()
  # Plain jit: the ops cannot raise on traced labels; they document it.
  out = jax.jit(
    lambda y: jaxmix.cutmix(
      jax.random.key(0), jnp.ones((4, 4, 4, 1)), y, num_classes=5
    )
  )(_BAD)
  assert out[1].shape == (4, 5)
