"""Tests of jaxmix.evaluate.localization (CAM, boxes, IoU, MaxBoxAcc) and of
the per-image box scoring of jaxmix.evaluate.cam_boxes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmix import models
from jaxmix.evaluate import cam_boxes, localization

PATCH = (8, 20, 16, 28)  # (top, left, bottom, right) of the planted evidence


class PooledColourCNN(nnx.Module):
  """features = 4x4 average pooling of the image; class c reads channel c."""

  def __init__(self):
    self.head = nnx.Linear(3, 3, rngs=nnx.Rngs(0))
    self.head.kernel[...] = jnp.eye(3)
    self.head.bias[...] = jnp.array([0.0, 0.5, 0.0])

  def features(self, x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))

  def __call__(self, x):
    return self.head(self.features(x).mean(axis=(1, 2)))


def _planted_image():
  image = np.zeros((32, 32, 3), np.float32)
  top, left, bottom, right = PATCH
  image[top:bottom, left:right, 0] = 1.0  # class 0 evidence, top right
  image[24:32, 0:8, 1] = 1.0  # class 1 evidence, bottom left
  return image[None]


def test_cam_peaks_on_the_planted_evidence_and_boxes_it():
  model = PooledColourCNN()
  images = np.concatenate([_planted_image()] * 2)
  cams = localization.class_activation_map(model, images, jnp.array([0, 1]))
  assert cams.shape == (2, 32, 32)
  np.testing.assert_allclose(cams.min(axis=(1, 2)), 0.0)
  np.testing.assert_allclose(cams.max(axis=(1, 2)), 1.0)
  top, left, bottom, right = PATCH
  peak = np.unravel_index(np.argmax(cams[0]), (32, 32))
  assert top <= peak[0] < bottom and left <= peak[1] < right
  boxes = localization.boxes_from_cams(cams, 0.5)
  assert localization.iou(boxes[0], PATCH)[0, 0] > 0.5
  assert localization.iou(boxes[1], (24, 0, 32, 8))[0, 0] > 0.5


def test_cam_of_a_jaxmix_cnn_and_of_a_model_without_features():
  model = models.create_model(
    'tiny_cnn', num_classes=5, width=4, rngs=nnx.Rngs(0)
  )
  model.eval()
  images = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  cam_fn = nnx.jit(localization.class_activation_map, static_argnames='method')
  cams = cam_fn(model, images, jnp.array([0, 4]), method='cubic')
  assert cams.shape == (2, 16, 16)
  assert float(cams.min()) >= 0.0 and float(cams.max()) <= 1.0 + 1e-6
  with pytest.raises(TypeError, match='features'):
    localization.class_activation_map(object(), images, jnp.array([0, 4]))
  with pytest.raises(ValueError, match='`class_ids`'):
    localization.class_activation_map(model, images, jnp.array([0]))


def test_boxes_take_the_largest_8_connected_region():
  cams = np.zeros((3, 10, 10), np.float32)
  cams[0, 0:2, 0:2] = 1.0  # 4 pixels, the maximum
  cams[0, 5:9, 5:8] = 0.6  # 12 pixels: the largest region above 0.5
  cams[1, 2, 2] = cams[1, 3, 3] = cams[1, 4, 4] = 1.0  # diagonal: one region
  boxes = localization.boxes_from_cams(cams, 0.5)
  np.testing.assert_array_equal(boxes[0], [5, 5, 9, 8])
  np.testing.assert_array_equal(boxes[1], [2, 2, 5, 5])
  np.testing.assert_array_equal(boxes[2], [0, 0, 0, 0])  # nothing above
  # The threshold is strict and relative to each map's maximum.
  np.testing.assert_array_equal(
    localization.boxes_from_cams(cams[:1], 0.6)[0], [0, 0, 2, 2]
  )


def test_iou_of_planted_boxes():
  a = np.array([[0, 0, 2, 2], [0, 0, 4, 4], [3, 3, 3, 5]])
  b = np.array([[1, 1, 3, 3], [0, 0, 4, 4]])
  np.testing.assert_allclose(
    localization.iou(a, b),
    [[1 / 7, 4 / 16], [4 / 16, 1.0], [0.0, 0.0]],
  )


def test_localization_accuracy_needs_class_and_box():
  pred_boxes = np.array([[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4]])
  true_boxes = [
    np.array([[0, 0, 4, 4]]),
    np.array([[6, 6, 9, 9], [0, 0, 4, 3]]),  # IoU 0.75 with the second
    np.array([[0, 0, 4, 4]]),
  ]
  tally = localization.localization_accuracy(
    np.array([1, 2, 0]), np.array([1, 2, 3]), pred_boxes, true_boxes
  )
  assert (tally.correct, tally.total) == (2, 3)  # image 2: wrong class
  known = localization.localization_accuracy(
    np.array([1, 2, 3]), np.array([1, 2, 3]), pred_boxes, true_boxes
  )
  assert known.accuracy == 1.0
  with pytest.raises(ValueError, match='has no box'):
    localization.localization_accuracy(
      [0], [0], pred_boxes[:1], [np.zeros((0, 4))]
    )


def _nested_squares():
  cam = np.zeros((20, 20), np.float32)
  cam[2:18, 2:18] = 0.5
  cam[8:12, 8:12] = 1.0
  return cam


def test_max_box_acc_picks_the_best_threshold():
  cams = np.stack([_nested_squares()] * 3)
  outer, inner = [[2, 2, 18, 18]], [[8, 8, 12, 12]]
  result = localization.max_box_acc(
    cams, [np.array(outer), np.array(outer), np.array(inner)]
  )
  # Thresholds below 0.5 box the outer square, from 0.5 on the inner one.
  expected = np.where(localization.CAM_THRESHOLDS < 0.5, 2 / 3, 1 / 3)
  np.testing.assert_allclose(result.box_acc, expected)
  assert result.value == pytest.approx(2 / 3)
  assert result.threshold == 0.0


def test_max_box_acc_v2_tries_every_region():
  cam = np.zeros((20, 20), np.float32)
  cam[0:10, 0:10] = 1.0  # the largest region
  cam[15:18, 15:18] = 1.0  # the object
  truth = [np.array([[15, 15, 18, 18]])]
  largest = localization.max_box_acc(cam[None], truth, thresholds=[0.5])
  assert largest.value == 0.0
  every = localization.max_box_acc(
    cam[None], truth, thresholds=[0.5], all_regions=True
  )
  assert every.value == 1.0
  # IoU 1 passes all of 0.3, 0.5 and 0.7.
  assert localization.max_box_acc_v2(cam[None], truth, thresholds=[0.5]) == 1.0


def test_pixel_boxes_scale_normalised_boxes():
  np.testing.assert_array_equal(
    localization.pixel_boxes([[0.1, 0.25, 0.5, 1.0]], height=20, width=40),
    [[2, 10, 10, 40]],
  )


def test_true_boxes_move_into_the_crop_frame():
  # Image 0: the crop is the middle half; image 1 is padding (empty crop).
  batch = {
    'boxes': np.array(
      [[[0.25, 0.25, 0.75, 0.5], [0.0, 0.0, 1.0, 1.0]], [[0.0] * 4] * 2]
    ),
    'crop_box': np.array([[0.25, 0.25, 0.75, 0.75], [0.0] * 4]),
    'box_labels': np.array([[3, 5], [0, 0]]),
    'num_objects': np.array([2, 0]),
  }
  boxes, labels = cam_boxes.true_boxes(batch, 8)
  np.testing.assert_array_equal(boxes[0], [[0, 0, 8, 4], [0, 0, 8, 8]])
  np.testing.assert_array_equal(labels[0], [3, 5])
  assert boxes[1].shape == (0, 4) and labels[1].shape == (0,)


def test_pred_ious_score_the_predicted_classes_boxes():
  cams = np.zeros((3, 8, 8), np.float32)
  cams[:, 0:4, 0:4] = 1.0  # every CAM's box: (0, 0, 4, 4)
  boxes = [np.array([[0, 0, 4, 4], [0, 0, 8, 8]])] * 3
  box_labels = [np.array([1, 2])] * 3
  ious = cam_boxes.pred_ious(cams, [1, 2, 7], boxes, box_labels, [0.5])
  # Class 1's box is the CAM's, class 2's is 4x larger, class 7 is absent.
  np.testing.assert_allclose(ious, [[1.0], [0.25], [0.0]])
