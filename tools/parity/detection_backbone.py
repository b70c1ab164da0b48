"""The state dict torchvision's Faster R-CNN ResNet-50 backbone body takes.

  python tools/parity/detection_backbone.py [--export FILE.safetensors]

Writes `tests/golden/torchvision_resnet50_fpn_body.json`: the keys and
shapes of `model.backbone.body.state_dict()` for the two ways torchvision
builds the backbone:

- 'frozen_batch_norm': `resnet_fpn_backbone(backbone_name='resnet50',
  weights=None)`, FrozenBatchNorm2d (no `num_batches_tracked`), the usual
  detection fine-tuning setup;
- 'batch_norm': `fasterrcnn_resnet50_fpn(weights=None,
  weights_backbone=None)`, which takes the backbone for untrained and so
  builds it with nn.BatchNorm2d (with `num_batches_tracked`).

With `--export`, also loads that jaxmix export (the ResNet-50 file of
`python -m jaxmix.apps.export`, `fc.*` dropped) into both bodies with
`strict=True` and records whether it loaded. `tests/detection_backbone_test.py`
compares jaxmix's ResNet-50 export with the file, without torch.
"""

import argparse
import json
import os
import re

import safetensors.torch
import torch
import torchvision
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
OUT = os.path.join(
  ROOT, 'tests', 'golden', 'torchvision_resnet50_fpn_body.json'
)


def _one_line(match: re.Match) -> str:
  return (
    '['
    + ', '.join(x.strip() for x in match.group(1).split(',') if x.strip())
    + ']'
  )


def bodies() -> dict[str, torch.nn.Module]:
  frozen = resnet_fpn_backbone(backbone_name='resnet50', weights=None)
  plain = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
  return {'frozen_batch_norm': frozen.body, 'batch_norm': plain.backbone.body}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--export', help='A jaxmix ResNet-50 .safetensors.')
  parser.add_argument('--out', default=OUT)
  args = parser.parse_args()
  record = {'torch': torch.__version__, 'torchvision': torchvision.__version__}
  loaded = {}
  for name, body in bodies().items():
    record[name] = {k: list(v.shape) for k, v in body.state_dict().items()}
    if args.export:
      state = safetensors.torch.load_file(args.export)
      state = {k: v for k, v in state.items() if not k.startswith('fc.')}
      body.load_state_dict(state, strict=True)  # raises on any mismatch
      loaded[name] = True
  if args.export:
    record['export_strict_load'] = loaded
  text = json.dumps(record, indent=1, sort_keys=True)
  # One line per tensor: a shape's list on its key's line.
  text = re.sub(r'\[\s*([^\[\]]*?)\s*\]', _one_line, text)
  with open(args.out, 'w') as f:
    f.write(text + '\n')
  print(f'wrote {args.out}: ' + json.dumps(loaded))


if __name__ == '__main__':
  main()
