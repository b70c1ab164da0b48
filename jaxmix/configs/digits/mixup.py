"""digit_scenes + Mixup (alpha 1, half of the batches, as CIFAR recipes).

Command:
  python -m jaxmix.apps.train --config configs/digits/mixup.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/mixup

Hardware: 2 CPU cores, about 4 minutes.

Expected result: 55.15 % top-1, 68.45 % multi-label top-1 on the
test split (one run, seed 0; the full table is in the README,
`python -m jaxmix.apps.demo --all`).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes setting plus Mixup."""
  config = base.get_config()
  config.mix.method = 'mixup'
  config.mix.mixup_alpha = 1.0
  config.mix.prob = 0.5
  return default.finish(config, arg)
