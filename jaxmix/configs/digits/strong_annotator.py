"""digit_scenes strong annotator: more data, wider, longer than the students.

ReLabel's annotator (EfficientNet-L2 trained on JFT-300M and ImageNet) saw
far more images than its ResNet students and was far more accurate. This
recipe keeps those premises in miniature for every scene config: it trains
on the train split (the students' 5,000 scenes; at the 'default' size
10,000, of which the students see 5,000) plus the 20,000 scenes of the
`extra` split, drawn from source digits the students never see (5x the
data, 6x at 'default'), with a CNN 1.5x as wide (2.2x the parameters) for
3 epochs (2.5x the students' images at twice the batch, 3x at
'default'). The digit study (`projects/digit_study/`) checks on the validation
scenes that it beats the baseline students before its maps are used.

Command (after `tfds build digit_scenes --imports jaxmix.datasets.digit_scenes
--data_dir $WORKDIR/data --config imagenet`):
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
