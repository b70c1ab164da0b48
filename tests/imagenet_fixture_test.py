"""Tests of jaxmix.datasets.imagenet_fixture: real ILSVRC2012 archive layout."""

import io
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from imagenet_fixture_util import NUM_TRAIN, NUM_VALIDATION, prepared_imagenet
from PIL import Image

from jaxmix.datasets import imagenet_fixture


def _members(fileobj):
  with tarfile.open(fileobj=fileobj) as tar:
    return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_archives_have_the_ilsvrc_layout(tmp_path):
  manifest = imagenet_fixture.build(
    str(tmp_path),
    num_classes=2,
    images_per_class=3,
    num_validation=4,
    min_side=30,
    max_side=50,
    corrupt=('ILSVRC2012_val_00000002.JPEG',),
  )
  with open(tmp_path / 'ILSVRC2012_img_train.tar', 'rb') as f:
    outer = _members(f)
  synsets = sorted(name[:-4] for name in outer)
  assert sorted(outer) == [f'{s}.tar' for s in synsets] and len(synsets) == 2
  sizes = set()
  for synset in synsets:
    inner = _members(io.BytesIO(outer[f'{synset}.tar']))
    assert sorted(inner) == [f'{synset}_{k}.JPEG' for k in (1, 2, 3)]
    for data in inner.values():
      image = Image.open(io.BytesIO(data))
      assert image.format == 'JPEG'
      assert 30 <= image.height <= 50 and image.width >= 30
      sizes.add(image.size)
  assert len(sizes) > 3  # varied ImageNet-like sizes
  with open(tmp_path / 'ILSVRC2012_img_val.tar', 'rb') as f:
    val = _members(f)
  assert sorted(val) == [f'ILSVRC2012_val_{i:08d}.JPEG' for i in range(1, 5)]
  assert len(val['ILSVRC2012_val_00000002.JPEG']) == 200  # truncated
  assert [n for n, _ in manifest['validation']] == sorted(val)
  assert {s for _, s in manifest['train']} == set(synsets)


def test_same_seed_same_bytes(tmp_path):
  for name in ('a', 'b'):
    imagenet_fixture.build(str(tmp_path / name), num_classes=1, seed=3)
  for tar in ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar'):
    a = (tmp_path / 'a' / tar).read_bytes()
    assert a == (tmp_path / 'b' / tar).read_bytes()


def test_real_tfds_builder_prepares_it(tmp_path_factory):
  data_dir, manifest = prepared_imagenet(str(tmp_path_factory.getbasetemp()))
  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  assert builder.info.splits['train'].num_examples == NUM_TRAIN
  assert builder.info.splits['validation'].num_examples == NUM_VALIDATION
  expected = dict(manifest['train'] + manifest['validation'])
  str2int = builder.info.features['label'].str2int
  for split in ('train', 'validation'):
    for ex in builder.as_dataset(split=split):
      name = ex['file_name'].numpy().decode()
      assert ex['label'].numpy() == str2int(expected[name])
      image = ex['image'].numpy()
      assert image.dtype == np.uint8 and image.shape[-1] == 3
      assert image.std() > 5  # a real photo, not a flat fill


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match='num_classes'):
    imagenet_fixture.build(str(tmp_path), num_classes=0)
  with pytest.raises(ValueError, match='min_side'):
    imagenet_fixture.build(str(tmp_path), min_side=50, max_side=40)
