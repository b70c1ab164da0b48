"""ReLabel: pools top-k label maps over random crops into soft targets.

A label map is a machine annotator's class scores on an `S x S` grid over the
whole training image (squashed to a square), stored in top-k form: `scores`
``[S, S, k]`` and class `indices` ``[S, S, k]`` per image. ReLabel's target
for a random crop is the map pooled over the crop with RoIAlign (one output
cell, half-pixel aligned, adaptive sampling grid) and a softmax over all K
classes, the classes outside the top-k having logit 0.

jaxmix reproduces that computation exactly but never builds the dense
``[S, S, K]`` map: RoIAlign is linear and separable, `pooled[c] = sum_ij
w_y[i] w_x[j] L[c, i, j]`, so each top-k entry is weighted and scatter-added
into its class (`B * S * S * k` updates instead of `B * S * S * K` floats).

Crop boxes are `(ymin, xmin, ymax, xmax)` in normalised coordinates of the
original image, TF's order. A horizontal flip does not change a 1x1 pooling.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxmix._src.knobs import takes

Array = jax.Array


def _axis_weights(start: Array, end: Array, size: int) -> Array:
  """Per-cell weights of a 1x1 RoIAlign along one axis.

  Follows torchvision's `roi_align` with `aligned=False` on boxes already
  shifted by -0.5 cells (the official ReLabel call): the extent is at least
  one cell, `G = ceil(extent)` samples sit at the centres of `G` equal bins,
  and each sample is a linear interpolation with clamping at the edges;
  samples further than one cell outside the map contribute zero but still
  count in the average.

  Args:
    start: box start in map cells ``[B]``.
    end: box end in map cells ``[B]``.
    size: number of cells S along this axis. Static.

  Returns:
    float32 ``[B, S]`` weights; they sum to one for boxes inside the map.
  """
  extent = jnp.maximum(end - start, 1.0)
  grid = jnp.clip(jnp.ceil(extent), 1, size)
  slots = jnp.arange(size, dtype=jnp.float32)  # G <= S for in-map boxes.
  samples = start[:, None] + (slots + 0.5) * (extent / grid)[:, None]
  inside = (slots < grid[:, None]) & (samples >= -1.0) & (samples <= size)
  samples = jnp.maximum(samples, 0.0)
  low = jnp.floor(samples).astype(jnp.int32)
  at_edge = low >= size - 1
  low = jnp.where(at_edge, size - 1, low)
  high = jnp.where(at_edge, size - 1, low + 1)
  frac = jnp.where(at_edge, 0.0, samples - low)
  scale = jnp.where(inside, 1.0 / grid[:, None], 0.0)
  weights = (
    jax.nn.one_hot(low, size) * ((1.0 - frac) * scale)[..., None]
    + jax.nn.one_hot(high, size) * (frac * scale)[..., None]
  )
  return weights.sum(axis=1)


def _check_maps(scores: Array, indices: Array, crop_boxes: Array) -> None:
  if scores.ndim != 4:
    raise ValueError(
      f'`scores` must be [B, S, S, k] (top-k label maps, channels last), got '
      f'shape {scores.shape}.'
    )
  if indices.shape != scores.shape:
    raise ValueError(
      f'`indices` must have the shape of `scores` {scores.shape}, got '
      f'{indices.shape}.'
    )
  if not jnp.issubdtype(indices.dtype, jnp.integer):
    raise TypeError(
      f'`indices` must hold integer class ids, got dtype {indices.dtype}.'
    )
  if crop_boxes.shape != (scores.shape[0], 4):
    raise ValueError(
      f'`crop_boxes` must be [B, 4] = (ymin, xmin, ymax, xmax) with B = '
      f'{scores.shape[0]}, got shape {crop_boxes.shape}.'
    )


def _concrete(x: ArrayLike) -> np.ndarray | None:
  """`x` as numpy, or None while tracing (values unknown)."""
  try:
    return np.asarray(x)
  except jax.errors.TracerArrayConversionError:
    return None


def check_label_map_inputs(
  indices: ArrayLike, crop_boxes: ArrayLike, num_classes: int
) -> None:
  """Value checks of `pool_label_map`'s inputs, on concrete arrays only.

  Boxes must be finite, inside [0, 1] and ordered (min <= max); class ids
  must lie in `[0, num_classes)`. Traced inputs (under `jit`) are skipped:
  their values are not known, and a check there would cost a device sync.
  The trainer's host-side label-map join runs the same check on numpy.

  Raises:
    ValueError: naming the argument, the first bad row and its values.
  """
  boxes, ids = _concrete(crop_boxes), _concrete(indices)
  if boxes is not None:
    boxes = boxes.astype(np.float32)
    bad = ~np.isfinite(boxes).all(-1)
    bad |= ((boxes < 0) | (boxes > 1)).any(-1)
    bad |= (boxes[..., 0] > boxes[..., 2]) | (boxes[..., 1] > boxes[..., 3])
    if bad.any():
      row = int(np.argmax(bad))
      raise ValueError(
        f'`crop_boxes` must be (ymin, xmin, ymax, xmax) with 0 <= min <= max '
        f'<= 1 and no NaN; row {row} is {boxes[row].tolist()} '
        f'({int(bad.sum())} bad rows).'
      )
  if (
    ids is not None
    and ids.size
    and not 0 <= ids.min() <= ids.max() < num_classes
  ):
    wrong = ids.max() if ids.max() >= num_classes else ids.min()
    raise ValueError(
      f'`indices` must be class ids in [0, num_classes={num_classes}), '
      f'got {int(wrong)}.'
    )


def pool_label_map(
  scores: ArrayLike,
  indices: ArrayLike,
  crop_boxes: ArrayLike,
  *,
  num_classes: int,
  official_box_order: bool = False,
) -> Array:
  """Pools top-k label maps over crop boxes: ReLabel's LabelPooling logits.

  Equals `roi_align(dense_map, box * S - 0.5, output_size=1,
  sampling_ratio=-1, aligned=False)` on the dense ``[K, S, S]`` map with zeros
  outside the top-k, as in the official code, computed on the top-k form.

  Args:
    scores: float ``[B, S, S, k]`` top-k annotator logits (float16 is fine).
    indices: int ``[B, S, S, k]`` class ids of `scores`, each in
      ``[0, num_classes)``; others are an error on concrete inputs and
      dropped under `jit` (see `check_label_map_inputs`).
    crop_boxes: float ``[B, 4]`` = `(ymin, xmin, ymax, xmax)` of each crop in
      normalised coordinates of the original image, inside [0, 1] (checked
      on concrete inputs).
    num_classes: K. Static.
    official_box_order: pool the region the official code pools, which
      passes `(y, x)` boxes to an `(x, y)` API and so reflects the crop about
      the diagonal. Static.

  Returns:
    float32 ``[B, K]`` pooled logits (0 for classes absent from the crop).

  Examples:
    >>> import jax.numpy as jnp
    >>> scores = jnp.ones((1, 2, 2, 1))
    >>> indices = jnp.array([[[[0], [1]], [[0], [1]]]])  # left 0, right 1
    >>> left_half = jnp.array([[0.0, 0.0, 1.0, 0.5]])
    >>> pool_label_map(scores, indices, left_half, num_classes=2).tolist()
    [[1.0, 0.0]]
  """
  scores = jnp.asarray(scores)
  indices = jnp.asarray(indices)
  crop_boxes = jnp.asarray(crop_boxes, jnp.float32)
  _check_maps(scores, indices, crop_boxes)
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(
      f'`num_classes` must be a positive Python int, got {num_classes!r}.'
    )
  check_label_map_inputs(indices, crop_boxes, num_classes)
  batch_size, rows, cols, _ = scores.shape
  ymin, xmin, ymax, xmax = (crop_boxes[:, i] for i in range(4))
  if official_box_order:
    ymin, xmin, ymax, xmax = xmin, ymin, xmax, ymax
  weight_y = _axis_weights(ymin * rows - 0.5, ymax * rows - 0.5, rows)
  weight_x = _axis_weights(xmin * cols - 0.5, xmax * cols - 0.5, cols)
  contributions = (
    weight_y[:, :, None, None]
    * weight_x[:, None, :, None]
    * scores.astype(jnp.float32)
  )
  example = jnp.broadcast_to(
    jnp.arange(batch_size)[:, None, None, None], indices.shape
  )
  pooled = jnp.zeros((batch_size, num_classes), jnp.float32)
  return pooled.at[example, indices.astype(jnp.int32)].add(
    contributions, mode='drop'
  )


@takes('official_box_order', 'temperature')
def relabel_targets(
  scores: ArrayLike,
  indices: ArrayLike,
  crop_boxes: ArrayLike,
  *,
  num_classes: int,
  **knobs,
) -> Array:
  """ReLabel soft targets: pooled label-map logits through a softmax.

  The softmax runs over all K classes with the classes outside the top-k at
  logit 0, as in the official code; this leaves some mass on every class, a
  built-in smoothing whose strength depends on the annotator's logit scale.

  Args:
    scores: float ``[B, S, S, k]`` top-k annotator logits.
    indices: int ``[B, S, S, k]`` class ids of `scores`.
    crop_boxes: float ``[B, 4]`` = `(ymin, xmin, ymax, xmax)`, normalised.
    num_classes: K. Static.
    official_box_order, temperature: ReLabel's pooling knobs
      (`jaxmix._src.knobs`).

  Returns:
    float32 ``[B, K]`` targets whose rows sum to one.

  Examples:
    >>> import jax.numpy as jnp
    >>> scores = jnp.full((1, 2, 2, 1), 2.0)
    >>> indices = jnp.zeros((1, 2, 2, 1), jnp.int32)
    >>> box = jnp.array([[0.0, 0.0, 1.0, 1.0]])
    >>> t = relabel_targets(scores, indices, box, num_classes=2)
    >>> [round(v, 4) for v in t[0].tolist()]
    [0.8808, 0.1192]

  References:
    Yun et al., Re-labeling ImageNet: from Single to Multi-Labels, from
    Global to Localized Labels, https://arxiv.org/abs/2101.05022
  """
  logits = pool_label_map(
    scores,
    indices,
    crop_boxes,
    num_classes=num_classes,
    official_box_order=knobs['official_box_order'],
  )
  return jax.nn.softmax(logits / knobs['temperature'], axis=-1)
