"""digit_scenes baseline: no mixing, no occlusion (the first table row).

Command:
  python -m jaxmix.apps.train --config configs/digits/baseline.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/baseline

Hardware: 2 CPU cores, about 4 minutes (data prepared by `tfds build
digit_scenes --imports jaxmix.datasets.digit_scenes --data_dir $WORKDIR/data
--config default`).

Expected result: 59.25 % top-1, 72.00 % multi-label top-1 on the
test split (one run, seed 0; the full table is in the README,
`python -m jaxmix.apps.demo --all`).
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes setting, no extra augmentation."""
  return default.finish(base.get_config(), arg)
