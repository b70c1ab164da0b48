"""ImageNet ResNet-50 + Mixup, as compared in the CutMix paper (Table 3).

Command:
  python -m jaxmix.apps.train --config configs/imagenet/mixup_resnet50.py \
    --workdir $WORKDIR/rn50_mixup

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Not yet run with
jaxmix.

Expected result: 77.42 % top-1 (22.58 % error), clovaai/CutMix-PyTorch
README (the Mixup row of its ImageNet table). The baseline recipe plus
Mixup on every batch with alpha = 1.0. The README does not give alpha; 1.0
is our reading of the CutMix paper's setup and should be checked against it
(the Mixup paper itself used 0.2 on ImageNet).
Crop and colour as the baseline recipe: torchvision's RandomResizedCrop
law, the CutMix code's unclipped ColorJitter(0.4), Lighting(0.1).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import resnet50_baseline


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ResNet-50 + Mixup comparison row."""
  config = resnet50_baseline.get_config()
  config.mix.method = 'mixup'
  config.mix.mixup_alpha = 1.0
  config.mix.prob = 1.0
  return default.finish(config, arg)
