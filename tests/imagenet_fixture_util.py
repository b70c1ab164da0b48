"""Tiny prepared imagenet2012 datasets for the input-pipeline tests.

The real TFDS `imagenet2012` builder runs on archives written by
`jaxmix.datasets.imagenet_fixture` (3 synsets x 4 JPEGs, 6 validation JPEGs).
Each variant is built once per test session and reused by every module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import ml_collections

from jaxmix.configs import default
from jaxmix.datasets import imagenet_fixture

_CACHE: dict[tuple[str, ...], tuple[str, dict]] = {}

NUM_TRAIN = 12
NUM_VALIDATION = 6


def prepared_imagenet(
  root: str, corrupt: Sequence[str] = ()
) -> tuple[str, dict[str, list[tuple[str, str]]]]:
  """(data_dir, manifest) of a prepared fixture; built on first use."""
  key = tuple(sorted(corrupt))
  if key not in _CACHE:
    base = os.path.join(root, 'corrupt' if corrupt else 'clean')
    manual = os.path.join(base, 'manual')
    manifest = imagenet_fixture.build(
      manual,
      num_classes=3,
      images_per_class=NUM_TRAIN // 3,
      num_validation=NUM_VALIDATION,
      corrupt=corrupt,
    )
    data_dir = os.path.join(base, 'data')
    imagenet_fixture.prepare(manual, data_dir)
    _CACHE[key] = (data_dir, manifest)
  return _CACHE[key]


def data_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
  """The data config of the interface, imagenet2012 defaults.

  Built on the schema's `data` section, so fields added later (with their
  off defaults) are present as in any trainer config.
  """
  config = default.get_config().data
  config.update(
    dict(
      dataset='imagenet2012',
      data_dir=data_dir,
      manual_dir=None,
      train_split='train',
      eval_split='validation',
      image_key='image',
      label_key='label',
      file_name_key='file_name',
      num_classes=1000,
      augment='inception',
      crop_sampler='torchvision',
      crop_scale=(0.08, 1.0),
      crop_ratio=(3 / 4, 4 / 3),
      crop_pct=0.875,
      random_flip=True,
      color_jitter=0.0,
      color_jitter_clip=True,
      train_resize='antialias',
      photometric='host',
      pca_lighting=0.0,
      shuffle_buffer=16384,
      on_corrupt='error',
      mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
      std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    )
  )
  config.update(overrides)
  return config
