"""Tests of jaxmix._src.relabel_cutmix: official and localised ReLabel + CutMix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

SIZE, K = 15, 6


def _split_map(left_class, right_class):
  """A map whose left half is `left_class` and right half `right_class`."""
  scores = np.full((SIZE, SIZE, 1), 6.0, np.float32)
  indices = np.full((SIZE, SIZE, 1), left_class, np.int32)
  indices[:, SIZE // 2 + 1 :, 0] = right_class
  return scores, indices


def _batch():
  """Example 0: classes 0 | 1; example 1: classes 2 | 3 (left | right)."""
  maps = [_split_map(0, 1), _split_map(2, 3)]
  scores = jnp.asarray(np.stack([m[0] for m in maps]))
  indices = jnp.asarray(np.stack([m[1] for m in maps]))
  return scores, indices


WHOLE = jnp.array([[0.0, 0.0, 1.0, 1.0]] * 2)


def test_region_crop_boxes_maps_through_crop_and_flip():
  crops = jnp.array([[0.2, 0.4, 0.6, 0.8], [0.2, 0.4, 0.6, 0.8]])
  box = jaxmix.Box(top=0, left=0, bottom=5, right=2)  # top-left of 10 x 10
  regions = jaxmix.region_crop_boxes(
    box, crops, jnp.array([False, True]), height=10, width=10
  )
  np.testing.assert_allclose(regions[0], [0.2, 0.4, 0.4, 0.48], rtol=1e-6)
  # Flipped: the image's left columns are the crop's right columns.
  np.testing.assert_allclose(regions[1], [0.2, 0.72, 0.4, 0.8], rtol=1e-6)


def test_official_rule_is_relabel_targets_then_cutmix():
  scores, indices = _batch()
  images = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  key = jax.random.key(3)
  mixed, targets = jaxmix.relabel_cutmix(
    key, images, scores, indices, WHOLE, jnp.zeros(2, bool), num_classes=K
  )
  own = jaxmix.relabel_targets(scores, indices, WHOLE, num_classes=K)
  expected = jaxmix.cutmix(key, images, own)
  np.testing.assert_array_equal(mixed, expected[0])
  np.testing.assert_allclose(targets, expected[1], rtol=1e-6)


def test_localized_mixes_the_same_pixels_as_the_official_rule():
  scores, indices = _batch()
  images = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  flips = jnp.zeros(2, bool)
  for seed in range(5):
    key = jax.random.key(seed)
    official = jaxmix.relabel_cutmix(
      key, images, scores, indices, WHOLE, flips, num_classes=K
    )
    localized = jaxmix.relabel_cutmix(
      key, images, scores, indices, WHOLE, flips, num_classes=K, localized=True
    )
    np.testing.assert_array_equal(official[0], localized[0])
    np.testing.assert_allclose(localized[1].sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize('flip_partner', [False, True])
def test_localized_target_follows_the_pasted_region(flip_partner):
  scores, indices = _batch()
  # Paste the left 6 of 15 columns (whole height) of the partner's image.
  box = jaxmix.Box(top=0, left=0, bottom=15, right=6)
  flips = jnp.array([False, flip_partner])
  targets = jaxmix.localized_cutmix_targets(
    scores,
    indices,
    WHOLE,
    flips,
    box=box,
    partners=jnp.array([1, 0]),
    num_classes=K,
    height=15,
    width=15,
  )
  t = np.asarray(targets[0])
  # Example 0 keeps its right part (class 1), not its left (class 0).
  assert t[1] > 0.4 and t[0] < 0.1
  # The pasted part shows the partner's left (class 2), or its right
  # (class 3) when the partner was flipped.
  pasted, other = (3, 2) if flip_partner else (2, 3)
  assert t[pasted] > 0.25 and t[other] < 0.05
  np.testing.assert_allclose(t.sum(), 1.0, rtol=1e-5)

  # The box lies on map-cell boundaries, so the regions' poolings are exact:
  # 9/15 of the target is the own right part, 6/15 the partner's region.
  def targets_of(map_index, region):
    return jaxmix.relabel_targets(
      scores[map_index : map_index + 1],
      indices[map_index : map_index + 1],
      jnp.array([region]),
      num_classes=K,
    )[0]

  partner_region = [0.0, 0.6, 1.0, 1.0] if flip_partner else [0, 0, 1, 0.4]
  expected = 9 / 15 * targets_of(0, [0.0, 0.4, 1.0, 1.0]) + 6 / 15 * (
    targets_of(1, partner_region)
  )
  np.testing.assert_allclose(t, expected, rtol=1e-5, atol=1e-6)


def test_empty_box_gives_the_own_targets():
  scores, indices = _batch()
  targets = jaxmix.localized_cutmix_targets(
    scores,
    indices,
    WHOLE,
    jnp.zeros(2, bool),
    box=jaxmix.Box(0, 0, 0, 0),
    partners=jnp.array([1, 0]),
    num_classes=K,
    height=15,
    width=15,
  )
  own = jaxmix.relabel_targets(scores, indices, WHOLE, num_classes=K)
  np.testing.assert_allclose(targets, own, rtol=1e-5, atol=1e-6)


def test_runs_under_jit_and_per_shard():
  scores = jnp.tile(_batch()[0], (4, 1, 1, 1))
  indices = jnp.tile(_batch()[1], (4, 1, 1, 1))
  images = jax.random.normal(jax.random.key(0), (8, 16, 16, 3))
  crops = jnp.tile(WHOLE[:1], (8, 1))
  flips = jnp.zeros(8, bool)
  mesh = jax.make_mesh((4,), ('data',), devices=jax.devices()[:4])

  def op(key, images, scores, indices, crops, flips):
    return jaxmix.relabel_cutmix(
      key, images, scores, indices, crops, flips, num_classes=K, localized=True
    )

  fn = jax.jit(jaxmix.per_shard(op, mesh))
  out_images, targets = fn(
    jax.random.key(0), images, scores, indices, crops, flips
  )
  assert out_images.shape == images.shape and targets.shape == (8, K)
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)


def test_bad_inputs():
  scores, indices = _batch()
  images = jnp.zeros((2, 8, 8, 3))
  with pytest.raises(ValueError, match='`flips` must be bool'):
    jaxmix.relabel_cutmix(
      jax.random.key(0),
      images,
      scores,
      indices,
      WHOLE,
      jnp.zeros(3, bool),
      num_classes=K,
      localized=True,
    )
  with pytest.raises(ValueError, match='`alpha` must be > 0'):
    jaxmix.relabel_cutmix(
      jax.random.key(0),
      images,
      scores,
      indices,
      WHOLE,
      jnp.zeros(2, bool),
      num_classes=K,
      alpha=0.0,
    )
