"""What a mixing op drew, and that draw applied to any pytree of arrays.

A `MixDraw` records everything random about one mixing step: each example's
partner, the region pasted from the partner (a pixel box, and for videos a
span of frames), the blend weight outside that region (Mixup's lambda; 1 for
CutMix and VideoMix, which only select) and the label weight. Every field is
``[B]``, so a draw passes through `jit`, `vmap`, `jaxmix.per_shard` and
`pmap` like the batch itself, can be logged, and can be applied again to
other per-example arrays: segmentation masks, token labels, soft targets.

Regions at other resolutions. The box is drawn on the image grid (`height` x
`width` pixels, `num_frames` frames). An array whose grid is `h` x `w` (a
mask at a quarter of the resolution, a ViT's token grid) takes the partner's
cell where the cell's *centre* lies inside the box: cell `i` of an axis of
`n` cells over `N` pixels is inside `[start, stop)` when
`start <= (i + 0.5) * N / n < stop`. This is nearest-neighbour resampling of
the image-resolution region, exact when `n == N`, and a box aligned to the
cells (e.g. to 16-pixel patches) maps to exactly those cells. Frames map the
same way along time.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib

Array = jax.Array


class Span(NamedTuple):
  """A half-open span of frames `start <= t < stop`, int32 ``[B]``.

  Attributes:
    start: first frame inside the span.
    stop: one past the last frame inside the span.
  """

  start: Array
  stop: Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MixDraw:
  """Everything one mixing step drew (see the module docstring).

  Example `i` takes `partners[i]`'s content inside the region `box` (x
  `frames` for videos) and blends `blend[i] * own + (1 - blend[i]) *
  partner` outside it; its labels become `weight[i] * own + (1 - weight[i])
  * partner`. A draw that did not mix an example has an empty box, blend 1
  and weight 1 there.

  Attributes:
    weight: float32 ``[B]``, the share of each example's own labels.
    partners: int32 ``[B]``, the partner of each example.
    blend: float32 ``[B]``, the own share of pixels outside the region.
    box: a `jaxmix.Box` with int32 fields ``[B]`` on the `height` x `width`
      grid.
    frames: a `Span` with fields ``[B]`` on `num_frames` frames, or `None`
      for image draws.
    height: the box's grid height H. Static.
    width: the box's grid width W. Static.
    num_frames: the span's number of frames T, `None` for images. Static.
  """

  weight: Array
  partners: Array
  blend: Array
  box: boxes_lib.Box
  frames: Span | None = None
  height: int = dataclasses.field(default=1, metadata={'static': True})
  width: int = dataclasses.field(default=1, metadata={'static': True})
  num_frames: int | None = dataclasses.field(
    default=None, metadata={'static': True}
  )


def make_draw(
  *,
  weight: ArrayLike,
  partners: ArrayLike,
  box: boxes_lib.Box,
  height: int,
  width: int,
  blend: ArrayLike = 1.0,
  frames: Span | None = None,
  num_frames: int | None = None,
) -> MixDraw:
  """Builds a `MixDraw`, broadcasting every field to ``[B]``.

  For draws of one's own (a box from a detector, a fixed region in a test);
  the samplers (`jaxmix.draw_cutmix`, `jaxmix.sample_videomix`, ...) return
  theirs ready-made.

  Args:
    weight: the share of each example's own labels, a scalar or ``[B]``.
    partners: int ``[B]``, the partner of each example; sets B.
    box: a `jaxmix.Box` on the `height` x `width` grid, scalar or ``[B]``
      fields.
    height: the box's grid height H.
    width: the box's grid width W.
    blend: own share outside the region, a scalar or ``[B]`` (1 selects).
    frames: a `Span` on `num_frames` frames for video draws.
    num_frames: T, with `frames`.

  Returns:
    A `MixDraw` with fields ``[B]``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from jaxmix import Box
    >>> draw = make_draw(weight=1.0, partners=jnp.arange(3),
    ...                  box=Box(0, 0, 0, 0), height=4, width=4)
    >>> draw.weight.tolist()
    [1.0, 1.0, 1.0]
  """
  if (frames is None) != (num_frames is None):
    raise ValueError(
      '`frames` and `num_frames` go together: give both for a video draw, '
      f'neither for an image draw (got num_frames={num_frames!r}).'
    )
  partners = jnp.asarray(partners, jnp.int32)
  shape = partners.shape

  def per_example(value, dtype):
    return jnp.broadcast_to(jnp.asarray(value, dtype), shape)

  box = boxes_lib.Box(*(per_example(field, jnp.int32) for field in box))
  if frames is not None:
    frames = Span(*(per_example(field, jnp.int32) for field in frames))
  return MixDraw(
    weight=per_example(weight, jnp.float32),
    partners=partners,
    blend=per_example(blend, jnp.float32),
    box=box,
    frames=frames,
    height=height,
    width=width,
    num_frames=num_frames,
  )


def _cells_inside(start: Array, stop: Array, pixels: int, cells: int) -> Array:
  """bool ``[..., cells]``: cells whose centre lies in `[start, stop)`.

  Integer form of `start <= (i + 0.5) * pixels / cells < stop`, exact for any
  sizes.
  """
  centre = (2 * jnp.arange(cells, dtype=jnp.int32) + 1) * pixels
  start = 2 * jnp.asarray(start, jnp.int32)[..., None] * cells
  stop = 2 * jnp.asarray(stop, jnp.int32)[..., None] * cells
  return (centre >= start) & (centre < stop)


def draw_mask(
  draw: MixDraw,
  *,
  height: int,
  width: int,
  num_frames: int | None = None,
) -> Array:
  """The region pasted from the partner, on a grid of any resolution.

  Args:
    draw: a `MixDraw`.
    height: the grid's height h (the image's, a mask's, a token grid's).
      Static.
    width: the grid's width w. Static.
    num_frames: the grid's number of frames t; required for video draws and
      refused for image draws. Static.

  Returns:
    bool ``[B, h, w]`` (``[B, t, h, w]`` for video draws), True where the
    partner's cell is taken (the cell-centre rule of the module docstring).
    `1 - mask.mean((1, 2))` is the kept fraction on that grid.

  Examples:
    >>> import jax.numpy as jnp
    >>> from jaxmix import Box
    >>> draw = make_draw(weight=0.75, partners=jnp.array([1, 0]),
    ...                  box=Box(0, 0, 4, 4), height=8, width=8)
    >>> draw_mask(draw, height=2, width=2)[0].astype(int).tolist()
    [[1, 0], [0, 0]]
  """
  if (num_frames is None) != (draw.frames is None):
    kind = 'a video draw' if draw.frames is not None else 'an image draw'
    raise ValueError(
      f'`num_frames` is {num_frames!r} but `draw` is {kind}: pass the number '
      'of frames exactly for video draws.'
    )
  box = draw.box
  rows = _cells_inside(box.top, box.bottom, draw.height, height)
  cols = _cells_inside(box.left, box.right, draw.width, width)
  mask = rows[..., :, None] & cols[..., None, :]
  if draw.frames is None:
    return mask
  times = _cells_inside(
    draw.frames.start, draw.frames.stop, draw.num_frames, num_frames
  )
  return times[..., :, None, None] & mask[..., None, :, :]
