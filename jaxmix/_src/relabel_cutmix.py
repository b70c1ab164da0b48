"""ReLabel + CutMix: CutMix on images whose targets come from label maps.

Two target rules:

- official (`localized=False`): each example's target is its label map pooled
  over its whole crop, and the CutMix target mixes the two examples' targets
  by area, `w * t_own + (1 - w) * t_partner`. This is what the official
  ReLabel script does; it equals `relabel_targets` followed by `cutmix`.
- localised (`localized=True`, new in jaxmix): the pasted box's target is the
  partner's map pooled over the region of the partner's original image that
  the box shows (mapped through the partner's crop box and flip), and the
  rest's target is the example's own map pooled over its crop without the box.
  The two are mixed by area. A patch of background pasted from the partner
  then carries the background's label, not the partner's object.

The "crop without the box" pooling uses linearity: the mean over the crop is
the area-weighted mean of the box and the rest, so `pool(rest) = (pool(crop)
- (1 - w) * pool(box)) / w`. RoIAlign's sampling makes this exact only for
boxes on map-cell boundaries; elsewhere it is a close approximation.

The draw is CutMix's (`sample_relabel_cutmix` is `jaxmix.sample_cutmix`
with ReLabel's knobs): the op is that sampler, `jaxmix.apply_draw` on the
images, and one of the two target rules above.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mixing
from jaxmix._src import label_map_pooling as pooling
from jaxmix._src.knobs import takes

Array = jax.Array


def region_crop_boxes(
  box: boxes_lib.Box,
  crop_boxes: ArrayLike,
  flips: ArrayLike,
  *,
  height: int,
  width: int,
) -> Array:
  """Maps a pixel box of the augmented images into the original images.

  The augmented image of size `H x W` shows the region `crop_boxes` of the
  original image, mirrored left-right where `flips`. A row `y` of the
  augmented image is `ymin + (y / H) * (ymax - ymin)` in the original; a
  column `x` is `xmin + (x / W) * (xmax - xmin)`, or `xmax - (x / W) * (xmax -
  xmin)` when flipped.

  Args:
    box: a `jaxmix.Box` in pixels of the augmented images, fields scalar or
      ``[B]``.
    crop_boxes: float ``[B, 4]`` = `(ymin, xmin, ymax, xmax)`, normalised.
    flips: bool ``[B]``, whether each augmented image was flipped.
    height: H of the augmented images. Static.
    width: W of the augmented images. Static.

  Returns:
    float32 ``[B, 4]`` = `(ymin, xmin, ymax, xmax)` of the box's region in
    normalised coordinates of each original image.

  Examples:
    >>> import jax.numpy as jnp
    >>> from jaxmix import Box
    >>> crop = jnp.array([[0.0, 0.5, 1.0, 1.0]])  # the right half
    >>> region_crop_boxes(Box(0, 0, 4, 2), crop, jnp.array([True]),
    ...                   height=4, width=4).tolist()
    [[0.0, 0.75, 1.0, 1.0]]
  """
  crop_boxes = jnp.asarray(crop_boxes, jnp.float32)
  flips = jnp.asarray(flips, bool)
  top, left, bottom, right = (jnp.asarray(f, jnp.float32) for f in box)
  ymin, xmin, ymax, xmax = (crop_boxes[:, i] for i in range(4))
  crop_h, crop_w = ymax - ymin, xmax - xmin
  region_top = ymin + top / height * crop_h
  region_bottom = ymin + bottom / height * crop_h
  region_left = xmin + left / width * crop_w
  region_right = xmin + right / width * crop_w
  flipped_left = xmax - right / width * crop_w
  flipped_right = xmax - left / width * crop_w
  region_left = jnp.where(flips, flipped_left, region_left)
  region_right = jnp.where(flips, flipped_right, region_right)
  return jnp.stack([region_top, region_left, region_bottom, region_right], -1)


@takes('official_box_order', 'temperature')
def localized_cutmix_targets(
  scores: ArrayLike,
  indices: ArrayLike,
  crop_boxes: ArrayLike,
  flips: ArrayLike,
  *,
  box: boxes_lib.Box,
  partners: ArrayLike,
  num_classes: int,
  height: int,
  width: int,
  **knobs,
) -> Array:
  """Targets of CutMix-ed images, each region pooled from its own map.

  Args:
    scores: float ``[B, S, S, k]`` top-k label maps of the unmixed examples.
    indices: int ``[B, S, S, k]`` their class ids.
    crop_boxes: float ``[B, 4]`` crop of each example in its original image.
    flips: bool ``[B]`` whether each example was flipped.
    box: the pasted `jaxmix.Box` in pixels, fields scalar or ``[B]``.
    partners: int ``[B]``, the partner whose pixels fill the box.
    num_classes: K. Static.
    height: H of the images. Static.
    width: W of the images. Static.
    official_box_order, temperature: ReLabel's pooling knobs
      (`jaxmix._src.knobs`).

  Returns:
    float32 ``[B, K]``, each row the kept-area mix of two softmaxes.

  Examples:
    >>> import jax.numpy as jnp
    >>> from jaxmix import Box
    >>> scores = jnp.full((2, 2, 2, 1), 4.0)
    >>> indices = jnp.array([0, 1]).reshape(2, 1, 1, 1) * jnp.ones(
    ...     (2, 2, 2, 1), jnp.int32)
    >>> crops = jnp.array([[0.0, 0.0, 1.0, 1.0]] * 2)
    >>> t = localized_cutmix_targets(
    ...     scores, indices, crops, jnp.zeros(2, bool), box=Box(0, 0, 4, 2),
    ...     partners=jnp.array([1, 0]), num_classes=2, height=4, width=4)
    >>> [round(v, 3) for v in t[0].tolist()]
    [0.5, 0.5]
  """
  scores, indices = jnp.asarray(scores), jnp.asarray(indices)
  crop_boxes = jnp.asarray(crop_boxes, jnp.float32)
  flips = jnp.asarray(flips, bool)
  partners = jnp.asarray(partners)
  batch_size = scores.shape[0]
  if flips.shape != (batch_size,):
    raise ValueError(
      f'`flips` must be bool [B] with B = {batch_size}, got {flips.shape}.'
    )
  pool = lambda s, i, b: pooling.pool_label_map(  # noqa: E731
    s,
    i,
    b,
    num_classes=num_classes,
    official_box_order=knobs['official_box_order'],
  )
  kept = boxes_lib.kept_fraction(box, height=height, width=width)
  kept = jnp.broadcast_to(kept, (batch_size,))
  regions = region_crop_boxes(
    box, crop_boxes, flips, height=height, width=width
  )
  own_crop = pool(scores, indices, crop_boxes)
  own_box = pool(scores, indices, regions)
  safe_kept = jnp.maximum(kept, 1e-6)[:, None]
  own_rest = (own_crop - (1.0 - kept[:, None]) * own_box) / safe_kept
  # The partner's region that its own pixels in the box came from.
  partner_region = region_crop_boxes(
    box, crop_boxes[partners], flips[partners], height=height, width=width
  )
  pasted = pool(scores[partners], indices[partners], partner_region)
  own_target = jax.nn.softmax(own_rest / knobs['temperature'], axis=-1)
  pasted_target = jax.nn.softmax(pasted / knobs['temperature'], axis=-1)
  return kept[:, None] * own_target + (1.0 - kept[:, None]) * pasted_target


# ReLabel + CutMix draws exactly CutMix's draw; the targets differ.
sample_relabel_cutmix = mixing.sample_cutmix


@takes(
  'official_box_order',
  'temperature',
  'alpha',
  'prob',
  'per_example',
  'axis_name',
)
def relabel_cutmix(
  key: Array,
  images: ArrayLike,
  scores: ArrayLike,
  indices: ArrayLike,
  crop_boxes: ArrayLike,
  flips: ArrayLike,
  *,
  num_classes: int,
  localized: bool = False,
  **knobs,
) -> tuple[Array, Array]:
  """CutMix with ReLabel targets, the official or the localised rule.

  The images are mixed exactly as `jaxmix.cutmix` (the official box rule,
  keyed partner permutation, one box per batch or per example; the draw is
  `sample_relabel_cutmix` with the same key) and the targets follow the rule
  chosen by `localized` (see the module docstring).

  Args:
    key: a PRNG key.
    images: float ``[B, H, W, C]``.
    scores: float ``[B, S, S, k]`` top-k label maps.
    indices: int ``[B, S, S, k]`` their class ids.
    crop_boxes: float ``[B, 4]`` = `(ymin, xmin, ymax, xmax)`, normalised.
    flips: bool ``[B]``, whether each image was flipped.
    num_classes: K. Static.
    alpha, prob, per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.
    localized: pool the pasted region from the partner's map. Static.
    official_box_order, temperature: ReLabel's pooling knobs
      (`jaxmix._src.knobs`).

  Returns:
    `(images, targets)`: images with the input shape and dtype, float32
    targets ``[B, K]``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.ones((2, 8, 8, 3))
    >>> scores = jnp.ones((2, 3, 3, 1))
    >>> indices = jnp.zeros((2, 3, 3, 1), jnp.int32)
    >>> crops = jnp.array([[0.0, 0.0, 1.0, 1.0]] * 2)
    >>> _, t = relabel_cutmix(jax.random.key(0), x, scores, indices, crops,
    ...                       jnp.zeros(2, bool), num_classes=4)
    >>> t.shape
    (2, 4)

  References:
    Yun et al., Re-labeling ImageNet: from Single to Multi-Labels, from
    Global to Localized Labels, https://arxiv.org/abs/2101.05022
  """
  checks.check_key(key)
  checks.check_images(images)
  images = jnp.asarray(images)
  batch_size, height, width, _ = images.shape
  pooling_knobs = {
    name: knobs.pop(name) for name in ('official_box_order', 'temperature')
  }
  own_targets = pooling.relabel_targets(
    scores, indices, crop_boxes, num_classes=num_classes, **pooling_knobs
  )
  draw = sample_relabel_cutmix(
    key, batch_size=batch_size, height=height, width=width, **knobs
  )
  if not localized:
    return draws.apply_draw(
      (images, own_targets), draw, roles=('mask', 'target')
    )
  targets = localized_cutmix_targets(
    scores,
    indices,
    crop_boxes,
    flips,
    box=draw.box,
    partners=draw.partners,
    num_classes=num_classes,
    height=height,
    width=width,
    **pooling_knobs,
  )
  return draws.apply_draw(images, draw, roles='mask'), targets
