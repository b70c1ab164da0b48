"""The names of jaxmix 0.1 that 0.2 replaced, kept for one release.

One table, `_ALIASES`: each row is an old name, the call that replaces it
and the function that does the old name's work through the new code. Every
alias warns with a `DeprecationWarning` naming its replacement, then returns
what the old name returned.
"""

import inspect
import warnings
from collections.abc import Callable

from jaxmix._src import checks, draws, mix_or_cut, mixing


def _alias(old: str, new: str, call: Callable) -> Callable:
  """`call` under the old name `old`, warning first that `new` replaces it."""

  def alias(*args, **kwargs):
    warnings.warn(
      f'jaxmix.{old} is deprecated and will be removed in the next release: '
      f'use {new}.',
      DeprecationWarning,
      stacklevel=2,
    )
    return call(*args, **kwargs)

  alias.__name__ = alias.__qualname__ = old
  alias.__signature__ = inspect.signature(call)
  alias.__doc__ = f"""Deprecated: use `{new}`.

  Args:
    *args: the arguments `{old}` took (see its signature).
    **kwargs: its keyword arguments.

  Returns:
    What `{old}` returned, after a `DeprecationWarning`.

  Examples:
    >>> {old}.__name__
    '{old}'
  """
  return alias


def _mixup_with_weight(images, labels, *, weight, partners):
  checks.check_blend_batch(images, labels, op='mixup_with_weight')
  draw = mixing.blend_draw(weight, partners)
  return draws.apply_draw((images, labels), draw, roles=('image', 'target'))


def _cutmix_with_box(images, labels, *, box, partners, weight=None):
  checks.check_select_batch(images, labels)
  _, height, width, _ = images.shape
  draw = mixing.box_draw(
    box, True, partners, height=height, width=width, weight=weight
  )
  return draws.apply_draw((images, labels), draw, roles=('mask', 'target'))


# Host-side helpers that moved up to the trainer and the input pipeline:
# their new home is imported on the call only, so `import jaxmix` stays
# light (the one import upwards the layers allow, for one release).
def _cmo_active(*args, **kwargs):
  from jaxmix.train.augment_schedule import cmo_active

  return cmo_active(*args, **kwargs)


def _minority_example_weights(*args, **kwargs):
  from jaxmix.data.minority import minority_example_weights

  return minority_example_weights(*args, **kwargs)


_SAME = ', which takes the same arguments'
_ALIASES = (
  ('draw_mixup', f'jaxmix.sample_mixup{_SAME}', mixing.sample_mixup),
  ('draw_cutmix', f'jaxmix.sample_cutmix{_SAME}', mixing.sample_cutmix),
  (
    'draw_mixup_or_cutmix',
    f'jaxmix.sample_mixup_or_cutmix{_SAME}',
    mix_or_cut.sample_mixup_or_cutmix,
  ),
  (
    'mixup_with_weight',
    "jaxmix.apply_draw(..., roles=('image', ...)) with a Mixup draw",
    _mixup_with_weight,
  ),
  (
    'cutmix_with_box',
    "jaxmix.apply_draw(..., roles=('mask', ...)) with a draw of `box`",
    _cutmix_with_box,
  ),
  ('cmo_active', 'jaxmix.train.augment_schedule.cmo_active', _cmo_active),
  (
    'minority_example_weights',
    'jaxmix.data.minority.minority_example_weights',
    _minority_example_weights,
  ),
)
(
  draw_mixup,
  draw_cutmix,
  draw_mixup_or_cutmix,
  mixup_with_weight,
  cutmix_with_box,
  cmo_active,
  minority_example_weights,
) = (_alias(*row) for row in _ALIASES)
