"""ImageNet ResNet-50 + CutMix (CutMix paper, Table 3, 300 epochs).

Command:
  python -m jaxmix.apps.train --config configs/imagenet/cutmix_resnet50.py \
    --workdir $WORKDIR/rn50_cutmix

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8; the paper used
4 GPUs with a global batch of 256). Not yet run with jaxmix.

Expected result: 78.60 % top-1 (21.40 % error), clovaai/CutMix-PyTorch
README. The baseline recipe (`resnet50_baseline.py`) plus CutMix with
beta = 1.0 and cutmix_prob = 1.0 (the official ImageNet command), one
box and lambda per global batch (`mix.draw='batch'`), lambda corrected to
the kept-pixel fraction. Partners are drawn inside each device's shard (the
official code permutes the whole 256-image batch); the other differences
are listed in `resnet50_baseline.py`.
Crop and colour as the baseline recipe: torchvision's RandomResizedCrop
law, the CutMix code's unclipped ColorJitter(0.4), Lighting(0.1).

Step parity: `tests/step_parity_test.py` matches this recipe's train step
with the official PyTorch step (see the README's recipe table).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import resnet50_baseline


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The CutMix-paper ResNet-50 + CutMix recipe."""
  config = resnet50_baseline.get_config()
  config.mix.method = 'cutmix'
  config.mix.cutmix_alpha = 1.0
  config.mix.prob = 1.0
  return default.finish(config, arg)
