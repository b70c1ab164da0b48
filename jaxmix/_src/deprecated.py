"""The names of jaxmix 0.1 that 0.2 replaced, kept for one release.

Each warns with a `DeprecationWarning` naming the call that replaces it and
returns what it returned before, through the new code.
"""

import functools
import warnings
from collections.abc import Callable
from typing import Any

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


def _renamed(new: Callable[..., Any], old: str) -> Callable[..., Any]:
  """`new` under its old name `old`, warning on every call."""

  @functools.wraps(new)
  def alias(*args, **kwargs):
    _warn(old, f'jaxmix.{new.__name__}, which takes the same arguments')
    return new(*args, **kwargs)

  alias.__name__ = alias.__qualname__ = old
  alias.__doc__ = f"""Deprecated alias of `jaxmix.{new.__name__}`.

  Args:
    *args: those of `jaxmix.{new.__name__}`.
    **kwargs: those of `jaxmix.{new.__name__}`.

  Returns:
    Its `MixDraw`, after a `DeprecationWarning`.

  Examples:
    >>> {old}.__name__
    '{old}'
  """
  return alias


draw_mixup = _renamed(mixing.sample_mixup, 'draw_mixup')
draw_cutmix = _renamed(mixing.sample_cutmix, 'draw_cutmix')
draw_mixup_or_cutmix = _renamed(
  mix_or_cut.sample_mixup_or_cutmix, 'draw_mixup_or_cutmix'
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
    `(images, labels)`, as `jaxmix.apply_draw((images, labels), draw,
    roles=('image', 'target'))` with `draw = jaxmix.make_draw(weight=w,
    blend=w, partners=partners, box=jaxmix.Box(0, 0, 0, 0), height=1,
    width=1)`.

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
    `(images, labels)`, as `jaxmix.apply_draw((images, labels), draw,
    roles=('mask', 'target'))` with `draw = jaxmix.make_draw(weight=w,
    partners=partners, box=box, height=H, width=W)`.

  Examples:
    >>> cutmix_with_box.__name__
    'cutmix_with_box'
  """
  _warn('cutmix_with_box', "jaxmix.apply_draw(..., roles=('mask', ...))")
  checks.check_select_batch(images, labels)
  _, height, width, _ = images.shape
  if weight is None:
    weight = boxes_lib.kept_fraction(box, height=height, width=width)
  draw = draws.make_draw(
    weight=weight, partners=partners, box=box, height=height, width=width
  )
  return draws.apply_draw((images, labels), draw, roles=('mask', 'target'))


# Host-side helpers that moved up to the trainer and the input pipeline: each
# alias imports its new home on the call only, so `import jaxmix` stays light
# (the one import upwards the layers allow, for one release).


def cmo_active(epoch: int, **knobs: Any) -> bool:
  """Deprecated: `jaxmix.train.augment_schedule.cmo_active`, the same call.

  Args:
    epoch: the epoch, counted from 0.
    **knobs: `num_epochs`, `start`, `stop_margin`.

  Returns:
    Whether CMO runs in `epoch`, after a `DeprecationWarning`.

  Examples:
    >>> cmo_active.__name__
    'cmo_active'
  """
  from jaxmix.train.augment_schedule import cmo_active as moved

  _warn('cmo_active', 'jaxmix.train.augment_schedule.cmo_active')
  return moved(epoch, **knobs)


def minority_example_weights(example_classes: ArrayLike, **knobs: Any):
  """Deprecated: `jaxmix.data.minority.minority_example_weights`, the same.

  Args:
    example_classes: int ``[N]``, the class of every training example.
    **knobs: `num_classes`, `alpha`.

  Returns:
    float64 ``[N]`` probabilities, after a `DeprecationWarning`.

  Examples:
    >>> minority_example_weights.__name__
    'minority_example_weights'
  """
  from jaxmix.data.minority import minority_example_weights as moved

  _warn(
    'minority_example_weights',
    'jaxmix.data.minority.minority_example_weights',
  )
  return moved(example_classes, **knobs)
