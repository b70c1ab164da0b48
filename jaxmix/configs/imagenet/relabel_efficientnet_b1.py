"""ImageNet EfficientNet-B1 trained on ReLabel targets (ReLabel paper).

Command (the label-map store is made once, from the official release):
  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \
    --out $DATA/relabel_store --workers 8
  python -m jaxmix.apps.train \
    --config configs/imagenet/relabel_efficientnet_b1.py \
    --config.relabel.store_dir=$DATA/relabel_store \
    --workdir $WORKDIR/effnet_b1_relabel

Hardware: meant for 8 accelerators (a TPU v4-8 or 8 GPUs). Not yet run with
jaxmix.

Expected result: 80.3 % top-1 with ReLabel, against 79.2 % for the same
network on the original labels (ReLabel paper, Yun et al. CVPR 2021, the
architecture table; the baseline is this recipe with
`--config.relabel.enabled=False`). The official runs trained the
EfficientNets with timm; this is timm's recipe (`efficientnet_timm.py`,
which lists its differences from timm, RandAugment missing among them) with
torchvision's RandomResizedCrop law and the targets of ReLabel: the
EfficientNet-L2 label maps (15 x 15, top 5) pooled over each crop with
RoIAlign, softmax over all 1000 classes (as in `relabel_resnet50.py`),
without label smoothing (the official ReLabel recipes use none).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import efficientnet_timm


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """ReLabel's EfficientNet-B1 row."""
  return default.finish(efficientnet_timm.relabel_recipe('b1'), arg)
