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

from jaxmix.models.drop import (
  DropBlock,
  ScheduleStep,
  StochasticDepth,
  dropblock_keep_prob,
  huang_drop_rates,
)
from jaxmix.models.layers import (
  CNNClassifier,
  batch_norm,
  check_input,
  conv,
  make_head,
  pad_channels,
)
from jaxmix.models.manifold_mixup import MixFn, mix_if_at


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
    drop_path: float = 0.0,
    per_example_drop: bool = False,
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
    self.drop_path = StochasticDepth(
      drop_path, per_example=per_example_drop, rngs=rngs
    )

  def __call__(
    self, x: jax.Array, keep_prob: jax.Array | None = None
  ) -> jax.Array:
    """The block (`keep_prob`: no DropBlock in basic blocks; unused)."""
    del keep_prob
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = self.drop_path(self.bn2(self.conv2(y)))
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
    drop_path: float = 0.0,
    per_example_drop: bool = False,
    dropblock_size: int | None = None,
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
    self.drop_path = StochasticDepth(
      drop_path, per_example=per_example_drop, rngs=rngs
    )
    self.dropblock = nnx.data(
      None if dropblock_size is None else DropBlock(dropblock_size, rngs=rngs)
    )

  def __call__(
    self, x: jax.Array, keep_prob: jax.Array | None = None
  ) -> jax.Array:
    """The block; `keep_prob` is DropBlock's (ignored without DropBlock)."""

    def drop(t: jax.Array) -> jax.Array:
      # tensorflow/tpu's bottleneck: after both inner BN-ReLUs, after the
      # last BN, and on the shortcut.
      return t if self.dropblock is None else self.dropblock(t, keep_prob)

    y = drop(nnx.relu(self.bn1(self.conv1(x))))
    y = drop(nnx.relu(self.bn2(self.conv2(y))))
    y = self.drop_path(drop(self.bn3(self.conv3(y))))
    identity = drop(x if self.shortcut is None else self.shortcut(x))
    return nnx.relu(y + identity)


