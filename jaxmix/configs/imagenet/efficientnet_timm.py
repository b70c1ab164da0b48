"""timm's EfficientNet ImageNet recipe, the base of ReLabel's EfficientNet rows.

Command (baseline B0; the ReLabel rows are `relabel_efficientnet_b*.py`):
  python -m jaxmix.apps.train --config configs/imagenet/efficientnet_timm.py \
    --workdir $WORKDIR/effnet_b0

Hardware: meant for 8 accelerators (a TPU v4-8 or 8 GPUs). Not yet run with
jaxmix.

Expected result: 77.4 % top-1 for B0 (the ReLabel paper's baseline row;
timm reports 77.7 % for its own run with RandAugment). B1-B3 baselines:
`recipe('b1')` ... through `relabel_efficientnet_b*.py` with
`--config.relabel.enabled=False` (79.2, 80.3, 81.7 %).

What it is: timm's published EfficientNet command (its training examples,
`--sched step --epochs 450 --decay-epochs 2.4 --decay-rate .97 --opt
rmsproptf --opt-eps .001 --warmup-lr 1e-6 --weight-decay 1e-5 --drop-path
0.2 --model-ema --model-ema-decay 0.9999 --aa rand-m9-mstd0.5 --remode
pixel --reprob 0.2 --amp`, lr 0.016 per 256 images): RMSpropTF (decay 0.9,
eps 1e-3, momentum 0.9), x0.97 every 2.4 epochs after 3 warm-up epochs,
weight decay 1e-5 off biases and norms, EMA 0.9999, stochastic depth 0.2,
the member's dropout (B0/B1 0.2, B2/B3 0.3), Random Erasing 0.2 per pixel,
label smoothing 0.1 (timm's default), bfloat16 compute. Crop: torchvision's RandomResizedCrop law
(`data.crop_sampler='torchvision'`; timm samples the same way). No colour
jitter: timm turns it off when RandAugment is on.

Differences from timm: RandAugment (m9, mstd 0.5) is not in jaxmix yet, so
expect less than timm's numbers until it lands; crops are resized bilinear
with antialiasing (timm: bicubic); the warm-up starts at 0 (timm: 1e-6);
BatchNorm statistics are global over the batch (timm: per GPU). The global
batch is 768 with lr 0.048 (timm's B0 example: 2 x 384).
"""

import ml_collections

from jaxmix.configs import default

# Member -> (training resolution, evaluation crop fraction), timm's defaults.
MEMBERS = {
  'b0': (224, 0.875),
  'b1': (240, 0.882),
  'b2': (260, 0.890),
  'b3': (300, 0.904),
}


def recipe(member: str) -> ml_collections.ConfigDict:
  """timm's recipe for EfficientNet-`member` ('b0' ... 'b3'), unfinished."""
  if member not in MEMBERS:
    raise ValueError(
      f'member must be one of {sorted(MEMBERS)}, got {member!r}.'
    )
  size, crop_pct = MEMBERS[member]
  config = default.get_config()
  config.model.name = f'efficientnet_{member}'
  config.model.dtype = 'bfloat16'
  config.model.kwargs.drop_path_rate = 0.2
  config.model.kwargs.unbiased_running_var = True  # torch's BatchNorm rule
  config.image_size = size
  config.data.crop_pct = crop_pct
  config.data.crop_sampler = 'torchvision'
  config.data.color_jitter = 0.0
  config.num_epochs = 450
  config.label_smoothing = 0.1  # timm's default --smoothing
  config.global_batch_size = 768
  config.optimizer.name = 'rmsproptf'
  config.optimizer.learning_rate = 0.016 * 768 / 256
  config.optimizer.b2 = 0.9
  config.optimizer.eps = 1e-3
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 1e-5
  config.optimizer.decay_mask = 'no_bias_norm'
  config.optimizer.ema_decay = 0.9999
  config.schedule.name = 'exponential'
  config.schedule.warmup_epochs = 3.0
  config.schedule.decay_every_epochs = 2.4
  config.schedule.decay_factor = 0.97
  config.random_erasing.prob = 0.2
  config.random_erasing.fill = 'pixel'
  return config


def relabel_recipe(member: str) -> ml_collections.ConfigDict:
  """`recipe(member)` on ReLabel targets (no label smoothing), unfinished."""
  config = recipe(member)
  config.label_smoothing = 0.0
  config.relabel.enabled = True
  config.relabel.missing = 'error'
  return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """timm's EfficientNet-B0 recipe (the baseline of ReLabel's B0 row)."""
  return default.finish(recipe('b0'), arg)
