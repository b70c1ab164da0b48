"""ConvNeXt (Liu et al. 2022) in Flax NNX, with timm's layer layout.

A stem (4x4 conv, stride 4, then LayerNorm), four stages of ConvNeXt
blocks, stages 2-4 starting with a downsampling LayerNorm + 2x2 conv of
stride 2; after the last stage, global average pooling, LayerNorm and the
classifier. A block: 7x7 depthwise conv, LayerNorm over channels, Linear to
4x the channels, GELU (exact, erf), Linear back, a per-channel layer scale
`gamma` (initialised to 1e-6), stochastic depth, residual sum. LayerNorms
use eps 1e-6. Stochastic depth grows linearly from 0 at the first block to
`drop_path_rate` at the last, per example (timm's and the official code's
`linspace`).

Initialisation as timm's: truncated normal (std 0.02) kernels, zero
biases, unit / zero LayerNorm affine parameters.

`features(x)`: `[B, H, W, 3] -> [B, H/32, W/32, dims[-1]]` (the last
stage's output, before the head's LayerNorm); `logits = head(norm(mean_{h,w}
features(x)))`. A class activation map of ConvNeXt needs the norm too, so
`head_norm` is public.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmix.models.layers import DropPath, check_input

LN_EPSILON = 1e-6
_KERNEL_INIT = nnx.initializers.truncated_normal(0.02)
_ZEROS = nnx.initializers.zeros_init()


def _layer_norm(dim: int, kw: dict) -> nnx.LayerNorm:
  return nnx.LayerNorm(dim, epsilon=LN_EPSILON, **kw)


def _conv(
  in_dim: int,
  out_dim: int,
  kernel: int,
  *,
  stride: int = 1,
  groups: int = 1,
  kw: dict,
) -> nnx.Conv:
  pad = (kernel - 1) // 2 if stride == 1 else 0
  return nnx.Conv(
    in_dim,
    out_dim,
    (kernel, kernel),
    strides=stride,
    padding=((pad, pad), (pad, pad)),
    feature_group_count=groups,
    kernel_init=_KERNEL_INIT,
    bias_init=_ZEROS,
    **kw,
  )


def _linear(in_dim: int, out_dim: int, kw: dict) -> nnx.Linear:
  return nnx.Linear(
    in_dim, out_dim, kernel_init=_KERNEL_INIT, bias_init=_ZEROS, **kw
  )


class ConvNeXtBlock(nnx.Module):
  """dwconv 7x7 -> LN -> Linear 4x -> GELU -> Linear -> gamma -> drop path."""

  def __init__(
    self,
    dim: int,
    *,
    drop_path: float,
    layer_scale_init: float,
    kw: dict,
    rngs: nnx.Rngs,
  ):
    self.conv_dw = _conv(dim, dim, 7, groups=dim, kw=kw)
    self.norm = _layer_norm(dim, kw)
    self.fc1 = _linear(dim, 4 * dim, kw)
    self.fc2 = _linear(4 * dim, dim, kw)
    self.gamma = nnx.Param(
      jnp.full((dim,), layer_scale_init, kw['param_dtype'])
    )
    self.drop_path = DropPath(drop_path, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.norm(self.conv_dw(x))
    y = self.fc2(nnx.gelu(self.fc1(y), approximate=False))
    y = y * self.gamma[...].astype(y.dtype)
    return x + self.drop_path(y)


class ConvNeXt(nnx.Module):
  """ConvNeXt classifier (`convnext_tiny`: depths 3-3-9-3, dims 96-768)."""

  def __init__(
    self,
    *,
    depths: Sequence[int] = (3, 3, 9, 3),
    dims: Sequence[int] = (96, 192, 384, 768),
    num_classes: int,
    drop_path_rate: float = 0.0,
    layer_scale_init: float = 1e-6,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if len(depths) != len(dims) or not depths:
      raise ValueError(
        f'`depths` {tuple(depths)} and `dims` {tuple(dims)} must have the '
        'same non-zero length (one entry per stage).'
      )
    if num_classes < 1:
      raise ValueError(f'`num_classes` must be >= 1, got {num_classes}.')
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.stem_conv = _conv(3, dims[0], 4, stride=4, kw=kw)
    self.stem_norm = _layer_norm(dims[0], kw)
    total = sum(depths)
    rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    downsample_norms, downsample_convs, stages = [], [], []
    k = 0
    for i, (depth, dim) in enumerate(zip(depths, dims)):
      if i > 0:
        downsample_norms.append(_layer_norm(dims[i - 1], kw))
        downsample_convs.append(_conv(dims[i - 1], dim, 2, stride=2, kw=kw))
      blocks = []
      for _ in range(depth):
        blocks.append(
          ConvNeXtBlock(
            dim,
            drop_path=rates[k],
            layer_scale_init=layer_scale_init,
            kw=kw,
            rngs=rngs,
          )
        )
        k += 1
      stages.append(nnx.List(blocks))
    self.downsample_norms = nnx.List(downsample_norms)
    self.downsample_convs = nnx.List(downsample_convs)
    self.stages = nnx.List(stages)
    # The head computes in float32 so that logits stay float32.
    head_kw = dict(dtype=jnp.float32, param_dtype=param_dtype, rngs=rngs)
    self.head_norm = _layer_norm(dims[-1], head_kw)
    self.head = _linear(dims[-1], num_classes, head_kw)

  def features(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, 3] -> [B, H/32, W/32, dims[-1]]`, the last stage's output."""
    check_input(x, 3)
    x = self.stem_norm(self.stem_conv(x))
    for i, blocks in enumerate(self.stages):
      if i > 0:
        x = self.downsample_convs[i - 1](self.downsample_norms[i - 1](x))
      for block in blocks:
        x = block(x)
    return x

  def __call__(self, x: jax.Array) -> jax.Array:
    """float32 logits `[B, num_classes]` of normalised `[B, H, W, 3]`."""
    pooled = jnp.mean(self.features(x).astype(jnp.float32), axis=(1, 2))
    return self.head(self.head_norm(pooled))
