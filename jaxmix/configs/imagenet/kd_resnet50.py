"""ImageNet ResNet-50 distilled online from ReLabel's annotator (KD vs ReLabel).

Command (the teacher: timm's `tf_efficientnet_l2_ns_475` state dict, the
machine annotator that wrote ReLabel's label maps):
  python -m jaxmix.apps.train --config configs/imagenet/kd_resnet50.py \
    --config.distill.teacher=$DATA/tf_efficientnet_l2_ns_475.pth \
    --workdir $WORKDIR/rn50_kd

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8), as
`relabel_resnet50.py`; the EfficientNet-L2 forward on every crop costs far
more than the ResNet-50 step itself (`python benchmarks/train_step.py
--rows relabel,kd --teacher tf_efficientnet_l2` measures the ratio of the
two steps with the same student; docs/benchmarks.md).
Status: not yet run with jaxmix.

Expected result: to be compared with ReLabel's 78.9 % top-1 for the same
ResNet-50 (`relabel_resnet50.py`, naver-ai/relabel_imagenet README), as
the ReLabel talk compares knowledge distillation from the same annotator,
online on every random crop, with ReLabel's one-off label maps, in
accuracy and in training cost; the talk's KD figures are not in the
official README and are not restated here. This recipe
is `relabel_resnet50.py` (300 epochs, batch 1024, SGD Nesterov, cosine
with 5 warm-up epochs, torchvision's RandomResizedCrop law, the same
colour) with the label maps
replaced by the teacher: targets `softmax(t / T)` of the EfficientNet-L2 on
each augmented 224-pixel crop, the loss `alpha T^2 KL(teacher || student)`
with alpha 1 and T 1 (Hinton et al.'s law, with the student learning the
teacher's predictions alone, as the ReLabel student learns the maps
alone; `jaxmix.train.distill`).

What differs / is assumed: the temperature and the weight of the original
labels are not stated in the reachable material; T = 1, alpha = 1 make the
comparison target-for-target with ReLabel. The teacher sees the student's
224-pixel crop (ReLabel's annotator saw the whole image at 475 pixels), in
eval mode, with ImageNet's channel statistics; bfloat16 compute on float32
parameters for student and teacher. ReLabel + CutMix's counterpart is this
recipe with `--config.mix.method=cutmix` (the teacher then sees the
CutMix-ed crop).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.imagenet import relabel_resnet50


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """ResNet-50 with the EfficientNet-L2 annotator as an online teacher."""
  config = relabel_resnet50.get_config()
  config.relabel.enabled = False
  config.distill.enabled = True
  config.distill.teacher_model = 'tf_efficientnet_l2_ns_475'
  config.distill.temperature = 1.0
  config.distill.alpha = 1.0
  return default.finish(config, arg)
