"""Applies a `MixDraw` to any pytree of per-example arrays, by role.

Images blend or select, masks and token labels select at their own
resolution (the cell-centre rule of `jaxmix._src.draws`), soft targets blend
with the label weight; see `apply_draw`.
"""

from typing import Any

import jax
import jax.numpy as jnp

from jaxmix._src import draws

Array = jax.Array

ROLES = ('image', 'mask', 'target', 'keep')


def _grid_rank(draw: draws.MixDraw) -> int:
  return 2 if draw.frames is None else 3


def _leaf_mask(draw: draws.MixDraw, leaf: Array, where: str) -> Array:
  """The region for `leaf` ``[B, (t,) h, w, ...]``, broadcastable to it."""
  rank = _grid_rank(draw)
  batch = draw.partners.shape[0]
  if leaf.ndim < rank + 1 or leaf.shape[0] != batch:
    layout = '[B, h, w, ...]' if rank == 2 else '[B, t, h, w, ...]'
    raise ValueError(
      f'{where} must be {layout} with B = {batch} for this draw, got shape '
      f'{leaf.shape}.'
    )
  grid = leaf.shape[1 : rank + 1]
  if rank == 2:
    mask = draws.draw_mask(draw, height=grid[0], width=grid[1])
  else:
    mask = draws.draw_mask(
      draw, num_frames=grid[0], height=grid[1], width=grid[2]
    )
  return mask.reshape(mask.shape + (1,) * (leaf.ndim - rank - 1))


def _apply_image(draw: draws.MixDraw, leaf: Array, where: str) -> Array:
  """Partner inside the region, `blend` outside, in float32; cast back."""
  mask = _leaf_mask(draw, leaf, where)
  blend = draw.blend.reshape((-1,) + (1,) * (leaf.ndim - 1))
  own_share = jnp.where(mask, 0.0, blend)
  own = leaf.astype(jnp.float32)
  mixed = own_share * own + (1.0 - own_share) * own[draw.partners]
  if not jnp.issubdtype(leaf.dtype, jnp.floating):
    mixed = jnp.round(mixed)  # Blended integer images round to nearest.
  return mixed.astype(leaf.dtype)


def _apply_mask(draw: draws.MixDraw, leaf: Array, where: str) -> Array:
  mask = _leaf_mask(draw, leaf, where)
  return jnp.where(mask, leaf[draw.partners], leaf)


def _apply_target(draw: draws.MixDraw, leaf: Array, where: str) -> Array:
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
  weight = draw.weight.reshape((-1,) + (1,) * (leaf.ndim - 1))
  own = leaf.astype(jnp.float32)
  mixed = weight * own + (1.0 - weight) * own[draw.partners]
  return mixed.astype(leaf.dtype)


_APPLIERS = {
  'image': _apply_image,
  'mask': _apply_mask,
  'target': _apply_target,
  'keep': lambda draw, leaf, where: leaf,
}


def apply_draw(tree: Any, draw: draws.MixDraw, *, roles: Any) -> Any:
  """Applies one draw to every per-example array of a pytree.

  Each leaf is mixed according to its role:

  - `'image'`: ``[B, h, w, ...]`` (videos ``[B, t, h, w, ...]``) at any
    resolution; the partner's cells inside the region, `blend` outside
    (computed in float32; integer images such as uint8 are rounded back).
  - `'mask'`: ``[B, h, w, ...]`` at any resolution and of any dtype
    (segmentation masks, token labels, per-pixel soft targets); the
    partner's cells inside the region, the example's own elsewhere, never
    blended.
  - `'target'`: float ``[B, ...]`` (dense or soft labels); blended with the
    label weight `draw.weight`.
  - `'keep'`: returned unchanged (example ids, metadata).

  Cells at another resolution than the draw's follow the cell-centre rule of
  the module docstring.

  Args:
    tree: a pytree of arrays whose leading axis is the batch B.
    draw: a `MixDraw`, e.g. from `jaxmix.draw_cutmix` or
      `jaxmix.sample_videomix`.
    roles: one role for every leaf, or a pytree prefix of `tree` (e.g. a
      dict with the same keys) giving each subtree its role.

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
  if not isinstance(draw, draws.MixDraw):
    raise TypeError(f'`draw` must be a jaxmix.MixDraw, got {type(draw)}.')

  def apply_subtree(prefix, role, subtree):
    if role not in _APPLIERS:
      raise ValueError(f'`roles` entries must be one of {ROLES}, got {role!r}.')

    def apply_leaf(path, leaf):
      name = jax.tree_util.keystr((*prefix, *path)) or '(root)'
      return _APPLIERS[role](draw, jnp.asarray(leaf), f'`tree` leaf {name}')

    return jax.tree_util.tree_map_with_path(apply_leaf, subtree)

  if isinstance(roles, str):
    return apply_subtree((), roles, tree)
  is_role = lambda node: isinstance(node, str)  # noqa: E731
  try:
    jax.tree_util.tree_map(lambda *_: None, roles, tree, is_leaf=is_role)
  except ValueError as error:
    raise ValueError(
      f'`roles` must be one role or a pytree prefix of `tree`: {error}'
    ) from error
  return jax.tree_util.tree_map_with_path(
    apply_subtree, roles, tree, is_leaf=is_role
  )
