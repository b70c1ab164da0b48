"""Tests of jaxmix._src.erasing: Cutout and Random Erasing boxes and fills."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from tests.augment_cases import make_batch


def _erased_box(out_image, image):
  """Bounding box of the changed pixels, checked to be a full rectangle."""
  changed = np.any(np.asarray(out_image) != np.asarray(image), axis=-1)
  if not changed.any():
    return None
  rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
  box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
  assert changed[box[0] : box[2], box[1] : box[3]].all()
  return box


def test_cutout_fills_one_clipped_square_per_image():
  images, _ = make_batch(batch_size=64, height=20, width=20)
  out = jaxmix.cutout(jax.random.key(0), images, size=8, fill_value=0.0)
  out, images = np.asarray(out), np.asarray(images)
  sides = set()
  for i in range(64):
    top, left, bottom, right = _erased_box(out[i], images[i])
    assert (out[i, top:bottom, left:right] == 0).all()
    assert bottom - top <= 8 and right - left <= 8
    sides.add((bottom - top, right - left))
  assert (8, 8) in sides and len(sides) > 1  # Full squares and clipped ones.


def test_cutout_count_and_prob():
  images, _ = make_batch(batch_size=64, height=32, width=32)
  out = jaxmix.cutout(jax.random.key(1), images, size=4, count=3)
  erased = np.asarray((out == 0).all(-1).sum((1, 2)))
  assert erased.max() <= 3 * 16 and erased.max() > 16
  gated = jaxmix.cutout(jax.random.key(2), images, size=4, prob=0.5)
  gated, images = np.asarray(gated), np.asarray(images)
  untouched = np.mean([np.array_equal(gated[i], images[i]) for i in range(64)])
  assert 0.3 < untouched < 0.7


def test_cutout_rejects_bad_sizes():
  images, _ = make_batch()
  with pytest.raises(ValueError, match='`size` must be a non-negative'):
    jaxmix.cutout(jax.random.key(0), images, size=-1)
  with pytest.raises(ValueError, match='`count` must be a positive'):
    jaxmix.cutout(jax.random.key(0), images, size=2, count=0)


def test_random_erasing_boxes_follow_area_and_aspect_ranges():
  images, _ = make_batch(batch_size=256, height=40, width=40)
  out = jaxmix.random_erasing(
    jax.random.key(0), images, prob=1.0, area=(0.05, 0.2)
  )
  out, images = np.asarray(out), np.asarray(images)
  areas, aspects = [], []
  for i in range(256):
    box = _erased_box(out[i], images[i])
    assert box is not None  # Some of the ten tries always fits here.
    top, left, bottom, right = box
    assert (out[i, top:bottom, left:right] == 0).all()
    areas.append((bottom - top) * (right - left) / 1600)
    aspects.append((bottom - top) / (right - left))
  # Rounding the sides to pixels moves the area slightly off the range.
  assert 0.04 <= min(areas) and max(areas) <= 0.22
  assert 0.25 <= min(aspects) and max(aspects) <= 4.0
  assert min(aspects) < 0.6 and max(aspects) > 1.6


@pytest.mark.parametrize('fill', ['random', 'pixel'])
def test_random_erasing_noise_fills(fill):
  images, _ = make_batch(batch_size=16, height=32, width=32)
  out = jaxmix.random_erasing(jax.random.key(3), images, prob=1.0, fill=fill)
  out, images = np.asarray(out), np.asarray(images)
  for i in range(16):
    top, left, bottom, right = _erased_box(out[i], images[i])
    patch = np.asarray(out[i, top:bottom, left:right]).reshape(-1, 3)
    per_channel_constant = (patch == patch[0]).all()
    assert per_channel_constant == (fill == 'random')


def test_random_erasing_multiple_boxes_and_gate():
  images, _ = make_batch(batch_size=64, height=32, width=32)
  single = jaxmix.random_erasing(jax.random.key(4), images, prob=1.0)
  multi = jaxmix.random_erasing(
    jax.random.key(4), images, prob=1.0, max_count=4
  )
  assert not np.array_equal(single, multi)
  gated = jaxmix.random_erasing(jax.random.key(5), images, prob=0.5)
  gated, images = np.asarray(gated), np.asarray(images)
  untouched = np.mean([np.array_equal(gated[i], images[i]) for i in range(64)])
  assert 0.3 < untouched < 0.7


def test_random_erasing_rejects_bad_knobs():
  images, _ = make_batch()
  key = jax.random.key(0)
  with pytest.raises(ValueError, match='`fill` must be one of'):
    jaxmix.random_erasing(key, images, fill='mean')
  with pytest.raises(ValueError, match=r'`area` must be a \(min, max\)'):
    jaxmix.random_erasing(key, images, area=(0.5, 0.1))
  with pytest.raises(ValueError, match='`max_count` must be a positive'):
    jaxmix.random_erasing(key, images, max_count=0)
  with pytest.raises(TypeError, match='`images` must be a float or uint8'):
    jaxmix.random_erasing(key, jnp.zeros((2, 4, 4, 3), jnp.int32))
  uint8 = jnp.zeros((2, 4, 4, 3), jnp.uint8)
  for fill in ('random', 'pixel'):
    with pytest.raises(TypeError, match=f"float for fill='{fill}'"):
      jaxmix.random_erasing(key, uint8, fill=fill)
