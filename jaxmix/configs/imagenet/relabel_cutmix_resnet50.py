"""ImageNet ResNet-50 on ReLabel targets + CutMix (ReLabel paper, Table 6).

Command (the label-map store is made once, from the official release):
  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \
    --out $DATA/relabel_store --workers 8
  python -m jaxmix.apps.train --config configs/imagenet/relabel_cutmix_resnet50.py \
    --config.relabel.store_dir=$DATA/relabel_store \
    --workdir $WORKDIR/rn50_relabel_cutmix

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8); the official
run used a global batch of 1024 on 8 GPUs. Not yet run with jaxmix.

Expected result: 80.2 % top-1, from the official naver-ai/relabel_imagenet
README. The recipe is its `relabel_train_resnet50_cutmix.yaml`: the ReLabel
ResNet-50 recipe (`relabel_resnet50.py`: torchvision's RandomResizedCrop
law, torchvision's ColorJitter(0.4), Lighting(0.1)) with AdamP (b1 0.9,
b2 0.999, Nesterov) at lr 2e-3, decoupled weight decay 1e-2, and CutMix with
prob 1.0, beta 1.0, off for the last 5 epochs. CutMix mixes the two
examples' ReLabel targets (each pooled over its whole crop) by the
kept-pixel fraction, as the official code does; set
`--config.relabel.localized_cutmix=True` to pool the pasted box from the
partner's map instead (a jaxmix extension, not in the paper).

Step parity: `tests/step_parity_test.py` matches this recipe's train step
with the official PyTorch step (see the README's recipe table).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import relabel_resnet50


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ReLabel + CutMix ResNet-50 recipe."""
  config = relabel_resnet50.get_config()
  config.optimizer.name = 'adamp'
  config.optimizer.learning_rate = 2e-3
  config.optimizer.weight_decay = 1e-2
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.nesterov = True
  config.mix.method = 'cutmix'
  config.mix.cutmix_alpha = 1.0
  config.mix.prob = 1.0
  config.mix.off_epoch = 5
  return default.finish(config, arg)
