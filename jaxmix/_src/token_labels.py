"""Token labels: a ReLabel label map pooled over every token of each crop.

Token Labeling (Jiang et al., LV-ViT) supervises each patch token of a ViT
with its own soft target: the annotator's dense score map pooled over the
region of the original image that the token shows. jaxmix builds those
targets from the same top-k label maps ReLabel uses: token `(r, c)` of an
`h x w` grid over the augmented `H x W` image covers pixels `[r H / h, (r +
1) H / h) x [c W / w, (c + 1) W / w)`; that box is mapped through the crop and
the flip into the original image (`jaxmix.region_crop_boxes`) and pooled with
ReLabel's RoIAlign and softmax (`jaxmix.relabel_targets`).

Cost: the pooling scatters `B * h * w * S * S * k` top-k entries (ViT-S/16 at
224 with 15 x 15 top-5 maps: 220k per image).
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import label_map_pooling as pooling
from jaxmix._src import relabel_cutmix
from jaxmix._src.knobs import takes

Array = jax.Array


def token_boxes(
  *, height: int, width: int, grid: tuple[int, int]
) -> boxes_lib.Box:
  """The pixel box of every token of an `h x w` grid over `H x W` pixels.

  Args:
    height: image height H, a multiple of h. Static.
    width: image width W, a multiple of w. Static.
    grid: `(h, w)`, the token grid (`H / patch`, `W / patch`). Static.

  Returns:
    A `jaxmix.Box` with int32 fields ``[h * w]``, row-major (token `r * w +
    c`).

  Examples:
    >>> token_boxes(height=4, width=4, grid=(2, 2)).bottom.tolist()
    [2, 2, 4, 4]
  """
  rows, cols = grid
  if height % rows or width % cols:
    raise ValueError(
      f'`grid` {grid} must divide the image size ({height}, {width}): '
      'tokens are whole patches.'
    )
  patch_h, patch_w = height // rows, width // cols
  r, c = jnp.meshgrid(jnp.arange(rows), jnp.arange(cols), indexing='ij')
  r, c = r.ravel().astype(jnp.int32), c.ravel().astype(jnp.int32)
  return boxes_lib.Box(
    r * patch_h, c * patch_w, (r + 1) * patch_h, (c + 1) * patch_w
  )


@takes('official_box_order', 'temperature')
def token_label_targets(
  scores: ArrayLike,
  indices: ArrayLike,
  crop_boxes: ArrayLike,
  flips: ArrayLike,
  *,
  grid: tuple[int, int],
  height: int,
  width: int,
  num_classes: int,
  **knobs,
) -> Array:
  """Dense per-token soft targets from top-k label maps, through crop and flip.

  Args:
    scores: float ``[B, S, S, k]`` top-k annotator logits.
    indices: int ``[B, S, S, k]`` class ids of `scores`.
    crop_boxes: float ``[B, 4]`` = `(ymin, xmin, ymax, xmax)` of each crop,
      normalised in the original image.
    flips: bool ``[B]``, whether each augmented image was flipped.
    grid: `(h, w)`, the ViT's token grid. Static.
    height: augmented image height H. Static.
    width: augmented image width W. Static.
    num_classes: K. Static.
    official_box_order, temperature: ReLabel's pooling knobs
      (`jaxmix._src.knobs`).

  Returns:
    float32 ``[B, h, w, K]``; each token's row sums to one.

  Examples:
    >>> import jax.numpy as jnp
    >>> scores = jnp.full((1, 2, 2, 1), 5.0)
    >>> indices = jnp.array([[[[0], [1]], [[0], [1]]]])  # left 0, right 1
    >>> t = token_label_targets(scores, indices, jnp.array([[0., 0., 1., 1.]]),
    ...     jnp.array([True]), grid=(1, 2), height=4, width=4, num_classes=2)
    >>> t.argmax(-1).tolist()  # flipped: the left token shows class 1
    [[[1, 0]]]
  """
  crop_boxes = jnp.asarray(crop_boxes, jnp.float32)
  flips = jnp.asarray(flips, bool)
  if crop_boxes.ndim != 2 or crop_boxes.shape[1] != 4:
    raise ValueError(
      f'`crop_boxes` must be [B, 4], got shape {crop_boxes.shape}.'
    )
  if flips.shape != crop_boxes.shape[:1]:
    raise ValueError(
      f'`flips` must be [B] = ({crop_boxes.shape[0]},), got {flips.shape}.'
    )
  boxes = token_boxes(height=height, width=width, grid=grid)

  def one_token(box):
    region = relabel_cutmix.region_crop_boxes(
      box, crop_boxes, flips, height=height, width=width
    )
    return pooling.relabel_targets(
      scores, indices, region, num_classes=num_classes, **knobs
    )

  targets = jax.vmap(one_token)(boxes)  # [h * w, B, K]
  return jnp.moveaxis(targets, 0, 1).reshape(
    crop_boxes.shape[0], *grid, num_classes
  )
