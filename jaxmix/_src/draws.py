"""What a mixing op drew (`MixDraw`), and `apply_draw`, the one applier.

A `MixDraw` records everything random about one mixing step: each example's
partner, the region pasted from the partner (a pixel box, and for videos a
span of frames), the blend weight outside that region (Mixup's lambda; 1 for
CutMix and VideoMix, which only select) and the label weight. Every field is
``[B]``, so a draw passes through `jit`, `vmap`, `jaxmix.per_shard` and
`pmap` like the batch itself, can be logged, and can be applied again to
other per-example arrays: segmentation masks, token labels, soft targets.
Every random mixing op of jaxmix is its sampler (`sample_<op>`), this
applier, and the op's target rule.

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
import math
import warnings
from typing import Any, NamedTuple

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

  def __iter__(self):
    """Deprecated: unpacks `(box, partners, weight)`, `sample_cutmix`'s old
    tuple (box fields ``[B]``, the weight given where it was `None`)."""
    warnings.warn(
      'Unpacking a MixDraw as `box, partners, weight = '
      'jaxmix.sample_cutmix(...)` is deprecated and will be removed in the '
      'next release: read `draw.box`, `draw.partners` and `draw.weight`.',
      DeprecationWarning,
      stacklevel=2,
    )
    return iter((self.box, self.partners, self.weight))


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
  the samplers (`jaxmix.sample_cutmix`, `jaxmix.sample_videomix`, ...)
  return theirs ready-made.

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
  if jnp.ndim(partners) != 1 or not jnp.issubdtype(
    jnp.result_type(partners), jnp.integer
  ):
    raise ValueError(
      '`partners` must be integer indices [B], got shape '
      f'{jnp.shape(partners)} and dtype {jnp.result_type(partners)}.'
    )
  partners = jnp.asarray(partners, jnp.int32)
  shape = partners.shape

  def per_example(value, dtype, name):
    if jnp.shape(value) not in ((), shape):
      raise ValueError(
        f'`{name}` must be a scalar or have shape {shape}, got '
        f'{jnp.shape(value)}.'
      )
    return jnp.broadcast_to(jnp.asarray(value, dtype), shape)

  box = boxes_lib.Box(
    *(per_example(v, jnp.int32, f'box.{k}') for k, v in box._asdict().items())
  )
  if frames is not None:
    frames = Span(*(per_example(v, jnp.int32, 'frames') for v in frames))
  return MixDraw(
    weight=per_example(weight, jnp.float32, 'weight'),
    partners=partners,
    blend=per_example(blend, jnp.float32, 'blend'),
    box=box,
    frames=frames,
    height=height,
    width=width,
    num_frames=num_frames,
  )


def _cells_inside(
  start: Array, stop: Array, pixels: int, cells: int, repeat: int = 1
) -> Array:
  """bool ``[..., cells * repeat]``: cells whose centre lies in `[start, stop)`.

  Integer form of `start <= (i + 0.5) * pixels / cells < stop`, exact for any
  sizes; each cell's entry is repeated `repeat` times in a row (the channels
  of a row of pixels viewed as ``[W * C]``).
  """
  cell = jnp.arange(cells * repeat, dtype=jnp.int32) // repeat
  centre = (2 * cell + 1) * pixels
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
  grid = (height, width) if num_frames is None else (num_frames, height, width)
  return _region(draw, grid)


def _region(draw: MixDraw, grid: tuple[int, ...], depth: int = 1) -> Array:
  """bool ``[B, (t,) h, w * depth]``: the region on a grid's rows of cells."""
  box = draw.box
  rows = _cells_inside(box.top, box.bottom, draw.height, grid[-2])
  cols = _cells_inside(box.left, box.right, draw.width, grid[-1], depth)
  mask = rows[..., :, None] & cols[..., None, :]
  if draw.frames is None:
    return mask
  start, stop = draw.frames
  times = _cells_inside(start, stop, draw.num_frames, grid[0])
  return times[..., :, None, None] & mask[..., None, :, :]


ROLES = ('image', 'mask', 'target', 'keep')


def _as_rows(draw: MixDraw, leaf: Array, where: str) -> tuple[Array, Array]:
  """`leaf` ``[B, (t,) h, w, ...]`` viewed as rows ``[B, (t,) h, w * D]``,
  and the region on those rows.

  Selecting along the contiguous `w * D` row runs several times faster on
  CPUs than broadcasting a ``[B, h, w, 1]`` mask over the trailing axes, and
  is no slower elsewhere (docs/benchmarks.md).
  """
  rank = 2 if draw.frames is None else 3
  batch = draw.partners.shape[0]
  if leaf.ndim < rank + 1 or leaf.shape[0] != batch:
    layout = '[B, h, w, ...]' if rank == 2 else '[B, t, h, w, ...]'
    raise ValueError(
      f'{where} must be {layout} with B = {batch} for this draw, got shape '
      f'{leaf.shape}.'
    )
  grid = leaf.shape[1 : rank + 1]
  depth = math.prod(leaf.shape[rank + 1 :])
  rows = leaf.reshape((*leaf.shape[:rank], grid[-1] * depth))
  return rows, _region(draw, grid, depth)


def _per_example(value: Array, ndim: int) -> Array:
  return value.reshape((-1,) + (1,) * (ndim - 1))


def _blend(weight: Array, own: Array, partner: Array) -> Array:
  """`weight * own + (1 - weight) * partner` in float32 (the one blend)."""
  weight = _per_example(weight, own.ndim)
  own, partner = own.astype(jnp.float32), partner.astype(jnp.float32)
  return weight * own + (1.0 - weight) * partner


