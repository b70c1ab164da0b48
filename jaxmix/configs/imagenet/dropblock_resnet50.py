"""ImageNet ResNet-50 + DropBlock, as compared in the CutMix paper.

Command:
  python -m jaxmix.apps.train \
    --config configs/imagenet/dropblock_resnet50.py \
    --workdir $WORKDIR/rn50_dropblock

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8). Status: not yet
run with jaxmix.

Expected result: 78.13 % top-1, the DropBlock row of the CutMix paper's
ImageNet ResNet-50 table, quoted there from Ghiasi et al. (2018), who
trained on TPUs with their own ResNet-50 recipe (their table's baseline is
76.51 %, not the CutMix table's 76.32 %). DropBlock as tensorflow/tpu's
ResNet applies it: block size 7, in every bottleneck block of groups 3 and
4, after both inner BN-ReLUs, after the last BN and on the shortcut; the
keep probability falls linearly from 1 to 0.9 over the run, group 3 dropping
a quarter as much as group 4 (`jaxmix.models.drop`).

What differs: the rest of the recipe is the CutMix baseline's
(`resnet50_baseline.py`: 300 epochs, SGD nesterov lr 0.1 / 10 every 75
epochs, torchvision's RandomResizedCrop law, unclipped ColorJitter(0.4),
Lighting(0.1)), so that the row compares to the others of the table, not
Ghiasi et al.'s TPU recipe. The schedule's length `dropblock_steps` is
300 epochs of 1,281,167 // 256 steps; change it with `num_epochs` or the
batch size.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import resnet50_baseline

IMAGENET_TRAIN = 1_281_167


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ResNet-50 + DropBlock comparison row."""
  config = resnet50_baseline.get_config()
  steps_per_epoch = IMAGENET_TRAIN // config.global_batch_size
  config.model.kwargs.dropblock_keep_prob = 0.9
  config.model.kwargs.dropblock_size = 7
  config.model.kwargs.dropblock_groups = (3, 4)
  config.model.kwargs.dropblock_steps = config.num_epochs * steps_per_epoch
  return default.finish(config, arg)
