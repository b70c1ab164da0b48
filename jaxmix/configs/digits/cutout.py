"""digit_scenes + Cutout: a zeroed 12x12 square per image.

Command:
  python -m jaxmix.apps.train --config configs/digits/cutout.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/cutout

Hardware: 2 CPU cores, about 4 minutes.

Expected result: 48.10 % top-1, 60.95 % multi-label top-1 on the
test split (one run, seed 0; the full table is in the README,
`python -m jaxmix.apps.demo --all`).
Cutout's CIFAR side is half the image (16 of 32 pixels); digits here are
6-14 pixels tall at 32x32, so a 12-pixel square hides most of one.
"""

import ml_collections

from jaxmix.configs import default
from jaxmix.configs.digits import base


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The digit_scenes setting plus Cutout."""
  config = base.get_config()
  config.cutout.size = 12
  config.cutout.prob = 1.0
  return default.finish(config, arg)
