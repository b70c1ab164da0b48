"""Tests of jaxmix._src.label_map_pooling against a plain NumPy RoIAlign on dense maps."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix


def _bilinear(plane, y, x):
  """One bilinear sample with RoIAlign's edge rules; plane is [H, W]."""
  height, width = plane.shape
  if y < -1.0 or y > height or x < -1.0 or x > width:
    return 0.0
  y, x = max(y, 0.0), max(x, 0.0)
  y_low, x_low = int(y), int(x)
  if y_low >= height - 1:
    y_low = y_high = height - 1
    y = float(y_low)
  else:
    y_high = y_low + 1
  if x_low >= width - 1:
    x_low = x_high = width - 1
    x = float(x_low)
  else:
    x_high = x_low + 1
  ly, lx = y - y_low, x - x_low
  hy, hx = 1 - ly, 1 - lx
  return (
    hy * hx * plane[y_low, x_low]
    + hy * lx * plane[y_low, x_high]
    + ly * hx * plane[y_high, x_low]
    + ly * lx * plane[y_high, x_high]
  )


def roi_align_1x1(dense, x1, y1, x2, y2):
  """RoIAlign, output 1x1, aligned=False, adaptive grid; dense is [K, H, W]."""
  roi_w, roi_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
  grid_h, grid_w = math.ceil(roi_h), math.ceil(roi_w)
  out = np.zeros(dense.shape[0])
  for iy in range(grid_h):
    y = y1 + (iy + 0.5) * roi_h / grid_h
    for ix in range(grid_w):
      x = x1 + (ix + 0.5) * roi_w / grid_w
      out += [_bilinear(plane, y, x) for plane in dense]
  return out / (grid_h * grid_w)


def official_pooling(scores, indices, box, num_classes, swap=False):
  """The official ReLabel computation for one example, in NumPy.

  Densify the top-k map with zeros, then roi_align on `box * S - 0.5`; the
  official code hands (y1, x1, y2, x2) to an API that reads (x1, y1, x2, y2).
  """
  size = scores.shape[0]
  dense = np.zeros((num_classes, size, size))
  for i in range(size):
    for j in range(size):
      dense[indices[i, j], i, j] = scores[i, j]
  ymin, xmin, ymax, xmax = np.asarray(box, np.float64) * size - 0.5
  if swap:
    return roi_align_1x1(dense, ymin, xmin, ymax, xmax)
  return roi_align_1x1(dense, xmin, ymin, xmax, ymax)


def random_maps(rng, batch_size, size=15, k=5, num_classes=20):
  scores = rng.normal(size=(batch_size, size, size, k)) * 3
  indices = np.stack(
    [rng.permutation(num_classes)[:k] for _ in range(batch_size * size * size)]
  ).reshape(batch_size, size, size, k)
  return scores.astype(np.float32), indices.astype(np.int32)


def random_boxes(rng, batch_size):
  """Crops of every kind: random, tiny (< one cell), touching the borders."""
  boxes = []
  for b in range(batch_size):
    kind = b % 4
    if kind == 0:  # random
      y = np.sort(rng.uniform(0, 1, 2))
      x = np.sort(rng.uniform(0, 1, 2))
    elif kind == 1:  # smaller than one map cell (1/15)
      y0, x0 = rng.uniform(0, 0.95, 2)
      y = [y0, y0 + rng.uniform(0.001, 0.05)]
      x = [x0, x0 + rng.uniform(0.001, 0.05)]
    elif kind == 2:  # touching the top-left or bottom-right border
      y = [0.0, rng.uniform(0.1, 1)] if b % 8 < 4 else [rng.uniform(0, 0.9), 1]
      x = [0.0, rng.uniform(0.1, 1)] if b % 8 < 4 else [rng.uniform(0, 0.9), 1]
    else:  # the whole image
      y, x = [0.0, 1.0], [0.0, 1.0]
    boxes.append([y[0], x[0], y[1], x[1]])
  return np.asarray(boxes, np.float32)


@pytest.mark.parametrize('official_box_order', [False, True])
def test_pooling_equals_roi_align_on_the_dense_map(official_box_order):
  rng = np.random.default_rng(0)
  scores, indices = random_maps(rng, batch_size=24)
  boxes = random_boxes(rng, batch_size=24)
  pooled = jaxmix.pool_label_map(
    scores,
    indices,
    boxes,
    num_classes=20,
    official_box_order=official_box_order,
  )
  for b in range(24):
    expected = official_pooling(
      scores[b], indices[b], boxes[b], 20, swap=official_box_order
    )
    np.testing.assert_allclose(pooled[b], expected, rtol=1e-4, atol=1e-5)


