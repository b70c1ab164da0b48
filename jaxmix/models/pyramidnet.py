"""PyramidNet for CIFAR (Han, Kim and Kim, CVPR 2017) in Flax NNX.

The widths grow additively by `alpha / (3 n)` per block instead of doubling
at each stage, with `n` blocks per stage: `n = (depth - 2) / 9` for bottleneck
blocks (1x1 -> 3x3 -> 1x1, x4 channels out) and `(depth - 2) / 6` for basic
blocks. Blocks are BN-first with no ReLU before the first conv and a BN after
the last conv. Shortcuts are parameter-free: a 2x2 average pool (ceil mode)
where the block strides, then zero-padding of the channels. The stem is a 3x3
conv and a BN without ReLU; after the last stage come BN and ReLU.

PyramidNet-200 with alpha 240 (bottleneck) is the CIFAR model of the CutMix
paper (26.8M parameters for CIFAR-100 in the paper). The widths are rounded
with Python's `round` on the running float width, as the reference code does,
so the layer shapes match it.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmix.models.layers import (
  CNNClassifier,
  batch_norm,
  check_input,
  conv,
  make_head,
  pad_channels,
)


def _avg_pool_ceil(x: jax.Array) -> jax.Array:
  """2x2 average pool, stride 2, ceil mode: partial windows average fewer."""
  pad = ((0, x.shape[1] % 2), (0, x.shape[2] % 2))
  return nnx.avg_pool(
    x, (2, 2), strides=(2, 2), padding=pad, count_include_pad=False
  )


class PyramidBlock(nnx.Module):
  """One pyramidal residual unit; `out_features = features * expansion`."""

  def __init__(
    self,
    in_features: int,
    features: int,
    *,
    stride: int,
    bottleneck: bool,
    dtype: jnp.dtype,
    param_dtype: jnp.dtype,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.stride = stride
    self.out_features = features * (4 if bottleneck else 1)
    if self.out_features < in_features:
      raise ValueError(
        f'A pyramidal block cannot narrow: {in_features} -> '
        f'{self.out_features} channels; increase `alpha`.'
      )
    norms = [batch_norm(in_features, **kw)]
    if bottleneck:
      convs = [
        conv(in_features, features, 1, **kw),
        conv(features, features, 3, stride=stride, **kw),
        conv(features, self.out_features, 1, **kw),
      ]
    else:
      convs = [
        conv(in_features, features, 3, stride=stride, **kw),
        conv(features, features, 3, **kw),
      ]
    norms += [batch_norm(c.out_features, **kw) for c in convs]
    self.convs = nnx.List(convs)
    self.norms = nnx.List(norms)

  def __call__(self, x: jax.Array) -> jax.Array:
    # BN -> conv -> (BN -> ReLU -> conv)* -> BN.
    y = self.norms[0](x)
    for i, c in enumerate(self.convs):
      if i > 0:
        y = nnx.relu(y)
      y = self.norms[i + 1](c(y))
    identity = _avg_pool_ceil(x) if self.stride != 1 else x
    return y + pad_channels(identity, self.out_features)


class PyramidNet(CNNClassifier):
  """CIFAR PyramidNet with additive widening.

  `features(x)`: `[B, H, W, 3] -> [B, H/4, W/4, D]` after the final BN-ReLU,
  with `D = round(16 + alpha) * (4 if bottleneck else 1)`.
  """

  def __init__(
    self,
    depth: int = 200,
    alpha: float = 240,
    *,
    num_classes: int,
    bottleneck: bool = True,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    per_block = 9 if bottleneck else 6
    if depth < per_block + 2 or (depth - 2) % per_block:
      raise ValueError(
        f'`depth` must be {per_block}n + 2 (n >= 1) for '
        f'bottleneck={bottleneck}, got {depth}.'
      )
    if alpha < 0:
      raise ValueError(f'`alpha` must be >= 0, got {alpha}.')
    n = (depth - 2) // per_block
    add_rate = alpha / (3 * n)
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.stem_conv = conv(3, 16, 3, **kw)
    self.stem_bn = batch_norm(16, **kw)
    blocks = []
    in_features, width = 16, 16.0
    for stage in range(3):
      for j in range(n):
        width += add_rate
        block = PyramidBlock(
          in_features,
          round(width),
          stride=2 if stage > 0 and j == 0 else 1,
          bottleneck=bottleneck,
          **kw,
        )
        blocks.append(block)
        in_features = block.out_features
    self.blocks = nnx.List(blocks)
    self.final_bn = batch_norm(in_features, **kw)
    self.head = make_head(in_features, num_classes, param_dtype, rngs)

  def features(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, 3] -> [B, H/4, W/4, D]`."""
    check_input(x, 3)
    x = self.stem_bn(self.stem_conv(x))
    for block in self.blocks:
      x = block(x)
    return nnx.relu(self.final_bn(x))
