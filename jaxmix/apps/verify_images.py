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

import argparse
import os
import sys
from collections.abc import Iterator

from jaxmix.data import jpeg_check

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


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    prog='python -m jaxmix.apps.verify_images',
    description=__doc__.splitlines()[0],
  )
  parser.add_argument('--dir', help='a folder of JPEG files')
  parser.add_argument('--dataset', help='a prepared TFDS dataset')
  parser.add_argument('--split', default='train')
  parser.add_argument('--data_dir', default=None)
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  if (args.dir is None) == (args.dataset is None):
    parser.error('give one of --dir and --dataset')
  images = (
    _files(args.dir)
    if args.dir
    else _tfds(args.dataset, args.split, args.data_dir)
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
