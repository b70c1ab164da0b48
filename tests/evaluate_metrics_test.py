"""Tests of jaxmix.evaluate.metrics, .imagenet_c and .ood on hand counts."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmix.evaluate import imagenet_c, metrics, ood


def _ints(tally):
  return int(tally.correct), int(tally.total)


def test_top_k_tally_counts_exactly_and_skips_padding():
  logits = jnp.array(
    [
      [0.1, 0.9, 0.0, 0.0],  # top1 = 1, top2 = {1, 0}
      [0.5, 0.1, 0.3, 0.0],  # top1 = 0, top2 = {0, 2}
      [0.0, 0.1, 0.2, 0.9],  # top1 = 3, top2 = {3, 2}
      [0.9, 0.0, 0.0, 0.1],  # padding
    ]
  )
  labels = jnp.array([1, 2, 0, 0])
  mask = jnp.array([True, True, True, False])
  assert _ints(metrics.top_k_tally(logits, labels, k=1, mask=mask)) == (1, 3)
  assert _ints(metrics.top_k_tally(logits, labels, k=2, mask=mask)) == (2, 3)
  assert _ints(metrics.top_k_tally(logits, labels, k=4, mask=mask)) == (3, 3)
  assert _ints(metrics.top_k_tally(logits, labels, k=1)) == (2, 4)
  jitted = jax.jit(functools.partial(metrics.top_k_tally, k=2))
  assert _ints(jitted(logits, labels, mask=mask)) == (2, 3)


def test_tally_adds_batches_and_gives_rates():
  total = metrics.Tally(3, 4).plus(metrics.Tally(np.int32(1), 4))
  assert total.accuracy == 0.5
  per_entry = metrics.Tally(np.array([1, 0, 2]), np.array([2, 0, 2]))
  np.testing.assert_array_equal(per_entry.rates(), [0.5, np.nan, 1.0])
  assert np.isnan(metrics.Tally(0, 0).accuracy)


def test_bad_inputs_name_the_argument():
  with pytest.raises(ValueError, match='`logits`'):
    metrics.top_k_tally(jnp.zeros((3,)), jnp.zeros((3,), int))
  with pytest.raises(ValueError, match='`labels`'):
    metrics.top_k_tally(jnp.zeros((3, 4)), jnp.zeros((2,), int))
  with pytest.raises(ValueError, match='`mask`'):
    metrics.top_k_tally(
      jnp.zeros((3, 4)), jnp.zeros((3,), int), mask=jnp.ones((4,), bool)
    )
  with pytest.raises(ValueError, match='`k`'):
    metrics.top_k_tally(jnp.zeros((3, 4)), jnp.zeros((3,), int), k=5)


def test_real_tally_excludes_empty_label_sets():
  logits = jnp.eye(4)[jnp.array([0, 1, 2, 3, 0])] * 5.0  # predictions
  real = metrics.multi_hot([[0, 2], [2], [], [3], [0]], 4)
  mask = jnp.array([True, True, True, True, False])
  # Image 0 right (0 in {0, 2}), 1 wrong, 2 excluded (empty), 3 right,
  # 4 padding.
  assert _ints(metrics.real_tally(logits, real, mask=mask)) == (2, 3)


def test_multi_hot_from_padded_array_and_errors():
  padded = np.array([[3, 1, -1], [-1, -1, -1]])
  np.testing.assert_array_equal(
    metrics.multi_hot(padded, 4), [[0, 1, 0, 1], [0, 0, 0, 0]]
  )
  with pytest.raises(ValueError, match=r'label_sets\[0\]'):
    metrics.multi_hot([[5]], 4)


def test_multilabel_tally_drops_problematic_and_is_lenient_on_unclear():
  logits = jnp.eye(3)[jnp.array([0, 1, 2, 2])] * 3.0
  correct = metrics.multi_hot([[0], [0], [1], [2]], 3)
  unclear = metrics.multi_hot([[], [1], [], []], 3)
  problematic = jnp.array([False, False, False, True])
  lenient = metrics.multilabel_tally(logits, correct, unclear, problematic)
  strict = metrics.multilabel_tally(
    logits, correct, unclear, problematic, lenient_unclear=False
  )
  assert _ints(lenient) == (2, 3)  # image 1's unclear label counts
  assert _ints(strict) == (1, 3)


def test_multilabel_class_tally_gives_class_balanced_accuracy():
  logits = jnp.eye(3)[jnp.array([0, 0, 1, 1, 1])] * 3.0
  correct = metrics.multi_hot([[0], [0], [0], [1], [2]], 3)
  unclear = np.zeros((5, 3), bool)
  problematic = jnp.zeros((5,), bool)
  original = jnp.array([0, 0, 0, 1, 2])
  tally = metrics.multilabel_class_tally(
    logits, correct, unclear, problematic, original
  )
  np.testing.assert_array_equal(tally.correct, [2, 1, 0])
  np.testing.assert_array_equal(tally.total, [3, 1, 1])
  assert tally.accuracy == pytest.approx(3 / 5)
  expected = (2 / 3 + 1 + 0) / 3
  assert metrics.class_balanced_accuracy(tally) == pytest.approx(expected)


def test_subset_tally_takes_argmax_inside_the_subset():
  logits = jnp.array(
    [
      [9.0, 1.0, 2.0, 0.0, 3.0],  # best overall 0; in {1, 2, 4}: 4
      [9.0, 5.0, 2.0, 0.0, 3.0],  # in the subset: 1
      [0.0, 1.0, 2.0, 9.0, 0.0],  # in the subset: 2
    ]
  )
  labels = jnp.array([4, 2, 2])
  subset = metrics.subset_indices(['b', 'c', 'e'], ['a', 'b', 'c', 'd', 'e'])
  np.testing.assert_array_equal(subset, [1, 2, 4])
  assert _ints(metrics.subset_tally(logits, labels, subset)) == (2, 3)
  assert _ints(metrics.top_k_tally(logits, labels)) == (0, 3)
  # Top-2 in the subset: {4, 2}, {1, 4}, {2, 1}.
  assert _ints(metrics.subset_tally(logits, labels, subset, k=2)) == (2, 3)
  assert _ints(metrics.subset_tally(logits, labels, subset, k=3)) == (3, 3)
  with pytest.raises(ValueError, match='not in `class_wnids`'):
    metrics.subset_indices(['z'], ['a'])


def test_subset_from_labels():
  np.testing.assert_array_equal(
    metrics.subset_from_labels([4, 1, 4, 2], expected_size=3), [1, 2, 4]
  )
  with pytest.raises(ValueError, match='expected 200'):
    metrics.subset_from_labels([1, 2])


def test_mce_on_a_tiny_table():
  errors = {'fog': [0.1, 0.2, 0.3, 0.4, 0.5], 'snow': [0.5] * 5}
  reference = {'fog': 0.6, 'snow': [0.2, 0.4, 0.6, 0.8, 1.0]}
  ce = imagenet_c.corruption_errors(errors, reference=reference)
  assert ce['fog'] == pytest.approx(1.5 / 3.0)
  assert ce['snow'] == pytest.approx(2.5 / 3.0)
  mce = imagenet_c.mean_corruption_error(
    errors, reference=reference, corruptions=('fog', 'snow')
  )
  assert mce == pytest.approx((0.5 + 2.5 / 3.0) / 2)
  accuracy = imagenet_c.mean_corruption_accuracy(
    {'fog': [1.0] * 5, 'snow': [0.5] * 5}, corruptions=('fog', 'snow')
  )
  assert accuracy == pytest.approx(0.75)


def test_mce_against_the_alexnet_table():
  table = imagenet_c.ALEXNET_MEAN_ERRORS
  assert tuple(table) == imagenet_c.IMAGENET_C_CORRUPTIONS
  assert len(table) == 15
  assert table['gaussian_noise'] == 0.886428
  as_alexnet = {c: [e] * 5 for c, e in table.items()}
  assert imagenet_c.mean_corruption_error(as_alexnet) == pytest.approx(1.0)
  half = {c: [e / 2] * 5 for c, e in table.items()}
  assert imagenet_c.mean_corruption_error(half) == pytest.approx(0.5)
  with pytest.raises(ValueError, match='lacks corruptions'):
    imagenet_c.mean_corruption_error({'fog': [0.5] * 5})
  with pytest.raises(ValueError, match='5 values'):
    imagenet_c.corruption_errors({'fog': [0.5] * 4})
  with pytest.raises(ValueError, match='fractions'):
    imagenet_c.corruption_errors({'fog': [50.0] * 5})


def _pairwise_auroc(positives, negatives):
  wins = sum(
    1.0 if p > n else 0.5 if p == n else 0.0
    for p, n in itertools.product(positives, negatives)
  )
  return wins / (len(positives) * len(negatives))


def test_auroc_matches_the_pairwise_count_with_ties():
  rng = np.random.default_rng(0)
  for _ in range(5):
    positives = rng.integers(0, 6, size=37).astype(float)
    negatives = rng.integers(0, 4, size=23).astype(float)
    assert ood.auroc(positives, negatives) == pytest.approx(
      _pairwise_auroc(positives, negatives), abs=1e-12
    )
  assert ood.auroc([1.0, 1.0], [1.0]) == 0.5


def test_tnr_at_tpr95_on_a_planted_example():
  positives = np.arange(1, 101, dtype=float)  # threshold: 95th largest = 6
  negatives = np.arange(10, dtype=float)  # 0..5 lie below 6
  assert ood.tnr_at_tpr(positives, negatives) == pytest.approx(0.6)
  assert ood.tnr_at_tpr(positives, negatives, tpr=1.0) == pytest.approx(0.1)


def test_detection_accuracy_matches_brute_force():
  rng = np.random.default_rng(1)
  positives = rng.integers(0, 8, size=29).astype(float)
  negatives = rng.integers(0, 5, size=31).astype(float)
  best = max(
    0.5 * (np.mean(positives >= t) + np.mean(negatives < t))
    for t in np.arange(-1, 10)
  )
  assert ood.detection_accuracy(positives, negatives) == pytest.approx(best)


def test_ood_metrics_of_separated_and_of_softmax_scores():
  assert ood.ood_metrics([0.9, 0.8], [0.1, 0.2]) == {
    'tnr_at_tpr95': 1.0,
    'auroc': 1.0,
    'detection_accuracy': 1.0,
  }
  scores = ood.max_softmax_scores(jnp.array([[0.0, 0.0], [10.0, 0.0]]))
  np.testing.assert_allclose(scores, [0.5, 1 / (1 + np.exp(-10.0))], rtol=1e-6)
  with pytest.raises(ValueError, match='`out_scores`'):
    ood.auroc([1.0], [np.nan])


def test_the_eval_step_and_the_suites_count_top_k_alike():
  """One tally: `eval_step`'s counts are `top_k_tally`'s, ties included."""
  from jaxmix.train import accuracy

  logits = jax.random.normal(jax.random.key(0), (64, 7))
  logits = logits.at[:8].set(0.0)  # ties: lower index first
  labels = jax.random.randint(jax.random.key(1), (64,), 0, 7)
  mask = jnp.arange(64) < 50
  top1, top5 = accuracy.top_k_correct(logits, labels, (1, 5))
  for k, hits in ((1, top1), (5, top5)):
    tally = metrics.top_k_tally(logits, labels, k=k, mask=mask)
    assert int(tally.correct) == int(jnp.sum(hits & mask))
    order = np.argsort(-np.asarray(logits), axis=-1, kind='stable')[:, :k]
    want = (order == np.asarray(labels)[:, None]).any(-1) & np.asarray(mask)
    assert int(tally.correct) == int(want.sum())
  with pytest.raises(ValueError, match=r'ks=\(0,\)'):
    accuracy.top_k_correct(logits, labels, (0,))
