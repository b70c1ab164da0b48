"""ImageNet ResNet-101 trained on ReLabel targets (ReLabel paper, Table 3).

Command (the label-map store is made once, from the official release):
  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \
    --out $DATA/relabel_store --workers 8
  python -m jaxmix.apps.train --config configs/imagenet/relabel_resnet101.py \
    --config.relabel.store_dir=$DATA/relabel_store \
    --workdir $WORKDIR/rn101_relabel

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Not yet run
with jaxmix.

Expected result: 80.7 % top-1 (78.1 % with the original ImageNet labels),
from the official naver-ai/relabel_imagenet README. The official repository
ships only ResNet-50 configs; this row assumes the ResNet-50 ReLabel recipe
(`relabel_resnet50.py`) with the model changed, including its crop
(torchvision's RandomResizedCrop law) and torchvision's ColorJitter(0.4).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import relabel_resnet50


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ReLabel ResNet-101 recipe (no CutMix)."""
  config = relabel_resnet50.get_config()
  config.model.name = 'resnet101'
  return default.finish(config, arg)
