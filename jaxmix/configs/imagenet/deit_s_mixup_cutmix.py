"""DeiT-S (ViT-S/16) on ImageNet with the full DeiT recipe.

Command:
  python -m jaxmix.apps.train --config configs/imagenet/deit_s_mixup_cutmix.py \
    --workdir $WORKDIR/deit_s

Hardware: meant for a TPU v4-32 or 16+ GPUs (batch 1024, 300 epochs; DeiT
trained on 8 V100s). Not yet run with jaxmix.

Expected result: 79.8 % top-1 in the DeiT paper (79.9 % in
facebookresearch/deit README_deit.md). What jaxmix runs, as DeiT's
main.py defaults: AdamW lr 5e-4 * 1024 / 512, weight decay 0.05 (not on
biases and norm scales), 5 warm-up epochs then cosine, label smoothing
0.1, torchvision's RandomResizedCrop law (`data.crop_sampler=
'torchvision'`), flip, RandAugment `rand-m9-mstd0.5-inc1` per example on
the uint8 crop through timm's PIL ops (`data.auto_augment`; colour jitter
off, as timm turns it off under RandAugment), repeated augmentation with 3
repeats (`data.repeated_augmentation`: DeiT's RASampler law, an epoch as
long as the data set showing a third of it three times), Random Erasing
0.25 per pixel per example before Mixup/CutMix as in timm's loader, Mixup
alpha 0.8 or CutMix alpha 1.0 on every batch (switch prob 0.5) with one
lambda (and box) per device (`mix.draw='device'`: timm's Mixup mode
'batch' in each DDP process), stochastic depth 0.1, bfloat16 compute.

What still differs: timm resizes the crop bicubic where jaxmix shrinks
with a box filter (`data.train_resize='area'`); DeiT trained with float16
AMP; the repeated copies of an image are spread over one process's
devices (DeiT: over all GPUs of the run), because each process reads its
own slice of the split; the epoch's order is the pipeline's (file order
and shuffle buffer), not one global permutation.
"""

import ml_collections

from jaxmix.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The DeiT-S recipe (RandAugment, repeated augmentation, Mixup + CutMix,
  Random Erasing)."""
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
  config.data.auto_augment = 'rand-m9-mstd0.5-inc1'
  config.data.repeated_augmentation = 3
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
