"""Opening the TFDS builders of the evaluation datasets, prepared or not.

`checked_builder` returns the builder of a prepared split with the features
a suite needs. Nothing downloads: a split that is not prepared raises a
`ValueError` (`not_prepared_error`) that says how to prepare it (where
manual files go when the builder needs them, and what building needs
besides jaxmix: OpenCV, ImageMagick). jaxmix's own offline datasets
(`jaxmix.data.digit_scenes`) register their builders when opened.
"""

import importlib
import importlib.util
import os

import tensorflow_datasets as tfds


def builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  """The TFDS builder of `name` ('imagenet_v2/topimages', 'digit_scenes')."""
  # jaxmix's offline datasets register their builders on import.
  module = f'jaxmix.data.{name.split("/")[0]}'
  if importlib.util.find_spec(module) is not None:
    importlib.import_module(module)
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as error:
    raise ValueError(f'TFDS has no dataset {name!r}: {error}') from None


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
  root = found.data_dir_root
  msg = (
    f"TFDS dataset '{name}' has no prepared split '{split}' in data_dir "
    f'{root} (looked for {found.data_dir}); jaxmix never downloads data. '
  )
  if name.split('/')[0] == 'digit_scenes':
    config = name.split('/')[1] if '/' in name else 'default'
    return ValueError(
      msg + 'Prepare it offline with `python -m jaxmix.data.digit_scenes '
      f'--data_dir {root} --config {config}`.'
    )
  instructions = getattr(found, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
  if instructions:
    manual = manual_dir or os.path.join(root, 'downloads', 'manual')
    msg += (
      f'It needs files downloaded by hand: put them in {manual} '
      f'({" ".join(instructions.split())}), then run `tfds build {name} '
      f'--data_dir={root} --manual_dir={manual}`.'
    )
  else:
    msg += f'Prepare it with `tfds build {name} --data_dir={root}`.'
  return ValueError(msg + _build_needs(name))


def checked_builder(
  name: str,
  split: str,
  *,
  data_dir: str | None,
  manual_dir: str | None = None,
  features: tuple[str, ...] = (),
) -> tfds.core.DatasetBuilder:
  """The builder of a prepared split that has `features`, else ValueError."""
  found = builder(name, data_dir)
  if not found.is_prepared() or split.split('[')[0] not in found.info.splits:
    raise not_prepared_error(found, name, split, manual_dir)
  missing = [f for f in features if f not in found.info.features]
  if missing:
    raise ValueError(
      f'TFDS dataset {name!r} lacks features {missing}; it has '
      f'{sorted(found.info.features.keys())}.'
    )
  return found
