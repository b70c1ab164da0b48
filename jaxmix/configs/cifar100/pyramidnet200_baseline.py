"""CIFAR-100 PyramidNet-200 (alpha 240) baseline of the CutMix paper.

Command:
  python -m jaxmix.apps.train \
    --config configs/cifar100/pyramidnet200_baseline.py --workdir /tmp/pyr

Hardware: meant for one GPU or a TPU v4-8 (the paper used 2 GPUs, batch 64).
Not yet run with jaxmix.

Expected result: 83.55 % top-1 (16.45 % error), clovaai/CutMix-PyTorch
README (best-epoch error, as the paper reports). Official train.py recipe:
batch 64, SGD nesterov momentum 0.9, lr 0.25, weight decay 1e-4, 300 epochs,
lr divided by 10 at epochs 150 and 225, random crop with 4-pixel padding +
flip. Crop: torchvision's RandomCrop(32, padding=4) law
(`data.augment='cifar'`: a uniform integer offset in [-4, 4] per axis,
zero padding). Mixing recipes built on this one draw one lambda and box
per global batch (`mix.draw='batch'`, the official one-process
`nn.DataParallel` run).

Differences from the official code: bfloat16 compute on float32 parameters
(`--config.model.dtype=float32` is the official float32), BatchNorm over
the global batch (per-GPU there), keyed randomness (unseeded there).
"""

import ml_collections

from jaxmix.configs import default

CIFAR_MEAN = (125.3, 123.0, 113.9)
CIFAR_STD = (63.0, 62.1, 66.7)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The CutMix-paper PyramidNet-200 CIFAR-100 baseline."""
  config = default.get_config()
  config.model.name = 'pyramidnet200'
  config.image_size = 32
  config.data.dataset = 'cifar100'
  config.data.eval_split = 'test'
  config.data.num_classes = 100
  config.data.augment = 'cifar'
  config.data.mean = CIFAR_MEAN
  config.data.std = CIFAR_STD
  config.data.shuffle_buffer = 50_000
  config.global_batch_size = 64
  config.num_epochs = 300
  config.optimizer.learning_rate = 0.25
  config.schedule.decay_epochs = (150, 225)
  config.model.dtype = 'bfloat16'
  config.model.kwargs.unbiased_running_var = True  # torch's BatchNorm rule
  config.mix.draw = 'batch'
  return default.finish(config, arg)
