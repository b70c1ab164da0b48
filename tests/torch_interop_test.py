"""Weights in and out of PyTorch state dicts (jaxmix.models.torch_interop).

No torch here: state dicts are built in NumPy with torchvision / timm names,
`.pth` files by `torch_file_util`, and forward parity is checked against
golden logits that `tools/parity/forward_golden.py` computed with
torchvision 0.29 / timm 1.0 from the same seeded weights.
"""

import json
import os
import pathlib
import sys

import jax
import numpy as np
import pytest
from flax import nnx
from safetensors import numpy as safetensors_numpy
from torch_file_util import state_dict_bytes

from jaxmix import models
from jaxmix.models import torch_names

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools' / 'parity'))
import seeded  # noqa: E402

GOLDEN = ROOT / 'tests' / 'golden' / 'forward_parity.npz'
# float32 forward passes of XLA (CPU) and PyTorch (CPU) on the same weights:
# measured max |difference| 8.6e-6 (ResNet-50, logits up to 11.7) and 3.3e-6
# (DeiT-S, logits up to 4.0).
ATOL, RTOL = 1e-4, 1e-5


# One compiled forward pass per model structure (eager calls run op by op).
_forward = nnx.jit(lambda model, x: model(x))


def _logits(model, x) -> np.ndarray:
  return np.asarray(_forward(model, x))


def _torch_shapes(name: str, num_classes: int = 10, **kwargs) -> dict:
  fresh = models.create_model(
    name, num_classes=num_classes, rngs=nnx.Rngs(0), **kwargs
  )
  return {k: v.shape for k, v in models.torch_state_dict(fresh).items()}


def _images(size: int, count: int = 2) -> np.ndarray:
  return seeded.images(7, count, size)


def _write_safetensors(path, state_dict) -> str:
  with open(path, 'wb') as f:
    f.write(safetensors_numpy.save(state_dict))
  return str(path)


@pytest.mark.parametrize(
  'name, kwargs, size',
  [('resnet18', {}, 32), ('vit_ti16', {}, 32)],
)
def test_round_trip_gives_identical_logits(tmp_path, name, kwargs, size):
  if name.startswith('vit'):
    kwargs = {'image_size': size}
  model = models.create_model(name, num_classes=7, rngs=nnx.Rngs(3), **kwargs)
  model.eval()
  path = tmp_path / 'w.safetensors'
  models.save_torch_weights(model, path)
  back = models.load_torch_weights(name, path)
  x = _images(size)
  np.testing.assert_array_equal(_logits(back, x), _logits(model, x))
  want = jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))
  got = jax.tree.leaves(nnx.state(back, nnx.Param, nnx.BatchStat))
  for a, b in zip(want, got, strict=True):
    np.testing.assert_array_equal(a, b)


def test_saved_file_has_torch_names_shapes_and_counts(tmp_path):
  model = models.create_model('resnet18', num_classes=5, rngs=nnx.Rngs(0))
  path = tmp_path / 'r18.safetensors'
  models.save_torch_weights(model, path)
  saved = safetensors_numpy.load_file(str(path))
  assert len(saved) == 122  # torchvision resnet18().state_dict()
  assert saved['conv1.weight'].shape == (64, 3, 7, 7)
  assert saved['layer2.0.downsample.0.weight'].shape == (128, 64, 1, 1)
  assert saved['fc.weight'].shape == (5, 512)
  count = saved['layer4.1.bn2.num_batches_tracked']
  assert count.dtype == np.int64 and count.shape == () and count == 0
  assert {v.dtype for k, v in saved.items() if 'num_batches' not in k} == {
    np.dtype(np.float32)
  }


