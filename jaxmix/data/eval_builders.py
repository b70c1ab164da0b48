"""Opening the TFDS builders of the evaluation datasets, prepared or not.

`checked_builder` returns the builder of a prepared split with the features
a suite needs. Nothing downloads: a split that is not prepared raises a
`ValueError` (`not_prepared_error`) that says how to prepare it (where
manual files go when the builder needs them, and what building needs
besides jaxmix: OpenCV, ImageMagick). jaxmix's own offline datasets
(`jaxmix.datasets.digit_scenes`) register their builders when opened
(`jaxmix.data.tfds_source.open_builder`, shared with training).
"""

import tensorflow_datasets as tfds

from jaxmix.data import tfds_source

_OPENCV = 'OpenCV (`pip install opencv-python-headless`)'
_IMAGEMAGICK = (
  'the ImageMagick `convert` binary on the PATH as `imagemagick` (TFDS '
  'runs it for the snow and motion_blur corruptions)'
)


def _build_needs(name: str) -> str:
  """What building `name` needs besides jaxmix's dependencies ('' if none)."""
  base, _, config = name.partition('/')
  opencv = base in ('caltech_birds2011', 'imagenet2012_corrupted')
  needs = [_OPENCV] if opencv else []
  if base == 'imagenet2012_corrupted' and config.startswith(
    ('snow', 'motion_blur')
  ):
    needs.append(_IMAGEMAGICK)
  return f' Building it needs {" and ".join(needs)}.' if needs else ''


def not_prepared_error(
  found: tfds.core.DatasetBuilder,
  name: str,
  split: str,
  manual_dir: str | None = None,
) -> ValueError:
  """A `ValueError` saying how to prepare `name` (nothing is downloaded)."""
  msg = tfds_source.not_prepared_message(found, name, split, manual_dir)
  return ValueError(msg + ' jaxmix never downloads data.' + _build_needs(name))


def checked_builder(
  name: str,
  split: str,
  *,
  data_dir: str | None,
  manual_dir: str | None = None,
  features: tuple[str, ...] = (),
) -> tfds.core.DatasetBuilder:
  """The builder of a prepared split that has `features`, else ValueError."""
  found = tfds_source.open_builder(name, data_dir)
  if not found.is_prepared() or split.split('[')[0] not in found.info.splits:
    raise not_prepared_error(found, name, split, manual_dir)
  missing = [f for f in features if f not in found.info.features]
  if missing:
    raise ValueError(
      f'TFDS dataset {name!r} lacks features {missing}; it has '
      f'{sorted(found.info.features.keys())}.'
    )
  return found
