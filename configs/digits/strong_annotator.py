"""digit_scenes strong annotator: more data, wider, longer than the students.

ReLabel's annotator (EfficientNet-L2 trained on JFT-300M and ImageNet) saw
far more images than its ResNet students and was far more accurate. This
recipe keeps those premises in miniature for the calibrated scene configs
('medium', 'imagenet', which have the `extra` split): it trains on the
students' 5,000 train scenes plus 20,000 extra scenes drawn from source
digits the students never see (5x the data), with a CNN twice as wide (4x
the parameters) for 4 epochs of the 25,000 (3.3x the students' images,
1.7x their updates at twice the batch). `jaxmix.apps.experiment` checks on the validation
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
  config.model.kwargs.width = 32
  config.global_batch_size = 64
  config.num_epochs = 4
  config.eval_every_epochs = 2
  return default.finish(config, arg)
