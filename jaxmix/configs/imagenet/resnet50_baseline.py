"""ImageNet ResNet-50 baseline of the CutMix paper (Table 3, 300 epochs).

Command:
  python -m jaxmix.apps.train --config configs/imagenet/resnet50_baseline.py \
    --workdir $WORKDIR/rn50_baseline

Hardware: meant for 8 accelerators (8 GPUs or a TPU v4-8; the paper used
4 GPUs with a global batch of 256). Not yet run with jaxmix.

Expected result: 76.32 % top-1 (23.68 % error), clovaai/CutMix-PyTorch
README. Recipe of the official train.py: SGD nesterov, momentum 0.9, lr 0.1
for batch 256, weight decay 1e-4 on all parameters, 300 epochs with the lr
divided by 10 every 75 epochs, RandomResizedCrop + flip + ColorJitter(0.4)
+ PCA lighting 0.1. Crop: torchvision's RandomResizedCrop law
(`data.crop_sampler='torchvision'`, scale (0.08, 1), ratio (3/4, 4/3)).
Colour: the official code's own ColorJitter (torchvision's factor law and
random order on float tensors, blends not clipped between steps, hence
`data.color_jitter_clip=False`) then AlexNet Lighting(0.1), both run on
the device inside the train step on the uint8 crops, per example
(`data.photometric='device'`, the default; the jitter then sees the crop
rounded to uint8, a difference of at most half a level). Mixing recipes
built on this one draw one lambda and box per global batch
(`mix.draw='batch'`: the official run is one process with
`nn.DataParallel`).

Differences from the official code: BatchNorm statistics are global over
the batch (per-GPU there); bfloat16 compute on float32 parameters
(`--config.model.dtype=float32` is the official float32); randomness is
keyed by (seed, step, example) instead of unseeded; partners are permuted
inside each device's shard (the official code permutes the whole batch; the
data is shuffled, so the pairs follow the same law).
"""

import ml_collections

from jaxmix.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The CutMix-paper ResNet-50 baseline recipe."""
  config = default.get_config()
  config.num_epochs = 300
  config.schedule.decay_epochs = (75, 150, 225)
  config.data.crop_sampler = 'torchvision'
  config.data.color_jitter = 0.4
  config.data.color_jitter_clip = False  # the CutMix code's unclipped lerp
  config.data.pca_lighting = 0.1
  config.model.dtype = 'bfloat16'
  config.model.kwargs.unbiased_running_var = True  # torch's BatchNorm rule
  config.mix.draw = 'batch'
  return default.finish(config, arg)
