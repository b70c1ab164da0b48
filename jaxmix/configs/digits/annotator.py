"""digit_scenes annotator: a classifier of single centred digits.

ReLabel's machine annotator in miniature: trained on the extra 'annotator'
split (5,000 images of one centred digit, whose single label is right),
then run fully convolutionally over the train scenes by `jaxmix.evaluate.annotator`
to write the label maps that `relabel.py` and `relabel_cutmix.py` pool.

Command:
  python -m jaxmix.apps.train --config configs/digits/annotator.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/annotator
  python -m jaxmix.apps.annotate --workdir $WORKDIR/annotator \
    --data_dir $WORKDIR/data --split train --out $WORKDIR/label_maps

Hardware: 2 CPU cores, about 3 minutes (plus ~20 s to annotate).

Expected result: 57.5 % top-1 on the validation scenes (whose label is the
largest of 1-3 digits; it never saw a scene), one run, seed 0.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes setting, trained on the single-digit split."""
  config = base.get_config()
  config.data.train_split = 'annotator'
  # Half the examples of the scene split: twice the epochs for the same
  # number of updates.
  config.num_epochs = 24
  config.eval_every_epochs = 8
  return default.finish(config, arg)
