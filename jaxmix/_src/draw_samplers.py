"""The draws of Mixup, CutMix and Mixup-or-CutMix, as `MixDraw`s.

Each sampler spends its key exactly as the matching op does, so
`draw_cutmix(key, ...)` is what `cutmix(key, images, labels, ...)` drew:
applying it with `jaxmix.apply_draw` (images as `'image'`, labels as
`'target'`) gives the op's output, and other arrays (masks, token labels)
can follow the same draw. `draw_mixup_or_cutmix` adds timm's conventions: an
alpha of 0 switches its branch off, and `minmax` boxes.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mixing

Array = jax.Array


def _check_batch_size(batch_size) -> None:
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(
      f'`batch_size` must be a positive Python int, got {batch_size!r}.'
    )


def _kept_fraction(box: boxes_lib.Box, height: int, width: int) -> Array:
  area = boxes_lib.box_area(box).astype(jnp.float32)
  return 1.0 - area / (height * width)


def draw_mixup(
  key: Array,
  *,
  batch_size: int,
  alpha: ArrayLike = 0.2,
  prob: ArrayLike = 1.0,
  per_example: bool = False,
) -> draws.MixDraw:
  """What `jaxmix.mixup` draws with the same key and knobs.

  Args:
    key: a PRNG key.
    batch_size: B. Static.
    alpha: Beta concentration, > 0. May be traced.
    prob: probability of mixing. May be traced.
    per_example: one lambda and gate per example. Static.

  Returns:
    A `MixDraw` with an empty box and `blend == weight == lambda` (1 where
    not mixed).

  Examples:
    >>> import jax
    >>> draw = draw_mixup(jax.random.key(0), batch_size=4, alpha=1.0)
    >>> draw.weight.shape, bool((draw.blend == draw.weight).all())
    ((4,), True)
  """
  checks.check_key(key)
  _check_batch_size(batch_size)
  checks.check_positive('alpha', alpha)
  checks.check_probability('prob', prob)
  key_weight, key_gate, key_partners = jax.random.split(key, 3)
  shape = (batch_size,) if per_example else ()
  weight = mixing.sample_mix_weight(key_weight, alpha=alpha, shape=shape)
  weight = jnp.where(mixing._gate(key_gate, prob, shape), weight, 1.0)
  partners = mixing.sample_partners(key_partners, batch_size=batch_size)
  return draws.make_draw(
    weight=weight,
    partners=partners,
    blend=weight,
    box=boxes_lib.Box(0, 0, 0, 0),
    height=1,
    width=1,
  )


def draw_cutmix(
  key: Array,
  *,
  batch_size: int,
  height: int,
  width: int,
  alpha: ArrayLike = 1.0,
  prob: ArrayLike = 1.0,
  per_example: bool = False,
  correct_lam: bool = True,
  minmax: tuple[float, float] | None = None,
) -> draws.MixDraw:
  """What `jaxmix.cutmix` draws with the same key and knobs.

  Args:
    key: a PRNG key.
    batch_size: B. Static.
    height: image height H. Static.
    width: image width W. Static.
    alpha: Beta concentration, > 0. May be traced.
    prob: probability of mixing. May be traced.
    per_example: one box and gate per example. Static.
    correct_lam: label weight = kept-pixel fraction (else the sampled
      lambda). Static.
    minmax: optional `(min, max)` box side fractions (timm). Static.

  Returns:
    A `MixDraw` with `blend == 1` (CutMix only selects).

  Examples:
    >>> import jax
    >>> draw = draw_cutmix(jax.random.key(0), batch_size=4, height=8,
    ...                    width=8)
    >>> draw.box.top.shape, draw.height
    ((4,), 8)
  """
  checks.check_key(key)
  _check_batch_size(batch_size)
  checks.check_positive('alpha', alpha)
  checks.check_probability('prob', prob)
  box, partners, weight = mixing.sample_cutmix(
    key,
    batch_size=batch_size,
    height=height,
    width=width,
    alpha=alpha,
    prob=prob,
    per_example=per_example,
    correct_lam=correct_lam,
    minmax=minmax,
  )
  if weight is None:
    weight = _kept_fraction(box, height, width)
  return draws.make_draw(
    weight=weight, partners=partners, box=box, height=height, width=width
  )


def _branch_alpha(alpha: ArrayLike) -> tuple[Array, Array]:
  """`(on, safe_alpha)`: whether alpha > 0, and an alpha Beta accepts."""
  alpha = jnp.asarray(alpha, jnp.float32)
  on = alpha > 0
  return on, jnp.where(on, alpha, 1.0)


def _check_non_negative(name: str, value) -> None:
  if isinstance(value, (int, float)) and not value >= 0:
    raise ValueError(f'`{name}` must be >= 0 (0 switches it off), got {value}.')


def draw_mixup_or_cutmix(
  key: Array,
  *,
  batch_size: int,
  height: int,
  width: int,
  mixup_alpha: ArrayLike,
  cutmix_alpha: ArrayLike,
  switch_prob: ArrayLike = 0.5,
  prob: ArrayLike = 1.0,
  per_example: bool = False,
  correct_lam: bool = True,
  minmax: tuple[float, float] | None = None,
) -> draws.MixDraw:
  """What `jaxmix.mixup_or_cutmix` draws, with timm's alpha-0 and minmax.

  With positive alphas and no `minmax` this is exactly the draw of
  `jaxmix.mixup_or_cutmix(key, ...)`. As in timm's `Mixup`, an alpha of 0
  switches its branch off: `mixup_alpha=0` always cuts, `cutmix_alpha=0`
  always blends, both 0 never mix. `minmax` draws timm's `cutmix_minmax`
  boxes instead of the Beta rule (labels then always weighted by area).

  Args:
    key: a PRNG key.
    batch_size: B. Static.
    height: image height H. Static.
    width: image width W. Static.
    mixup_alpha: Mixup's Beta concentration, >= 0. May be traced.
    cutmix_alpha: CutMix's Beta concentration, >= 0. May be traced.
    switch_prob: probability of CutMix rather than Mixup. May be traced.
    prob: probability of mixing at all. May be traced.
    per_example: draw everything per example. Static.
    correct_lam: weight CutMix labels by the kept-pixel fraction. Static.
    minmax: optional `(min, max)` box side fractions. Static.

  Returns:
    A `MixDraw`: CutMix examples have a box and blend 1, Mixup examples an
    empty box and blend lambda.

  Examples:
    >>> import jax
    >>> draw = draw_mixup_or_cutmix(jax.random.key(0), batch_size=4,
    ...     height=8, width=8, mixup_alpha=0.0, cutmix_alpha=1.0)
    >>> bool((draw.blend == 1.0).all())  # Mixup switched off: CutMix only.
    True
  """
  checks.check_key(key)
  _check_batch_size(batch_size)
  _check_non_negative('mixup_alpha', mixup_alpha)
  _check_non_negative('cutmix_alpha', cutmix_alpha)
  checks.check_probability('switch_prob', switch_prob)
  checks.check_probability('prob', prob)
  keys = jax.random.split(key, 6)  # The split of `mixup_or_cutmix`.
  shape = (batch_size,) if per_example else ()
  mixup_on, mixup_alpha = _branch_alpha(mixup_alpha)
  cutmix_on, cutmix_alpha = _branch_alpha(cutmix_alpha)
  apply = mixing._gate(keys[0], prob, shape) & (mixup_on | cutmix_on)
  use_cutmix = mixing._gate(keys[1], switch_prob, shape)
  use_cutmix = jnp.where(mixup_on, use_cutmix, True) & cutmix_on
  mix_lam = mixing.sample_mix_weight(keys[2], alpha=mixup_alpha, shape=shape)
  if minmax is None:
    cut_lam = mixing.sample_mix_weight(keys[3], alpha=cutmix_alpha, shape=shape)
    box = boxes_lib.sample_cutmix_box(
      keys[4], height=height, width=width, weight=cut_lam
    )
  else:
    box = boxes_lib.sample_cutmix_box_minmax(
      keys[4], height=height, width=width, minmax=minmax, shape=shape
    )
  box = mixing._empty_unless(apply & use_cutmix, box)
  partners = mixing.sample_partners(keys[5], batch_size=batch_size)
  kept = _kept_fraction(box, height, width)
  cut_weight = kept if correct_lam or minmax is not None else cut_lam
  weight = jnp.where(use_cutmix, cut_weight, mix_lam)
  return draws.make_draw(
    weight=jnp.where(apply, weight, 1.0),
    partners=partners,
    blend=jnp.where(apply & ~use_cutmix, mix_lam, 1.0),
    box=box,
    height=height,
    width=width,
  )