def test_numpy_state_dict_with_torchvision_names_loads(tmp_path):
  shapes = _torch_shapes('resnet18')
  weights = seeded.state_dict(shapes, seed=5)
  model = models.load_torch_weights(
    'resnet18', _write_safetensors(tmp_path / 's.safetensors', weights)
  )
  assert model.stem_bn.use_running_average  # eval mode
  np.testing.assert_array_equal(
    model.stem_conv.kernel[...], weights['conv1.weight'].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(
    model.blocks[3].conv2.kernel[...],
    weights['layer2.1.conv2.weight'].transpose(2, 3, 1, 0),
  )
  short = model.blocks[6].shortcut.layers
  np.testing.assert_array_equal(
    short[1].var[...], weights['layer4.0.downsample.1.running_var']
  )
  np.testing.assert_array_equal(model.head.kernel[...], weights['fc.weight'].T)
  np.testing.assert_array_equal(model.head.bias[...], weights['fc.bias'])


def test_vit_qkv_cls_and_position_embeddings_and_image_size(tmp_path):
  shapes = _torch_shapes('vit_ti16', image_size=48)
  weights = seeded.state_dict(shapes, seed=2)
  path = _write_safetensors(tmp_path / 'deit.safetensors', weights)
  model = models.load_torch_weights('deit_tiny_patch16_224', path)
  assert model.image_size == 48
  assert weights['pos_embed'].shape == (1, 10, 192)
  np.testing.assert_array_equal(model.pos_embed[...], weights['pos_embed'])
  np.testing.assert_array_equal(model.cls_token[...], weights['cls_token'])
  np.testing.assert_array_equal(
    model.blocks[2].attn.qkv.kernel[...], weights['blocks.2.attn.qkv.weight'].T
  )
  np.testing.assert_array_equal(
    model.blocks[11].fc2.bias[...], weights['blocks.11.mlp.fc2.bias']
  )


@pytest.mark.parametrize('wrap', [None, 'state_dict', 'model'])
def test_pth_files_read_through_torch_files(tmp_path, wrap):
  weights = seeded.state_dict(_torch_shapes('resnet18'), seed=4)
  x = _images(32)
  want = _logits(
    models.load_torch_weights(
      'resnet18', _write_safetensors(tmp_path / 'w.safetensors', weights)
    ),
    x,
  )
  if wrap is not None:  # nn.DataParallel's names, inside a checkpoint
    weights = {f'module.{k}': v for k, v in weights.items()}
  path = tmp_path / 'w.pth'
  path.write_bytes(state_dict_bytes(weights, wrap=wrap))
  got = models.load_torch_weights('resnet18', path)
  np.testing.assert_array_equal(_logits(got, x), want)


def _bad(weights: dict, tmp_path) -> str:
  path = _write_safetensors(tmp_path / 'bad.safetensors', weights)
  with pytest.raises(ValueError) as info:
    models.load_torch_weights('resnet18', path)
  return str(info.value)


def test_bad_keys_are_named(tmp_path):
  weights = seeded.state_dict(_torch_shapes('resnet18'), seed=1)
  missing = dict(weights)
  del missing['layer3.1.bn1.running_mean']
  message = _bad(missing, tmp_path)
  assert 'bad.safetensors' in message
  assert 'missing keys [layer3.1.bn1.running_mean]' in message
  extra = dict(weights, **{'layer5.0.conv1.weight': np.zeros((1,), 'f4')})
  assert 'unexpected keys [layer5.0.conv1.weight]' in _bad(extra, tmp_path)
  shaped = dict(weights)
  shaped['layer1.0.conv2.weight'] = np.zeros((64, 64, 1, 1), np.float32)
  assert (
    'mis-shaped keys [layer1.0.conv2.weight: file (64, 64, 1, 1), model '
    '(64, 64, 3, 3)]' in _bad(shaped, tmp_path)
  )
  # num_batches_tracked is optional.
  lean = {k: v for k, v in weights.items() if 'num_batches' not in k}
  path = _write_safetensors(tmp_path / 'lean.safetensors', lean)
  models.load_torch_weights('resnet18', path)


def test_wrong_model_classes_and_formats_are_refused(tmp_path):
  weights = seeded.state_dict(_torch_shapes('resnet18'), seed=1)
  path = _write_safetensors(tmp_path / 'w.safetensors', weights)
  with pytest.raises(ValueError, match=r'missing keys \[layer1.0.conv3'):
    models.load_torch_weights('resnet50', path)
  with pytest.raises(ValueError, match=r"no classifier 'head.weight'"):
    models.load_torch_weights('vit_s16', path)
  with pytest.raises(ValueError, match=r'num_classes`=1000 .* 10-class'):
    models.load_torch_weights('resnet18', path, num_classes=1000)
  with pytest.raises(ValueError, match=r'`name` must be one of'):
    models.load_torch_weights('pyramidnet200', path)
  with pytest.raises(ValueError, match='not a state dict'):
    (tmp_path / 'x.pth').write_bytes(state_dict_bytes({}, wrap='other'))
    models.load_torch_weights('resnet18', tmp_path / 'x.pth')
  model = models.create_model('cifar_resnet', num_classes=10, rngs=nnx.Rngs(0))
  with pytest.raises(TypeError, match='no torchvision / timm'):
    models.save_torch_weights(model, tmp_path / 'c.safetensors')
  with pytest.raises(ValueError, match=r'must end in \.safetensors'):
    models.save_torch_weights(
      models.load_torch_weights('resnet18', path), tmp_path / 'c.pth'
    )


def test_body_only_keeps_the_models_own_head():
  weights = seeded.state_dict(_torch_shapes('resnet18', num_classes=1000), 1)
  model = models.create_model('resnet18', num_classes=10, rngs=nnx.Rngs(0))
  head = np.asarray(model.head.kernel[...])
  with pytest.raises(ValueError, match=r'mis-shaped keys \[fc.weight'):
    models.assign_torch_weights(model, weights)
  models.assign_torch_weights(model, weights, head=False)
  np.testing.assert_array_equal(model.head.kernel[...], head)
  np.testing.assert_array_equal(
    model.stem_bn.mean[...], weights['bn1.running_mean']
  )


def test_entries_follow_torchvision_block_numbering():
  model = models.create_model('resnet50', num_classes=3, rngs=nnx.Rngs(0))
  keys = [e.key for e in torch_names.entries_of(model)]
  assert len(keys) == 320  # torchvision resnet50().state_dict()
  for key in ('layer1.0.downsample.0.weight', 'layer3.5.bn3.running_var'):
    assert key in keys
  assert 'layer1.1.downsample.0.weight' not in keys
  assert 'layer4.3.conv1.weight' not in keys


@pytest.mark.parametrize(
  'name', ['resnet50', 'vit_s16', 'efficientnet_b0', 'tf_efficientnet_b0']
)
def test_forward_parity_with_torchvision_and_timm(name):
  golden = np.load(GOLDEN)
  meta = json.loads(str(golden['meta']))['models'][name]
  # What the torch side checked: jaxmix's torch reader reads torch.save's
  # file exactly, and jaxmix's export loads strictly with equal logits.
  assert meta['pth_reader_matches']
  assert meta['export_strict_load']
  assert meta['export_logits_max_abs_diff'] == 0.0
  model = models.create_model(name, num_classes=1000, rngs=nnx.Rngs(0))
  shapes = {k: v.shape for k, v in models.torch_state_dict(model).items()}
  models.assign_torch_weights(model, seeded.state_dict(shapes, seed=0))
  model.eval()
  logits = _logits(model, seeded.images(0, 2, 224))
  np.testing.assert_allclose(
    logits, golden[f'{name}.logits'], rtol=RTOL, atol=ATOL
  )


def test_module_exports():
  for name in (
    'load_torch_weights',
    'save_torch_weights',
    'assign_torch_weights',
    'torch_state_dict',
    'read_state_dict',
  ):
    assert name in models.__all__ and hasattr(models, name)
  assert os.path.basename(models.torch_interop.__file__) == 'torch_interop.py'
