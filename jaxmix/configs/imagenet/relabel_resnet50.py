"""ImageNet ResNet-50 trained on ReLabel targets (ReLabel paper, Table 2).

Command (the label-map store is made once, from the official release):
  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \
    --out $DATA/relabel_store --workers 8
  python -m jaxmix.apps.train --config configs/imagenet/relabel_resnet50.py \
    --config.relabel.store_dir=$DATA/relabel_store \
    --workdir $WORKDIR/rn50_relabel

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8); the official
run used a global batch of 1024 on 8 GPUs. Not yet run with jaxmix.

Expected result: 78.9 % top-1 (ImageNetV2 80.5, ReaL 85.0, Shankar et al.
86.1), from the official naver-ai/relabel_imagenet README. The recipe is its
`relabel_train_resnet50.yaml`: 300 epochs, batch 1024, SGD with Nesterov
momentum 0.9, lr 0.1 with 5 linear warm-up epochs then cosine per step,
weight decay 1e-4 on all parameters, no label smoothing, RandomResizedCrop
(0.08, 1) + flip + colour jitter 0.4 + PCA lighting 0.1, eval at 224 after
resizing to 256. Crop: torchvision's RandomResizedCrop law
(`data.crop_sampler='torchvision'`; the official RandomResizedCropWithCoords
is torchvision's sampler plus the box). Colour: torchvision's
ColorJitter(0.4, 0.4, 0.4), clipped after each step (the official code
jitters PIL images, rounded to uint8 after each step; here in float, on
the device inside the train step: `data.photometric='device'`, the
default).
Targets: the EfficientNet-L2 label maps (15 x 15, top 5) pooled over each
crop with RoIAlign, softmax over all 1000 classes.
Mixing recipes built on this one draw one lambda and box per device
(`mix.draw='device'`; the official DDP run draws one per process), and
compute in bfloat16 on float32 parameters (the official run used apex O1
mixed precision).

Differences: jaxmix pools the geometrically correct crop region
(`relabel.official_box_order=True` reproduces the official (y, x) swap),
uses synchronised BatchNorm over the global batch (per-GPU there) and keyed
randomness (unseeded there).

Step parity: `tests/step_parity_test.py` matches this recipe's train step
with the official PyTorch step (see the README's recipe table).
"""

import ml_collections

from jaxmix.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ReLabel ResNet-50 recipe (no CutMix)."""
  config = default.get_config()
  config.model.name = 'resnet50'
  config.num_epochs = 300
  config.global_batch_size = 1024
  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.weight_decay = 1e-4
  config.optimizer.decay_mask = 'all'
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 5.0
  config.label_smoothing = 0.0
  config.data.crop_sampler = 'torchvision'
  config.data.color_jitter = 0.4
  config.data.color_jitter_clip = True
  config.data.pca_lighting = 0.1
  config.mix.off_epoch = 5  # as the official config (CutMix is off anyway)
  config.model.dtype = 'bfloat16'
  config.model.kwargs.unbiased_running_var = True  # torch's BatchNorm rule
  config.mix.draw = 'device'
  config.relabel.enabled = True
  config.relabel.missing = 'error'
  return default.finish(config, arg)
