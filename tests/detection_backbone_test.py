"""A jaxmix ResNet-50 export fits torchvision's detection backbone body.

torchvision's Faster R-CNN / Mask R-CNN take a ResNet-50 through
`IntermediateLayerGetter`, which keeps `conv1, bn1, layer1 ... layer4` and
drops `avgpool` and `fc`. `BODY` below writes down the state dict that body
holds, from torchvision's `resnet.py` (Bottleneck, stages (3, 4, 6, 3),
widths 64 * 2**i, expansion 4, a `downsample` conv + norm on every stage's
first block). With `FrozenBatchNorm2d` (`resnet_fpn_backbone`'s default) a
norm has weight, bias, running_mean and running_var; with `nn.BatchNorm2d`
(`fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`) also
`num_batches_tracked`.

`tests/golden/torchvision_resnet50_fpn_body.json` holds the same key sets
as torchvision itself lists them, written by hand with

  python tools/parity/detection_backbone.py --export resnet50.safetensors

which also loaded a jaxmix ResNet-50 export (`fc.*` dropped) into both
bodies with `load_state_dict(..., strict=True)` ('export_strict_load').
These tests need no torch.
"""

import json
import os

import numpy as np
import pytest
from flax import nnx

from jaxmix import models

GOLDEN = os.path.join(
  os.path.dirname(__file__), 'golden', 'torchvision_resnet50_fpn_body.json'
)


def _norm(prefix: str, channels: int, counted: bool) -> dict:
  names = ['weight', 'bias', 'running_mean', 'running_var']
  out = {f'{prefix}.{n}': (channels,) for n in names}
  if counted:
    out[f'{prefix}.num_batches_tracked'] = ()
  return out


def body(counted: bool) -> dict[str, tuple[int, ...]]:
  """{key: shape} of torchvision's ResNet-50 detection body.

  Args:
    counted: nn.BatchNorm2d (True) or FrozenBatchNorm2d (False) norms.
  """
  out = {'conv1.weight': (64, 3, 7, 7), **_norm('bn1', 64, counted)}
  inplanes = 64
  for stage, blocks in enumerate((3, 4, 6, 3)):
    planes = 64 * 2**stage
    for i in range(blocks):
      p = f'layer{stage + 1}.{i}'
      out[f'{p}.conv1.weight'] = (planes, inplanes, 1, 1)
      out.update(_norm(f'{p}.bn1', planes, counted))
      out[f'{p}.conv2.weight'] = (planes, planes, 3, 3)
      out.update(_norm(f'{p}.bn2', planes, counted))
      out[f'{p}.conv3.weight'] = (4 * planes, planes, 1, 1)
      out.update(_norm(f'{p}.bn3', 4 * planes, counted))
      if i == 0:  # stride 2 or 64 -> 256 channels: a projection
        out[f'{p}.downsample.0.weight'] = (4 * planes, inplanes, 1, 1)
        out.update(_norm(f'{p}.downsample.1', 4 * planes, counted))
      inplanes = 4 * planes
  return out


def _golden(variant: str) -> dict[str, tuple[int, ...]]:
  with open(GOLDEN) as f:
    return {k: tuple(v) for k, v in json.load(f)[variant].items()}


@pytest.fixture(scope='module')
def exported():
  """jaxmix's ResNet-50 state dict, as `save_torch_weights` writes it."""
  model = models.create_model('resnet50', num_classes=1000, rngs=nnx.Rngs(0))
  return models.torch_state_dict(model)


def test_written_down_body_is_torchvisions():
  assert body(counted=False) == _golden('frozen_batch_norm')
  assert body(counted=True) == _golden('batch_norm')
  assert len(body(counted=False)) == 265  # 53 convs/norms: 53 + 53 * 4


def test_export_minus_fc_is_the_body(exported):
  fc = {k: v.shape for k, v in exported.items() if k.startswith('fc.')}
  assert fc == {'fc.weight': (1000, 2048), 'fc.bias': (1000,)}
  rest = {k: v for k, v in exported.items() if not k.startswith('fc.')}
  # fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None): exact.
  assert {k: v.shape for k, v in rest.items()} == body(counted=True)
  # resnet_fpn_backbone: the same minus num_batches_tracked, which
  # FrozenBatchNorm2d drops when it loads, so strict loading accepts it.
  frozen = {k: v for k, v in rest.items() if 'num_batches_tracked' not in k}
  assert {k: v.shape for k, v in frozen.items()} == body(counted=False)
  for key, value in rest.items():
    want = np.int64 if key.endswith('num_batches_tracked') else np.float32
    assert value.dtype == want, key


def test_the_golden_file_records_the_strict_loads():
  with open(GOLDEN) as f:
    record = json.load(f)
  assert record['export_strict_load'] == {
    'frozen_batch_norm': True,
    'batch_norm': True,
  }
