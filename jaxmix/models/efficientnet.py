"""EfficientNet B0-B3 and L2 in Flax NNX, with timm's architecture.

The layer shapes are timm's (`efficientnet_b0` ... and the `tf_` variants
the ReLabel annotator used, `tf_efficientnet_l2_ns_475`), so parameter
counts are equal (B0: 5,288,548) and ported weights give the same numbers:

- stem: 3x3 conv, stride 2, BatchNorm, SiLU;
- seven stages of blocks (B0: repeats 1, 2, 2, 3, 3, 4, 1; channels 16,
  24, 40, 80, 112, 192, 320; kernels 3, 3, 5, 3, 5, 5, 3; strides 1, 2, 2,
  2, 1, 2, 1): the first a depthwise-separable block, the others inverted
  residuals with expansion 6 (1x1 expand, kxk depthwise, 1x1 project), each
  with squeeze-excite (reduced to a quarter of the block's input channels,
  SiLU then a sigmoid gate) and, where stride 1 keeps the width, a residual
  with stochastic depth (rate growing linearly with the block index);
- head: 1x1 conv to 1280 channels, BatchNorm, SiLU, global average pooling,
  dropout, linear classifier.

Width and depth multipliers (B1 1.0/1.1, B2 1.1/1.2, B3 1.2/1.4, L2 4.3/5.3)
scale channels to multiples of 8 (never below 90 % of the exact value) and
repeats up (ceil), as timm does. `tf_padding=True` pads as TensorFlow's
'SAME' (the `tf_` weights were trained so) and uses BatchNorm epsilon 1e-3;
the default is torch's symmetric padding and epsilon 1e-5. The BatchNorms
take torch's running-variance rule as an option, as every jaxmix family's
(`create_model(..., unbiased_running_var=True)`, `layers.BatchNorm`).

Like the ResNets, `features(x) -> [B, h, w, D]` is the map before global
pooling and `head` the classifier, so class activation maps and the ReLabel
annotator (the classifier as a 1x1 conv over the map) work unchanged.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmix.models.layers import (
  BN_MOMENTUM,
  CONV_INIT,
  BatchNorm,
  CNNClassifier,
  DropPath,
  check_input,
  make_head,
)

TF_BN_EPSILON = 1e-3
TORCH_BN_EPSILON = 1e-5
# B0's stages: (repeats, kernel, stride, expansion, out channels).
B0_STAGES = (
  (1, 3, 1, 1, 16),
  (2, 3, 2, 6, 24),
  (2, 5, 2, 6, 40),
  (3, 3, 2, 6, 80),
  (3, 5, 1, 6, 112),
  (4, 5, 2, 6, 192),
  (1, 3, 1, 6, 320),
)
SE_RATIO = 0.25


@dataclasses.dataclass(frozen=True)
class Scaling:
  """A member of the family: multipliers and its published settings."""

  width: float
  depth: float
  resolution: int
  dropout: float


SCALINGS = {
  'b0': Scaling(1.0, 1.0, 224, 0.2),
  'b1': Scaling(1.0, 1.1, 240, 0.2),
  'b2': Scaling(1.1, 1.2, 260, 0.3),
  'b3': Scaling(1.2, 1.4, 300, 0.3),
  'l2': Scaling(4.3, 5.3, 800, 0.5),
}


def round_channels(channels: float, multiplier: float, divisor: int = 8):
  """`channels * multiplier` to a multiple of `divisor`, >= 90 % of it."""
  value = channels * multiplier
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


class _Conv(nnx.Module):
  """A conv with torch's symmetric or TensorFlow's 'SAME' padding."""

  def __init__(self, cin, cout, k, *, stride=1, groups=1, bias=False, kw):
    tf_padding, kw = (
      kw['tf_padding'],
      {k_: v for k_, v in kw.items() if k_ not in ('tf_padding', 'eps')},
    )
    pad = 'SAME' if tf_padding else ((k // 2, k // 2), (k // 2, k // 2))
    self.conv = nnx.Conv(
      cin,
      cout,
      (k, k),
      strides=stride,
      padding=pad,
      feature_group_count=groups,
      use_bias=bias,
      kernel_init=CONV_INIT,
      **kw,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.conv(x)


def _bn(features: int, kw: dict) -> BatchNorm:
  # jaxmix's BatchNorm: torch's running-variance rule is an option (off).
  return BatchNorm(
    features,
    momentum=BN_MOMENTUM,
    epsilon=kw['eps'],
    dtype=kw['dtype'],
    param_dtype=kw['param_dtype'],
    rngs=kw['rngs'],
  )


class SqueezeExcite(nnx.Module):
  """`x * sigmoid(expand(silu(reduce(mean_{h,w} x))))`, 1x1 convs."""

  def __init__(self, channels: int, reduced: int, kw: dict):
    self.reduce = _Conv(channels, reduced, 1, bias=True, kw=kw)
    self.expand = _Conv(reduced, channels, 1, bias=True, kw=kw)

  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    return x * nnx.sigmoid(self.expand(nnx.silu(self.reduce(s))))


class MBConv(nnx.Module):
  """Inverted residual (expansion > 1) or depthwise-separable block."""

  def __init__(
    self,
    cin: int,
    cout: int,
    *,
    kernel: int,
    stride: int,
    expansion: int,
    drop_path: float,
    kw: dict,
  ):
    mid = cin * expansion
    expand = expansion != 1
    self.expand = nnx.data(_Conv(cin, mid, 1, kw=kw) if expand else None)
    self.bn_expand = nnx.data(_bn(mid, kw) if expand else None)
    self.depthwise = _Conv(mid, mid, kernel, stride=stride, groups=mid, kw=kw)
    self.bn_dw = _bn(mid, kw)
    # timm: a quarter of the block's input channels (mid / expansion).
    self.se = SqueezeExcite(mid, max(1, round(cin * SE_RATIO)), kw)
    self.project = _Conv(mid, cout, 1, kw=kw)
    self.bn_project = _bn(cout, kw)
    self.residual = stride == 1 and cin == cout
    self.drop_path = DropPath(drop_path, rngs=kw['rngs'])

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    if self.expand is not None:
      y = nnx.silu(self.bn_expand(self.expand(y)))
    y = nnx.silu(self.bn_dw(self.depthwise(y)))
    y = self.bn_project(self.project(self.se(y)))
    if self.residual:
      y = x + self.drop_path(y)
    return y


class EfficientNet(CNNClassifier):
  """EfficientNet with timm's layer shapes (see the module docstring)."""

  def __init__(
    self,
    *,
    scaling: str = 'b0',
    num_classes: int,
    tf_padding: bool = False,
    drop_path_rate: float = 0.0,
    dropout: float | None = None,
    head_features: int = 1280,
    stem_features: int = 32,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    """Builds the network.

    Args:
      scaling: 'b0', 'b1', 'b2', 'b3' or 'l2'.
      num_classes: classifier outputs.
      tf_padding: TensorFlow 'SAME' padding and BatchNorm epsilon 1e-3 (the
        `tf_` weights); otherwise torch padding and epsilon 1e-5.
      drop_path_rate: stochastic depth of the last block (timm's recipes
        train with 0.2); earlier blocks get proportionally less.
      dropout: before the classifier; default the member's published rate.
      head_features, stem_features: B0 widths of the head and the stem.
      dtype, param_dtype: compute and parameter dtypes.
      rngs: parameter and dropout randomness.
    """
    if scaling not in SCALINGS:
      raise ValueError(
        f'`scaling` must be one of {sorted(SCALINGS)}, got {scaling!r}.'
      )
    s = SCALINGS[scaling]
    kw = dict(
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
      tf_padding=tf_padding,
      eps=TF_BN_EPSILON if tf_padding else TORCH_BN_EPSILON,
    )
    stem = round_channels(stem_features, s.width)
    self.stem = _Conv(3, stem, 3, stride=2, kw=kw)
    self.bn_stem = _bn(stem, kw)
    plan = [
      (math.ceil(repeats * s.depth), k, stride, e, round_channels(c, s.width))
      for repeats, k, stride, e, c in B0_STAGES
    ]
    # (repeats, kernel, stride, expansion, channels) per stage, for the
    # mapping of timm's `blocks.<stage>.<index>` names.
    self.plan = tuple(plan)
    total = sum(p[0] for p in plan)
    blocks, cin, index = [], stem, 0
    for repeats, kernel, stride, expansion, cout in plan:
      for r in range(repeats):
        blocks.append(
          MBConv(
            cin,
            cout,
            kernel=kernel,
            stride=stride if r == 0 else 1,
            expansion=expansion,
            drop_path=drop_path_rate * index / total,
            kw=kw,
          )
        )
        cin, index = cout, index + 1
    self.blocks = nnx.List(blocks)
    features = round_channels(head_features, s.width)
    self.conv_head = _Conv(cin, features, 1, kw=kw)
    self.bn_head = _bn(features, kw)
    rate = s.dropout if dropout is None else dropout
    self.dropout = nnx.Dropout(rate, rngs=rngs)
    self.head = make_head(features, num_classes, param_dtype, rngs)
    self.num_features = features
    self.resolution = s.resolution

  def features(self, x: jax.Array) -> jax.Array:
    """The last feature map: float `[B, H, W, 3]` -> `[B, H/32, W/32, D]`."""
    check_input(x, 3)
    y = nnx.silu(self.bn_stem(self.stem(x)))
    for block in self.blocks:
      y = block(y)
    return nnx.silu(self.bn_head(self.conv_head(y)))

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits, float32 `[B, num_classes]` (dropout only in training)."""
    pooled = jnp.mean(self.features(x).astype(jnp.float32), axis=(1, 2))
    return self.head(self.dropout(pooled))
