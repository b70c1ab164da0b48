"""ImageNet ResNet-50 trained on a cleaned training set (ReLabel's table).

Command (the keep list is written once, by a strong scorer):
  python -m jaxmix.apps.clean_labels \
    --weights $DATA/tf_efficientnet_l2_ns_475.pth \
    --model tf_efficientnet_l2_ns_475 --dataset imagenet2012 \
    --data_dir $DATA --split train --out $DATA/keep_l2.json
  python -m jaxmix.apps.train \
    --config configs/imagenet/label_cleaning_resnet50.py \
    --config.data.keep_list=$DATA/keep_l2.json \
    --workdir $WORKDIR/rn50_label_cleaning

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8) on one host (a
keep list is read by a single process); the official ReLabel runs used a
global batch of 1024 on 8 GPUs. Status: not yet run with jaxmix.

Expected result: 78.1 % top-1 (ImageNetV2 79.1, ReaL 83.6, Shankar et al.
85.2), the label-cleaning row of the naver-ai/relabel_imagenet README,
against 77.5 for the original labels and 78.9 for ReLabel. The recipe is
ReLabel's own training recipe (`relabel_resnet50.py`: 300 epochs, batch
1024, SGD Nesterov, cosine with 5 warm-up epochs, torchvision's
RandomResizedCrop law, the same colour) on one-hot labels, reading only the training images whose label
the scorer predicts (`jaxmix.evaluate.label_cleaning`, Beyer et al.'s
label cleaning).

What differs / is assumed: the README links Beyer et al.'s reassessed
labels and does not say which model cleaned the training set, nor the
exact rule; the commands above use ReLabel's own annotator
(EfficientNet-L2 at 475 px) and keep an image when its label is the
scorer's top-1 prediction (`--top_k`). The scorer sees the evaluation view
(centre crop), not the whole image.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import relabel_resnet50


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """ReLabel's ResNet-50 recipe on one-hot labels of a cleaned train set."""
  config = relabel_resnet50.get_config()
  config.relabel.enabled = False
  # --config.data.keep_list=FILE, written by jaxmix.apps.clean_labels.
  config.data.keep_list = None
  return default.finish(config, arg)
