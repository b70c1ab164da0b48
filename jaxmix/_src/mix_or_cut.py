"""Mixup-or-CutMix (the DeiT/timm recipe): its sampler and its op.

With probability `prob` an example (or the batch, or a pair) is mixed at
all; a mixed one gets CutMix with probability `switch_prob` and Mixup
otherwise. The knobs mean what timm's `Mixup` makes them mean:

- **An alpha of 0 switches its branch off**: `mixup_alpha=0` always cuts,
  `cutmix_alpha=0` always blends. Both 0 given as Python numbers is an
  error (nothing could be mixed; use `prob=0` to switch mixing off). Alphas
  may be traced; traced zeros switch their branches off alike, and both 0
  then leaves the batch unchanged.
- **`minmax` boxes** (timm's `cutmix_minmax`): the CutMix branch draws
  `jaxmix.sample_cutmix_box_minmax` boxes instead of the Beta rule, its
  labels weighted by the kept area, and the branch is on whatever
  `cutmix_alpha` is (timm sets that alpha to 1 when `minmax` is given).
- **Granularity**: one draw per batch (default), one per example
  (`per_example`, timm's `'elem'`), or one per mirrored pair (`pairs`,
  timm's `'pair'`).

Pair mode. Example `i` and example `B - 1 - i` are each other's partners
(timm's mirror rule, instead of the keyed permutation: shuffle the data) and
share one draw: the gate, the branch, lambda and the box. CutMix therefore
swaps the same box between the two and gives both the same label weight;
Mixup blends both with the same lambda. This is a `MixDraw` like the others
(every field ``[B]``, the pair's values written at both indices), so
`apply_draw`, `mixed_cross_entropy`, `jit`, `vmap`, `jaxmix.per_shard`
(pairs are mirrored inside each device's shard) and `pmap` take it
unchanged. B must be even, as timm requires.

When Mixup is off by a Python `mixup_alpha=0`, the op only selects pixels
and accepts uint8 images (output bit-identical to the float path cast
back); otherwise it blends and needs float images.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mixing, sharding
from jaxmix._src.knobs import takes

Array = jax.Array


def _check_alphas(mixup_alpha, cutmix_alpha, minmax) -> None:
  for name, value in (
    ('mixup_alpha', mixup_alpha),
    ('cutmix_alpha', cutmix_alpha),
  ):
    if checks.is_number(value) and not value >= 0:
      raise ValueError(
        f'`{name}` must be >= 0 (0 switches its branch off), got {value}.'
      )
  if (
    minmax is None
    and checks.is_number(mixup_alpha)
    and checks.is_number(cutmix_alpha)
    and mixup_alpha == 0
    and cutmix_alpha == 0
  ):
    raise ValueError(
      '`mixup_alpha` and `cutmix_alpha` are both 0, which switches both '
      'branches off: set one > 0 (or give `minmax` for CutMix), or pass '
      '`prob=0` to switch mixing off.'
    )


def _branch_alpha(alpha: ArrayLike) -> tuple[Array, Array]:
  """`(on, safe_alpha)`: whether alpha > 0, and an alpha Beta accepts."""
  alpha = jnp.asarray(alpha, jnp.float32)
  on = alpha > 0
  return on, jnp.where(on, alpha, 1.0)


def _draw_shape(batch_size: int, per_example: bool, pairs: bool):
  if pairs and per_example:
    raise ValueError(
      '`pairs=True` draws once per mirrored pair; leave `per_example` False '
      'with it.'
    )
  if pairs and batch_size % 2:
    raise ValueError(
      '`pairs=True` pairs example i with example B - 1 - i and needs an even '
      f'batch size B, got {batch_size}.'
    )
  if pairs:
    return (batch_size // 2,)
  return (batch_size,) if per_example else ()


def _mirror(value: Array) -> Array:
  """``[B // 2]`` per-pair values to ``[B]``: entry `i` at `i` and `B-1-i`."""
  return jnp.concatenate([value, value[::-1]])


@takes('prob', 'per_example', 'axis_name')
def sample_mixup_or_cutmix(
  key: Array,
  *,
  batch_size: int,
  height: int,
  width: int,
  mixup_alpha: ArrayLike,
  cutmix_alpha: ArrayLike,
  switch_prob: ArrayLike = 0.5,
  pairs: bool = False,
  correct_lam: bool = True,
  minmax: tuple[float, float] | None = None,
  **knobs,
) -> draws.MixDraw:
  """What `jaxmix.mixup_or_cutmix` draws with the same key and knobs.

  See the module docstring for the alpha-0, `minmax` and pair conventions.

  Args:
    key: a PRNG key.
    batch_size: B, at least 2 (even with `pairs`). Static.
    height: image height H. Static.
    width: image width W. Static.
    mixup_alpha: Mixup's Beta concentration, >= 0 (0: Mixup off). May be
      traced.
    cutmix_alpha: CutMix's Beta concentration, >= 0 (0: CutMix off unless
      `minmax`). May be traced.
    switch_prob: probability of CutMix rather than Mixup when both are on.
      May be traced.
    prob, per_example, axis_name: the shared knobs of `jaxmix._src.knobs`.
    pairs: one draw per mirrored pair `(i, B - 1 - i)`, the pair each
      other's partners (timm's `'pair'`). Static.
    correct_lam: weight CutMix labels by the kept-pixel fraction (else the
      sampled lambda; `minmax` boxes always use the fraction). Static.
    minmax: optional `(min, max)` box side fractions. Static.

  Returns:
    A `MixDraw`: CutMix examples have a box and blend 1, Mixup examples an
    empty box and blend lambda, unmixed ones an empty box and weight 1.

  Examples:
    >>> import jax
    >>> draw = sample_mixup_or_cutmix(jax.random.key(0), batch_size=4,
    ...     height=8, width=8, mixup_alpha=0.0, cutmix_alpha=1.0)
    >>> bool((draw.blend == 1.0).all())  # Mixup switched off: CutMix only.
    True
  """
  checks.check_key(key)
  checks.check_batch_size(batch_size)
  _check_alphas(mixup_alpha, cutmix_alpha, minmax)
  checks.check_probability('switch_prob', switch_prob)
  checks.check_probability('prob', knobs['prob'])
  shape = _draw_shape(batch_size, knobs['per_example'], pairs)
  keys = jax.random.split(sharding.device_key(key, knobs['axis_name']), 6)
  mixup_on, mixup_alpha = _branch_alpha(mixup_alpha)
  cutmix_on, cutmix_alpha = _branch_alpha(cutmix_alpha)
  if minmax is not None:
    cutmix_on = jnp.asarray(True)
  apply = mixing.gate(keys[0], knobs['prob'], shape) & (mixup_on | cutmix_on)
  use_cutmix = mixing.gate(keys[1], switch_prob, shape)
  use_cutmix = jnp.where(mixup_on, use_cutmix, True) & cutmix_on
  mix_lam = mixing.sample_mix_weight(keys[2], alpha=mixup_alpha, shape=shape)
  cut_lam = mixing.sample_mix_weight(keys[3], alpha=cutmix_alpha, shape=shape)
  box = mixing.cutmix_box(
    keys[4], lam=cut_lam, minmax=minmax, height=height, width=width, shape=shape
  )
  box = boxes_lib.empty_unless(apply & use_cutmix, box)
  kept = boxes_lib.kept_fraction(box, height=height, width=width)
  cut_weight = kept if correct_lam or minmax is not None else cut_lam
  weight = jnp.where(apply, jnp.where(use_cutmix, cut_weight, mix_lam), 1.0)
  blend = jnp.where(apply & ~use_cutmix, mix_lam, 1.0)
  if pairs:
    weight, blend = _mirror(weight), _mirror(blend)
    box = boxes_lib.Box(*(_mirror(field) for field in box))
    partners = batch_size - 1 - jnp.arange(batch_size, dtype=jnp.int32)
  else:
    partners = mixing.sample_partners(keys[5], batch_size=batch_size)
  return draws.make_draw(
    weight=weight,
    partners=partners,
    blend=blend,
    box=box,
    height=height,
    width=width,
  )


@takes(sample_mixup_or_cutmix, 'num_classes', 'smoothing')
def mixup_or_cutmix(
  key: Array, images: ArrayLike, labels: ArrayLike, **knobs
) -> tuple[Array, Array]:
  """Either Mixup or CutMix, chosen at random (the DeiT/timm recipe).

  With probability `prob` an example (or the batch, or a pair) is mixed at
  all; a mixed one gets CutMix with probability `switch_prob` and Mixup
  otherwise, in one fused pass over the images (`jaxmix.apply_draw`). The
  draw is `jaxmix.sample_mixup_or_cutmix` with the same key; the module
  docstring gives timm's alpha-0, `minmax` and pair conventions.

  Args:
    key: a PRNG key.
    images: float ``[B, H, W, C]``, B >= 2; uint8 too when `mixup_alpha` is
      the number 0 (CutMix only, which only selects pixels).
    labels: dense float ``[B, K]``, or integer ``[B]`` with `num_classes`.
    mixup_alpha, cutmix_alpha, switch_prob, pairs, correct_lam, minmax:
      `sample_mixup_or_cutmix`'s.
    prob, per_example, num_classes, smoothing, axis_name: the shared knobs
      of `jaxmix._src.knobs`.

  Returns:
    `(images, labels)` with the input shapes and dtypes (labels dense
    ``[B, K]``).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x, y = jnp.ones((2, 4, 4, 1)), jnp.eye(2)
    >>> _, y2 = mixup_or_cutmix(jax.random.key(0), x, y, mixup_alpha=0.8,
    ...                         cutmix_alpha=1.0)
    >>> y2.sum(axis=-1).tolist()
    [1.0, 1.0]

  References:
    Touvron et al., Training data-efficient image transformers & distillation
    through attention, https://arxiv.org/abs/2012.12877
  """
  mixup_alpha = knobs['mixup_alpha']
  selects_only = checks.is_number(mixup_alpha) and mixup_alpha == 0
  if selects_only:
    labels = mixing.op_inputs(key, images, labels, knobs)
  else:
    labels = mixing.op_inputs(
      key,
      images,
      labels,
      knobs,
      checks.check_blend_batch,
      op='mixup_or_cutmix',
      hint=', and so does mixup_or_cutmix with mixup_alpha=0 (CutMix only)',
    )
  batch_size, height, width, _ = jnp.shape(images)
  draw = sample_mixup_or_cutmix(
    key, batch_size=batch_size, height=height, width=width, **knobs
  )
  roles = ('mask' if selects_only else 'image', 'target')
  return draws.apply_draw((images, labels), draw, roles=roles)
