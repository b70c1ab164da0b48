"""digit_scenes-LT: the digit baseline on a long-tailed train split.

The train split of `digit_scenes/imagenet` (ImageNet-sized digits) keeps,
for digit class c, `int(n_max * 0.01 ** (c / 9))` scenes (CIFAR-LT's
exponential profile, imbalance ratio 100, n_max the smallest class's
count; `data.long_tail`), chosen with seed 0: 1,098 of the 5,000 scenes;
validation and test stay balanced. Otherwise the `configs/digits/base.py`
setting, trained for 30 epochs.

Command:
  tfds build digit_scenes --imports jaxmix.datasets.digit_scenes \
    --data_dir $WORKDIR/data --config imagenet
  python -m jaxmix.apps.train --config configs/digits_lt/baseline.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/lt_baseline
  python -m jaxmix.apps.evaluate --workdir $WORKDIR/lt_baseline \
    --suite long_tail

Hardware: 2 CPU cores, about 4 minutes.

Expected result: 28.73 ± 2.05 % top-1 on the balanced validation split
over seeds 0, 1, 2 (31.00, 28.20, 27.00 %); many-shot digits 77.9 %,
few-shot 0 % (docs/benchmarks.md). With `--config.num_epochs=200` (12-20
minutes a run on the 2-core CPU), over seeds 0 to 4: 49.58 ± 1.39 %
(51.70, 48.60, 49.60, 48.10, 49.90 %), few-shot digits 3.8 %.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def long_tailed(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The digit setting on the ratio-100 long-tailed train split."""
  # ImageNet's object size: CMO labels a pasted box by area as the minority
  # class, and on the small-digit scenes 39 % of CutMix boxes hold none of
  # the pasted scene's digit (8.5 % here; `projects/digit_study/label_fit.py`).
  config.data.dataset = 'digit_scenes/imagenet'
  config.data.long_tail.imbalance_ratio = 100.0
  config.data.long_tail.seed = 0
  config.num_epochs = 30
  config.eval_every_epochs = 10
  return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Long-tailed digit_scenes, plain training."""
  return default.finish(long_tailed(base.get_config()), arg)
