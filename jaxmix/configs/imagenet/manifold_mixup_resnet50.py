"""ImageNet ResNet-50 + Manifold Mixup, as compared in the CutMix paper.

Command:
  python -m jaxmix.apps.train \
    --config configs/imagenet/manifold_mixup_resnet50.py \
    --workdir $WORKDIR/rn50_manifold_mixup

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Status: not yet
run with jaxmix.

Expected result: 77.50 % top-1 (the Manifold Mixup row of the CutMix
paper's ImageNet ResNet-50 table, 300 epochs, run by the CutMix authors).
The baseline recipe (`resnet50_baseline.py`: torchvision's
RandomResizedCrop law, the CutMix code's unclipped ColorJitter(0.4),
Lighting(0.1), SGD nesterov, lr 0.1 / 10 every 75 epochs) plus Manifold
Mixup as its
authors' code defines it (vikasverma1077/manifold_mixup): every batch draws
one mixing point uniformly from {input, output of stage 1, output of stage
2} (`mix.manifold_layers=(0, 1, 2)`) and one lambda ~ Beta(alpha, alpha);
the hidden state there is mixed with a permutation of the batch and the
targets with the same lambda (`jaxmix.train.manifold_mixup`).

What differs / is assumed: the CutMix paper does not state the alpha it
used; 2.0 is the Manifold Mixup authors' setting for their supervised
runs (their README's command), to be checked against the CutMix authors'
run. The authors' code is for pre-activation ResNets on CIFAR; here the
points are the torchvision ResNet-50's input and the outputs of its first
two block groups. Partners are permuted inside each device's shard (one
draw for the global batch, `mix.draw='batch'`), BatchNorm statistics are
global, bfloat16 compute, as the baseline recipe.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import resnet50_baseline


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ResNet-50 + Manifold Mixup comparison row."""
  config = resnet50_baseline.get_config()
  config.mix.method = 'manifold_mixup'
  config.mix.mixup_alpha = 2.0
  config.mix.manifold_layers = (0, 1, 2)
  config.mix.prob = 1.0
  return default.finish(config, arg)