def _apply_image(draw, leaf, partner, where):
  """Partner inside the region; `blend` outside, exactly own where it is 1."""
  rows, mask = _as_rows(draw, leaf, where)
  partner = partner.reshape(rows.shape)
  mixed = _blend(draw.blend, rows, partner)
  if not jnp.issubdtype(leaf.dtype, jnp.floating):
    mixed = jnp.round(mixed)  # Blended integer images round to nearest.
  unblended = _per_example(draw.blend == 1.0, rows.ndim)
  mixed = jnp.where(unblended, rows, mixed.astype(leaf.dtype))
  return jnp.where(mask, partner, mixed).reshape(leaf.shape)


def _apply_mask(draw, leaf, partner, where):
  rows, mask = _as_rows(draw, leaf, where)
  return jnp.where(mask, partner.reshape(rows.shape), rows).reshape(leaf.shape)


def _apply_target(draw, leaf, partner, where):
  batch = draw.partners.shape[0]
  if leaf.ndim < 1 or leaf.shape[0] != batch:
    raise ValueError(
      f'{where} must be [B, ...] with B = {batch}, got shape {leaf.shape}.'
    )
  if not jnp.issubdtype(leaf.dtype, jnp.floating):
    raise TypeError(
      f'{where} has role "target" and must be float (dense or soft '
      f'targets), got dtype {leaf.dtype}; integer class labels go to '
      'jaxmix.one_hot or jaxmix.mixed_cross_entropy.'
    )
  return _blend(draw.weight, leaf, partner).astype(leaf.dtype)


_APPLIERS = {
  'image': _apply_image,
  'mask': _apply_mask,
  'target': _apply_target,
  'keep': lambda draw, leaf, partner, where: leaf,
}


def apply_draw(
  tree: Any, draw: MixDraw, *, roles: Any, partner_tree: Any = None
) -> Any:
  """Applies one draw to every per-example array of a pytree.

  Each leaf is mixed according to its role:

  - `'image'`: ``[B, h, w, ...]`` (videos ``[B, t, h, w, ...]``) at any
    resolution; the partner's cells inside the region, `blend` outside
    (computed in float32; integer images such as uint8 are rounded back;
    exactly the example's own values where `blend` is 1).
  - `'mask'`: ``[B, h, w, ...]`` at any resolution and of any dtype
    (segmentation masks, token labels, the pixels of ops that only select);
    the partner's cells inside the region, the example's own elsewhere,
    never blended, so bit-exact for any dtype.
  - `'target'`: float ``[B, ...]`` (dense or soft labels); blended with the
    label weight `draw.weight`.
  - `'keep'`: returned unchanged (example ids, metadata).

  Cells at another resolution than the draw's follow the cell-centre rule of
  the module docstring.

  Args:
    tree: a pytree of arrays whose leading axis is the batch B.
    draw: a `MixDraw`, e.g. from `jaxmix.sample_cutmix` or
      `jaxmix.sample_videomix`.
    roles: one role for every leaf, or a pytree prefix of `tree` (e.g. a
      dict with the same keys) giving each subtree its role.
    partner_tree: where the partners' content comes from, a pytree of the
      structure and shapes of `tree`; by default `tree` itself (mixing
      within the batch). CMO passes its minority batch.

  Returns:
    A pytree of the structure, shapes and dtypes of `tree`.

  Examples:
    >>> import jax.numpy as jnp, jaxmix
    >>> draw = jaxmix.make_draw(weight=0.5, partners=jnp.array([1, 0]),
    ...     box=jaxmix.Box(0, 0, 2, 1), height=2, width=2)
    >>> batch = {'image': jnp.arange(8.0).reshape(2, 2, 2, 1),
    ...          'label': jnp.eye(2)}
    >>> out = apply_draw(batch, draw, roles={'image': 'image',
    ...                                      'label': 'target'})
    >>> out['image'][0, ..., 0].tolist(), out['label'][0].tolist()
    ([[4.0, 1.0], [6.0, 3.0]], [0.5, 0.5])
  """
  if not isinstance(draw, MixDraw):
    raise TypeError(f'`draw` must be a jaxmix.MixDraw, got {type(draw)}.')
  tree_map = jax.tree_util.tree_map
  try:  # One role per leaf, from `roles` (a prefix of `tree`).
    roles = tree_map(
      lambda role, sub: tree_map(lambda _: role, sub),
      roles,
      tree,
      is_leaf=lambda node: isinstance(node, str),
    )
  except ValueError as error:
    raise ValueError(
      f'`roles` must be one role or a pytree prefix of `tree`: {error}'
    ) from error

  def apply_leaf(path, leaf, role, partner):
    if role not in _APPLIERS:
      raise ValueError(f'`roles` entries must be one of {ROLES}, got {role!r}.')
    where = f'`tree` leaf {jax.tree_util.keystr(path) or "(root)"}'
    leaf, partner = jnp.asarray(leaf), jnp.asarray(partner)
    if partner.shape != leaf.shape:
      raise ValueError(
        f'`partner_tree` must match `tree`: {where} has shape {leaf.shape}, '
        f'its partner leaf {partner.shape}.'
      )
    if role != 'keep':
      partner = partner[draw.partners]
    return _APPLIERS[role](draw, leaf, partner, where)

  partner_tree = tree if partner_tree is None else partner_tree
  return jax.tree_util.tree_map_with_path(apply_leaf, tree, roles, partner_tree)
