"""DeiT-S (ViT-S/16) on ImageNet with Mixup/CutMix (the DeiT recipe).

Command:
  python -m jaxmix.apps.train --config configs/imagenet/deit_s_mixup_cutmix.py \
    --workdir $WORKDIR/deit_s

Hardware: meant for a TPU v4-32 or 16+ GPUs (batch 1024, 300 epochs; DeiT
trained on 8 V100s). Not yet run with jaxmix.

Expected result: 79.8 % top-1 in the DeiT paper (79.9 % in
facebookresearch/deit README_deit.md). What jaxmix runs: AdamW lr
5e-4 * 1024 / 512, weight decay 0.05 (not on biases and norm scales),
5 warm-up epochs then cosine, label smoothing 0.1, Mixup alpha 0.8 or
CutMix alpha 1.0 on every batch (switch prob 0.5), Random Erasing 0.25 per
pixel, stochastic depth 0.1, and torchvision's RandomResizedCrop law
(`data.crop_sampler='torchvision'`; timm's RandomResizedCropAndInterpolation
samples the same way, then resizes bicubic where jaxmix resizes bilinear
with antialiasing). As in timm's loader, Random Erasing runs per example
before Mixup/CutMix; one lambda (and box) per device (`mix.draw='device'`:
timm's Mixup mode 'batch' in each DDP process); bfloat16 compute (DeiT
trained with float16 AMP). Not included: RandAugment and repeated
augmentation, so expect somewhat less than the paper until those land.
"""

import ml_collections

from jaxmix.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The DeiT-S recipe (Mixup + CutMix + Random Erasing)."""
  config = default.get_config()
  config.model.name = 'vit_s16'
  config.model.kwargs.image_size = config.image_size  # position embeddings
  config.model.kwargs.drop_path_rate = 0.1
  config.num_epochs = 300
  config.global_batch_size = 1024
  config.label_smoothing = 0.1
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 5e-4 * 1024 / 512
  config.optimizer.weight_decay = 0.05
  config.optimizer.decay_mask = 'no_bias_norm'
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 5.0
  config.data.crop_sampler = 'torchvision'
  config.data.crop_pct = 0.875
  config.mix.method = 'mixup_or_cutmix'
  config.mix.mixup_alpha = 0.8
  config.mix.cutmix_alpha = 1.0
  config.mix.switch_prob = 0.5
  config.mix.prob = 1.0
  config.random_erasing.prob = 0.25
  config.random_erasing.fill = 'pixel'
  config.mix.draw = 'device'
  config.model.dtype = 'bfloat16'
  return default.finish(config, arg)
