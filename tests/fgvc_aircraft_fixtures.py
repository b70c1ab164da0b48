"""A tiny fake FGVC Aircraft 2013b release in the official layout.

`release_files` lays out `fgvc-aircraft-2013b/data/` with three variants
(names with a space and a slash, as the release has), two families, two
manufacturers, solid-colour JPEGs (`eval_builder_fixtures.solid_jpeg` of
the variant's index, so a picture's class can be read back from it) and
the per-level split lists. `LABELS` gives the expected labels by hand.
"""

import os

import eval_builder_fixtures as fx

from jaxmix.datasets import fgvc_aircraft as fa

VARIANTS = ('A300B4', 'F-16A/B', 'Falcon 2000')
FAMILIES = ('Airbus', 'Dassault')  # the family of each variant below
MANUFACTURERS = ('Airbus', 'Dassault Aviation')
FAMILY_OF = {
  'A300B4': 'Airbus',
  'F-16A/B': 'Dassault',
  'Falcon 2000': 'Dassault',
}
MANUFACTURER_OF = {
  'A300B4': 'Airbus',
  'F-16A/B': 'Dassault Aviation',
  'Falcon 2000': 'Dassault Aviation',
}
# Release split -> (image id, variant) in the release's (unsorted) order.
SPLIT_IMAGES = {
  'train': [
    ('0000003', 'Falcon 2000'),
    ('0000001', 'A300B4'),
    ('0000002', 'F-16A/B'),
    ('0000008', 'A300B4'),
    ('0000009', 'F-16A/B'),
    ('0000010', 'Falcon 2000'),
  ],
  'val': [
    ('0000004', 'A300B4'),
    ('0000005', 'Falcon 2000'),
    ('0000011', 'F-16A/B'),
  ],
  'test': [('0000006', 'F-16A/B'), ('0000007', 'A300B4')],
}
SIDE = 24


def _list(rows) -> bytes:
  return ''.join(f'{i} {name}\n' for i, name in rows).encode()


def release_files() -> dict[str, bytes]:
  data = f'{fa.ROOT}/data'
  files = {
    f'{data}/variants.txt': '\n'.join(VARIANTS).encode() + b'\n',
    f'{data}/families.txt': '\n'.join(FAMILIES).encode() + b'\n',
    f'{data}/manufacturers.txt': '\n'.join(MANUFACTURERS).encode() + b'\n',
  }
  for split, rows in SPLIT_IMAGES.items():
    files[f'{data}/images_variant_{split}.txt'] = _list(rows)
    files[f'{data}/images_family_{split}.txt'] = _list(
      (i, FAMILY_OF[v]) for i, v in rows
    )
    files[f'{data}/images_manufacturer_{split}.txt'] = _list(
      (i, MANUFACTURER_OF[v]) for i, v in rows
    )
    for image_id, variant in rows:
      files[f'{data}/images/{image_id}.jpg'] = fx.solid_jpeg(
        VARIANTS.index(variant), SIDE, SIDE
      )
  return files


def write_release(manual_dir: str) -> str:
  """The fake archive in `manual_dir`; returns its path."""
  return fx.write_tar(os.path.join(manual_dir, fa.ARCHIVE), release_files())


def write_folder(manual_dir: str) -> None:
  """The release extracted in `manual_dir` (fgvc-aircraft-2013b/...)."""
  for name, data in release_files().items():
    path = os.path.join(manual_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(data)


def prepare(manual_dir: str, data_dir: str, config: str = 'variant'):
  """Builds one label level with jaxmix's builder (TFDS extracts the tar)."""
  return fx.prepare(f'{fa.NAME}/{config}', data_dir, manual_dir=manual_dir)
