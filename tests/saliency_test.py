"""Tests of jaxmix._src.saliency and of uint8 in the select-only ops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from tests.augment_cases import make_batch

KEY = jax.random.key(0)
NUM_DEVICES = 8


def _peaked_saliency(batch, rows, cols, seed=0):
  """One peak per map at a random cell; returns the maps and the peaks."""
  rng = np.random.default_rng(seed)
  maps = rng.uniform(0, 0.5, size=(batch, rows, cols)).astype(np.float32)
  peaks = np.stack([rng.integers(0, rows, batch), rng.integers(0, cols, batch)])
  maps[np.arange(batch), peaks[0], peaks[1]] = 1.0
  return jnp.asarray(maps), peaks.T


def test_salient_peaks_map_cells_to_the_pixel_under_their_centre():
  s = jnp.zeros((3, 3, 4))
  s = s.at[0, 0, 0].set(1).at[1, 2, 3].set(1).at[2, 1, 2].set(1)
  peaks = jaxmix.salient_peaks(s, height=12, width=8)
  # Row cells are 4 pixels, column cells 2: centres at 4i + 2 and 2j + 1.
  np.testing.assert_array_equal(peaks, [[2, 1], [10, 7], [6, 5]])


def test_the_box_is_centred_on_the_partners_peak_and_weighted_by_area():
  images, labels = make_batch(batch_size=16, height=16, width=16)
  saliency, peaks = _peaked_saliency(16, 8, 8)
  pixel_peaks = 2 * peaks + 1  # 2-pixel cells
  for key in jax.random.split(KEY, 3):
    out, out_labels = jaxmix.saliency_cutmix(
      key, images, labels, saliency=saliency, per_example=True
    )
    draw = jaxmix.sample_saliency_cutmix(
      key, saliency, height=16, width=16, per_example=True
    )
    partners = np.asarray(draw.partners)
    box = [np.asarray(f) for f in draw.box]
    for i in range(16):
      p = partners[i]
      top, left, bottom, right = (f[i] for f in box)
      if bottom <= top or right <= left:
        continue
      cy, cx = pixel_peaks[p]
      # centre +- side // 2, clipped: an unclipped box is centred exactly.
      assert top <= cy <= bottom and left <= cx <= right
      if top > 0 and bottom < 16:
        assert top + bottom == 2 * cy
      if left > 0 and right < 16:
        assert left + right == 2 * cx
      np.testing.assert_array_equal(
        out[i, top:bottom, left:right], images[p, top:bottom, left:right]
      )
      kept = 1 - (bottom - top) * (right - left) / 256
      if p != i:
        own = int(np.argmax(labels[i]))
        assert float(out_labels[i, own]) == pytest.approx(kept, abs=1e-6)


def test_a_uniform_saliency_centres_every_box_on_the_first_cell():
  draw = jaxmix.sample_saliency_cutmix(
    KEY, jnp.ones((4, 2, 2)), height=8, width=8
  )
  # Ties pick the first cell, whose centre is pixel (2, 2).
  top, left = np.asarray(draw.box.top), np.asarray(draw.box.left)
  assert (top <= 2).all() and (left <= 2).all()


def test_saliency_errors_name_the_argument():
  images, labels = make_batch(batch_size=4, height=8, width=8)
  with pytest.raises(ValueError, match=r'`saliency` must be \[B, h, w\] with'):
    jaxmix.saliency_cutmix(KEY, images, labels, saliency=jnp.ones((4, 8)))
  with pytest.raises(ValueError, match=r'B = 4, got shape \(2, 4, 4\)'):
    jaxmix.saliency_cutmix(KEY, images, labels, saliency=jnp.ones((2, 4, 4)))
  with pytest.raises(TypeError, match='float or uint8'):
    jaxmix.saliency_cutmix(
      KEY, images.astype(jnp.int32), labels, saliency=jnp.ones((4, 4, 4))
    )


def _op(key, images, labels, saliency):
  return jaxmix.saliency_cutmix(
    key, images, labels, saliency=saliency, per_example=True
  )


# ----------------------------------------------- uint8 in select-only ops

SELECT_OPS = {
  'cutout': lambda key, x, y: (jaxmix.cutout(key, x, size=4), y),
  'saliency_cutmix': lambda key, x, y: jaxmix.saliency_cutmix(
    key, x, y, saliency=jnp.ones((x.shape[0], 2, 2))
  ),
}


@pytest.mark.parametrize('name', list(SELECT_OPS))
def test_uint8_images_give_the_float_result_exactly(name):
  images, labels = make_batch(height=8, width=8)
  pixels = (jnp.abs(images) * 60).astype(jnp.uint8)
  out, out_labels = SELECT_OPS[name](KEY, pixels, labels)
  assert out.dtype == jnp.uint8
  ref, ref_labels = SELECT_OPS[name](KEY, pixels.astype(jnp.float32), labels)
  np.testing.assert_array_equal(out, ref.astype(jnp.uint8))
  np.testing.assert_array_equal(out_labels, ref_labels)
