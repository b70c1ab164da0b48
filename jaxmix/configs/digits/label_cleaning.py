"""digit_scenes label cleaning: the baseline on the scenes the annotator keeps.

ReLabel's table compares its re-labelled targets with label cleaning
(Beyer et al. 2020): drop the training images whose label a strong model
disagrees with and train the baseline recipe on the rest. Here the strong
model is the annotator (`configs/digits/strong_annotator.py`) and the rule
is `jaxmix.apps.clean_labels`' default: keep a scene when its label is the
annotator's top-1 prediction on the whole scene. The recipe is
`baseline.py` with `data.keep_list` (the same epochs over fewer scenes, so
fewer steps).

Command (after training the annotator):
  python -m jaxmix.apps.clean_labels --workdir $WORKDIR/annotator \
    --data_dir $WORKDIR/data --split train --out $WORKDIR/keep.json
  python -m jaxmix.apps.train --config configs/digits/label_cleaning.py \
    --config.data.data_dir=$WORKDIR/data \
    --config.data.keep_list=$WORKDIR/keep.json --workdir $WORKDIR/cleaned

Hardware: 2 CPU cores, a few minutes; the digit study
(`projects/digit_study/`) scores each object size's student scenes with
that size's annotator.

Expected result: not a fixed number; the study's README reports it next to
the baseline over seeds 0, 1, 2, with the number of scenes dropped.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes baseline on a keep list (given on the command line)."""
  config = base.get_config()
  # config.data.keep_list: written by `python -m jaxmix.apps.clean_labels`.
  config.data.keep_list = None
  return default.finish(config, arg)
