"""The torchvision / timm state-dict names of the jaxmix models.

One table per family maps each torch key to the path of the jaxmix variable
that holds it and to the layout change between the two:

* 'conv': torch `[O, I, kh, kw]` (OIHW) <-> flax kernel `[kh, kw, I, O]`
  (HWIO).
* 'linear': torch `[out, in]` <-> flax kernel `[in, out]`.
* 'copy': the same array on both sides: biases, norm scales, BatchNorm
  running averages (torch `weight, bias, running_mean, running_var` =
  jaxmix `scale, bias, mean, var`), a ViT's `cls_token` `[1, 1, D]` and
  `pos_embed` `[1, N + 1, D]`.
* 'count': BatchNorm's `num_batches_tracked`, which jaxmix does not keep:
  ignored when reading, written as an int64 zero so that torch's strict
  loading accepts the file.

ResNets follow torchvision (`conv1`, `bn1`, `layer<s>.<i>.conv<k>`,
`.downsample.{0,1}`, `fc`), EfficientNets timm's (`conv_stem`, `bn1`,
`blocks.<stage>.<i>.{conv_pw, bn1, conv_dw, bn2, se.conv_reduce,
se.conv_expand, conv_pwl, bn3}`, the first stage's depthwise-separable
blocks `{conv_dw, bn1, se.*, conv_pw, bn2}`, `conv_head`, `bn2`,
`classifier`; depthwise kernels `[C, 1, k, k]` are the 'conv' layout of
a grouped flax kernel `[k, k, 1, C]`), ViTs timm's `VisionTransformer` as in DeiT
(`patch_embed.proj`, `blocks.<i>.{norm1, attn.qkv, attn.proj, norm2,
mlp.fc1, mlp.fc2}`, `norm`, `head`), ConvNeXts timm's (`stem.{0,1}`,
`stages.<s>.downsample.{0,1}` from the second stage on,
`stages.<s>.blocks.<i>.{gamma, conv_dw, norm, mlp.fc1, mlp.fc2}`,
`head.norm`, `head.fc`). timm splits the fused qkv projection's
output as `(3, heads, head_dim)`, as jaxmix does, so its weight needs only
the transpose of any linear layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from flax import nnx

from jaxmix.models.convnext import ConvNeXt
from jaxmix.models.efficientnet import EfficientNet
from jaxmix.models.resnet import Bottleneck, ResNet
from jaxmix.models.vit import VisionTransformer

Path = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Entry:
  """One state-dict tensor.

  Attributes:
    key: the torch name, e.g. 'layer1.0.conv1.weight'.
    path: the jaxmix variable's path in `nnx.state(model)`, or () for a
      'count' entry, which has no jaxmix variable.
    kind: 'conv', 'linear', 'copy' or 'count' (see the module docstring).
  """

  key: str
  path: Path
  kind: str


def to_torch(kind: str, value: np.ndarray) -> np.ndarray:
  """A jaxmix array in the torch layout of `kind`."""
  if kind == 'conv':
    return value.transpose(3, 2, 0, 1)
  if kind == 'linear':
    return value.T
  return value


def to_jax(kind: str, value: np.ndarray) -> np.ndarray:
  """A torch array in the jaxmix layout of `kind`."""
  if kind == 'conv':
    return value.transpose(2, 3, 1, 0)
  if kind == 'linear':
    return value.T
  return value


def torch_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
  """The torch shape of a jaxmix variable of shape `shape`."""
  return to_torch(kind, np.empty(shape, np.uint8)).shape


def _conv(key: str, path: Path) -> list[Entry]:
  return [Entry(f'{key}.weight', (*path, 'kernel'), 'conv')]


def _linear(key: str, path: Path) -> list[Entry]:
  return [
    Entry(f'{key}.weight', (*path, 'kernel'), 'linear'),
    Entry(f'{key}.bias', (*path, 'bias'), 'copy'),
  ]


def _norm(key: str, path: Path) -> list[Entry]:
  return [
    Entry(f'{key}.weight', (*path, 'scale'), 'copy'),
    Entry(f'{key}.bias', (*path, 'bias'), 'copy'),
  ]


def _batch_norm(key: str, path: Path) -> list[Entry]:
  return [
    *_norm(key, path),
    Entry(f'{key}.running_mean', (*path, 'mean'), 'copy'),
    Entry(f'{key}.running_var', (*path, 'var'), 'copy'),
    Entry(f'{key}.num_batches_tracked', (), 'count'),
  ]


def _resnet(model: ResNet) -> list[Entry]:
  entries = _conv('conv1', ('stem_conv',)) + _batch_norm('bn1', ('stem_bn',))
  # torchvision numbers blocks within stages; a stage starts at the first
  # block and at every later block with a projection shortcut (the stride-2
  # or widening block), which is the only block of a stage that has one.
  stage, index = 0, 0
  for k, block in enumerate(model.blocks):
    if k > 0 and block.shortcut is not None:
      stage, index = stage + 1, 0
    prefix, path = f'layer{stage + 1}.{index}', ('blocks', k)
    convs = 3 if isinstance(block, Bottleneck) else 2
    for c in range(1, convs + 1):
      entries += _conv(f'{prefix}.conv{c}', (*path, f'conv{c}'))
      entries += _batch_norm(f'{prefix}.bn{c}', (*path, f'bn{c}'))
    if block.shortcut is not None:
      short = (*path, 'shortcut', 'layers')
      entries += _conv(f'{prefix}.downsample.0', (*short, 0))
      entries += _batch_norm(f'{prefix}.downsample.1', (*short, 1))
    index += 1
  if stage != 3:
    raise ValueError(
      f'A torchvision ResNet has 4 stages; this model has {stage + 1}.'
    )
  return entries + _linear('fc', ('head',))


def _conv_bias(key: str, path: Path) -> list[Entry]:
  return [
    Entry(f'{key}.weight', (*path, 'kernel'), 'conv'),
    Entry(f'{key}.bias', (*path, 'bias'), 'copy'),
  ]


def _efficientnet(model: EfficientNet) -> list[Entry]:
  entries = _conv('conv_stem', ('stem', 'conv'))
  entries += _batch_norm('bn1', ('bn_stem',))
  k = 0
  for stage, (repeats, *_) in enumerate(model.plan):
    for index in range(repeats):
      prefix, path = f'blocks.{stage}.{index}', ('blocks', k)
      block = model.blocks[k]
      se = [
        *_conv_bias(
          f'{prefix}.se.conv_reduce', (*path, 'se', 'reduce', 'conv')
        ),
        *_conv_bias(
          f'{prefix}.se.conv_expand', (*path, 'se', 'expand', 'conv')
        ),
      ]
      dw = _conv(f'{prefix}.conv_dw', (*path, 'depthwise', 'conv'))
      if block.expand is None:  # timm's DepthwiseSeparableConv
        entries += dw + _batch_norm(f'{prefix}.bn1', (*path, 'bn_dw')) + se
        entries += _conv(f'{prefix}.conv_pw', (*path, 'project', 'conv'))
        entries += _batch_norm(f'{prefix}.bn2', (*path, 'bn_project'))
      else:  # timm's InvertedResidual
        entries += _conv(f'{prefix}.conv_pw', (*path, 'expand', 'conv'))
        entries += _batch_norm(f'{prefix}.bn1', (*path, 'bn_expand'))
        entries += dw + _batch_norm(f'{prefix}.bn2', (*path, 'bn_dw')) + se
        entries += _conv(f'{prefix}.conv_pwl', (*path, 'project', 'conv'))
        entries += _batch_norm(f'{prefix}.bn3', (*path, 'bn_project'))
      k += 1
  entries += _conv('conv_head', ('conv_head', 'conv'))
  entries += _batch_norm('bn2', ('bn_head',))
  return entries + _linear('classifier', ('head',))


def _vit(model: VisionTransformer) -> list[Entry]:
  entries = [
    Entry('cls_token', ('cls_token',), 'copy'),
    Entry('pos_embed', ('pos_embed',), 'copy'),
    Entry('patch_embed.proj.weight', ('patch_embed', 'kernel'), 'conv'),
    Entry('patch_embed.proj.bias', ('patch_embed', 'bias'), 'copy'),
  ]
  for i in range(len(model.blocks)):
    prefix, path = f'blocks.{i}', ('blocks', i)
    entries += _norm(f'{prefix}.norm1', (*path, 'norm1'))
    entries += _linear(f'{prefix}.attn.qkv', (*path, 'attn', 'qkv'))
    entries += _linear(f'{prefix}.attn.proj', (*path, 'attn', 'proj'))
    entries += _norm(f'{prefix}.norm2', (*path, 'norm2'))
    entries += _linear(f'{prefix}.mlp.fc1', (*path, 'fc1'))
    entries += _linear(f'{prefix}.mlp.fc2', (*path, 'fc2'))
  entries += _norm('norm', ('norm',)) + _linear('head', ('head',))
  if model.aux_head is not None:  # token labeling's head, LV-ViT's name
    entries += _linear('aux_head', ('aux_head',))
  return entries


def _convnext(model: ConvNeXt) -> list[Entry]:
  entries = _conv_bias('stem.0', ('stem_conv',))
  entries += _norm('stem.1', ('stem_norm',))
  for i, blocks in enumerate(model.stages):
    if i > 0:
      down = f'stages.{i}.downsample'
      entries += _norm(f'{down}.0', ('downsample_norms', i - 1))
      entries += _conv_bias(f'{down}.1', ('downsample_convs', i - 1))
    for j in range(len(blocks)):
      prefix, path = f'stages.{i}.blocks.{j}', ('stages', i, j)
      entries.append(Entry(f'{prefix}.gamma', (*path, 'gamma'), 'copy'))
      entries += _conv_bias(f'{prefix}.conv_dw', (*path, 'conv_dw'))
      entries += _norm(f'{prefix}.norm', (*path, 'norm'))
      entries += _linear(f'{prefix}.mlp.fc1', (*path, 'fc1'))
      entries += _linear(f'{prefix}.mlp.fc2', (*path, 'fc2'))
  entries += _norm('head.norm', ('head_norm',))
  return entries + _linear('head.fc', ('head',))


def entries_of(model: nnx.Module) -> list[Entry]:
  """The state-dict entries of `model`, in torch's state-dict order.

  Args:
    model: a jaxmix `ResNet` (resnet18 ... resnet152), `EfficientNet`
      (efficientnet_b0 ... b3, tf_efficientnet_b0 ... b3, l2) or
      `VisionTransformer` (vit_ti16, vit_s16).

  Raises:
    TypeError: for models without a torchvision / timm counterpart.
  """
  if isinstance(model, ResNet):
    return _resnet(model)
  if isinstance(model, VisionTransformer):
    return _vit(model)
  if isinstance(model, EfficientNet):
    return _efficientnet(model)
  if isinstance(model, ConvNeXt):
    return _convnext(model)
  raise TypeError(
    f'{type(model).__name__} has no torchvision / timm state-dict layout; '
    'weights move in and out of PyTorch for ResNet, EfficientNet, '
    'VisionTransformer and ConvNeXt.'
  )


def head_entries(model: nnx.Module) -> list[Entry]:
  """The classifier's entries ('fc.*' or 'head.*', and a ViT's 'aux_head.*').

  ConvNeXt's is 'head.fc.*' only: its 'head.norm' belongs to the body.
  """
  if isinstance(model, ConvNeXt):
    return [e for e in entries_of(model) if e.key.startswith('head.fc.')]
  head = {ResNet: 'fc', EfficientNet: 'classifier'}.get(type(model), 'head')
  heads = {head, 'aux_head'} if head == 'head' else {head}
  return [e for e in entries_of(model) if e.key.split('.')[0] in heads]


def torch_shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
  """`{torch name: torch shape}` of `model` (or of its `nnx.eval_shape`)."""
  flat = dict(nnx.to_flat_state(nnx.state(model)))
  return {
    e.key: () if e.kind == 'count' else torch_shape(e.kind, flat[e.path].shape)
    for e in entries_of(model)
  }
