"""Mixup and CutMix: the random primitives, their samplers and their ops.

Every op here is its sampler (`sample_mixup`, `sample_cutmix`: all the
randomness, a `jaxmix.MixDraw`), `jaxmix.apply_draw` and the target rule
(labels blended with the draw's weight). The contract of the ops:
`op(key, images, labels, *, knobs)` returns `(images, labels)` with the
input shapes and dtypes. `images` is float `[B, H, W, C]` (float32,
bfloat16 or float16; CutMix, which only selects pixels, also takes uint8),
`labels` dense float `[B, K]` (one-hot, smoothed or soft targets such as
ReLabel's) or integer `[B]` with `num_classes`. Mixup-or-CutMix lives in
`jaxmix._src.mix_or_cut`.

Partner rule: example `i` is mixed with example `partners[i]`, where
`partners` is a keyed random permutation of the batch (the official CutMix
and ReLabel scripts' rule). An example may be paired with itself. Under
`jaxmix.per_shard` the permutation is drawn inside each device's shard, so
pairing never crosses devices. The data must be shuffled: the permutation
pairs examples, it does not reorder them. A batch (or per-device shard) of
fewer than two examples cannot be mixed and raises a `ValueError` naming
its size.

Mixing weights: `weight` is the share of each example's own image and labels
(lambda in the papers); its partner contributes `1 - weight`. For CutMix the
label weight is by default the exact fraction of pixels kept from the
example's own image, which clipping at the border makes larger than the
sampled lambda.

The knobs they share with the other mixing samplers and ops (`alpha`,
`prob`, `per_example`, `axis_name`, `num_classes`, `smoothing`) are defined
once, in `jaxmix._src.knobs`; `correct_lam` and `minmax` are CutMix's own.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, sharding
from jaxmix._src import labels as labels_lib
from jaxmix._src.knobs import takes

Array = jax.Array


def sample_mix_weight(
  key: Array, *, alpha: ArrayLike, shape: tuple[int, ...] = ()
) -> Array:
  """Samples mix weights `lambda ~ Beta(alpha, alpha)`.

  Args:
    key: a PRNG key.
    alpha: Beta concentration, > 0. May be traced; a traced `alpha <= 0`
      (or NaN) gives weight 1 (no mixing) instead of Beta's NaN.
    shape: output shape, `()` for one weight per batch. Static.

  Returns:
    float32 weights in [0, 1] of shape `shape`.

  Examples:
    >>> import jax
    >>> w = sample_mix_weight(jax.random.key(0), alpha=1.0, shape=(3,))
    >>> w.shape
    (3,)
  """
  checks.check_key(key)
  checks.check_positive('alpha', alpha)
  alpha = jnp.asarray(alpha, jnp.float32)
  valid = alpha > 0
  safe = jnp.where(valid, alpha, 1.0)
  weight = jax.random.beta(key, safe, safe, shape, dtype=jnp.float32)
  return jnp.where(valid, weight, 1.0)


def sample_partners(key: Array, *, batch_size: int) -> Array:
  """Samples the partner of each example: a keyed random permutation.

  Args:
    key: a PRNG key.
    batch_size: B. Static.

  Returns:
    int32 ``[B]``, a permutation of `range(B)`; example `i` is mixed with
    example `partners[i]`.

  Examples:
    >>> import jax
    >>> p = sample_partners(jax.random.key(0), batch_size=4)
    >>> sorted(p.tolist())
    [0, 1, 2, 3]
  """
  checks.check_key(key)
  checks.check_int('batch_size', batch_size)
  return jax.random.permutation(key, batch_size).astype(jnp.int32)


def start_draw(
  key: Array,
  batch_size: int,
  knobs: dict[str, Any],
  *,
  num_keys: int,
  within_batch: bool = True,
) -> tuple[tuple[int, ...], Array]:
  """The samplers' common start: checks, the draw's shape, the device's keys.

  Checks the key, the shared `knobs` given as numbers and (for partners
  drawn `within_batch`) that the batch can be mixed within itself; returns
  the shape of one draw (`()` per batch, ``(B,)`` per example) and
  `num_keys` keys of the device's key (`axis_name`).
  """
  checks.check_key(key)
  if within_batch:
    checks.check_batch_size(batch_size)
  checks.check_positive('alpha', knobs['alpha'])
  checks.check_probability('prob', knobs['prob'])
  shape = (batch_size,) if knobs['per_example'] else ()
  key = sharding.device_key(key, knobs['axis_name'])
  return shape, jax.random.split(key, num_keys)


def op_inputs(
  key: Array,
  pixels: ArrayLike,
  labels: ArrayLike,
  knobs: dict[str, Any],
  check: Callable[..., None] = checks.check_select_batch,
  **where,
) -> Array:
  """The ops' common start; returns the labels as dense targets.

  Checks the key, one-hot encodes integer labels (the shared `num_classes`
  and `smoothing`, taken out of `knobs`) and checks the batch with `check`
  (`checks.check_select_batch` or `check_blend_batch`, given `where`).
  """
  checks.check_key(key)
  num_classes, smoothing = knobs.pop('num_classes'), knobs.pop('smoothing')
  labels = labels_lib.dense_labels(labels, num_classes, smoothing)
  check(pixels, labels, **where)
  return labels


def gate(key: Array, prob: ArrayLike, shape: tuple[int, ...]) -> Array:
  """True with probability `prob` (exactly never at 0, always at 1)."""
  return jax.random.uniform(key, shape) < jnp.asarray(prob, jnp.float32)


def cutmix_box(
  key: Array,
  *,
  lam: Array | None,
  minmax: tuple[float, float] | None,
  height: int,
  width: int,
  shape: tuple[int, ...],
) -> boxes_lib.Box:
  """The official box for `lam` ``[*shape]``, or timm's `minmax` box."""
  if minmax is None:
    return boxes_lib.sample_cutmix_box(
      key, height=height, width=width, weight=lam
    )
  return boxes_lib.sample_cutmix_box_minmax(
    key, height=height, width=width, minmax=minmax, shape=shape
  )