def _half_and_half_map(size=15, k=2):
  """Left half of the image is class 0, right half class 1 (score 5)."""
  scores = np.zeros((1, size, size, k), np.float32)
  indices = np.zeros((1, size, size, k), np.int32)
  scores[..., 0] = 5.0
  indices[0, :, : size // 2, 0] = 0
  indices[0, :, size // 2 :, 0] = 1
  indices[..., 1] = 2  # second choice: class 2, score 0
  return scores, indices


def test_crops_of_the_left_part_pool_to_the_left_class():
  scores, indices = _half_and_half_map()
  left = np.array([[0.2, 0.0, 0.9, 0.3]], np.float32)  # tall, left strip
  right = np.array([[0.0, 0.7, 0.5, 1.0]], np.float32)
  for box, cls in ((left, 0), (right, 1)):
    targets = jaxmix.relabel_targets(scores, indices, box, num_classes=3)
    assert int(jnp.argmax(targets[0])) == cls
    assert float(targets[0, cls]) > 0.9


def test_official_box_order_pools_the_transposed_crop():
  scores, indices = _half_and_half_map()
  left = np.array([[0.2, 0.0, 0.9, 0.3]], np.float32)
  official = jaxmix.pool_label_map(
    scores, indices, left, num_classes=3, official_box_order=True
  )
  transposed = jaxmix.pool_label_map(
    scores.transpose(0, 2, 1, 3),
    indices.transpose(0, 2, 1, 3),
    left,
    num_classes=3,
  )
  np.testing.assert_allclose(official, transposed, rtol=1e-6)
  # Rows 0.2-0.9 read as columns: most of that strip is the right class.
  assert float(official[0, 1]) > float(official[0, 0])


def test_targets_are_the_softmax_over_all_classes_with_zero_logits():
  rng = np.random.default_rng(1)
  scores, indices = random_maps(rng, batch_size=4, num_classes=50)
  boxes = random_boxes(rng, batch_size=4)
  logits = jaxmix.pool_label_map(scores, indices, boxes, num_classes=50)
  targets = jaxmix.relabel_targets(scores, indices, boxes, num_classes=50)
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(targets, jax.nn.softmax(logits), rtol=1e-6)
  absent = np.asarray(logits) == 0
  assert absent.any()  # Classes never in the top-k keep exp(0) / Z each.
  sharp = jaxmix.relabel_targets(
    scores, indices, boxes, num_classes=50, temperature=0.5
  )
  np.testing.assert_allclose(sharp, jax.nn.softmax(logits / 0.5), rtol=1e-5)


def test_whole_image_of_a_constant_map_pools_to_its_score():
  scores = np.full((1, 15, 15, 1), 2.5, np.float32)
  indices = np.full((1, 15, 15, 1), 7, np.int32)
  pooled = jaxmix.pool_label_map(
    scores, indices, np.array([[0, 0, 1, 1.0]]), num_classes=10
  )
  np.testing.assert_allclose(pooled[0, 7], 2.5, rtol=1e-6)
  assert float(jnp.abs(pooled).sum()) == pytest.approx(2.5, rel=1e-6)


def test_float16_storage_jit_and_vmap_agree():
  rng = np.random.default_rng(2)
  scores, indices = random_maps(rng, batch_size=8)
  boxes = random_boxes(rng, batch_size=8)
  half = scores.astype(np.float16)
  eager = jaxmix.pool_label_map(
    half, indices.astype(np.uint16), boxes, num_classes=20
  )
  jitted = jax.jit(jaxmix.pool_label_map, static_argnames='num_classes')(
    half, indices, boxes, num_classes=20
  )
  np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6)
  mapped = jax.vmap(
    lambda s, i, b: jaxmix.pool_label_map(s, i, b, num_classes=20)
  )(
    half.reshape(2, 4, 15, 15, 5),
    indices.reshape(2, 4, 15, 15, 5),
    boxes.reshape(2, 4, 4),
  )
  np.testing.assert_allclose(mapped.reshape(8, 20), eager, rtol=1e-6, atol=1e-6)
  exact = jaxmix.pool_label_map(
    half.astype(np.float32), indices, boxes, num_classes=20
  )
  np.testing.assert_allclose(eager, exact, rtol=1e-6)


def test_gradient_flows_to_the_scores():
  rng = np.random.default_rng(3)
  scores, indices = random_maps(rng, batch_size=2)
  boxes = random_boxes(rng, batch_size=2)
  grad = jax.grad(
    lambda s: jaxmix.relabel_targets(s, indices, boxes, num_classes=20)[
      :, 0
    ].sum()
  )(jnp.asarray(scores))
  assert np.isfinite(grad).all()


def test_bad_inputs_raise_clear_errors():
  scores = np.zeros((2, 15, 15, 5), np.float32)
  indices = np.zeros((2, 15, 15, 5), np.int32)
  boxes = np.zeros((2, 4), np.float32)
  with pytest.raises(ValueError, match=r'`scores` must be \[B, S, S, k\]'):
    jaxmix.pool_label_map(scores[0], indices, boxes, num_classes=3)
  with pytest.raises(ValueError, match='`indices` must have the shape'):
    jaxmix.pool_label_map(scores, indices[:, :5], boxes, num_classes=3)
  with pytest.raises(TypeError, match='integer class ids'):
    jaxmix.pool_label_map(scores, scores, boxes, num_classes=3)
  with pytest.raises(ValueError, match=r'`crop_boxes` must be \[B, 4\]'):
    jaxmix.pool_label_map(scores, indices, boxes[:, :2], num_classes=3)
  with pytest.raises(ValueError, match='`num_classes` must be a positive'):
    jaxmix.pool_label_map(scores, indices, boxes, num_classes=0)
