"""Golden outputs of timm's AutoAugment / RandAugment ops and tables.

Run in an environment with torch, timm, Pillow and NumPy (timm imports
torch; its augmentation ops are Pillow calls), from the repository root:

  python tools/parity/auto_augment_golden.py

Writes `tests/golden/auto_augment_timm.npz`:

* `meta`: a JSON string with the versions, timm's tables (the op names of
  RandAugment's increasing and original sets, the 'original' AutoAugment
  ImageNet policy as (name, probability, magnitude) triples) and what
  `rand_augment_transform('rand-m9-mstd0.5-inc1', ...)` builds (layers,
  op probability, magnitude, magnitude std, op names);
* `image`: the seeded uint8 test image `[24, 32, 3]`;
* `case/<i>`: timm's output of one op at one magnitude and sign, with
  `cases` (in `meta`) listing `(op, magnitude, sign, op arguments)` per
  index, and `failures` the calls that raised (Pillow >= 10 refuses
  `posterize` with 0 bits, which timm requests at the range's ends).

The ops run as timm's `AugmentOp` does: its level -> argument law
(`LEVEL_TO_ARG`), then the op with timm's ImageNet fill colour and bicubic
resampling (DeiT's and ConvNeXt's `interpolation='bicubic'`).
`tests/auto_augment_test.py` compares jaxmix's ops with these.
"""

import json
import os
import random
import sys

import numpy as np
import PIL
import timm
import torch
from PIL import Image
from timm.data import auto_augment as taa

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import seeded  # noqa: E402

HPARAMS = {
  'translate_const': 100,
  'img_mean': (124, 116, 104),
  'interpolation': Image.BICUBIC,
}
MAGNITUDES = (0.0, 3.0, 7.5, 9.0, 10.0)


def _image() -> np.ndarray:
  """A seeded 24x32 image with gradients (warps) and noise (histograms)."""
  base = seeded.images(0, 1, 32)[0]  # float [32, 32, 3]
  lo, hi = base.min(), base.max()
  img = ((base - lo) / (hi - lo) * 200 + 20).astype(np.uint8)[:24]
  return img


def _level_args(name: str, magnitude: float, sign: float):
  """timm's level -> argument, with `_randomly_negate` fixed to `sign`."""
  fn = taa.LEVEL_TO_ARG[name]
  if fn is None:
    return ()
  # _randomly_negate negates when random.random() > 0.5.
  original = random.random
  random.random = lambda: 0.9 if sign < 0 else 0.1
  try:
    return fn(magnitude, HPARAMS)
  finally:
    random.random = original


def main() -> None:
  img = _image()
  pil = Image.fromarray(img)
  increasing = list(taa._RAND_INCREASING_TRANSFORMS)
  original_ops = list(taa._RAND_TRANSFORMS)
  policy = [
    [(op.name, op.prob, op.magnitude) for op in sub]
    for sub in taa.auto_augment_policy('original', HPARAMS)
  ]
  ra = taa.rand_augment_transform('rand-m9-mstd0.5-inc1', dict(HPARAMS))
  names = sorted(
    set(increasing) | set(original_ops) | {n for s in policy for n, _, _ in s}
  )
  arrays, cases, failures = {'image': img}, [], []
  for name in names:
    for magnitude in MAGNITUDES:
      for sign in (1.0, -1.0):
        args = _level_args(name, magnitude, sign)
        if sign < 0 and args == _level_args(name, magnitude, 1.0):
          continue  # an unsigned op: the same case
        try:
          out = taa.NAME_TO_OP[name](
            pil,
            *args,
            fillcolor=HPARAMS['img_mean'],
            resample=HPARAMS['interpolation'],
          )
        except ValueError as error:
          # Pillow >= 10 refuses posterize(bits=0), which timm asks for at
          # the ends of the magnitude range; recorded, not compared.
          failures.append((name, magnitude, sign, str(error)))
          continue
        arrays[f'case/{len(cases)}'] = np.asarray(out, np.uint8)
        cases.append((name, magnitude, sign, [float(a) for a in args]))
  meta = {
    'versions': {
      'timm': timm.__version__,
      'torch': torch.__version__,
      'pillow': PIL.__version__,
    },
    'rand_increasing_ops': increasing,
    'rand_ops': original_ops,
    'imagenet_policy': policy,
    'rand_m9_mstd05_inc1': {
      'num_layers': ra.num_layers,
      'ops': [op.name for op in ra.ops],
      'prob': [op.prob for op in ra.ops],
      'magnitude': [op.magnitude for op in ra.ops],
      'magnitude_std': [op.magnitude_std for op in ra.ops],
      'choice_weights': ra.choice_weights,
    },
    'hparams': {k: str(v) for k, v in HPARAMS.items()},
    'cases': cases,
    'failures': failures,
  }
  arrays['meta'] = np.array(json.dumps(meta))
  out = os.path.join(ROOT, 'tests', 'golden', 'auto_augment_timm.npz')
  np.savez_compressed(out, **arrays)
  print(f'wrote {out}: {len(cases)} cases')


if __name__ == '__main__':
  main()