def box_draw(
  box: boxes_lib.Box,
  apply: ArrayLike,
  partners: ArrayLike,
  *,
  height: int,
  width: int,
  weight: ArrayLike | None = None,
) -> draws.MixDraw:
  """A draw that pastes `box` where `apply` (empty elsewhere), blend 1.

  The label weight is the kept-pixel fraction unless `weight` is given.
  """
  box = boxes_lib.empty_unless(apply, box)
  if weight is None:
    weight = boxes_lib.kept_fraction(box, height=height, width=width)
  return draws.make_draw(
    weight=weight, partners=partners, box=box, height=height, width=width
  )


def blend_draw(weight: ArrayLike, partners: ArrayLike) -> draws.MixDraw:
  """Mixup's draw: `weight` blends pixels and labels alike, no region."""
  return draws.make_draw(
    weight=weight,
    partners=partners,
    blend=weight,
    box=boxes_lib.Box(0, 0, 0, 0),
    height=1,
    width=1,
  )


@takes('alpha', 'prob', 'per_example', 'axis_name', alpha=0.2)
def sample_mixup(key: Array, *, batch_size: int, **knobs) -> draws.MixDraw:
  """Samples everything `mixup` draws: the weights and the partners.

  Args:
    key: a PRNG key.
    batch_size: B, at least 2. Static.
    alpha, prob, per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.

  Returns:
    A `MixDraw` with an empty box and `blend == weight == lambda` (1 where
    not mixed).

  Examples:
    >>> import jax
    >>> draw = sample_mixup(jax.random.key(0), batch_size=4, alpha=1.0)
    >>> draw.weight.shape, bool((draw.blend == draw.weight).all())
    ((4,), True)
  """
  shape, (key_weight, key_gate, key_partners) = start_draw(
    key, batch_size, knobs, num_keys=3
  )
  weight = sample_mix_weight(key_weight, alpha=knobs['alpha'], shape=shape)
  weight = jnp.where(gate(key_gate, knobs['prob'], shape), weight, 1.0)
  return blend_draw(
    weight, sample_partners(key_partners, batch_size=batch_size)
  )


@takes('alpha', 'prob', 'per_example', 'axis_name')
def sample_cutmix(
  key: Array,
  *,
  batch_size: int,
  height: int,
  width: int,
  correct_lam: bool = True,
  minmax: tuple[float, float] | None = None,
  **knobs,
) -> draws.MixDraw:
  """Samples everything `cutmix` draws: the box, the partners, the weight.

  Applied with `jaxmix.apply_draw` (images as `'mask'`: CutMix only selects;
  labels as `'target'`) it is `cutmix`; other arrays (masks, token labels,
  ReLabel's localised targets) can follow the same draw.

  Before jaxmix 0.2 this returned a tuple `(box, partners, weight)`;
  unpacking the draw that way still works, with a `DeprecationWarning`, for
  one release (see `jaxmix.MixDraw`).

  Args:
    key: a PRNG key.
    batch_size: B, at least 2. Static.
    height: image height H. Static.
    width: image width W. Static.
    alpha, prob, per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.
    correct_lam: label weight = kept-pixel fraction (else the sampled
      lambda). Static.
    minmax: optional `(min, max)` box side fractions (timm). Static.

  Returns:
    A `MixDraw` with `blend == 1` and an empty box where not mixed.

  Examples:
    >>> import jax
    >>> draw = sample_cutmix(jax.random.key(0), batch_size=4, height=8,
    ...                      width=8)
    >>> draw.box.top.shape, draw.height
    ((4,), 8)
  """
  shape, (key_weight, key_box, key_gate, key_partners) = start_draw(
    key, batch_size, knobs, num_keys=4
  )
  apply = gate(key_gate, knobs['prob'], shape)
  lam = None
  if minmax is None:
    lam = sample_mix_weight(key_weight, alpha=knobs['alpha'], shape=shape)
  box = cutmix_box(
    key_box, lam=lam, minmax=minmax, height=height, width=width, shape=shape
  )
  weight = None
  if minmax is None and not correct_lam:
    weight = jnp.where(apply, lam, 1.0)
  partners = sample_partners(key_partners, batch_size=batch_size)
  return box_draw(
    box, apply, partners, height=height, width=width, weight=weight
  )


