"""Weights in and out of PyTorch state dicts, without PyTorch.

  model = load_torch_weights('resnet50', 'resnet50.pth')  # torchvision
  model = load_torch_weights('deit_small_patch16_224', 'deit_s.safetensors')
  logits = model(images_nhwc)  # = the torch model's logits on NCHW images
  save_torch_weights(model, 'out.safetensors')  # torchvision / timm strict

Models: torchvision's ResNet-18/34/50/101/152 ('resnet18' ...), timm's
EfficientNets ('efficientnet_b0' ... 'b3', their 'tf_' twins and
'tf_efficientnet_l2', alias 'tf_efficientnet_l2_ns_475', the ReLabel
annotator), timm's ConvNeXt-T ('convnext_tiny') and timm's DeiT / ViT with the DeiT layout: 'vit_ti16' (timm 'deit_tiny_patch16_224')
and 'vit_s16' ('deit_small_patch16_224', 'vit_small_patch16_224'). The
names and layouts are in `jaxmix.models.torch_names`.

Files: `.safetensors` (the `safetensors` package's NumPy API) or anything
`torch.save` wrote (`.pth`, `.pt`, `.bin`, `.tar`), read by
`jaxmix.io.torch_files`, which runs no code from the file. A training
checkpoint holding the state dict under 'state_dict' or 'model' (the
official CutMix and DeiT scripts) is unwrapped, and a 'module.' prefix
(`nn.DataParallel`) is dropped. Paths go through `etils.epath`, so `gs://`
works.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
from etils import epath
from flax import nnx

from jaxmix.io import torch_files
from jaxmix.models import torch_names

StateDict = dict[str, np.ndarray]

# timm / torchvision model names -> jaxmix names.
ALIASES = {
  'deit_tiny_patch16_224': 'vit_ti16',
  'deit_small_patch16_224': 'vit_s16',
  'vit_small_patch16_224': 'vit_s16',
  # Noisy Student weights of the ReLabel annotator: the L2 architecture.
  'tf_efficientnet_l2_ns_475': 'tf_efficientnet_l2',
  'tf_efficientnet_l2_ns': 'tf_efficientnet_l2',
}
TORCH_MODELS = (
  'resnet18',
  'resnet34',
  'resnet50',
  'resnet101',
  'resnet152',
  'vit_ti16',
  'vit_s16',
  *(
    f'{p}efficientnet_{s}'
    for p in ('', 'tf_')
    for s in ('b0', 'b1', 'b2', 'b3')
  ),
  'tf_efficientnet_l2',
  'convnext_tiny',
)
_WRAPPERS = ('state_dict', 'model', 'module')


def _is_state_dict(obj) -> bool:
  return isinstance(obj, dict) and all(
    isinstance(v, np.ndarray) for v in obj.values()
  )


def _unwrap(obj, where: str) -> StateDict:
  """The state dict inside what a `.pth` file held."""
  if isinstance(obj, dict) and not _is_state_dict(obj):
    for key in _WRAPPERS:
      if _is_state_dict(obj.get(key)):
        obj = obj[key]
        break
  if not _is_state_dict(obj) or not obj:
    keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
    raise ValueError(
      f'{where}: not a state dict (a dict of tensors, or a checkpoint '
      f'holding one under {_WRAPPERS}); found {keys}.'
    )
  if all(k.startswith('module.') for k in obj):
    obj = {k[len('module.') :]: v for k, v in obj.items()}
  return obj


def read_state_dict(path: str | os.PathLike) -> StateDict:
  """Reads a torch state dict as `{name: np.ndarray}` (torch layouts).

  Args:
    path: a `.safetensors` file or a `torch.save` file.

  Returns:
    The tensors by name, in the file's order, dtypes as saved.

  Raises:
    ValueError: naming the file, for a damaged or hostile one.
  """
  where = os.fspath(path)
  data = epath.Path(path).read_bytes()
  if where.endswith('.safetensors'):
    from safetensors import SafetensorError
    from safetensors import numpy as safetensors_numpy

    try:
      return dict(safetensors_numpy.load(data))
    except (SafetensorError, ValueError, MemoryError, OverflowError) as error:
      raise ValueError(
        f'cannot read safetensors file {where}: {type(error).__name__}: {error}'
      ) from None
  return _unwrap(torch_files.read_torch_file(data, where), where)


def _listed(keys: list, limit: int = 8) -> str:
  shown = ', '.join(str(k) for k in keys[:limit])
  more = f', ... ({len(keys)} in all)' if len(keys) > limit else ''
  return f'[{shown}{more}]'


def check_torch_weights(
  model: nnx.Module,
  state_dict: StateDict,
  *,
  head: bool = True,
  where: str = 'state dict',
) -> None:
  """Raises unless `state_dict` has exactly `model`'s torch keys and shapes.

  Args:
    model: a jaxmix ResNet or VisionTransformer, or its `nnx.eval_shape`.
    state_dict: `{torch name: array}` in torch layouts.
    head: check the classifier ('fc.*' / 'head.*') too; with False its
      keys may be present with any shape, or absent.
    where: the file's name, for error messages.

  Raises:
    ValueError: naming the missing, unexpected and mis-shaped keys.
  """
  entries = torch_names.entries_of(model)
  skipped = set() if head else {e.key for e in torch_names.head_entries(model)}
  flat = dict(nnx.to_flat_state(nnx.state(model)))
  want = {
    e.key: torch_names.torch_shape(e.kind, flat[e.path].shape)
    for e in entries
    if e.kind != 'count' and e.key not in skipped
  }
  optional = {e.key for e in entries if e.kind == 'count'} | skipped
  missing = [k for k in want if k not in state_dict]
  unexpected = [k for k in state_dict if k not in want and k not in optional]
  misshaped = [
    f'{k}: file {tuple(state_dict[k].shape)}, model {want[k]}'
    for k in want
    if k in state_dict and tuple(state_dict[k].shape) != want[k]
  ]
  if missing or unexpected or misshaped:
    problems = [
      f'{name} {_listed(keys)}'
      for name, keys in (
        ('missing keys', missing),
        ('unexpected keys', unexpected),
        ('mis-shaped keys', misshaped),
      )
      if keys
    ]
    raise ValueError(
      f'{where} does not fit the jaxmix {type(model).__name__} '
      f'({len(want)} tensors in torch layout): ' + '; '.join(problems) + '.'
    )


def assign_torch_weights(
  model: nnx.Module,
  state_dict: StateDict,
  *,
  head: bool = True,
  where: str = 'state dict',
) -> None:
  """Copies a torch state dict into `model`'s parameters and statistics.

  Every key of the model's layout must be present with its torch shape, and
  no other key may be (`num_batches_tracked` is optional and ignored); see
  `check_torch_weights`.

  Args:
    model: a jaxmix ResNet or VisionTransformer, changed in place.
    state_dict: `{torch name: array}` in torch layouts.
    head: also copy the classifier ('fc.*' / 'head.*'). With False the
      model keeps its own head and the file's is ignored (a fine-tuning
      start with another number of classes).
    where: the file's name, for error messages.

  Raises:
    ValueError: naming the missing, unexpected and mis-shaped keys.
  """
  check_torch_weights(model, state_dict, head=head, where=where)
  skipped = set() if head else {e.key for e in torch_names.head_entries(model)}
  flat = dict(nnx.to_flat_state(nnx.state(model)))
  for e in torch_names.entries_of(model):
    if e.kind != 'count' and e.key not in skipped:
      variable = flat[e.path]
      value = torch_names.to_jax(e.kind, np.asarray(state_dict[e.key]))
      variable[...] = jnp.asarray(value, variable.dtype)
  nnx.update(model, nnx.from_flat_state(flat))


def torch_state_dict(model: nnx.Module) -> StateDict:
  """`model`'s weights as a torchvision / timm state dict (NumPy arrays).

  Float tensors are float32 and contiguous; BatchNorm's
  `num_batches_tracked` is an int64 zero scalar.
  """
  flat = dict(nnx.to_flat_state(nnx.state(model)))
  out = {}
  for e in torch_names.entries_of(model):
    if e.kind == 'count':
      out[e.key] = np.zeros((), np.int64)
      continue
    value = np.asarray(flat[e.path][...], np.float32)
    out[e.key] = np.ascontiguousarray(torch_names.to_torch(e.kind, value))
  return out


def save_torch_weights(model: nnx.Module, path: str | os.PathLike) -> None:
  """Writes `model`'s weights as a `.safetensors` torch state dict.

  `torchvision.models.resnet50()` (or timm's `deit_small_patch16_224`, ...)
  loads the file with `load_state_dict(..., strict=True)` and then gives the
  logits of `model` (NCHW images there, NHWC here).

  Args:
    model: a jaxmix ResNet or VisionTransformer.
    path: the file to write; its name must end in '.safetensors'.
  """
  if not os.fspath(path).endswith('.safetensors'):
    raise ValueError(
      f'`path` must end in .safetensors (the format written), got {path!r}.'
    )
  from safetensors import numpy as safetensors_numpy

  state_dict = torch_state_dict(model)
  epath.Path(path).write_bytes(safetensors_numpy.save(state_dict))


def _vit_image_size(state_dict: StateDict, where: str) -> int:
  """The image side a ViT state dict's position embeddings are sized for."""
  patch = state_dict.get('patch_embed.proj.weight')
  pos = state_dict.get('pos_embed')
  if patch is None or pos is None or pos.ndim != 3 or patch.ndim != 4:
    raise ValueError(
      f'{where}: a ViT state dict needs patch_embed.proj.weight [D, 3, p, p] '
      'and pos_embed [1, N + 1, D].'
    )
  side = round(float(np.sqrt(pos.shape[1] - 1)))
  if side * side != pos.shape[1] - 1:
    raise ValueError(
      f'{where}: pos_embed {pos.shape} is not 1 + a square number of patches.'
    )
  return side * patch.shape[-1]


def load_torch_weights(
  name: str,
  path: str | os.PathLike,
  *,
  num_classes: int | None = None,
  dtype: jnp.dtype = jnp.float32,
) -> nnx.Module:
  """The jaxmix model holding a torchvision / timm state dict's weights.

  Args:
    name: 'resnet18' ... 'resnet152', 'vit_ti16', 'vit_s16', or a timm
      name of `ALIASES` ('deit_small_patch16_224', ...).
    path: a `.safetensors` or `torch.save` file (see the module docstring).
    num_classes: the classifier's size; None takes the file's. A different
      number than the file's is an error (to start from the body only, see
      `assign_torch_weights(..., head=False)`).
    dtype: the computation dtype (parameters stay float32).

  Returns:
    The model in eval mode: `model(x)` maps normalised `[B, H, W, 3]` images
    to float32 logits `[B, K]` equal to the torch model's on `[B, 3, H, W]`.
    A ViT is sized for the image side its position embeddings give. The
    BatchNorms of a ResNet or an EfficientNet keep torch's running-variance
    rule when trained (`unbiased_running_var`), so that it trains on as in
    torch.
  """
  model_name = ALIASES.get(name, name)
  if model_name not in TORCH_MODELS:
    raise ValueError(
      f'`name` must be one of {TORCH_MODELS} or {sorted(ALIASES)}, got '
      f'{name!r}.'
    )
  where = os.fspath(path)
  state_dict = read_state_dict(path)
  vit = model_name.startswith('vit')
  head_key = (
    'head.weight'
    if vit
    else 'classifier.weight'
    if 'efficientnet' in model_name
    else 'head.fc.weight'
    if model_name.startswith('convnext')
    else 'fc.weight'
  )
  if head_key not in state_dict or state_dict[head_key].ndim != 2:
    raise ValueError(
      f'{where}: no classifier {head_key!r} [K, D]: not a {model_name} '
      f'state dict (keys {_listed(list(state_dict))}).'
    )
  file_classes = state_dict[head_key].shape[0]
  if num_classes is not None and num_classes != file_classes:
    raise ValueError(
      f'`num_classes`={num_classes} but {where} has a {file_classes}-class '
      f'head ({head_key} {state_dict[head_key].shape}).'
    )
  # The registry is the package's own namespace, which imports this module.
  from jaxmix.models import create_model

  kwargs = {'image_size': _vit_image_size(state_dict, where)} if vit else {}
  # torch's BatchNorm rule for the families that have BatchNorm.
  if model_name.startswith(('resnet', 'efficientnet', 'tf_efficientnet')):
    kwargs['unbiased_running_var'] = True

  def create() -> nnx.Module:
    return create_model(
      model_name,
      num_classes=file_classes,
      rngs=nnx.Rngs(0),
      dtype=dtype,
      **kwargs,
    )

  # Checked on the abstract model first: a file that does not fit fails
  # before any parameter is initialised.
  check_torch_weights(nnx.eval_shape(create), state_dict, where=where)
  model = create()
  assign_torch_weights(model, state_dict, where=where)
  model.eval()
  return model
