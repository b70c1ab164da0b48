"""Tests for jaxmix.datasets.digit_scenes: offline, deterministic, pinned.

The renderer's own properties (tight boxes, placement, sizes) are tested in
tests/digit_render_test.py.
"""

import hashlib
import io
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from jaxmix import datasets
from jaxmix.datasets import digit_scenes


def test_source_pools_partition_the_digits_by_class():
  images, labels, pools = digit_scenes.source_digits()
  assert images.shape == (1797, 12, 12) and images.max() == 1
  assert images.min() == 0 and not images[:, [0, 1, -2, -1]].any()
  seen = np.concatenate([np.concatenate(p) for p in pools.values()])
  np.testing.assert_array_equal(np.sort(seen), np.arange(len(labels)))
  for split, fraction in zip(digit_scenes.SPLITS, digit_scenes.POOL_FRACTIONS):
    for c, ids in enumerate(pools[split]):
      np.testing.assert_array_equal(labels[ids], c)
      assert abs(len(ids) - fraction * np.sum(labels == c)) <= 1


def test_main_object_is_the_largest_box_first_on_ties():
  def obj(label, bbox):
    return digit_scenes.SceneObject(label, 0, bbox, None, None)

  small, big = (0.0, 0.0, 0.2, 0.2), (0.5, 0.5, 0.9, 0.9)
  assert digit_scenes.main_object([obj(1, small), obj(2, big)]) == 1
  assert digit_scenes.main_object([obj(1, big), obj(2, small)]) == 0
  assert digit_scenes.main_object([obj(1, small), obj(2, small)]) == 0


def test_generate_example_is_deterministic_and_labelled_by_main_object():
  for split in digit_scenes.SPLITS:
    for index in range(5):
      a, scene = digit_scenes.generate_example(split, index)
      b, _ = digit_scenes.generate_example(split, index)
      assert a['image'] == b['image'] and a['objects'] == b['objects']
      assert a['file_name'] == f'{split}_{index:06d}.jpg'
      assert a['num_objects'] == len(a['objects']['label'])
      main = digit_scenes.main_object(scene.objects)
      assert a['label'] == a['objects']['label'][main]
      if split == 'annotator':
        assert a['num_objects'] == 1
      decoded = np.asarray(Image.open(io.BytesIO(a['image'])), np.float32)
      assert decoded.shape == (64, 64, 3)
      assert np.abs(decoded / 255 - scene.image).mean() < 0.03


# (split, index): main label, then per object (label, source_id, pixel box).
# Results tables were made on this data: a change to the random stream or to
# the rendering shows up here, and must come with a new builder VERSION.
_PINNED = {
  ('train', 0): (9, [(9, 993, [3, 10, 17, 20])]),
  ('train', 1): (7, [(7, 438, [13, 20, 39, 37])]),
  ('validation', 0): (
    4,
    [
      (1, 1416, [33, 35, 49, 43]),
      (3, 347, [23, 9, 37, 17]),
      (4, 41, [14, 46, 32, 57]),
    ],
  ),
  ('validation', 1): (
    3,
    [
      (0, 747, [32, 57, 46, 64]),
      (2, 632, [29, 11, 57, 28]),
      (3, 1219, [21, 35, 50, 52]),
    ],
  ),
  ('test', 0): (9, [(9, 641, [38, 36, 63, 53]), (8, 508, [33, 9, 49, 21])]),
  ('test', 1): (9, [(9, 589, [21, 6, 44, 19])]),
  ('annotator', 0): (0, [(0, 160, [20, 21, 44, 34])]),
  ('annotator', 1): (8, [(8, 513, [24, 23, 38, 33])]),
}


@pytest.mark.parametrize('split,index', list(_PINNED))
def test_examples_are_pinned(split, index):
  example, scene = digit_scenes.generate_example(split, index)
  objects = [
    (o.label, o.source_id, [round(v * 64) for v in o.bbox])
    for o in scene.objects
  ]
  assert (example['label'], objects) == _PINNED[split, index]
  assert example['objects']['source_id'] == [o[1] for o in objects]
  np.testing.assert_allclose(
    np.array(example['objects']['bbox']) * 64, [o[2] for o in objects]
  )


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='split'):
    digit_scenes.generate_example('training', 0)
  with pytest.raises(ValueError, match='index'):
    digit_scenes.generate_example('train', -1)


