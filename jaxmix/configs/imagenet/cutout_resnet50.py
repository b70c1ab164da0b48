"""ImageNet ResNet-50 + Cutout, as compared in the CutMix paper (Table 3).

Command:
  python -m jaxmix.apps.train --config configs/imagenet/cutout_resnet50.py \
    --workdir $WORKDIR/rn50_cutout

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Not yet run with
jaxmix.

Expected result: 77.07 % top-1 (22.93 % error), clovaai/CutMix-PyTorch
README (the Cutout row of its ImageNet table). The baseline recipe plus one
112x112 Cutout square per image, filled with 0 after normalisation (the mean
colour). The README does not give the mask size; 112 (half the image side)
is our reading of the CutMix paper's setup and should be checked against it.
Crop and colour as the baseline recipe: torchvision's RandomResizedCrop
law, the CutMix code's unclipped ColorJitter(0.4), Lighting(0.1).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import resnet50_baseline


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ResNet-50 + Cutout comparison row."""
  config = resnet50_baseline.get_config()
  config.cutout.size = 112
  config.cutout.prob = 1.0
  return default.finish(config, arg)
