"""jaxmix's FGVC Aircraft builder on a tiny fake release (real TFDS build).

`fgvc_aircraft_fixtures` writes the release's layout; TFDS extracts the
archive and jaxmix's builder reads it. Labels, order, splits and the
errors of a missing or inconsistent release are checked by hand.
"""

import os

import fgvc_aircraft_fixtures as ff
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmix.datasets import BUILDERS
from jaxmix.datasets import fgvc_aircraft as fa


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  manual = str(tmp_path_factory.mktemp('manual'))
  ff.write_release(manual)
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  ff.prepare(manual, data_dir)
  return data_dir


def _rows(data_dir, split, config='variant'):
  builder = tfds.builder(f'{fa.NAME}/{config}', data_dir=data_dir)
  ds = builder.as_dataset(split=split, shuffle_files=False)
  rows = sorted(
    (ex['file_name'].decode(), int(ex['label']), ex['image'])
    for ex in tfds.as_numpy(ds)
  )
  return builder, rows


def test_registered():
  assert BUILDERS['fgvc_aircraft'] == 'jaxmix.datasets.fgvc_aircraft'


def test_variant_labels_splits_and_images(built):
  builder, rows = _rows(built, 'test')
  assert builder.info.features['label'].names == list(ff.VARIANTS)
  assert {s: builder.info.splits[s].num_examples for s in fa.SPLITS} == {
    'train': 6,
    'validation': 3,
    'test': 2,
  }
  # 0000006 is an F-16A/B (class 1), 0000007 an A300B4 (class 0).
  assert [(f, label) for f, label, _ in rows] == [
    ('0000006.jpg', 1),
    ('0000007.jpg', 0),
  ]
  for _, label, image in rows:
    assert image.shape == (ff.SIDE, ff.SIDE, 3)
    # The solid colour of the class the file was written with.
    want = ff.fx.class_colour(label)
    np.testing.assert_allclose(image.mean(axis=(0, 1)), want, atol=3)
  # The release's trainval.
  _, trainval = _rows(built, 'train+validation')
  names = dict(ff.SPLIT_IMAGES['train'] + ff.SPLIT_IMAGES['val'])
  assert [(f, label) for f, label, _ in trainval] == [
    (f'{i}.jpg', ff.VARIANTS.index(names[i])) for i in sorted(names)
  ]


def test_family_level_from_the_extracted_folder(tmp_path):
  manual = str(tmp_path / 'manual')
  ff.write_folder(manual)
  data_dir = str(tmp_path / 'tfds')
  ff.prepare(manual, data_dir, 'family')
  builder, rows = _rows(data_dir, 'train', 'family')
  assert builder.info.features['label'].names == list(ff.FAMILIES)
  # By id: A300B4 -> Airbus (0); F-16A/B, Falcon 2000 -> Dassault (1).
  assert [label for _, label, _ in rows] == [0, 1, 1, 0, 1, 1]


def test_errors_say_what_to_download_and_what_is_wrong(tmp_path):
  empty = str(tmp_path / 'empty')
  os.makedirs(empty)
  # TFDS itself refuses an empty manual_dir, quoting the instructions.
  with pytest.raises(AssertionError, match=fa.ARCHIVE):
    ff.prepare(empty, str(tmp_path / 'tfds0'))
  with open(os.path.join(empty, 'notes.txt'), 'w') as f:
    f.write('not the release')
  with pytest.raises(ValueError) as e:
    ff.prepare(empty, str(tmp_path / 'tfds0'))
  message = str(e.value)
  assert fa.ARCHIVE in message and fa.HOMEPAGE in message and empty in message
  manual = str(tmp_path / 'manual')
  ff.write_folder(manual)
  listing = os.path.join(manual, fa.ROOT, 'data', 'images_variant_test.txt')
  with open(listing, 'a') as f:
    f.write('0000009 Concorde\n')
  with pytest.raises(ValueError, match="0000009 has class 'Concorde'"):
    ff.prepare(manual, str(tmp_path / 'tfds1'))
  os.remove(listing)
  with pytest.raises(ValueError, match=r'images_variant_test\.txt is missing'):
    ff.prepare(manual, str(tmp_path / 'tfds2'))
