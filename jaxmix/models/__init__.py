"""Model registry: `create_model(name, ...)` and the `MODELS` table.

Every model maps a normalised float `[B, H, W, 3]` batch to float32 logits
`[B, num_classes]`. `model.train()` / `model.eval()` switch BatchNorm (batch
statistics and running-average updates vs running averages) and dropout /
drop-path. The mode is a static attribute, so it is part of the graphdef of
`nnx.split(model)`: split again after switching modes.

CNNs also have `model.features(x) -> [B, h, w, D]` and `model.head` (an
`nnx.Linear`), so `logits == mean_{h,w}(features(x)) @ head.kernel +
head.bias` and the class activation map is `features(x) @ head.kernel +
head.bias`.

BatchNorm uses torch's settings (momentum 0.1, i.e. flax momentum 0.9, eps
1e-5); `unbiased_running_var=True` also takes torch's running-variance rule
(`jaxmix.models.layers.BatchNorm`; on for models loaded from torch). Under `jax.jit` with the batch sharded over devices its statistics are
those of the global batch (synchronised BN); the papers' PyTorch runs used
per-GPU statistics.

Weights move in and out of PyTorch (torchvision ResNets, timm DeiT/ViT,
EfficientNets and ConvNeXt-T) as
state dicts: `load_torch_weights(name, path)` and `save_torch_weights(model,
path)` (`jaxmix.models.torch_interop`).

With `dtype=jnp.bfloat16, param_dtype=jnp.float32` the convolutions, matmuls
and normalisations compute in bfloat16 on float32 parameters; the pooled
features, head and logits stay float32.
"""

import functools
from collections.abc import Callable

import jax.numpy as jnp
from flax import nnx

from jaxmix.models import layers
from jaxmix.models.convnext import ConvNeXt
from jaxmix.models.efficientnet import EfficientNet
from jaxmix.models.pyramidnet import PyramidNet
from jaxmix.models.resnet import (
  BasicBlock,
  Bottleneck,
  CIFARResNet,
  ResNet,
  TinyCNN,
)
from jaxmix.models.torch_interop import (
  assign_torch_weights,
  check_torch_weights,
  load_torch_weights,
  read_state_dict,
  save_torch_weights,
  torch_state_dict,
)
from jaxmix.models.vit import VisionTransformer

__all__ = [
  'MODELS',
  'CIFARResNet',
  'ConvNeXt',
  'EfficientNet',
  'PyramidNet',
  'ResNet',
  'TinyCNN',
  'VisionTransformer',
  'assign_torch_weights',
  'check_torch_weights',
  'create_model',
  'load_torch_weights',
  'read_state_dict',
  'save_torch_weights',
  'torch_state_dict',
]

_p = functools.partial

#: Model constructors by name; `create_model(name, ...)` builds from it.
MODELS: dict[str, Callable[..., nnx.Module]] = {
  'resnet18': _p(ResNet, BasicBlock, (2, 2, 2, 2)),
  'resnet34': _p(ResNet, BasicBlock, (3, 4, 6, 3)),
  'resnet50': _p(ResNet, Bottleneck, (3, 4, 6, 3)),
  'resnet101': _p(ResNet, Bottleneck, (3, 4, 23, 3)),
  'resnet152': _p(ResNet, Bottleneck, (3, 8, 36, 3)),
  'cifar_resnet': CIFARResNet,
  'pyramidnet': PyramidNet,
  'pyramidnet200': _p(PyramidNet, depth=200, alpha=240, bottleneck=True),
  'vit_s16': _p(VisionTransformer, patch_size=16, dim=384, num_heads=6),
  'vit_ti16': _p(VisionTransformer, patch_size=16, dim=192, num_heads=3),
  'tiny_cnn': TinyCNN,
  # timm's EfficientNets; `tf_` = TensorFlow padding and BN epsilon (the
  # weights ported from TensorFlow, e.g. the ReLabel annotator's L2).
  **{
    f'{prefix}efficientnet_{s}': _p(EfficientNet, scaling=s, tf_padding=tf)
    for prefix, tf in (('', False), ('tf_', True))
    for s in ('b0', 'b1', 'b2', 'b3')
  },
  'tf_efficientnet_l2': _p(EfficientNet, scaling='l2', tf_padding=True),
  'convnext_tiny': _p(ConvNeXt, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)),
}


def create_model(
  name: str,
  *,
  num_classes: int,
  rngs: nnx.Rngs,
  dtype: jnp.dtype = jnp.float32,
  param_dtype: jnp.dtype = jnp.float32,
  unbiased_running_var: bool = False,
  **kwargs,
) -> nnx.Module:
  """Builds a registered model.

  Args:
    name: a key of `MODELS`, e.g. 'resnet50', 'pyramidnet200', 'vit_s16'.
    num_classes: size of the classifier output.
    rngs: parameter (and dropout) randomness.
    dtype: computation dtype (float32 or bfloat16).
    param_dtype: parameter dtype.
    unbiased_running_var: torch's BatchNorm rule, running variances from
      the unbiased batch variance (`layers.set_unbiased_running_var`).
    **kwargs: model options, e.g. `depth` for 'cifar_resnet', `depth`,
      `alpha`, `bottleneck` for 'pyramidnet', `zero_init_residual` for the
      ImageNet ResNets, `drop_path_rate` for the ViTs.

  Returns:
    The model, in training mode (call `.eval()` for inference).
  """
  if name not in MODELS:
    raise ValueError(
      f'Unknown model name {name!r}; known models: {sorted(MODELS)}.'
    )
  model = MODELS[name](
    num_classes=num_classes,
    rngs=rngs,
    dtype=dtype,
    param_dtype=param_dtype,
    **kwargs,
  )
  if unbiased_running_var and not layers.set_unbiased_running_var(model):
    raise ValueError(
      f'unbiased_running_var: {name!r} has no BatchNorm to apply it to.'
    )
  return model