@pytest.fixture
def no_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError('network access during preparation')

  monkeypatch.setattr(socket.socket, 'connect', refuse)
  monkeypatch.setattr(socket, 'create_connection', refuse)


def _record_digest(builder) -> str:
  """Digest of every stored example, in file order.

  Records are re-serialised with sorted map keys: protobuf writes a
  tf.train.Example's feature map in an order that can differ between
  processes, so the files' bytes can differ while every example is equal.
  """
  digest = hashlib.sha256()
  for path in sorted(pathlib.Path(builder.data_dir).glob('*.tfrecord*')):
    digest.update(path.name.encode())
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
      example = tf.train.Example.FromString(record)
      digest.update(example.SerializeToString(deterministic=True))
  return digest.hexdigest()


def test_prepare_is_offline_deterministic_and_splits_are_disjoint(
  tmp_path, no_network
):
  builder = digit_scenes.prepare(str(tmp_path / 'a'), 'small')
  again = digit_scenes.prepare(str(tmp_path / 'b'), 'small')
  assert _record_digest(builder) == _record_digest(again)
  assert (
    tfds.builder('digit_scenes/small', data_dir=str(tmp_path / 'a')).__class__
    is digit_scenes.DigitScenes
  )

  sizes = dict(builder.builder_config.split_sizes)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == sizes
  assert builder.info.features['label'].num_classes == 10
  file_names, sources = set(), {}
  for split, count in sizes.items():
    rows = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert len(rows) == count
    sources[split] = set()
    for row in rows:
      file_names.add(row['file_name'])
      objects = row['objects']
      assert row['image'].shape == (64, 64, 3)
      assert row['num_objects'] == len(objects['label']) >= 1
      assert row['label'] in objects['label']
      sources[split].update(objects['source_id'].tolist())
      if split == 'annotator':
        assert row['num_objects'] == 1
    # The stored example is the one the generator makes (JPEG aside).
    index = int(rows[0]['file_name'].decode()[-10:-4])
    expected, _ = digit_scenes.generate_example(split, index)
    np.testing.assert_allclose(
      rows[0]['objects']['bbox'], np.array(expected['objects']['bbox']), 1e-6
    )
    np.testing.assert_array_equal(
      rows[0]['objects']['label'], expected['objects']['label']
    )
  assert len(file_names) == sum(sizes.values())
  splits = list(sources)
  for i, a in enumerate(splits):
    for b in splits[:i]:
      # The extra split is the annotator's extra data: its source pool.
      if {a, b} != {'extra', 'annotator'}:
        assert not sources[a] & sources[b], (a, b)
  _, _, pools = digit_scenes.source_digits()
  assert sources['extra'] <= set(np.concatenate(pools['annotator']).tolist())

  # ImageNet-style pipelines decode only a crop of the stored JPEG.
  raw = builder.as_dataset(
    split='test', decoders={'image': tfds.decode.SkipDecoding()}
  )
  row = next(iter(raw))
  crop = tf.io.decode_and_crop_jpeg(row['image'], [8, 4, 32, 40], channels=3)
  full = tf.io.decode_jpeg(row['image'], channels=3)
  np.testing.assert_array_equal(crop.numpy(), full.numpy()[8:40, 4:44])


# Imported first by the `tfds` process: any connection but a local socket
# fails, so the command is seen to run offline.
OFFLINE = """
import socket

_connect = socket.socket.connect


def _local_only(self, address):
  if self.family != socket.AF_UNIX:
    raise OSError(f'network access during tfds build: {address}')
  return _connect(self, address)


socket.socket.connect = _local_only
"""


@pytest.mark.slow
def test_tfds_build_prepares_the_small_config_offline(tmp_path):
  """docs/datasets.md's command, TFDS's own command line in a process."""
  tfds_cli = pathlib.Path(sys.executable).with_name('tfds')
  assert tfds_cli.is_file(), f'no tfds command beside {sys.executable}'
  site = tmp_path / 'site'
  site.mkdir()
  (site / 'sitecustomize.py').write_text(OFFLINE)
  root = pathlib.Path(__file__).resolve().parents[1]
  path = os.pathsep.join(
    [str(site), str(root), os.environ.get('PYTHONPATH', '')]
  )
  data_dir = tmp_path / 'cli'
  command = datasets.build_command('digit_scenes/small', str(data_dir))
  assert command.startswith('tfds build digit_scenes --imports ')
  out = subprocess.run(
    [str(tfds_cli), *command.split()[1:]],
    capture_output=True,
    text=True,
    env={**os.environ, 'PYTHONPATH': path},
  )
  assert out.returncode == 0, out.stderr[-3000:]
  built = tfds.builder('digit_scenes/small', data_dir=str(data_dir))
  assert type(built) is digit_scenes.DigitScenes and built.is_prepared()
  sizes = dict(built.builder_config.split_sizes)
  assert {k: v.num_examples for k, v in built.info.splits.items()} == sizes
  # Example for example what `prepare` (the default job's way) stores.
  library = digit_scenes.prepare(str(tmp_path / 'library'), 'small')
  assert _record_digest(built) == _record_digest(library)