@takes(sample_mixup, 'num_classes', 'smoothing')
def mixup(
  key: Array, images: ArrayLike, labels: ArrayLike, **knobs
) -> tuple[Array, Array]:
  """Mixup: blends each example with its partner, images and labels alike.

  `lambda ~ Beta(alpha, alpha)`; `images[i] = lambda * images[i] + (1 -
  lambda) * images[partners[i]]` and the same for labels. The draw is
  `sample_mixup` with the same key; see the module docstring for the partner
  rule.

  Args:
    key: a PRNG key.
    images: float ``[B, H, W, C]`` (float32, bfloat16 or float16), B >= 2.
    labels: dense float ``[B, K]``, or integer ``[B]`` with `num_classes`.
    alpha: 0.2 is the Mixup paper's ImageNet value, 1.0 its CIFAR value.
    prob, per_example, num_classes, smoothing, axis_name: the shared knobs
      of `jaxmix._src.knobs`.

  Returns:
    `(images, labels)` with the input shapes and dtypes.

  Raises:
    ValueError: a batch of fewer than 2 examples.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x, y = jnp.ones((2, 4, 4, 1)), jnp.eye(2)
    >>> x2, y2 = mixup(jax.random.key(0), x, y, alpha=1.0)
    >>> y2.sum(axis=-1).tolist()
    [1.0, 1.0]

  References:
    Zhang et al., mixup: Beyond Empirical Risk Minimization,
    https://arxiv.org/abs/1710.09412
  """
  labels = op_inputs(
    key, images, labels, knobs, checks.check_blend_batch, op='mixup'
  )
  draw = sample_mixup(key, batch_size=jnp.shape(images)[0], **knobs)
  return draws.apply_draw((images, labels), draw, roles=('image', 'target'))


@takes(sample_cutmix, 'num_classes', 'smoothing')
def cutmix(
  key: Array, images: ArrayLike, labels: ArrayLike, **knobs
) -> tuple[Array, Array]:
  """CutMix: pastes a box of each partner image, mixes labels by area.

  `lambda ~ Beta(alpha, alpha)` and the box follow the official rule (see
  `jaxmix.sample_cutmix_box`). With `correct_lam` the label weight is the
  exact fraction of pixels kept from each example's own image. The draw is
  `sample_cutmix` with the same key.

  Args:
    key: a PRNG key.
    images: float or uint8 ``[B, H, W, C]``, B >= 2 (CutMix only selects
      pixels, so it may run before normalisation; the output is then uint8,
      equal to the float path's cast back).
    labels: dense float ``[B, K]``, or integer ``[B]`` with `num_classes`.
    alpha: 1.0 in the CutMix paper.
    prob: 1.0 for ImageNet and 0.5 for CIFAR in the paper.
    per_example, num_classes, smoothing, axis_name: the shared knobs of
      `jaxmix._src.knobs`.
    correct_lam: weight labels by the kept-pixel fraction (default) instead
      of the sampled lambda. Static.
    minmax: optional `(min, max)` box side fractions (timm's
      `cutmix_minmax`); replaces the Beta draw, and labels are always weighted
      by area. Static.

  Returns:
    `(images, labels)` with the input shapes and dtypes.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x, y = jnp.ones((2, 4, 4, 1)), jnp.eye(2)
    >>> x2, y2 = cutmix(jax.random.key(0), x, y)
    >>> y2.sum(axis=-1).tolist()
    [1.0, 1.0]

  References:
    Yun et al., CutMix: Regularization Strategy to Train Strong Classifiers
    with Localizable Features, https://arxiv.org/abs/1905.04899
  """
  labels = op_inputs(key, images, labels, knobs)
  batch_size, height, width, _ = jnp.shape(images)
  draw = sample_cutmix(
    key, batch_size=batch_size, height=height, width=width, **knobs
  )
  return draws.apply_draw((images, labels), draw, roles=('mask', 'target'))
