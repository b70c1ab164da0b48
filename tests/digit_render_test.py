"""Tests for jaxmix.datasets.digit_render: exact boxes, placement, determinism."""

import numpy as np
import pytest

from jaxmix.datasets import digit_render

THRESHOLD = digit_render.ALPHA_THRESHOLD


def _pool() -> list[np.ndarray]:
  """Every source digit, per class: the renderer needs no TFDS split."""
  labels = digit_render.digit_images()[1]
  return [np.flatnonzero(labels == c) for c in range(10)]


def _pixel_box(obj, size):
  return [round(v * size) for v in obj.bbox]


def test_digit_images_are_read_only_padded_digits():
  images, labels = digit_render.digit_images()
  assert images.shape == (1797, 12, 12) and images.dtype == np.float32
  assert images.min() == 0 and images.max() == 1
  assert not images[:, [0, 1, -2, -1]].any()
  assert not images[:, :, [0, 1, -2, -1]].any()
  np.testing.assert_array_equal(np.bincount(labels) >= 170, True)
  assert not images.flags.writeable and not labels.flags.writeable


@pytest.mark.parametrize('seed', range(12))
def test_boxes_match_where_digits_were_drawn(seed):
  size = 64
  rng = np.random.default_rng(seed)
  scene = digit_render.render_scene(rng, _pool(), num_objects=3, size=size)
  assert scene.image.shape == (size, size, 3)
  np.testing.assert_array_equal(
    digit_render.composite(scene.background, scene.objects), scene.image
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
    without = digit_render.composite(scene.background, others)
    diff = np.abs(scene.image - without).max(-1)
    near = np.zeros_like(drawn)
    near[max(top - 2, 0) : bottom + 2, max(left - 2, 0) : right + 2] = True
    assert not ((diff > 1e-6) & ~near).any()
    assert np.median(diff[drawn]) > 0.1


def test_digits_stand_apart_and_come_from_the_pool():
  labels = digit_render.digit_images()[1]
  pool = [ids[::3] for ids in _pool()]  # A subset, as a split's pool is.
  for seed in range(20):
    rng = np.random.default_rng(seed)
    scene = digit_render.render_scene(rng, pool, num_objects=3)
    found = [o.label for o in scene.objects]
    assert len(set(found)) == len(found) >= 1
    boxes = [_pixel_box(o, 64) for o in scene.objects]
    for a in range(len(boxes)):
      for b in range(a):
        overlap = digit_render._overlap(boxes[a], boxes[b])
        assert overlap <= digit_render.MAX_OVERLAP
    for o in scene.objects:
      assert o.source_id in pool[o.label] and labels[o.source_id] == o.label


def test_only_classes_with_digits_are_drawn():
  pool = [ids if c in (2, 7) else ids[:0] for c, ids in enumerate(_pool())]
  for seed in range(5):
    rng = np.random.default_rng(seed)
    scene = digit_render.render_scene(rng, pool, num_objects=2)
    assert {o.label for o in scene.objects} <= {2, 7}


@pytest.mark.parametrize('size', [32, 48, 96])
def test_other_image_sizes(size):
  scene = digit_render.render_scene(
    np.random.default_rng(size), _pool(), num_objects=3, size=size
  )
  assert scene.image.shape == scene.background.shape == (size, size, 3)
  assert 0 <= scene.image.min() <= scene.image.max() <= 1
  for obj in scene.objects:
    assert obj.alpha.shape == (size, size)
    top, left, bottom, right = _pixel_box(obj, size)
    assert (obj.alpha[top:bottom, left:right] > THRESHOLD).any()
    assert 0.15 * size <= bottom - top <= 0.5 * size


def test_centred_scene_keeps_the_digit_near_the_centre():
  for seed in range(20):
    rng = np.random.default_rng(seed)
    scene = digit_render.render_scene(rng, _pool(), num_objects=1, centred=True)
    (obj,) = scene.objects
    cy, cx = (obj.bbox[0] + obj.bbox[2]) / 2, (obj.bbox[1] + obj.bbox[3]) / 2
    assert abs(cy - 0.5) < 0.2 and abs(cx - 0.5) < 0.2


def test_the_generator_is_the_only_source_of_randomness():
  pool = _pool()
  a = digit_render.render_scene(np.random.default_rng(7), pool, num_objects=3)
  b = digit_render.render_scene(np.random.default_rng(7), pool, num_objects=3)
  np.testing.assert_array_equal(a.image, b.image)
  np.testing.assert_array_equal(a.background, b.background)
  assert [o.bbox for o in a.objects] == [o.bbox for o in b.objects]
  c = digit_render.render_scene(np.random.default_rng(8), pool, num_objects=3)
  assert np.abs(a.background - c.background).mean() > 0.05


def test_background_is_cluttered_and_in_range():
  rng = np.random.default_rng(3)
  background = digit_render.render_background(rng, 64)
  assert background.shape == (64, 64, 3) and background.dtype == np.float32
  assert 0 <= background.min() and background.max() <= 1
  # Texture, strokes and noise: neighbouring pixels differ almost everywhere.
  assert (np.abs(np.diff(background, axis=1)).max(-1) > 1e-3).mean() > 0.9


def test_composite_leaves_its_background_alone():
  background = np.full((4, 4, 3), 0.25, np.float32)
  alpha = np.zeros((4, 4), np.float32)
  alpha[1, 2] = 0.5
  paint = np.ones((4, 4, 3), np.float32)
  obj = digit_render.SceneObject(3, 0, (0.25, 0.5, 0.5, 0.75), alpha, paint)
  out = digit_render.composite(background, [obj])
  np.testing.assert_array_equal(background, 0.25)
  np.testing.assert_allclose(out[1, 2], 0.625)
  assert (out == 0.25).sum() == 15 * 3


def test_bad_arguments_raise():
  pool = _pool()
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match='num_objects'):
    digit_render.render_scene(rng, pool, num_objects=0)
  with pytest.raises(ValueError, match='pool must list 10'):
    digit_render.render_scene(rng, pool[:9], num_objects=1)
  with pytest.raises(ValueError, match='pool has 2 classes'):
    few = [ids if c < 2 else ids[:0] for c, ids in enumerate(pool)]
    digit_render.render_scene(rng, few, num_objects=3)
  with pytest.raises(ValueError, match='size'):
    digit_render.render_scene(rng, pool, num_objects=1, size=8)
