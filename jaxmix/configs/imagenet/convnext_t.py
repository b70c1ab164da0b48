"""ConvNeXt-T on ImageNet-1K with Mixup/CutMix (the ConvNeXt recipe).

Command:
  python -m jaxmix.apps.train --config configs/imagenet/convnext_t.py \
    --workdir $WORKDIR/convnext_t

Hardware: meant for a TPU v4-32 or 32 GPUs (global batch 4096, 300
epochs; the official run used 4 nodes of 8 GPUs at 128 per GPU). Status:
not yet run with jaxmix.

Expected result: 82.1 % top-1 (ConvNeXt paper, Table 1;
facebookresearch/ConvNeXt README). What jaxmix runs, as the official
TRAINING.md command for convnext_tiny: AdamW lr 4e-3 for batch 4096,
weight decay 0.05 (not on biases, norms and layer scales), 20 warm-up
epochs then cosine, label smoothing 0.1, Mixup alpha 0.8 or CutMix alpha
1.0 on every batch (switch prob 0.5; timm's Mixup mode 'batch' in each
DDP process, hence `mix.draw='device'`), RandAugment
`rand-m9-mstd0.5-inc1` per example on the uint8 crop after the flip
through timm's PIL ops (`data.auto_augment`; colour jitter off, as timm
turns it off under RandAugment), Random Erasing 0.25 per pixel,
stochastic depth 0.1 (linear over the 18 blocks, per example), layer scale
1e-6, an EMA of the weights with decay 0.9999 evaluated beside the raw
weights at every evaluation (`ema_` metrics; the official
`--model_ema_eval true` logs both), torchvision's RandomResizedCrop law
(`data.crop_sampler='torchvision'`; timm resizes bicubic where jaxmix
resizes with a box filter), evaluation at crop 0.875, bfloat16 compute
(the official runs used float32 or AMP).

What still differs: the official EMA is kept in float32 per GPU process,
here once for the replicated parameters; the crop's resize (above).
"""

import ml_collections

from jaxmix.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The ConvNeXt-T recipe."""
  config = default.get_config()
  config.model.name = 'convnext_tiny'
  config.model.kwargs.drop_path_rate = 0.1
  config.num_epochs = 300
  config.global_batch_size = 4096
  config.label_smoothing = 0.1
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 4e-3
  config.optimizer.weight_decay = 0.05
  config.optimizer.decay_mask = 'no_bias_norm'
  config.optimizer.ema_decay = 0.9999
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 20.0
  config.data.crop_sampler = 'torchvision'
  config.data.crop_pct = 0.875
  config.data.auto_augment = 'rand-m9-mstd0.5-inc1'
  config.mix.method = 'mixup_or_cutmix'
  config.mix.mixup_alpha = 0.8
  config.mix.cutmix_alpha = 1.0
  config.mix.switch_prob = 0.5
  config.mix.prob = 1.0
  config.mix.draw = 'device'
  config.random_erasing.prob = 0.25
  config.random_erasing.fill = 'pixel'
  config.model.dtype = 'bfloat16'
  return default.finish(config, arg)
