"""Tests of jaxmix._src.boxes: the box convention, masks and the box samplers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from jaxmix._src import boxes


def test_box_mask_is_half_open_and_y_first():
  mask = jaxmix.box_mask(jaxmix.Box(1, 2, 3, 5), height=4, width=6)
  expected = np.zeros((4, 6), bool)
  expected[1:3, 2:5] = True  # rows 1-2, columns 2-4
  np.testing.assert_array_equal(mask, expected)


def test_box_mask_per_example_boxes():
  box = jaxmix.Box(
    top=jnp.array([0, 2]),
    left=jnp.array([0, 1]),
    bottom=jnp.array([1, 4]),
    right=jnp.array([3, 2]),
  )
  mask = jaxmix.box_mask(box, height=4, width=3)
  assert mask.shape == (2, 4, 3)
  np.testing.assert_array_equal(mask[0].sum(), 3)
  np.testing.assert_array_equal(mask[0, 0], [True, True, True])
  np.testing.assert_array_equal(mask[1, :, 1], [False, False, True, True])
  np.testing.assert_array_equal(jaxmix.box_area(box), [3, 2])


def test_empty_boxes_have_zero_area_and_empty_masks():
  for box in [jaxmix.Box(2, 2, 2, 5), jaxmix.Box(3, 1, 1, 4)]:
    assert int(jaxmix.box_area(box)) == 0
    assert not jaxmix.box_mask(box, height=5, width=5).any()


def test_centered_box_clips_at_the_border():
  box = boxes.centered_box(
    jnp.array([0, 5, 9]),
    jnp.array([9, 5, 0]),
    cut_height=5,
    cut_width=4,
    height=10,
    width=10,
  )
  # Sides are 2 * (cut // 2): 4 rows and 4 columns before clipping.
  np.testing.assert_array_equal(box.top, [0, 3, 7])
  np.testing.assert_array_equal(box.bottom, [2, 7, 10])
  np.testing.assert_array_equal(box.left, [7, 3, 0])
  np.testing.assert_array_equal(box.right, [10, 7, 2])


@pytest.mark.parametrize(
  'height, width, weight, side_h, side_w',
  [(32, 32, 0.75, 16, 16), (24, 40, 0.36, 18, 32), (15, 15, 0.5, 10, 10)],
)
def test_cutmix_box_follows_the_official_rule(
  height, width, weight, side_h, side_w
):
  # side = 2 * (floor(H * sqrt(1 - weight)) // 2) before clipping, centre
  # uniform over all pixels.
  box = jaxmix.sample_cutmix_box(
    jax.random.key(0),
    height=height,
    width=width,
    weight=jnp.full((20000,), weight),
  )
  top, left, bottom, right = (np.asarray(f) for f in box)
  assert (top >= 0).all() and (bottom <= height).all()
  assert (left >= 0).all() and (right <= width).all()
  inside_y = (top > 0) & (bottom < height)
  inside_x = (left > 0) & (right < width)
  assert inside_y.any() and inside_x.any()
  np.testing.assert_array_equal((bottom - top)[inside_y], side_h)
  np.testing.assert_array_equal((right - left)[inside_x], side_w)
  # Recover the centres: top = clip(cy - side // 2) and bottom = clip(...).
  center_y = np.where(top > 0, top + side_h // 2, bottom - side_h // 2)
  counts = np.bincount(center_y, minlength=height)
  assert len(counts) == height and counts.min() > 0
  assert counts.max() / counts.min() < 1.6  # uniform (20000 / H each)


def test_adjusted_cutmix_weight_distribution_at_imagenet_size():
  # With alpha = 1 at 224 x 224, clipping makes the kept-pixel fraction
  # average about 0.68 rather than the nominal 0.5.
  key_weight, key_box = jax.random.split(jax.random.key(1))
  lam = jaxmix.sample_mix_weight(key_weight, alpha=1.0, shape=(50000,))
  box = jaxmix.sample_cutmix_box(key_box, height=224, width=224, weight=lam)
  kept = 1 - jaxmix.box_area(box) / (224 * 224)
  assert float(lam.mean()) == pytest.approx(0.5, abs=0.01)
  assert float(kept.mean()) == pytest.approx(0.68, abs=0.01)
  assert (kept >= lam - 1e-6).all()  # Clipping only ever shrinks the box.


def test_minmax_box_sides_and_placement():
  box = jaxmix.sample_cutmix_box_minmax(
    jax.random.key(0), height=20, width=30, minmax=(0.2, 0.8), shape=(20000,)
  )
  top, left, bottom, right = (np.asarray(f) for f in box)
  heights, widths = bottom - top, right - left
  assert set(np.unique(heights)) == set(range(4, 16))
  assert set(np.unique(widths)) == set(range(6, 24))
  assert (top >= 0).all() and (bottom <= 20).all()
  assert (left >= 0).all() and (right <= 30).all()
  assert (bottom == 20).any() and (top == 0).any()  # Every position occurs.


def test_minmax_rejects_bad_ranges():
  with pytest.raises(ValueError, match=r'`minmax` must be a \(min, max\)'):
    jaxmix.sample_cutmix_box_minmax(
      jax.random.key(0), height=8, width=8, minmax=(0.5, 1.5)
    )


def test_samplers_reject_non_keys():
  with pytest.raises(TypeError, match='`key` must be a PRNG key'):
    jaxmix.sample_cutmix_box(jnp.zeros((3, 3)), height=4, width=4, weight=0.5)
