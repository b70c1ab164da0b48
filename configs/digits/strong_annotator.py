"""digit_scenes strong annotator: more data, wider, longer than the students.

ReLabel's annotator (EfficientNet-L2 trained on JFT-300M and ImageNet) saw
far more images than its ResNet students and was far more accurate. This
recipe keeps those premises in miniature for the calibrated scene configs
('medium', 'imagenet', which have the `extra` split): it trains on the
students' 5,000 train scenes plus 20,000 extra scenes drawn from source
digits the students never see (5x the data), with a CNN 1.5x as wide (2.2x
the parameters) for 3 epochs of the 25,000 (2.5x the students' images at
twice the batch). `jaxmix.apps.experiment` checks on the validation
scenes that it beats the baseline students before its maps are used.

Command (after `python -m jaxmix.datasets.digit_scenes --config imagenet`):
  python -m jaxmix.apps.train --config configs/digits/strong_annotator.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/annotator

Hardware: 2 CPU cores, about 7 minutes.

Expected result: the experiment's table reports it next to the students
(`python -m jaxmix.apps.demo --all`).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes setting on train + extra scenes, a wider CNN."""
  config = base.get_config()
  config.data.dataset = 'digit_scenes/imagenet'
  config.data.train_split = 'train+extra'
  config.model.kwargs.width = 24
  config.global_batch_size = 64
  config.num_epochs = 3
  config.eval_every_epochs = 3
  return default.finish(config, arg)
