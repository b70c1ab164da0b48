"""CIFAR-100 PyramidNet-200 (alpha 240) + CutMix, the CutMix paper's row.

Command:
  python -m jaxmix.apps.train \
    --config configs/cifar100/pyramidnet200_cutmix.py --workdir /tmp/pyr_cm

Hardware: meant for one GPU or a TPU v4-8 (the paper used 2 GPUs, batch 64).
Not yet run with jaxmix.

Expected result: 85.77 % top-1 (14.23 % error), clovaai/CutMix-PyTorch
README (best epoch; reruns reported in its issues #7/#36 land at 14.96 best,
15.91 final). The baseline recipe plus CutMix beta = 1.0 with
cutmix_prob = 0.5, the official CIFAR command; its crop is the baseline's
(torchvision's RandomCrop(32, padding=4) law).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.cifar100 import pyramidnet200_baseline


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The CutMix-paper PyramidNet-200 + CutMix CIFAR-100 recipe."""
  config = pyramidnet200_baseline.get_config()
  config.mix.method = 'cutmix'
  config.mix.cutmix_alpha = 1.0
  config.mix.prob = 0.5
  return default.finish(config, arg)
