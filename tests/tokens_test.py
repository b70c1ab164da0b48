"""Tests of jaxmix._src.token_labels and jaxmix._src.mixtoken."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

KEY = jax.random.key(0)
NUM_DEVICES = 8


def _quadrant_maps(batch):
  """2 x 2 top-1 maps: top-left class 0, top-right 1, bottom-left 2, ..."""
  indices = jnp.broadcast_to(
    jnp.array([[0, 1], [2, 3]])[None, :, :, None], (batch, 2, 2, 1)
  )
  return jnp.full((batch, 2, 2, 1), 8.0), indices


def test_token_boxes_tile_the_image_row_major():
  box = jaxmix.token_boxes(height=4, width=6, grid=(2, 3))
  np.testing.assert_array_equal(box.top, [0, 0, 0, 2, 2, 2])
  np.testing.assert_array_equal(box.left, [0, 2, 4, 0, 2, 4])
  np.testing.assert_array_equal(box.bottom, [2, 2, 2, 4, 4, 4])
  np.testing.assert_array_equal(box.right, [2, 4, 6, 2, 4, 6])
  with pytest.raises(ValueError, match=r'`grid` \(3, 3\) must divide'):
    jaxmix.token_boxes(height=4, width=6, grid=(3, 3))


def test_token_targets_follow_the_crop_and_the_flip():
  scores, indices = _quadrant_maps(3)
  crops = jnp.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0.5, 0.5]], jnp.float32)
  flips = jnp.array([False, True, False])
  targets = jaxmix.token_label_targets(
    scores, indices, crops, flips, grid=(2, 2), height=8, width=8, num_classes=4
  )
  assert targets.shape == (3, 2, 2, 4)
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
  classes = np.asarray(targets.argmax(-1))
  np.testing.assert_array_equal(classes[0], [[0, 1], [2, 3]])
  np.testing.assert_array_equal(classes[1], [[1, 0], [3, 2]])  # mirrored
  np.testing.assert_array_equal(classes[2], [[0, 0], [0, 0]])  # one quadrant


def test_each_token_target_is_relabel_pooling_over_its_region():
  rng = np.random.default_rng(0)
  scores = jnp.asarray(rng.normal(size=(2, 5, 5, 3)), jnp.float32)
  indices = jnp.asarray(rng.integers(0, 7, size=(2, 5, 5, 3)), jnp.int32)
  crops = jnp.array([[0.1, 0.2, 0.9, 0.7], [0.0, 0.3, 0.6, 1.0]])
  flips = jnp.array([True, False])
  targets = jaxmix.token_label_targets(
    scores,
    indices,
    crops,
    flips,
    grid=(2, 4),
    height=8,
    width=16,
    num_classes=7,
  )
  boxes = jaxmix.token_boxes(height=8, width=16, grid=(2, 4))
  for n in range(8):
    box = jaxmix.Box(*(f[n] for f in boxes))
    region = jaxmix.region_crop_boxes(box, crops, flips, height=8, width=16)
    expected = jaxmix.relabel_targets(scores, indices, region, num_classes=7)
    np.testing.assert_allclose(
      targets[:, n // 4, n % 4], expected, rtol=1e-5, atol=1e-6
    )


def _token_batch(batch=8, rows=4, cols=5, dim=3, classes=10):
  values = np.arange(batch * rows * cols * dim, dtype=np.float32)
  tokens = jnp.asarray(values.reshape(batch, rows, cols, dim))
  labels = jax.nn.one_hot(np.arange(batch), classes)
  token_labels = jnp.asarray(
    np.arange(batch * rows * cols, dtype=np.int32).reshape(batch, rows, cols)
  )
  return tokens, labels, token_labels


def test_mixtoken_pastes_a_token_aligned_box_with_its_token_labels():
  tokens, labels, token_labels = _token_batch()
  for key in jax.random.split(KEY, 4):
    out, out_labels, out_token_labels = jaxmix.mixtoken(
      key, tokens, labels, token_labels, per_example=True
    )
    draw = jaxmix.sample_cutmix(
      key, batch_size=8, height=4, width=5, per_example=True
    )
    for i in range(8):
      p = int(draw.partners[i])
      changed = np.asarray((out[i] != tokens[i]).any(-1))
      mask = np.asarray(
        jaxmix.box_mask(
          jaxmix.Box(*(f[i] for f in draw.box)), height=4, width=5
        )
      )
      if p != i:
        np.testing.assert_array_equal(changed, mask)
      np.testing.assert_array_equal(out[i][mask], np.asarray(tokens[p])[mask])
      np.testing.assert_array_equal(
        out_token_labels[i][mask], np.asarray(token_labels[p])[mask]
      )
      np.testing.assert_array_equal(
        out_token_labels[i][~mask], np.asarray(token_labels[i])[~mask]
      )
      if p != i:
        assert float(out_labels[i, i]) == pytest.approx(1 - mask.mean())


def test_token_labeling_loss_is_class_ce_plus_half_the_mean_token_ce():
  rng = np.random.default_rng(1)
  class_logits = jnp.asarray(rng.normal(size=(2, 5)), jnp.float32)
  token_logits = jnp.asarray(rng.normal(size=(2, 2, 3, 5)), jnp.float32)
  labels = jax.nn.softmax(jnp.asarray(rng.normal(size=(2, 5)), jnp.float32))
  token_labels = jax.nn.softmax(
    jnp.asarray(rng.normal(size=(2, 2, 3, 5)), jnp.float32)
  )
  loss = jaxmix.token_labeling_loss(
    class_logits, token_logits, labels, token_labels
  )
  log_p = jax.nn.log_softmax(token_logits)
  token_ce = -(token_labels * log_p).sum(-1).mean((1, 2))
  expected = jaxmix.soft_cross_entropy(class_logits, labels) + 0.5 * token_ce
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  with pytest.raises(ValueError, match='must both be'):
    jaxmix.token_labeling_loss(
      class_logits, token_logits, labels, token_labels[..., :4]
    )


def test_mixtoken_errors():
  tokens, labels, token_labels = _token_batch()
  with pytest.raises(ValueError, match=r'`tokens` must be \[B, h, w, D\]'):
    jaxmix.mixtoken(KEY, tokens.reshape(8, 20, 3), labels, token_labels)
  with pytest.raises(ValueError, match=r'`token_labels` must be \[B, h, w'):
    jaxmix.mixtoken(KEY, tokens, labels, token_labels[:, :2])
