"""Weakly supervised localisation with class activation maps (CAM).

CAM (Zhou et al., CVPR 2016), as the CutMix paper uses it: for class c,
`CAM_c(y, x) = sum_k w_{k,c} f_k(y, x)` with `f` the last feature map and `w`
the linear classifier, resized to the image and min-max normalised per image.
A box is read off by thresholding the map and taking the bounding box of the
largest connected region above the threshold. Metrics:

- top-1 localisation accuracy: the class is right AND the box has IoU >= 0.5
  with a ground-truth box (GT-known accuracy: pass the true classes as the
  predictions);
- MaxBoxAcc (Choe et al., CVPR 2020, "Evaluating Weakly Supervised Object
  Localization Methods Right"): the best GT-known box accuracy over all CAM
  thresholds, and MaxBoxAccV2 (mean over IoU 0.3/0.5/0.7, boxes of all
  regions).

Boxes are int `[..., 4]` NumPy arrays `(top, left, bottom, right)` in pixels,
half-open, the field order of `jaxmix.Box`. Ground truth per image is an
`[n_i, 4]` array (an image may have several boxes). The ground-truth boxes
must be in the frame of the evaluated image (after its resize / crop).
Everything except `class_activation_map` and `maps_from_features` runs on
the host.
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from scipy import ndimage

from jaxmix.evaluate.metrics import Tally

_EIGHT_CONNECTED = np.ones((3, 3), bool)
# Choe et al.'s CAM thresholds: 0.00, 0.01, ..., 0.99.
CAM_THRESHOLDS = np.arange(100) / 100.0


def check_cam_model(model) -> None:
  """TypeError unless `model` has `features` and a linear `head` (a CNN)."""
  if not hasattr(model, 'features') or not hasattr(model, 'head'):
    raise TypeError(
      f'`model` ({type(model).__name__}) has no `features` and `head`; CAM '
      'needs a CNN with a linear classifier on pooled features.'
    )


def class_activation_map(
  model,
  images: ArrayLike,
  class_ids: ArrayLike,
  *,
  method: str = 'bilinear',
) -> jax.Array:
  """Min-max normalised class activation maps at the image resolution.

  `features(x) @ head.kernel[:, c]` (the bias is constant per map and drops
  out of the normalisation), resized to `[H, W]` with `jax.image.resize`
  (half-pixel centres) and scaled to [0, 1] per image; a constant map
  becomes all zeros. Put the model in eval mode first (`model.eval()`).

  Args:
    model: a jaxmix CNN (any model with `features(x) -> [B, h, w, D]` and an
      `nnx.Linear` `head`).
    images: float `[B, H, W, 3]`, normalised as the model expects.
    class_ids: int `[B]`, the class whose map to compute per image.
    method: resize method, 'bilinear' (default) or 'cubic' (the official
      WSOL evaluation code resizes bicubically).

  Returns:
    float32 `[B, H, W]` in [0, 1].
  """
  check_cam_model(model)
  images = jnp.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'`images` must be [B, H, W, 3], got {images.shape}.')
  batch, height, width, _ = images.shape
  class_ids = jnp.asarray(class_ids)
  if class_ids.shape != (batch,):
    raise ValueError(
      f'`class_ids` must be [B] = ({batch},), got {class_ids.shape}.'
    )
  features = model.features(images).astype(jnp.float32)
  return maps_from_features(
    features, model.head.kernel[...], class_ids, (height, width), method=method
  )


def maps_from_features(
  features: jax.Array,
  kernel: ArrayLike,
  class_ids: ArrayLike,
  size: tuple[int, int],
  *,
  method: str = 'bilinear',
) -> jax.Array:
  """`class_activation_map` of features already computed (one pass, many maps).

  Args:
    features: float32 `[B, h, w, D]`, the model's `features(x)`.
    kernel: the head's kernel `[D, K]`.
    class_ids: int `[B]`, the class whose map to compute per image.
    size: `(H, W)`, the image resolution to resize to.
    method: resize method, as in `class_activation_map`.

  Returns:
    float32 `[B, H, W]` in [0, 1].
  """
  batch = features.shape[0]
  weights = jnp.asarray(kernel, jnp.float32)[:, class_ids]
  cams = jnp.einsum('bhwd,db->bhw', features, weights)
  cams = jax.image.resize(cams, (batch, *size), method=method)
  low = cams.min(axis=(1, 2), keepdims=True)
  span = cams.max(axis=(1, 2), keepdims=True) - low
  return jnp.where(span > 0, (cams - low) / jnp.where(span > 0, span, 1), 0.0)


def _check_cams(cams: ArrayLike) -> np.ndarray:
  cams = np.asarray(cams, np.float32)
  if cams.ndim != 3:
    raise ValueError(f'`cams` must be [B, H, W], got shape {cams.shape}.')
  return cams


def _region_boxes(cam: np.ndarray, threshold: float) -> np.ndarray:
  """Boxes of the 8-connected regions above `threshold * max`, largest first."""
  regions, count = ndimage.label(cam > threshold * cam.max(), _EIGHT_CONNECTED)
  if count == 0:
    return np.zeros((1, 4), np.int32)  # an empty box: IoU 0 with anything
  sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]
  slices = ndimage.find_objects(regions)
  boxes = np.array(
    [[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in slices], np.int32
  )
  # Stable sort: equal sizes keep raster order (the first region wins).
  return boxes[np.argsort(-sizes, kind='stable')]


def boxes_from_cams(cams: ArrayLike, threshold: float) -> np.ndarray:
  """The box of the largest region of each CAM above `threshold * max`.

  Pixels strictly above the threshold (the official WSOL code's
  `cv2.THRESH_TOZERO`) form 8-connected regions (as OpenCV contours do); the
  largest by pixel count (OpenCV's code ranks contours by polygon area, a
  slight difference) gives the box. No pixel above it gives the empty box
  `(0, 0, 0, 0)`.

  Args:
    cams: float `[B, H, W]` (e.g. `class_activation_map`, in [0, 1]).
    threshold: fraction of each map's maximum, e.g. 0.2 (the CAM paper).

  Returns:
    int32 `[B, 4]` boxes `(top, left, bottom, right)`, half-open.
  """
  cams = _check_cams(cams)
  return np.stack([_region_boxes(cam, threshold)[0] for cam in cams])


def box_areas(boxes: ArrayLike) -> np.ndarray:
  """Areas of boxes `[..., 4]` (top, left, bottom, right); 0 when empty."""
  boxes = np.asarray(boxes, np.float64)
  height = np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
  return height * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def box_intersections(boxes_a: ArrayLike, boxes_b: ArrayLike) -> np.ndarray:
  """Intersection areas of boxes `[..., 4]`, broadcast over leading axes."""
  a, b = np.asarray(boxes_a, np.float64), np.asarray(boxes_b, np.float64)
  top_left = np.maximum(a[..., :2], b[..., :2])
  bottom_right = np.minimum(a[..., 2:], b[..., 2:])
  return np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)


def iou(boxes_a: ArrayLike, boxes_b: ArrayLike) -> np.ndarray:
  """Intersection over union of half-open pixel boxes `[N, 4]` x `[M, 4]`.

  Returns:
    float64 `[N, M]`; 0 where the union is empty.
  """
  a, b = (np.asarray(x, np.float64).reshape(-1, 4) for x in (boxes_a, boxes_b))
  inter = box_intersections(a[:, None], b[None])
  union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _best_iou(pred_boxes: np.ndarray, true_boxes: ArrayLike, index: int):
  true_boxes = np.asarray(true_boxes).reshape(-1, 4)
  if true_boxes.shape[0] == 0:
    raise ValueError(f'`true_boxes_list[{index}]` has no box.')
  return float(iou(pred_boxes, true_boxes).max())


def localization_accuracy(
  pred_class: ArrayLike,
  true_class: ArrayLike,
  pred_boxes: ArrayLike,
  true_boxes_list: Sequence[ArrayLike],
  *,
  iou_threshold: float = 0.5,
) -> Tally:
  """Top-1 localisation counts (ILSVRC protocol, the CutMix paper's metric).

  An image counts when `pred_class == true_class` and the predicted box has
  IoU >= `iou_threshold` with any of its ground-truth boxes. Passing the
  true classes as `pred_class` gives GT-known localisation accuracy.

  Args:
    pred_class: int `[N]`, the top-1 predictions.
    true_class: int `[N]`.
    pred_boxes: int `[N, 4]` (`boxes_from_cams` of the predicted class's CAM).
    true_boxes_list: N arrays `[n_i, 4]` of ground-truth boxes.
    iou_threshold: the IoU needed.

  Returns:
    `Tally` of Python ints.
  """
  pred_class, true_class = np.asarray(pred_class), np.asarray(true_class)
  pred_boxes = np.asarray(pred_boxes)
  n = pred_class.shape[0]
  if true_class.shape != (n,) or pred_boxes.shape != (n, 4):
    raise ValueError(
      f'`true_class` must be [{n}] and `pred_boxes` [{n}, 4], got '
      f'{true_class.shape} and {pred_boxes.shape}.'
    )
  if len(true_boxes_list) != n:
    raise ValueError(
      f'`true_boxes_list` must have {n} entries, got {len(true_boxes_list)}.'
    )
  hits = sum(
    int(pred_class[i] == true_class[i])
    * int(_best_iou(pred_boxes[i], true_boxes_list[i], i) >= iou_threshold)
    for i in range(n)
  )
  return Tally(hits, n)


class MaxBoxAcc(NamedTuple):
  """`value`: the best box accuracy, reached at CAM threshold `threshold`;
  `box_acc`: the accuracy at every threshold `[T]`."""

  value: float
  threshold: float
  box_acc: np.ndarray


def best_ious(
  cams: ArrayLike,
  true_boxes_list: Sequence[ArrayLike],
  thresholds: ArrayLike,
  *,
  all_regions: bool = False,
) -> np.ndarray:
  """Best IoU with the ground truth per image and CAM threshold: `[N, T]`.

  With `all_regions`, every region's box is tried (MaxBoxAccV2's
  multi-contour rule), otherwise only the largest region's.
  """
  cams = _check_cams(cams)
  thresholds = np.asarray(thresholds, np.float64).reshape(-1)
  if len(true_boxes_list) != cams.shape[0]:
    raise ValueError(
      f'`true_boxes_list` must have {cams.shape[0]} entries (one per CAM), '
      f'got {len(true_boxes_list)}.'
    )
  out = np.zeros((cams.shape[0], thresholds.size))
  for i, cam in enumerate(cams):
    for t, threshold in enumerate(thresholds):
      boxes = _region_boxes(cam, threshold)
      boxes = boxes if all_regions else boxes[:1]
      out[i, t] = _best_iou(boxes, true_boxes_list[i], i)
  return out


def max_box_acc(
  cams: ArrayLike,
  true_boxes_list: Sequence[ArrayLike],
  *,
  thresholds: ArrayLike = CAM_THRESHOLDS,
  iou_threshold: float = 0.5,
  all_regions: bool = False,
) -> MaxBoxAcc:
  """MaxBoxAcc (Choe et al. 2020): `max_t mean_n [IoU(box(s_n, t), B_n) >= d]`.

  GT-known (the class is not checked); the CAMs should be those of the true
  class. The paper's MaxBoxAcc uses d = 0.5 and the largest region.

  Args:
    cams: float `[N, H, W]` in [0, 1].
    true_boxes_list: N arrays `[n_i, 4]`.
    thresholds: CAM thresholds `[T]` (fractions of each map's maximum).
    iou_threshold: d, the IoU needed.
    all_regions: try the boxes of all regions (see `best_ious`).

  Returns:
    `MaxBoxAcc(value, threshold, box_acc)`.
  """
  thresholds = np.asarray(thresholds, np.float64).reshape(-1)
  ious = best_ious(cams, true_boxes_list, thresholds, all_regions=all_regions)
  box_acc = np.mean(ious >= iou_threshold, axis=0)
  best = int(np.argmax(box_acc))
  return MaxBoxAcc(float(box_acc[best]), float(thresholds[best]), box_acc)


def max_box_acc_v2(
  cams: ArrayLike,
  true_boxes_list: Sequence[ArrayLike],
  *,
  thresholds: ArrayLike = CAM_THRESHOLDS,
  iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
) -> float:
  """MaxBoxAccV2 (Choe et al. 2020): MaxBoxAcc averaged over d, all regions."""
  ious = best_ious(cams, true_boxes_list, thresholds, all_regions=True)
  return float(
    np.mean([np.max(np.mean(ious >= d, axis=0)) for d in iou_thresholds])
  )


def pixel_boxes(boxes: ArrayLike, *, height: int, width: int) -> np.ndarray:
  """Normalised `(ymin, xmin, ymax, xmax)` boxes (TFDS) -> int pixel boxes.

  Coordinates are scaled and rounded to the nearest pixel edge.

  Args:
    boxes: float `[..., 4]` in [0, 1].
    height: image height in pixels.
    width: image width in pixels.

  Returns:
    int32 `[..., 4]` `(top, left, bottom, right)`, half-open.
  """
  boxes = np.asarray(boxes, np.float64)
  if boxes.shape[-1:] != (4,):
    raise ValueError(f'`boxes` must be [..., 4], got shape {boxes.shape}.')
  scale = np.array([height, width, height, width], np.float64)
  return np.rint(boxes * scale).astype(np.int32)
