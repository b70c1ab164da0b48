"""ImageNet ResNet-101 on ReLabel targets + CutMix (ReLabel paper).

Command (the label-map store is made once, from the official release):
  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \
    --out $DATA/relabel_store --workers 8
  python -m jaxmix.apps.train \
    --config configs/imagenet/relabel_cutmix_resnet101.py \
    --config.relabel.store_dir=$DATA/relabel_store \
    --workdir $WORKDIR/rn101_relabel_cutmix

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Not yet run
with jaxmix.

Expected result: 81.6 % top-1, from the official naver-ai/relabel_imagenet
README. The official repository ships only ResNet-50 configs; this row
assumes the ResNet-50 ReLabel + CutMix recipe
(`relabel_cutmix_resnet50.py`: AdamP lr 2e-3, weight decay 1e-2, CutMix
prob 1, beta 1, off for the last 5 epochs; torchvision's RandomResizedCrop
law and ColorJitter(0.4)) with the model changed.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import relabel_cutmix_resnet50


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ReLabel + CutMix ResNet-101 recipe."""
  config = relabel_cutmix_resnet50.get_config()
  config.model.name = 'resnet101'
  return default.finish(config, arg)
