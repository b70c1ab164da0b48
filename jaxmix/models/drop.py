"""Drops inside residual networks: stochastic depth and DropBlock.

Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"):
the residual branch of block `l` of `L` survives with probability
`p_l = 1 - (l / L) (1 - p_L)`, a linear decay from 1 at the input to `p_L`
at the last block (`huang_drop_rates`). Huang et al. drop a block for the
whole mini-batch and scale the branch by `p_l` at test time; here the kept
branch is scaled by `1 / p_l` while training instead (the same expectation),
so inference is the identity. `per_example=True` draws one gate per example
(timm's `drop_path`, the DeiT / ConvNeXt convention).

DropBlock (Ghiasi et al. 2018), as tensorflow/tpu's ResNet defines it:
block centres are drawn with rate

  gamma = (1 - keep_prob) * H * W / (k**2 * (H - k + 1) * (W - k + 1))

among the positions whose k x k block lies inside the map (independently
per example and channel), each centre zeroes its k x k block (a max-pool of
the seeds), and the kept units are scaled by (number of units) / (number
kept) of the whole tensor. The keep probability is scheduled linearly from
1 at step 0 to its final value at the last step
(`dropblock_keep_prob`); the step is counted by the model itself in a
`ScheduleStep` variable, which travels with the BatchNorm statistics.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class ScheduleStep(nnx.BatchStat):
  """A count of training forward passes, carried like BatchNorm statistics.

  A subclass of `nnx.BatchStat` so that the trainer carries it from step to
  step (and checkpoints it) with no change; torch state dicts ignore it.
  """


def huang_drop_rates(final_rate: float, num_blocks: int) -> list[float]:
  """Drop rates of blocks 1..L: `(l / L) * final_rate` (Huang et al.).

  Args:
    final_rate: `1 - p_L`, the drop rate of the last block, in [0, 1).
    num_blocks: L, the number of residual blocks.

  Returns:
    L rates; the first is `final_rate / L`, the last `final_rate`.
  """
  if not 0.0 <= final_rate < 1.0:
    raise ValueError(f'`drop_path_rate` must be in [0, 1), got {final_rate}.')
  return [final_rate * (i + 1) / num_blocks for i in range(num_blocks)]


def drop_path(
  key: jax.Array, x: jax.Array, rate: float, *, per_example: bool
) -> jax.Array:
  """Zeroes a residual branch with probability `rate`, else scales it.

  Args:
    key: PRNG key.
    x: the branch, `[B, ...]`.
    rate: drop probability.
    per_example: one gate per example (timm) or one for the batch (Huang).

  Returns:
    `x * gate / (1 - rate)`, gate ~ Bernoulli(1 - rate), same shape and dtype.
  """
  keep = 1.0 - rate
  shape = (x.shape[0],) + (1,) * (x.ndim - 1) if per_example else ()
  gate = jax.random.bernoulli(key, keep, shape)
  return jnp.where(gate, x / keep, 0).astype(x.dtype)


class StochasticDepth(nnx.Module):
  """Stochastic depth of one residual branch (see the module docstring).

  `deterministic` is switched by `model.train()` / `model.eval()`.
  """

  def __init__(self, rate: float, *, per_example: bool, rngs: nnx.Rngs):
    if not 0.0 <= rate < 1.0:
      raise ValueError(f'`drop_path_rate` must be in [0, 1), got {rate}.')
    self.rate = rate
    self.per_example = per_example
    self.deterministic = False
    self.rngs = rngs['dropout'].fork() if rate > 0 else nnx.data(None)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.deterministic or self.rate == 0.0:
      return x
    return drop_path(self.rngs(), x, self.rate, per_example=self.per_example)


def dropblock_gamma(
  keep_prob: float | jax.Array, height: int, width: int, block_size: int
) -> float | jax.Array:
  """The seed rate that drops `1 - keep_prob` of the units (no overlaps).

  `block_size` is clipped to the map's smaller side, as the references do.
  """
  k = min(block_size, height, width)
  valid = (height - k + 1) * (width - k + 1)
  return (1.0 - keep_prob) * height * width / (k * k * valid)


def valid_centers(height: int, width: int, block_size: int) -> jax.Array:
  """bool `[H, W]`: the centres whose k x k block lies inside the map."""
  k = min(block_size, height, width)

  def inside(n: int) -> jax.Array:
    i = jnp.arange(n)
    return (i >= k // 2) & (i < n - (k - 1) // 2)

  return inside(height)[:, None] & inside(width)[None, :]


def block_mask(seeds: jax.Array, block_size: int) -> jax.Array:
  """The kept-unit mask of block centres: `1 - maxpool_k(seeds)`.

  Args:
    seeds: bool or {0, 1} `[B, H, W, C]`, 1 at the centres of dropped blocks.
    block_size: k; clipped to the map's smaller side.

  Returns:
    float32 `[B, H, W, C]`, 0 on every unit within a k x k block around a
    seed ('SAME' max-pool: for even k the block reaches one further down
    and right), 1 elsewhere.
  """
  _, h, w, _ = seeds.shape
  k = min(block_size, h, w)
  dropped = jax.lax.reduce_window(
    seeds.astype(jnp.float32),
    0.0,
    jax.lax.max,
    (1, k, k, 1),
    (1, 1, 1, 1),
    'SAME',
  )
  return 1.0 - dropped


def drop_block(
  key: jax.Array,
  x: jax.Array,
  keep_prob: float | jax.Array,
  block_size: int,
) -> jax.Array:
  """DropBlock of a feature map (tensorflow/tpu's law, module docstring).

  Args:
    key: PRNG key.
    x: `[B, H, W, C]`.
    keep_prob: the target fraction of kept units (may be traced).
    block_size: side k of the dropped squares.

  Returns:
    `x * mask * mask.size / mask.sum()`, same shape and dtype as `x`.
  """
  if x.ndim != 4:
    raise ValueError(f'DropBlock needs [B, H, W, C] maps, got {x.shape}.')
  _, h, w, _ = x.shape
  gamma = dropblock_gamma(keep_prob, h, w, block_size)
  seeds = jax.random.bernoulli(key, gamma, x.shape)
  seeds &= valid_centers(h, w, block_size)[None, :, :, None]
  mask = block_mask(seeds, block_size)
  scale = mask.size / jnp.maximum(jnp.sum(mask), 1.0)
  return (x * (mask * scale).astype(x.dtype)).astype(x.dtype)


def dropblock_keep_prob(
  step: jax.Array,
  total_steps: int,
  final_keep_prob: float,
  group: int,
) -> jax.Array:
  """tensorflow/tpu's scheduled keep probability of ResNet group 1..4.

  The base keep probability falls linearly from 1 at step 0 to
  `final_keep_prob` at `total_steps`; group g drops `4 ** (4 - g)` times
  less than group 4 (whose map has a quarter of group 3's units).

  Args:
    step: the number of training steps so far (int scalar).
    total_steps: the length of the run.
    final_keep_prob: the keep probability at the end, e.g. 0.9.
    group: the ResNet block group, 1..4.

  Returns:
    float32 scalar.
  """
  ratio = jnp.asarray(step, jnp.float32) / total_steps
  base = 1.0 - ratio * (1.0 - final_keep_prob)
  return 1.0 - (1.0 - base) / 4.0 ** (4 - group)


class DropBlock(nnx.Module):
  """DropBlock with a keep probability given at each call.

  `deterministic` is switched by `model.train()` / `model.eval()`.
  """

  def __init__(self, block_size: int, *, rngs: nnx.Rngs):
    if block_size < 1:
      raise ValueError(f'`dropblock_size` must be >= 1, got {block_size}.')
    self.block_size = block_size
    self.deterministic = False
    self.rngs = rngs['dropout'].fork()

  def __call__(self, x: jax.Array, keep_prob: jax.Array) -> jax.Array:
    if self.deterministic:
      return x
    return drop_block(self.rngs(), x, keep_prob, self.block_size)