class ResNet(CNNClassifier):
  """torchvision-style ImageNet ResNet (v1.5).

  `features(x)`: `[B, H, W, 3] -> [B, H/32, W/32, 512 * expansion]`.

  Regularisers (all off by default; `jaxmix.models.drop`):

  * `drop_path_rate`: stochastic depth, block l of L dropped with rate
    `(l / L) * drop_path_rate` (Huang et al.'s linear decay to
    `p_L = 1 - drop_path_rate`), for the whole batch (Huang et al.) or,
    with `per_example_drop=True`, per example (timm).
  * `dropblock_keep_prob` < 1: DropBlock of `dropblock_size` blocks in the
    bottleneck blocks of `dropblock_groups` (1-based), its keep probability
    going linearly from 1 to `dropblock_keep_prob` over `dropblock_steps`
    training steps (tensorflow/tpu's schedule; groups below 4 drop
    `4 ** (4 - g)` times less). The model counts its training forward
    passes in `schedule_step`.
  """

  def __init__(
    self,
    block: type[BasicBlock] | type[Bottleneck],
    stage_sizes: Sequence[int],
    *,
    num_classes: int,
    zero_init_residual: bool = False,
    width: int = 64,
    drop_path_rate: float = 0.0,
    per_example_drop: bool = False,
    dropblock_keep_prob: float = 1.0,
    dropblock_size: int = 7,
    dropblock_groups: Sequence[int] = (3, 4),
    dropblock_steps: int | None = None,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    dropblock = dropblock_keep_prob < 1.0
    if not 0.0 < dropblock_keep_prob <= 1.0:
      raise ValueError(
        f'`dropblock_keep_prob` must be in (0, 1], got {dropblock_keep_prob}.'
      )
    if dropblock:
      if block is not Bottleneck:
        raise ValueError(
          'DropBlock is defined for bottleneck ResNets (tensorflow/tpu adds '
          f'none to basic blocks); this model has {block.__name__}s.'
        )
      if dropblock_steps is None or dropblock_steps < 1:
        raise ValueError(
          '`dropblock_steps` (the run length of the keep-probability '
          f'schedule) must be >= 1 with DropBlock, got {dropblock_steps}.'
        )
      bad = [g for g in dropblock_groups if g not in range(1, 5)]
      if bad or not dropblock_groups:
        raise ValueError(
          '`dropblock_groups` must be a non-empty subset of 1..4, got '
          f'{tuple(dropblock_groups)}.'
        )
    self.stem_conv = conv(3, width, 7, stride=2, **kw)
    self.stem_bn = batch_norm(width, **kw)
    rates = huang_drop_rates(drop_path_rate, sum(stage_sizes))
    extra = {}
    blocks, groups = [], []
    in_features = width
    for i, num_blocks in enumerate(stage_sizes):
      features = width * 2**i
      if dropblock:
        group_drop = i + 1 in dropblock_groups
        extra = {'dropblock_size': dropblock_size if group_drop else None}
      for j in range(num_blocks):
        stride = 2 if i > 0 and j == 0 else 1
        blocks.append(
          block(
            in_features,
            features,
            stride=stride,
            zero_init_residual=zero_init_residual,
            drop_path=rates[len(blocks)],
            per_example_drop=per_example_drop,
            **extra,
            **kw,
          )
        )
        groups.append(i + 1)
        in_features = features * block.expansion
    self.blocks = nnx.List(blocks)
    self.block_groups = tuple(groups)
    self.dropblock = (
      (dropblock_steps, dropblock_keep_prob) if dropblock else None
    )
    self.schedule_step = nnx.data(
      ScheduleStep(jnp.zeros((), jnp.int32)) if dropblock else None
    )
    self.deterministic = False
    self.head = make_head(in_features, num_classes, param_dtype, rngs)

  def dropblock_keep_probs(self) -> dict[int, jax.Array]:
    """DropBlock's keep probability of each block group at the current step."""
    steps, final = self.dropblock
    step = self.schedule_step[...]
    return {
      g: dropblock_keep_prob(step, steps, final, g)
      for g in sorted(set(self.block_groups))
    }

  def features(
    self,
    x: jax.Array,
    *,
    mix_at: jax.Array | None = None,
    mix_fn: MixFn | None = None,
  ) -> jax.Array:
    """`[B, H, W, 3] -> [B, H/32, W/32, D]`, after the last block's ReLU.

    Manifold Mixup (`jaxmix.models.manifold_mixup`): with `mix_fn`, the
    hidden state at point `mix_at` (0: the input, g: the output of block
    group g) is replaced by `mix_fn` of it.
    """
    check_input(x, 3)
    keep = {}
    if self.dropblock is not None and not self.deterministic:
      keep = self.dropblock_keep_probs()
      self.schedule_step[...] += 1
    x = mix_if_at(x, 0, mix_at, mix_fn)
    x = nnx.relu(self.stem_bn(self.stem_conv(x)))
    x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    groups = self.block_groups
    for k, (block, group) in enumerate(zip(self.blocks, groups)):
      x = block(x, keep.get(group))
      if k + 1 == len(groups) or groups[k + 1] != group:  # a group's end
        x = mix_if_at(x, group, mix_at, mix_fn)
    return x

  def __call__(
    self,
    x: jax.Array,
    *,
    mix_at: jax.Array | None = None,
    mix_fn: MixFn | None = None,
  ) -> jax.Array:
    """float32 logits `[B, K]`; `mix_at` / `mix_fn` as in `features`."""
    features = self.features(x, mix_at=mix_at, mix_fn=mix_fn)
    pooled = jnp.mean(features.astype(jnp.float32), axis=(1, 2))
    return self.head(pooled)


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

  def features(
    self,
    x: jax.Array,
    *,
    mix_at: jax.Array | None = None,
    mix_fn: MixFn | None = None,
  ) -> jax.Array:
    """`[B, H, W, 3] -> [B, ceil(H/4), ceil(W/4), 4 * width]`.

    Manifold Mixup as `ResNet.features`: point 0 is the input, point k the
    output of conv layer k (1, 2, 3).
    """
    check_input(x, 3)
    x = mix_if_at(x, 0, mix_at, mix_fn)
    for k, (c, bn) in enumerate(zip(self.convs, self.bns), start=1):
      x = mix_if_at(nnx.relu(bn(c(x))), k, mix_at, mix_fn)
    return x

  def __call__(
    self,
    x: jax.Array,
    *,
    mix_at: jax.Array | None = None,
    mix_fn: MixFn | None = None,
  ) -> jax.Array:
    """float32 logits `[B, K]`; `mix_at` / `mix_fn` as in `features`."""
    features = self.features(x, mix_at=mix_at, mix_fn=mix_fn)
    return self.head(jnp.mean(features.astype(jnp.float32), axis=(1, 2)))
