"""TF's stateless draws for many seeds at once, bit for bit (TensorFlow ops).

`tf.random.stateless_uniform`, `stateless_fold_in` and `stateless_split`
take one seed each, so a tf.data map draws per example, one small graph of
ops per example. This module computes the same values for a whole `[N]`
block of seeds with one set of vectorised ops: the Philox-4x32-10 generator
that those ops run on CPU (the 'auto_select' algorithm), the seed scrambling
of `StatelessRandomGetKeyCounter`, and the conversions of the uniform
kernels (int64 from two words, float64 from 52 bits, float32 from 23 bits).
`tests/philox_test.py` checks every function against the TF op it mirrors.

Shapes: a seed is int64 `[..., 2]`; results broadcast over its batch dims.
"""

from __future__ import annotations

import tensorflow as tf

# Philox-4x32 multipliers and Weyl key increments (Salmon et al., 2011).
_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
# The fixed key with which TF scrambles a user seed into key and counter.
_SCRAMBLE_KEY = (0x3EC8F720, 0x02461E29)
_MASK = 0xFFFFFFFF
_ROUNDS = 10

Words = list[tf.Tensor]  # 32-bit words held in uint64 tensors


def _u64(value) -> tf.Tensor:
  return tf.constant(value, tf.uint64)


def philox(counter: Words, key: Words) -> Words:
  """Philox-4x32-10 of four counter words under two key words.

  Args:
    counter: 4 uint64 tensors holding 32-bit words (broadcastable).
    key: 2 uint64 tensors holding 32-bit words.

  Returns:
    4 uint64 tensors holding the 32-bit output words.
  """
  c0, c1, c2, c3 = counter
  k0, k1 = key
  mask, shift = _u64(_MASK), _u64(32)
  for r in range(_ROUNDS):
    if r:
      k0 = tf.bitwise.bitwise_and(k0 + _u64(_W0), mask)
      k1 = tf.bitwise.bitwise_and(k1 + _u64(_W1), mask)
    p0, p1 = _u64(_M0) * c0, _u64(_M1) * c2
    c0, c1, c2, c3 = (
      tf.bitwise.bitwise_xor(
        tf.bitwise.bitwise_xor(tf.bitwise.right_shift(p1, shift), c1), k0
      ),
      tf.bitwise.bitwise_and(p1, mask),
      tf.bitwise.bitwise_xor(
        tf.bitwise.bitwise_xor(tf.bitwise.right_shift(p0, shift), c3), k1
      ),
      tf.bitwise.bitwise_and(p0, mask),
    )
  return [c0, c1, c2, c3]


def _words(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(low, high) 32-bit words of int64 `x`, as uint64."""
  x = tf.bitcast(tf.cast(x, tf.int64), tf.uint64)
  return tf.bitwise.bitwise_and(x, _u64(_MASK)), tf.bitwise.right_shift(
    x, _u64(32)
  )


def random_bits(seed: tf.Tensor, calls: int) -> tf.Tensor:
  """The first `4 * calls` 32-bit words a stateless op draws from `seed`.

  Args:
    seed: int64 `[..., 2]`.
    calls: Philox blocks (four words each).

  Returns:
    uint64 `[..., 4 * calls]` holding 32-bit words, in the ops' order.
  """
  s0_lo, s0_hi = _words(seed[..., 0])
  s1_lo, s1_hi = _words(seed[..., 1])
  key = [_u64(k) for k in _SCRAMBLE_KEY]
  mix = philox([s0_lo, s0_hi, s1_lo, s1_hi], key)
  # Key = the first two words; counter = (0, 0, third, fourth), then the
  # op's blocks count up from it in the lowest word.
  key = [w[..., None] for w in mix[:2]]
  index = tf.constant(list(range(calls)), tf.uint64)
  zero = tf.zeros_like(index)
  words = philox([index, zero, mix[2][..., None], mix[3][..., None]], key)
  out = tf.stack(words, axis=-1)  # [..., calls, 4]
  return tf.reshape(out, tf.concat([tf.shape(seed)[:-1], [4 * calls]], 0))


def full_int64(seed: tf.Tensor, count: int) -> tf.Tensor:
  """`stateless_uniform([count], seed, tf.int64, minval=None, maxval=None)`.

  Returns:
    int64 `[..., count]`.
  """
  bits = random_bits(seed, (count + 1) // 2)[..., : 2 * count]
  lo, hi = bits[..., 0::2], bits[..., 1::2]
  return tf.bitcast(
    tf.bitwise.bitwise_or(lo, tf.bitwise.left_shift(hi, _u64(32))), tf.int64
  )


def uniform_float64(seed: tf.Tensor, count: int) -> tf.Tensor:
  """`stateless_uniform([count], seed, dtype=tf.float64)`: float64 `[..., count]`."""
  bits = random_bits(seed, (count + 1) // 2)[..., : 2 * count]
  # 52 mantissa bits: 20 from the first word, 32 from the second.
  high = tf.bitwise.left_shift(
    tf.bitwise.bitwise_and(bits[..., 0::2], _u64(0xFFFFF)), _u64(32)
  )
  mantissa = tf.bitwise.bitwise_or(high, bits[..., 1::2])
  one = tf.bitwise.bitwise_or(mantissa, _u64(1023 << 52))
  return tf.bitcast(one, tf.float64) - 1.0


def uniform_float32(seed: tf.Tensor, count: int) -> tf.Tensor:
  """`stateless_uniform([count], seed)`: float32 `[..., count]`."""
  bits = random_bits(seed, (count + 3) // 4)[..., :count]
  one = tf.bitwise.bitwise_or(
    tf.bitwise.bitwise_and(bits, _u64(0x7FFFFF)), _u64(127 << 23)
  )
  return tf.bitcast(tf.cast(one, tf.uint32), tf.float32) - 1.0


def fold_in(seed: tf.Tensor, data: tf.Tensor) -> tf.Tensor:
  """`tf.random.experimental.stateless_fold_in(seed, data)`, int64 data.

  Returns:
    int64 `[..., 2]`.
  """
  first = full_int64(seed, 1)[..., 0]
  return tf.stack([first, tf.cast(data, tf.int64)], axis=-1)


def split(seed: tf.Tensor, num: int) -> tf.Tensor:
  """`tf.random.experimental.stateless_split(seed, num)`: int64 `[..., num, 2]`."""
  pairs = full_int64(seed, 2 * num)
  return tf.reshape(pairs, tf.concat([tf.shape(seed)[:-1], [num, 2]], 0))
