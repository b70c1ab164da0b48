"""Golden logits of torchvision ResNet-50, timm DeiT-S and EfficientNet-B0.

Run in an environment with torch, torchvision, timm, safetensors and NumPy
(never jaxmix's own), from the repository root:

  python tools/parity/jaxmix_exports.py --out /tmp/exports      # jaxmix env
  python tools/parity/forward_golden.py --exports /tmp/exports  # torch env

For each model (ResNet-50, DeiT-S and timm's EfficientNet-B0 with torch and
with TensorFlow padding, 224 px, 1000 classes) it builds the
torch model, loads the seeded state dict (`seeded.state_dict`, seed 0)
with `strict=True`, and records its eval-mode logits on two seeded images
(`seeded.images(0, 2, 224)`, NHWC there, NCHW here). It also

* saves that state dict with `torch.save` and checks that jaxmix's own
  reader (`jaxmix/io/torch_files.py`, loaded from its file: it needs only
  NumPy) returns the same tensors, and
* with `--exports`, loads jaxmix's `save_torch_weights` output of the same
  weights into a fresh torch model with `strict=True` and records whether
  that worked and the largest logit difference.

Writes `tests/golden/forward_parity.npz`: `<model>.logits` float32
`[2, 1000]` and `meta` (a JSON string: versions, the checks above).
`tests/torch_interop_test.py` compares jaxmix's logits with it.
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np
import safetensors.torch
import timm
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import seeded  # noqa: E402

SEED = 0
# jaxmix name -> torch constructor.
MODELS = {
  'resnet50': lambda: torchvision.models.resnet50(),
  'vit_s16': lambda: timm.create_model('deit_small_patch16_224'),
  'efficientnet_b0': lambda: timm.create_model('efficientnet_b0'),
  'tf_efficientnet_b0': lambda: timm.create_model('tf_efficientnet_b0'),
}


def _jaxmix_reader():
  path = os.path.join(ROOT, 'jaxmix', 'io', 'torch_files.py')
  spec = importlib.util.spec_from_file_location('torch_files', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _logits(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    return model.eval()(x).numpy()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--exports', help='jaxmix_exports.py output dir.')
  parser.add_argument(
    '--out', default=os.path.join(ROOT, 'tests', 'golden', 'forward_parity')
  )
  args = parser.parse_args()
  torch.manual_seed(0)
  torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
  reader = _jaxmix_reader()
  images = seeded.images(SEED, 2, 224)
  arrays, meta = (
    {},
    {
      'torch': torch.__version__,
      'torchvision': torchvision.__version__,
      'timm': timm.__version__,
      'seed': SEED,
      'images': 'seeded.images(0, 2, 224)',
      'models': {},
    },
  )
  for name, make in MODELS.items():
    model = make()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = seeded.state_dict(shapes, SEED)
    model.load_state_dict(
      {k: torch.from_numpy(v) for k, v in weights.items()}, strict=True
    )
    logits = _logits(model, images)
    arrays[f'{name}.logits'] = logits
    info = {'torch_class': type(model).__name__, 'tensors': len(shapes)}
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, f'{name}.pth')
      torch.save(model.state_dict(), path)
      with open(path, 'rb') as f:
        read = reader.read_torch_file(f.read(), path)
      info['pth_reader_matches'] = list(read) == list(weights) and all(
        np.array_equal(read[k], weights[k]) for k in weights
      )
    if args.exports:
      exported = os.path.join(args.exports, f'{name}.safetensors')
      fresh = make()
      try:
        fresh.load_state_dict(
          safetensors.torch.load_file(exported), strict=True
        )
        info['export_strict_load'] = True
        diff = np.abs(_logits(fresh, images) - logits).max()
        info['export_logits_max_abs_diff'] = float(diff)
      except RuntimeError as e:
        info['export_strict_load'] = False
        info['export_error'] = str(e)[:2000]
    info['logits_max_abs'] = float(np.abs(logits).max())
    meta['models'][name] = info
    print(name, json.dumps(info))
  arrays['meta'] = np.array(json.dumps(meta, indent=1, sort_keys=True))
  np.savez_compressed(args.out, **arrays)
  print(f'wrote {args.out}.npz')


if __name__ == '__main__':
  main()
