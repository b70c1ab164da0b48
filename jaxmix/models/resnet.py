"""ResNets in Flax NNX: torchvision-style ImageNet ResNets, CIFAR ResNets.

ImageNet models follow torchvision's ResNet v1.5 (the stride of a bottleneck
block sits on its 3x3 conv), with the same layer shapes and therefore the same
parameter counts (ResNet-50: 25,557,032). Padding is explicit and symmetric,
as in torch, so ported weights give the same numbers.

CIFAR models follow He et al. (2016), Section 4.2: a 3x3 stem with 16
channels, three stages of `n` basic blocks with 16/32/64 channels, depth
`6n + 2`, parameter-free zero-padding shortcuts ("option A") by default.

Every CNN here has `features(x) -> [B, h, w, D]` (the last feature map before
global average pooling) and `head` (an `nnx.Linear` D -> num_classes), so a
class activation map is `features(x) @ head.kernel + head.bias`. Modes:
`model.train()` uses batch statistics in BatchNorm and updates the running
averages; `model.eval()` uses the running averages.
"""

from collections.abc import Sequence

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


def _projection(
  in_features: int, out_features: int, stride: int, kw: dict
) -> nnx.Sequential:
  """The 1x1 conv + BN shortcut of torchvision's `downsample`."""
  return nnx.Sequential(
    conv(in_features, out_features, 1, stride=stride, **kw),
    batch_norm(out_features, **kw),
  )


