"""Verifies JPEGs: refuses those libjpeg reports as corrupt.

  python -m jaxmix.apps.verify_images --dir IMAGES
  python -m jaxmix.apps.verify_images --dataset imagenet2012 \
      --split train --data_dir DIR

Decodes every JPEG under `--dir` (recursively), or every image of a
prepared TFDS split, and lists those whose decoder warns of corrupt data
(`jaxmix.data.jpeg_check`: a damaged scan decodes silently in training).
Exits 1 naming each bad file, 0 when all are clean. What cannot be
detected is in `jaxmix.data.jpeg_check`'s docstring.
"""

import os
import sys
from collections.abc import Iterator

from absl import flags

from jaxmix.data import jpeg_check
from jaxmix.io import command_line

_JPEG = ('.jpg', '.jpeg')


def _files(root: str) -> Iterator[tuple[str, bytes]]:
  for folder, _, names in sorted(os.walk(root)):
    for name in sorted(names):
      if name.lower().endswith(_JPEG):
        path = os.path.join(folder, name)
        with open(path, 'rb') as f:
          yield path, f.read()


def _tfds(dataset: str, split: str, data_dir: str | None):
  import tensorflow_datasets as tfds

  ds = tfds.load(
    dataset,
    split=split,
    data_dir=data_dir,
    decoders={'image': tfds.decode.SkipDecoding()},
  )
  for i, example in enumerate(tfds.as_numpy(ds)):
    name = example.get('file_name', f'{dataset}/{split}[{i}]')
    yield (name.decode() if isinstance(name, bytes) else name), example['image']


_FLAGS = flags.FlagValues()
_DIR = flags.DEFINE_string(
  'dir', None, 'a folder of JPEG files', flag_values=_FLAGS
)
_DATASET = flags.DEFINE_string(
  'dataset', None, 'a prepared TFDS dataset', flag_values=_FLAGS
)
_SPLIT = flags.DEFINE_string('split', 'train', 'its split', flag_values=_FLAGS)
_DATA_DIR = flags.DEFINE_string(
  'data_dir', None, 'the TFDS data folder', flag_values=_FLAGS
)


def main(argv: list[str] | None = None) -> None:
  command_line.parse(_FLAGS, argv, __doc__)
  if (_DIR.value is None) == (_DATASET.value is None):
    print('FATAL give one of --dir and --dataset', file=sys.stderr)
    raise SystemExit(2)
  images = (
    _files(_DIR.value)
    if _DIR.value
    else _tfds(_DATASET.value, _SPLIT.value, _DATA_DIR.value)
  )
  count, bad = 0, []
  for name, data in images:
    count += 1
    for warning in jpeg_check.jpeg_warnings(data):
      bad.append(f'{name}: {warning}')
  if bad:
    sys.exit(
      f'{len(bad)} problems in {count} images:\n'
      + '\n'.join(bad[:50])
      + (f'\n... ({len(bad) - 50} more)' if len(bad) > 50 else '')
    )
  print(f'{count} images decode without warnings.')


if __name__ == '__main__':
  main()
