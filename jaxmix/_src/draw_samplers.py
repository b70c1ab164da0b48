"""The draws of Mixup, CutMix and Mixup-or-CutMix, as `MixDraw`s.

Each sampler spends its key exactly as the matching op does, so
`draw_cutmix(key, ...)` is what `cutmix(key, images, labels, ...)` drew:
applying it with `jaxmix.apply_draw` (images as `'image'`, labels as
`'target'`) gives the op's output, and other arrays (masks, token labels)
can follow the same draw. `draw_mixup_or_cutmix`, with timm's conventions,
lives beside its op in `jaxmix._src.mix_or_cut`.
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
