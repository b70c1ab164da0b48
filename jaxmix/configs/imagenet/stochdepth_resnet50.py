"""ImageNet ResNet-50 + stochastic depth, as compared in the CutMix paper.

Command:
  python -m jaxmix.apps.train \
    --config configs/imagenet/stochdepth_resnet50.py \
    --workdir $WORKDIR/rn50_stochdepth

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Status: not yet
run with jaxmix.

Expected result: 77.53 % top-1 (the StochDepth row of the CutMix paper's
ImageNet ResNet-50 table, 300 epochs, run by the CutMix authors). The
baseline recipe (`resnet50_baseline.py`: torchvision's RandomResizedCrop
law, the CutMix code's unclipped ColorJitter(0.4), Lighting(0.1), SGD
nesterov, lr 0.1 / 10 every 75 epochs) plus stochastic depth as Huang et
al. define it: block l of the 16 bottleneck blocks keeps its residual
branch with probability 1 - (l / 16) * 0.5, the gate drawn once per batch,
the kept branch scaled by 1 / p_l while training (Huang et al. scale by p_l
at test time instead: the same expectation).

What differs / is assumed: the CutMix paper does not state its rate; 0.5
(p_L = 0.5) is Huang et al.'s ImageNet setting, to be checked against the
CutMix authors' run. Huang et al. drop per mini-batch on one GPU; here one
gate serves the global batch (`--config.model.kwargs.per_example_drop=True`
draws per example, as timm). BatchNorm and bfloat16 as the baseline recipe.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import resnet50_baseline


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ResNet-50 + stochastic depth comparison row."""
  config = resnet50_baseline.get_config()
  config.model.kwargs.drop_path_rate = 0.5  # 1 - p_L
  config.model.kwargs.per_example_drop = False  # Huang et al.: per batch
  return default.finish(config, arg)
