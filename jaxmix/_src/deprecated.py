"""The names of jaxmix 0.1 that 0.2 replaced, kept for one release.

Each warns with a `DeprecationWarning` naming the call that replaces it and
returns what it returned before, through the new code.
"""

import warnings
from collections.abc import Callable

import jax
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mix_or_cut, mixing


def _warn(old: str, new: str) -> None:
  warnings.warn(
    f'jaxmix.{old} is deprecated and will be removed in the next release: '
    f'use {new}.',
    DeprecationWarning,
    stacklevel=3,
  )


def _alias(old: str, new: str, target: Callable[[], Callable]) -> Callable:
  """`target()` under its old name `old`, warning that `new` replaces it."""

  def alias(*args, **kwargs):
    _warn(old, f'{new}, which takes the same arguments')
    return target()(*args, **kwargs)

  alias.__name__ = alias.__qualname__ = old
  alias.__doc__ = f"""Deprecated alias of `{new}`.

  Args:
    *args: those of `{new}`.
    **kwargs: those of `{new}`.

  Returns:
    What `{new}` returns, after a `DeprecationWarning`.

  Examples:
    >>> {old}.__name__
    '{old}'
  """
  return alias


def _cmo_active() -> Callable:
  from jaxmix.train.augment_schedule import cmo_active as moved

  return moved


def _minority_example_weights() -> Callable:
  from jaxmix.data.minority import minority_example_weights as moved

  return moved


draw_mixup = _alias(
  'draw_mixup', 'jaxmix.sample_mixup', lambda: mixing.sample_mixup
)
draw_cutmix = _alias(
  'draw_cutmix', 'jaxmix.sample_cutmix', lambda: mixing.sample_cutmix
)
draw_mixup_or_cutmix = _alias(
  'draw_mixup_or_cutmix',
  'jaxmix.sample_mixup_or_cutmix',
  lambda: mix_or_cut.sample_mixup_or_cutmix,
)
# Host-side helpers that moved up to the trainer and the input pipeline: the
# alias imports the new home on the call only, so `import jaxmix` stays
# light (the one import upwards the layers allow, for one release).
cmo_active = _alias(
  'cmo_active', 'jaxmix.train.augment_schedule.cmo_active', _cmo_active
)
minority_example_weights = _alias(
  'minority_example_weights',
  'jaxmix.data.minority.minority_example_weights',
  _minority_example_weights,
)


def mixup_with_weight(
  images: ArrayLike,
  labels: ArrayLike,
  *,
  weight: ArrayLike,
  partners: ArrayLike,
) -> tuple[jax.Array, jax.Array]:
  """Deprecated: `jaxmix.apply_draw` with Mixup's draw.

  Args:
    images: float ``[B, H, W, C]``.
    labels: dense float ``[B, K]``.
    weight: share of each example's own image, a scalar or ``[B]``.
    partners: int ``[B]``, the partner of each example.

  Returns:
    `(images, labels)`, as `apply_draw` with roles `('image', 'target')`
    of the draw `make_draw(weight=weight, blend=weight, ...)`, empty box.

  Examples:
    >>> mixup_with_weight.__name__
    'mixup_with_weight'
  """
  _warn('mixup_with_weight', "jaxmix.apply_draw(..., roles=('image', ...))")
  checks.check_blend_batch(images, labels, op='mixup_with_weight')
  empty = boxes_lib.Box(0, 0, 0, 0)
  draw = draws.make_draw(
    weight=weight, partners=partners, blend=weight, box=empty, height=1, width=1
  )
  return draws.apply_draw((images, labels), draw, roles=('image', 'target'))


def cutmix_with_box(
  images: ArrayLike,
  labels: ArrayLike,
  *,
  box: boxes_lib.Box,
  partners: ArrayLike,
  weight: ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Deprecated: `jaxmix.apply_draw` with a draw of `box`.

  Args:
    images: float or uint8 ``[B, H, W, C]``.
    labels: dense float ``[B, K]``.
    box: a `jaxmix.Box`, scalar or ``[B]`` fields.
    partners: int ``[B]``, the partner of each example.
    weight: the label weight; by default the kept-pixel fraction.

  Returns:
    `(images, labels)`, as `apply_draw` with roles `('mask', 'target')`.

  Examples:
    >>> cutmix_with_box.__name__
    'cutmix_with_box'
  """
  _warn('cutmix_with_box', "jaxmix.apply_draw(..., roles=('mask', ...))")
  checks.check_select_batch(images, labels)
  _, height, width, _ = images.shape
  draw = mixing.box_draw(
    box, True, partners, height=height, width=width, weight=weight
  )
  return draws.apply_draw((images, labels), draw, roles=('mask', 'target'))
