"""Transfer recipes: an ImageNet ResNet-50 fine-tuned on another dataset.

ReLabel (Yun et al., CVPR 2021) compares ImageNet-pretrained ResNet-50s
(trained on the original labels or on ReLabel's) by fine-tuning them on
Food-101, Stanford Cars, DTD, FGVC Aircraft and Oxford-IIIT Pets, and
states that it follows the fine-tuning protocol of Kornblith, Shlens and
Le, "Do Better ImageNet Models Transfer Better?" (CVPR 2019): the whole
network is fine-tuned, with SGD and Nesterov momentum, on 224 x 224
images, the learning rate and weight decay chosen per dataset by a grid
search on a validation split. ReLabel does not give the chosen values, the
grid, the batch size, the number of steps or the schedule; the values in
these recipes are jaxmix's starting point (below), not the paper's, and the
paper's accuracies are left to the user (no number here is a target).

Every recipe starts from a torchvision-layout ResNet-50 state dict, a
jaxmix run exported with `python -m jaxmix.apps.export` or any imported
file (`--config.model.init_from=FILE`, `jaxmix.models.load_torch_weights`):
its classifier does not fit the new class count, so the trainer keeps a
freshly initialised head and says so in the log. A fresh run without
`init_from` stops with an error (`model.init_required`); pass
`--config.model.init_required=False` to train from random initialisation
on purpose (Kornblith et al.'s from-scratch comparison).

jaxmix's defaults: global batch 256, SGD with Nesterov momentum 0.9,
learning rate 0.01 with cosine decay to 0 per step and no warm-up, weight
decay 1e-4 on all parameters (the centre of a grid to search), about
20,000 steps (`num_epochs` from the training split's size), no label
smoothing or mixing; torchvision's RandomResizedCrop (0.08, 1) at 224 with
flips for training, resize to 256 and centre crop 224 for evaluation,
ImageNet's channel statistics (those of the pretrained network).

Config arguments: `:search` trains on the recipe's search split and
evaluates on its held-out split (one point of the grid search);
`:smoke` is a CPU run of seconds on synthetic data with the dataset's class
count, a ResNet-18 of width 8 (a model with the torchvision layout, so
`init_from` works); `:search,smoke` both.
"""

import dataclasses
import math

import ml_collections

from jaxmix.configs import default

STEPS = 20_000  # jaxmix's default budget (see the docstring)
BATCH = 256


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A transfer dataset: its TFDS name, classes and splits.

  `train_split` / `eval_split` are the final fine-tuning and test splits;
  `search_train` / `search_eval` the grid search's (`:search`).
  `train_examples` sizes the step budget.
  """

  tfds_name: str
  num_classes: int
  train_split: str
  eval_split: str
  search_train: str
  search_eval: str
  train_examples: int


def get_config(dataset: Dataset, arg: str | None) -> ml_collections.ConfigDict:
  """The transfer recipe for `dataset`, with the config argument `arg`."""
  parts = {p.strip() for p in (arg or '').split(',') if p.strip()}
  unknown = parts - {'search', 'smoke'}
  if unknown:
    raise ValueError(
      f'Config argument {arg!r} is not known; use nothing, :search, :smoke '
      'or :search,smoke.'
    )
  config = default.get_config()
  config.model.name = 'resnet50'
  config.model.dtype = 'bfloat16'
  config.model.init_required = True  # fine-tuning; no silent scratch run
  # torch's BatchNorm rule: the weights and statistics come from torch.
  config.model.kwargs.unbiased_running_var = True
  config.image_size = 224

  data = config.data
  data.dataset = dataset.tfds_name
  data.num_classes = dataset.num_classes
  data.train_split = dataset.train_split
  data.eval_split = dataset.eval_split
  if 'search' in parts:
    data.train_split = dataset.search_train
    data.eval_split = dataset.search_eval
  data.augment = 'inception'
  data.crop_sampler = 'torchvision'
  data.crop_pct = 0.875
  data.shuffle_buffer = min(data.shuffle_buffer, dataset.train_examples)

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.01
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.weight_decay = 1e-4
  config.optimizer.decay_mask = 'all'
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 0.0
  config.global_batch_size = BATCH
  steps_per_epoch = dataset.train_examples // BATCH
  config.num_epochs = math.ceil(STEPS / steps_per_epoch)
  # About ten evaluations per run.
  config.eval_every_epochs = max(1, config.num_epochs // 10)
  config.checkpoint.every_steps = 2000
  config.label_smoothing = 0.0
  config.mix.method = 'none'
  if 'smoke' in parts:
    config = smoke(config)
  return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`default.smoke`, on a torchvision-layout model and the recipe's classes.

  The class count stays the dataset's, so an ImageNet file's head is
  replaced as in the real run.
  """
  num_classes = config.data.num_classes
  config = default.smoke(config)
  config.model.name = 'resnet18'
  config.model.kwargs = ml_collections.ConfigDict({'width': 8})
  config.data.num_classes = num_classes
  return config
