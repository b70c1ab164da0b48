"""Golden logits of timm's ConvNeXt, and convnext_tiny's state-dict layout.

Run in an environment with torch, timm, safetensors and NumPy (never
jaxmix's own), from the repository root:

  python tools/parity/convnext_golden.py

Writes, under `tests/golden/`:

* `convnext_layout.json`: timm `convnext_tiny`'s state-dict names and
  shapes (1000 classes), in its order, and its parameter count;
* `convnext_small_random.safetensors`: a small ConvNeXt built with timm's
  own class (depths 1-1-2-1, dims 8-16-24-32, 10 classes; the
  convnext_tiny code path at a size that fits a test) holding seeded
  weights (`seeded.state_dict`, seed 0: layer scales, norms and biases
  away from their initial values), loaded with `strict=True`;
* `convnext_small_random.npz`: `images`, two seeded `[32, 32, 3]` images
  (NHWC; NCHW in torch), and `logits`, timm's eval-mode float32 logits.

`tests/convnext_test.py` loads the weights into jaxmix's ConvNeXt and
compares its logits and its layout with these.
"""

import json
import os
import sys

import numpy as np
import safetensors.torch
import timm
import torch
from timm.models.convnext import ConvNeXt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import seeded  # noqa: E402

GOLDEN = os.path.join(ROOT, 'tests', 'golden')
SMALL = dict(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), num_classes=10)


def main() -> None:
  torch.manual_seed(0)
  tiny = timm.create_model('convnext_tiny')
  layout = {
    'timm': timm.__version__,
    'torch': torch.__version__,
    'num_params': sum(p.numel() for p in tiny.parameters()),
    'shapes': [[k, list(v.shape)] for k, v in tiny.state_dict().items()],
  }
  with open(os.path.join(GOLDEN, 'convnext_layout.json'), 'w') as f:
    json.dump(layout, f, indent=0)
    f.write('\n')

  model = ConvNeXt(**SMALL).eval()
  shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
  weights = {
    k: torch.from_numpy(v) for k, v in seeded.state_dict(shapes, 0).items()
  }
  model.load_state_dict(weights, strict=True)
  safetensors.torch.save_file(
    weights, os.path.join(GOLDEN, 'convnext_small_random.safetensors')
  )
  images = seeded.images(0, 2, 32)
  with torch.no_grad():
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    logits = model(x).numpy()
  np.savez(
    os.path.join(GOLDEN, 'convnext_small_random.npz'),
    images=images,
    logits=logits.astype(np.float32),
    config=np.array(json.dumps(SMALL)),
  )
  print('logits', logits[:, :4])


if __name__ == '__main__':
  main()