# sha256 of the first 3 scenes of every split (uint8 pixels, labels, source
# ids, boxes) as the default config rendered them before object size became
# a knob: the small-object config stays exactly what it was.
DEFAULT_SCENES_SHA256 = (
  '8733af7b7bc37be0940d158563e4620043644467dc320d8a3cf712f01f4b575e'
)


def test_default_config_scenes_are_pinned():
  digest = hashlib.sha256()
  for split in digit_scenes.SPLITS:
    for index in range(3):
      _, scene = digit_scenes.generate_example(split, index)
      pixels = np.round(np.clip(scene.image, 0, 1) * 255).astype(np.uint8)
      digest.update(pixels.tobytes())
      objects = [(o.label, o.source_id, o.bbox) for o in scene.objects]
      digest.update(repr(objects).encode())
  assert digest.hexdigest() == DEFAULT_SCENES_SHA256


def _main_coverage(sizes, count=300):
  areas = []
  for index in range(count):
    example, _ = digit_scenes.generate_example('test', index, sizes=sizes)
    boxes = np.asarray([list(b) for b in example['objects']['bbox']])
    areas.append(
      ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).max()
    )
  return np.asarray(areas)


def test_object_size_is_a_knob_matched_to_imagenet():
  small = _main_coverage(digit_scenes.SMALL_DIGITS)
  medium = _main_coverage(digit_scenes.MEDIUM_DIGITS)
  large = _main_coverage(digit_scenes.IMAGENET_DIGITS)
  assert 0.06 < small.mean() < 0.09  # 7.6 % on the whole test split
  assert 0.17 < medium.mean() < 0.25
  # ILSVRC-2012 validation: mean 44.1 %, quartiles 19.4 % and 66.2 %.
  assert abs(large.mean() - 0.441) < 0.04
  q25, q75 = np.quantile(large, [0.25, 0.75])
  assert 0.15 < q25 < 0.35 and 0.55 < q75 < 0.75
  assert large.max() <= 1.0


@pytest.mark.parametrize(
  'sizes', [digit_scenes.SMALL_DIGITS, digit_scenes.IMAGENET_DIGITS]
)
def test_extra_split_draws_scenes_from_the_annotators_digits(sizes):
  _, _, pools = digit_scenes.source_digits()
  annotator = set(np.concatenate(pools['annotator']).tolist())
  train = set(np.concatenate(pools['train']).tolist())
  counts = []
  for index in range(40):
    example, _ = digit_scenes.generate_example('extra', index, sizes=sizes)
    ids = set(example['objects']['source_id'])
    assert ids <= annotator and not ids & train
    counts.append(example['num_objects'])
  assert max(counts) > 1  # scenes, not the centred single digits


def test_every_config_has_an_extra_split_and_default_kept_its_sizes():
  configs = {c.name: c for c in digit_scenes.DigitScenes.BUILDER_CONFIGS}
  for config in configs.values():
    assert dict(config.split_sizes)['extra'] > 0, config.name
  # 1.1.0 only added the extra split: the other splits are 1.0.0's.
  assert dict(configs['default'].split_sizes) == {
    'train': 10_000,
    'validation': 2_000,
    'test': 2_000,
    'annotator': 5_000,
    'extra': 20_000,
  }
  assert configs['default'].digit_sizes == digit_scenes.SMALL_DIGITS


def test_bad_digit_sizes_are_refused():
  bad = digit_scenes.DigitSizes(height=(0.5, 1.2))
  with pytest.raises(ValueError, match=r'sizes.height'):
    digit_scenes.generate_example('train', 0, sizes=bad)
  with pytest.raises(ValueError, match='split must be one of'):
    digit_scenes.generate_example('extras', 0)
