"""Tests for jaxmix.data.digit_scenes: offline, deterministic, exact boxes."""

import hashlib
import io
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from jaxmix.data import digit_scenes

THRESHOLD = digit_scenes.ALPHA_THRESHOLD


def _pixel_box(obj, size):
  return [round(v * size) for v in obj.bbox]


@pytest.mark.parametrize('seed', range(12))
def test_boxes_match_where_digits_were_drawn(seed):
  size = 64
  pool = digit_scenes.source_digits()[2]['train']
  rng = np.random.default_rng(seed)
  scene = digit_scenes.render_scene(rng, pool, num_objects=3, size=size)
  assert scene.image.shape == (size, size, 3)
  np.testing.assert_array_equal(
    digit_scenes.composite(scene.background, scene.objects), scene.image
  )
  for i, obj in enumerate(scene.objects):
    top, left, bottom, right = _pixel_box(obj, size)
    # The box is the tight box of the drawn (alpha > threshold) pixels.
    drawn = obj.alpha > THRESHOLD
    inside = np.zeros_like(drawn)
    inside[top:bottom, left:right] = True
    assert drawn.any() and not (drawn & ~inside).any()
    assert drawn[top].any() and drawn[bottom - 1].any()
    assert drawn[:, left].any() and drawn[:, right - 1].any()
    # Removing this digit changes pixels only around its box, and clearly
    # changes the pixels it drew (unless a later digit covers them).
    others = scene.objects[:i] + scene.objects[i + 1 :]
    without = digit_scenes.composite(scene.background, others)
    diff = np.abs(scene.image - without).max(-1)
    near = np.zeros_like(drawn)
    near[max(top - 2, 0) : bottom + 2, max(left - 2, 0) : right + 2] = True
    assert not ((diff > 1e-6) & ~near).any()
    assert np.median(diff[drawn]) > 0.1


def test_digits_stand_apart_and_have_distinct_classes():
  pool = digit_scenes.source_digits()[2]['validation']
  for seed in range(20):
    rng = np.random.default_rng(seed)
    scene = digit_scenes.render_scene(rng, pool, num_objects=3)
    labels = [o.label for o in scene.objects]
    assert len(set(labels)) == len(labels) >= 1
    boxes = [_pixel_box(o, 64) for o in scene.objects]
    for a in range(len(boxes)):
      for b in range(a):
        overlap = digit_scenes._overlap(boxes[a], boxes[b])
        assert overlap <= digit_scenes.MAX_OVERLAP
    for o in scene.objects:
      assert o.source_id in pool[o.label]


@pytest.mark.parametrize('size', [32, 48, 96])
def test_other_image_sizes(size):
  pool = digit_scenes.source_digits()[2]['test']
  scene = digit_scenes.render_scene(
    np.random.default_rng(size), pool, num_objects=3, size=size
  )
  assert scene.image.shape == scene.background.shape == (size, size, 3)
  assert 0 <= scene.image.min() <= scene.image.max() <= 1
  for obj in scene.objects:
    assert obj.alpha.shape == (size, size)
    top, left, bottom, right = _pixel_box(obj, size)
    assert (obj.alpha[top:bottom, left:right] > THRESHOLD).any()
    assert 0.15 * size <= bottom - top <= 0.5 * size


def test_centred_scene_keeps_the_digit_near_the_centre():
  pool = digit_scenes.source_digits()[2]['annotator']
  for seed in range(20):
    rng = np.random.default_rng(seed)
    scene = digit_scenes.render_scene(rng, pool, num_objects=1, centred=True)
    (obj,) = scene.objects
    cy, cx = (obj.bbox[0] + obj.bbox[2]) / 2, (obj.bbox[1] + obj.bbox[3]) / 2
    assert abs(cy - 0.5) < 0.2 and abs(cx - 0.5) < 0.2


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


def test_bad_arguments_raise():
  pool = digit_scenes.source_digits()[2]['train']
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match='num_objects'):
    digit_scenes.render_scene(rng, pool, num_objects=0)
  with pytest.raises(ValueError, match='pool must list 10'):
    digit_scenes.render_scene(rng, pool[:9], num_objects=1)
  with pytest.raises(ValueError, match='pool has 2 classes'):
    few = [ids if c < 2 else ids[:0] for c, ids in enumerate(pool)]
    digit_scenes.render_scene(rng, few, num_objects=3)
  with pytest.raises(ValueError, match='size'):
    digit_scenes.render_scene(rng, pool, num_objects=1, size=8)
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
  digest = hashlib.sha256()
  for path in sorted(pathlib.Path(builder.data_dir).glob('*.tfrecord*')):
    digest.update(path.name.encode() + path.read_bytes())
  return digest.hexdigest()


def test_prepare_is_offline_deterministic_and_splits_are_disjoint(
  tmp_path, no_network, capsys
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
      assert not sources[a] & sources[b], (a, b)

  # ImageNet-style pipelines decode only a crop of the stored JPEG.
  raw = builder.as_dataset(
    split='test', decoders={'image': tfds.decode.SkipDecoding()}
  )
  row = next(iter(raw))
  crop = tf.io.decode_and_crop_jpeg(row['image'], [8, 4, 32, 40], channels=3)
  full = tf.io.decode_jpeg(row['image'], channels=3)
  np.testing.assert_array_equal(crop.numpy(), full.numpy()[8:40, 4:44])

  digit_scenes.main(['--data_dir', str(tmp_path / 'a'), '--config', 'small'])
  assert "'annotator': 128" in capsys.readouterr().out


@pytest.mark.slow
def test_command_line_prepares_the_small_config(tmp_path):
  command = [sys.executable, '-m', 'jaxmix.data.digit_scenes']
  command += ['--data_dir', str(tmp_path), '--config', 'small']
  out = subprocess.run(command, check=True, capture_output=True, text=True)
  assert "{'train': 256, 'validation': 64, 'test': 64, 'annotator': 128}" in (
    out.stdout
  )
  assert (tmp_path / 'digit_scenes' / 'small' / '1.0.0').is_dir()
