"""Writes jaxmix's exports of the seeded forward-parity models (jaxmix side).

  python tools/parity/jaxmix_exports.py --out /tmp/exports

For ResNet-50, ViT-S/16 (DeiT-S) and EfficientNet-B0 (both paddings) at
224 px: builds the seeded state
dict (`seeded.state_dict`, seed 0) from the names and shapes jaxmix writes,
loads it with `jaxmix.models.load_torch_weights` and writes it back with
`save_torch_weights` as `<out>/<name>.safetensors`. `forward_golden.py`
then loads these files into torchvision / timm with `strict=True` and
compares their logits with the torch model's own.
"""

import argparse
import os
import sys

from flax import nnx
from safetensors import numpy as safetensors_numpy

from jaxmix import models

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seeded

SEED = 0
MODELS = ('resnet50', 'vit_s16', 'efficientnet_b0', 'tf_efficientnet_b0')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  out = parser.parse_args().out
  os.makedirs(out, exist_ok=True)
  for name in MODELS:
    fresh = models.create_model(name, num_classes=1000, rngs=nnx.Rngs(0))
    shapes = {k: v.shape for k, v in models.torch_state_dict(fresh).items()}
    source = os.path.join(out, f'{name}.seeded.safetensors')
    with open(source, 'wb') as f:
      f.write(safetensors_numpy.save(seeded.state_dict(shapes, SEED)))
    model = models.load_torch_weights(name, source)
    models.save_torch_weights(model, os.path.join(out, f'{name}.safetensors'))
    print(f'{name}: {len(shapes)} tensors -> {out}/{name}.safetensors')


if __name__ == '__main__':
  main()