class BasicBlock(nnx.Module):
  """Two 3x3 convs. Shortcut: 'projection' (1x1 conv + BN) or 'pad'.

  'pad' is He et al.'s option A: subsample spatially by the stride, then
  zero-pad the channels; it has no parameters.
  """

  expansion = 1

  def __init__(
    self,
    in_features: int,
    features: int,
    *,
    stride: int = 1,
    shortcut: str = 'projection',
    zero_init_residual: bool = False,
    dtype: jnp.dtype,
    param_dtype: jnp.dtype,
    rngs: nnx.Rngs,
  ):
    if shortcut not in ('projection', 'pad'):
      raise ValueError(
        f"`shortcut` must be 'projection' or 'pad', got {shortcut!r}."
      )
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.conv1 = conv(in_features, features, 3, stride=stride, **kw)
    self.bn1 = batch_norm(features, **kw)
    self.conv2 = conv(features, features, 3, **kw)
    self.bn2 = batch_norm(features, zero_scale=zero_init_residual, **kw)
    self.stride = stride
    self.out_features = features
    project = shortcut == 'projection' and (
      stride != 1 or in_features != features
    )
    self.shortcut = nnx.data(
      _projection(in_features, features, stride, kw) if project else None
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    if self.shortcut is not None:
      identity = self.shortcut(x)
    else:
      s = self.stride
      identity = pad_channels(x[:, ::s, ::s], self.out_features)
    return nnx.relu(y + identity)


class Bottleneck(nnx.Module):
  """1x1 -> 3x3 (strided, v1.5) -> 1x1 (x4 channels), projection shortcut."""

  expansion = 4

  def __init__(
    self,
    in_features: int,
    features: int,
    *,
    stride: int = 1,
    zero_init_residual: bool = False,
    dtype: jnp.dtype,
    param_dtype: jnp.dtype,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    out = features * self.expansion
    self.conv1 = conv(in_features, features, 1, **kw)
    self.bn1 = batch_norm(features, **kw)
    self.conv2 = conv(features, features, 3, stride=stride, **kw)
    self.bn2 = batch_norm(features, **kw)
    self.conv3 = conv(features, out, 1, **kw)
    self.bn3 = batch_norm(out, zero_scale=zero_init_residual, **kw)
    project = stride != 1 or in_features != out
    self.shortcut = nnx.data(
      _projection(in_features, out, stride, kw) if project else None
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = nnx.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    identity = x if self.shortcut is None else self.shortcut(x)
    return nnx.relu(y + identity)


class ResNet(CNNClassifier):
  """torchvision-style ImageNet ResNet (v1.5).

  `features(x)`: `[B, H, W, 3] -> [B, H/32, W/32, 512 * expansion]`.
  """

  def __init__(
    self,
    block: type[BasicBlock] | type[Bottleneck],
    stage_sizes: Sequence[int],
    *,
    num_classes: int,
    zero_init_residual: bool = False,
    width: int = 64,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.stem_conv = conv(3, width, 7, stride=2, **kw)
    self.stem_bn = batch_norm(width, **kw)
    blocks = []
    in_features = width
    for i, num_blocks in enumerate(stage_sizes):
      features = width * 2**i
      for j in range(num_blocks):
        stride = 2 if i > 0 and j == 0 else 1
        blocks.append(
          block(
            in_features,
            features,
            stride=stride,
            zero_init_residual=zero_init_residual,
            **kw,
          )
        )
        in_features = features * block.expansion
    self.blocks = nnx.List(blocks)
    self.head = make_head(in_features, num_classes, param_dtype, rngs)

  def features(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, 3] -> [B, H/32, W/32, D]`, after the last block's ReLU."""
    check_input(x, 3)
    x = nnx.relu(self.stem_bn(self.stem_conv(x)))
    x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for block in self.blocks:
      x = block(x)
    return x


class CIFARResNet(CNNClassifier):
  """He et al. (2016) CIFAR ResNet of depth `6n + 2` (20, 32, 44, 56, 110).

  `features(x)`: `[B, H, W, 3] -> [B, H/4, W/4, 4 * width]`.
  """

  def __init__(
    self,
    depth: int = 20,
    *,
    num_classes: int,
    shortcut: str = 'pad',
    width: int = 16,
    zero_init_residual: bool = False,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if depth < 8 or (depth - 2) % 6:
      raise ValueError(
        f'`depth` of a CIFAR ResNet must be 6n + 2 with n >= 1, got {depth}.'
      )
    n = (depth - 2) // 6
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.stem_conv = conv(3, width, 3, **kw)
    self.stem_bn = batch_norm(width, **kw)
    blocks = []
    in_features = width
    for i in range(3):
      features = width * 2**i
      for j in range(n):
        blocks.append(
          BasicBlock(
            in_features,
            features,
            stride=2 if i > 0 and j == 0 else 1,
            shortcut=shortcut,
            zero_init_residual=zero_init_residual,
            **kw,
          )
        )
        in_features = features
    self.blocks = nnx.List(blocks)
    self.head = make_head(in_features, num_classes, param_dtype, rngs)

  def features(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, 3] -> [B, H/4, W/4, 4 * width]`."""
    check_input(x, 3)
    x = nnx.relu(self.stem_bn(self.stem_conv(x)))
    for block in self.blocks:
      x = block(x)
    return x


class TinyCNN(CNNClassifier):
  """Three conv-BN-ReLU layers (strides 1, 2, 2), for tests and smoke runs.

  `features(x)`: `[B, H, W, 3] -> [B, H/4, W/4, 4 * width]`.
  """

  def __init__(
    self,
    *,
    num_classes: int,
    width: int = 16,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    widths = (width, 2 * width, 4 * width)
    ins = (3, *widths[:-1])
    self.convs = nnx.List(
      [
        conv(i, o, 3, stride=1 if k == 0 else 2, **kw)
        for k, (i, o) in enumerate(zip(ins, widths))
      ]
    )
    self.bns = nnx.List([batch_norm(o, **kw) for o in widths])
    self.head = make_head(widths[-1], num_classes, param_dtype, rngs)

  def features(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, 3] -> [B, ceil(H/4), ceil(W/4), 4 * width]`."""
    check_input(x, 3)
    for c, bn in zip(self.convs, self.bns):
      x = nnx.relu(bn(c(x)))
    return x
