"""digit_scenes + knowledge distillation from the strong annotator, online.

The counterpart of `relabel.py` in ReLabel's talk comparison: the same
machine annotator (`configs/digits/strong_annotator.py`), used as a frozen
teacher on every augmented crop instead of through its one-off label maps.
The student learns `softmax(t / T)` of the teacher's logits on the very
crop it sees (`jaxmix.train.distill`, Hinton et al.'s loss) with T = 1 and
alpha = 1: the teacher's predictions alone, at the temperature of
`relabel.py`'s label maps (`relabel.temperature = 1`), so the two rows
differ only in where the targets come from (whole-crop prediction, online,
against the crop box pooled from the full scene's maps, once). Hinton et
al.'s hard-label term and higher temperatures are a different recipe, not
the talk's comparison.

Command (the teacher: a trained annotator run):
  python -m jaxmix.apps.train --config configs/digits/kd.py \
    --config.data.data_dir=$WORKDIR/data \
    --config.distill.teacher=$WORKDIR/annotator --workdir $WORKDIR/kd

Hardware: 2 CPU cores, a few minutes (the teacher's forward adds to every
step); the digit study (`projects/digit_study/`) trains it next to
ReLabel with the annotator of each object size.

Expected result: not a fixed number; the study's README reports it next to
ReLabel over seeds 0, 1, 2.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes setting, distilled from a teacher run."""
  config = base.get_config()
  config.distill.enabled = True
  # config.distill.teacher: the annotator's run directory, on the command
  # line (the digit study sets it per object size).
  config.distill.temperature = 1.0
  config.distill.alpha = 1.0
  return default.finish(config, arg)
