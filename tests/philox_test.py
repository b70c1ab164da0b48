"""jaxmix.data.philox equals TF's per-seed stateless ops, bit for bit."""

import numpy as np
import pytest
import tensorflow as tf

from jaxmix.data import philox

N = 64


@pytest.fixture(scope='module')
def seeds():
  rng = np.random.default_rng(0)
  out = rng.integers(-(2**63), 2**63 - 1, size=(N, 2), dtype=np.int64)
  # Edge words: zeros, all ones, the int64 extremes.
  out[:4] = [[0, 0], [-1, -1], [-(2**63), 2**63 - 1], [1, 2**32]]
  return out


def _per_seed(op, seeds):
  return np.stack([op(tf.constant(s)).numpy() for s in seeds])


@pytest.mark.parametrize('count', [1, 3, 40])
def test_uniform_float64(seeds, count):
  want = _per_seed(
    lambda s: tf.random.stateless_uniform([count], s, dtype=tf.float64), seeds
  )
  got = philox.uniform_float64(tf.constant(seeds), count).numpy()
  np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('count', [1, 5])
def test_uniform_float32(seeds, count):
  want = _per_seed(lambda s: tf.random.stateless_uniform([count], s), seeds)
  got = philox.uniform_float32(tf.constant(seeds), count).numpy()
  np.testing.assert_array_equal(got, want)
  # A scalar draw is the first of any longer one.
  scalar = _per_seed(lambda s: tf.random.stateless_uniform([], s), seeds)
  np.testing.assert_array_equal(got[:, 0], scalar)


@pytest.mark.parametrize('count', [1, 4, 7])
def test_full_int64(seeds, count):
  want = _per_seed(
    lambda s: tf.random.stateless_uniform(
      [count], s, dtype=tf.int64, minval=None, maxval=None
    ),
    seeds,
  )
  got = philox.full_int64(tf.constant(seeds), count).numpy()
  np.testing.assert_array_equal(got, want)


def test_fold_in_and_split(seeds):
  data = np.arange(N, dtype=np.int64) * 7919 - 5
  want_fold = np.stack(
    [
      tf.random.experimental.stateless_fold_in(s, d).numpy()
      for s, d in zip(seeds, data)
    ]
  )
  folded = philox.fold_in(tf.constant(seeds), tf.constant(data))
  np.testing.assert_array_equal(folded.numpy(), want_fold)
  want_split = _per_seed(
    lambda s: tf.random.experimental.stateless_split(s, 5), want_fold
  )
  np.testing.assert_array_equal(philox.split(folded, 5).numpy(), want_split)


def test_batch_dims_broadcast(seeds):
  block = tf.constant(seeds.reshape(4, N // 4, 2))
  got = philox.uniform_float64(block, 6).numpy().reshape(N, 6)
  flat = philox.uniform_float64(tf.constant(seeds), 6).numpy()
  np.testing.assert_array_equal(got, flat)


def test_in_a_graph_equals_eager(seeds):
  graph = tf.function(lambda s: philox.split(s, 3))
  np.testing.assert_array_equal(
    graph(tf.constant(seeds)).numpy(),
    philox.split(tf.constant(seeds), 3).numpy(),
  )
