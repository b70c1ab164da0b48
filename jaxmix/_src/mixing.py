"""Mixup and CutMix: samplers, deterministic appliers and the batch ops.

The contract of every op here: `op(key, images, labels, *, knobs)` returns
`(images, labels)` with the input shapes and dtypes. `images` is float
`[B, H, W, C]` (CutMix, which only selects pixels, also takes uint8),
`labels` dense float `[B, K]` (one-hot, smoothed or soft targets such as
ReLabel's), all randomness comes from `key`. Mixup-or-CutMix lives in
`jaxmix._src.mix_or_cut`.

Partner rule: example `i` is mixed with example `partners[i]`, where
`partners` is a keyed random permutation of the batch (the official CutMix
and ReLabel scripts' rule). An example may be paired with itself. Under
`jaxmix.per_shard` the permutation is drawn inside each device's shard, so
pairing never crosses devices. The data must be shuffled: the permutation
pairs examples, it does not reorder them.

Mixing weights: `weight` is the share of each example's own image and labels
(lambda in the papers); its partner contributes `1 - weight`. For CutMix the
label weight is by default the exact fraction of pixels kept from the
example's own image, which clipping at the border makes larger than the
sampled lambda.

Knobs a schedule may change (`alpha`, `prob`) may be traced:
changing them never recompiles. `per_example`, `correct_lam` and `minmax`
change the program and are static.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, class_labels, select_inputs

Array = jax.Array


def sample_mix_weight(
  key: Array, *, alpha: ArrayLike, shape: tuple[int, ...] = ()
) -> Array:
  """Samples mix weights `lambda ~ Beta(alpha, alpha)`.

  Args:
    key: a PRNG key.
    alpha: Beta concentration, > 0. May be traced.
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
  return jax.random.beta(key, alpha, alpha, shape, dtype=jnp.float32)


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
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(
      f'`batch_size` must be a positive Python int, got {batch_size!r}.'
    )
  return jax.random.permutation(key, batch_size).astype(jnp.int32)


def _per_example(value: ArrayLike, batch_size: int, name: str) -> Array:
  """Broadcasts a scalar or `[B]` value to float32 `[B]`."""
  value = jnp.asarray(value, jnp.float32)
  if value.shape not in ((), (batch_size,)):
    raise ValueError(
      f'`{name}` must be a scalar or have shape ({batch_size},), got '
      f'{value.shape}.'
    )
  return jnp.broadcast_to(value, (batch_size,))


def _check_partners(partners: ArrayLike, batch_size: int) -> Array:
  partners = jnp.asarray(partners)
  if partners.shape != (batch_size,) or not jnp.issubdtype(
    partners.dtype, jnp.integer
  ):
    raise ValueError(
      f'`partners` must be integer indices of shape ({batch_size},), got '
      f'shape {partners.shape} and dtype {partners.dtype}.'
    )
  return partners


def _mix_labels(labels: Array, partners: Array, weight: Array) -> Array:
  """`weight * labels + (1 - weight) * labels[partners]`, per example."""
  own = labels.astype(jnp.float32)
  mixed = weight[:, None] * own + (1.0 - weight[:, None]) * own[partners]
  return mixed.astype(labels.dtype)


def _blend(images: Array, partner_images: Array, weight: Array) -> Array:
  """`weight * images + (1 - weight) * partner_images`, in float32."""
  weight = weight[:, None, None, None]
  own = images.astype(jnp.float32)
  return weight * own + (1.0 - weight) * partner_images.astype(jnp.float32)


def mixup_with_weight(
  images: ArrayLike,
  labels: ArrayLike,
  *,
  weight: ArrayLike,
  partners: ArrayLike,
) -> tuple[Array, Array]:
  """Mixup with a given weight and partners (the deterministic applier).

  `images[i] = w[i] * images[i] + (1 - w[i]) * images[partners[i]]`, and the
  same for `labels`; computed in float32 and cast back.

  Args:
    images: float ``[B, H, W, C]``.
    labels: dense float ``[B, K]``.
    weight: share of each example's own image, a scalar or ``[B]``. May be
      traced.
    partners: int ``[B]``, the partner of each example.

  Returns:
    `(images, labels)` with the input shapes and dtypes.

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([0.0, 4.0]).reshape(2, 1, 1, 1)
    >>> y = jnp.eye(2)
    >>> x2, y2 = mixup_with_weight(x, y, weight=0.75, partners=jnp.array([1, 0]))
    >>> x2.ravel().tolist(), y2[0].tolist()
    ([1.0, 3.0], [0.75, 0.25])
  """
  select_inputs.check_blend_batch(images, labels, op='mixup_with_weight')
  images, labels = jnp.asarray(images), jnp.asarray(labels)
  batch_size = images.shape[0]
  weight = _per_example(weight, batch_size, 'weight')
  partners = _check_partners(partners, batch_size)
  mixed = _blend(images, images[partners], weight).astype(images.dtype)
  return mixed, _mix_labels(labels, partners, weight)


def cutmix_with_box(
  images: ArrayLike,
  labels: ArrayLike,
  *,
  box: boxes_lib.Box,
  partners: ArrayLike,
  weight: ArrayLike | None = None,
) -> tuple[Array, Array]:
  """CutMix with a given box and partners (the deterministic applier).

  Pixels inside `box` come from the partner image, all others stay (a
  select: uint8 images stay uint8, bit for bit). The label
  weight of each example's own labels is, by default, the exact fraction of
  its pixels that stayed: `1 - area(box) / (H * W)`.

  Args:
    images: float or uint8 ``[B, H, W, C]``.
    labels: dense float ``[B, K]``.
    box: a `jaxmix.Box` with scalar fields (one box for the batch) or fields
      ``[B]`` (one box per example).
    partners: int ``[B]``, the partner of each example.
    weight: optional label weight, a scalar or ``[B]``, used instead of the
      kept-pixel fraction (the paper's uncorrected lambda). May be traced.

  Returns:
    `(images, labels)` with the input shapes and dtypes.

  Examples:
    >>> import jax.numpy as jnp
    >>> from jaxmix import Box
    >>> x = jnp.stack([jnp.zeros((2, 2, 1)), jnp.ones((2, 2, 1))])
    >>> y = jnp.eye(2)
    >>> box = Box(0, 0, 1, 2)  # the top row
    >>> x2, y2 = cutmix_with_box(x, y, box=box, partners=jnp.array([1, 0]))
    >>> x2[0, ..., 0].tolist(), y2[0].tolist()
    ([[1.0, 1.0], [0.0, 0.0]], [0.5, 0.5])
  """
  select_inputs.check_select_batch(images, labels)
  images, labels = jnp.asarray(images), jnp.asarray(labels)
  batch_size, height, width, channels = images.shape
  partners = _check_partners(partners, batch_size)
  rows = images.reshape(batch_size, height, width * channels)
  mask = boxes_lib.box_mask_rows(
    box, height=height, width=width, channels=channels
  )
  mixed = jnp.where(mask, rows[partners], rows).reshape(images.shape)
  if weight is None:
    area = boxes_lib.box_area(box).astype(jnp.float32)
    weight = 1.0 - area / (height * width)
  weight = _per_example(weight, batch_size, 'weight')
  return mixed, _mix_labels(labels, partners, weight)


def _gate(key: Array, prob: ArrayLike, shape: tuple[int, ...]) -> Array:
  """True with probability `prob` (exactly never at 0, always at 1)."""
  return jax.random.uniform(key, shape) < jnp.asarray(prob, jnp.float32)


def _empty_unless(apply: Array, box: boxes_lib.Box) -> boxes_lib.Box:
  """Keeps `box` where `apply`, an empty box elsewhere."""
  return boxes_lib.Box(*(jnp.where(apply, field, 0) for field in box))


def mixup(
  key: Array,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  alpha: ArrayLike = 0.2,
  prob: ArrayLike = 1.0,
  per_example: bool = False,
  num_classes: int | None = None,
  smoothing: ArrayLike = 0.0,
) -> tuple[Array, Array]:
  """Mixup: blends each example with its partner, images and labels alike.

  `lambda ~ Beta(alpha, alpha)`; `images[i] = lambda * images[i] + (1 -
  lambda) * images[partners[i]]` and the same for labels. See the module
  docstring for the partner rule.

  Args:
    key: a PRNG key.
    images: float ``[B, H, W, C]``.
    labels: dense float ``[B, K]``.
    alpha: Beta concentration, > 0 (0.2 is the Mixup paper's ImageNet value,
      1.0 its CIFAR value). May be traced.
    prob: probability of mixing at all, per batch (or per example when
      `per_example`). May be traced.
    per_example: one lambda and one gate per example instead of per batch.
      Static.
    num_classes: K, when `labels` are integer class indices ``[B]``: they are
      one-hot encoded (and smoothed) first. Static.
    smoothing: label smoothing of integer labels, in [0, 1]. May be traced.

  Returns:
    `(images, labels)` with the input shapes and dtypes.

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
  labels = class_labels.dense_labels(labels, num_classes, smoothing)
  checks.check_key(key)
  select_inputs.check_blend_batch(images, labels, op='mixup')
  key_weight, key_gate, key_partners = jax.random.split(key, 3)
  checks.check_positive('alpha', alpha)
  checks.check_probability('prob', prob)
  batch_size = jnp.shape(images)[0]
  shape = (batch_size,) if per_example else ()
  weight = sample_mix_weight(key_weight, alpha=alpha, shape=shape)
  weight = jnp.where(_gate(key_gate, prob, shape), weight, 1.0)
  partners = sample_partners(key_partners, batch_size=batch_size)
  return mixup_with_weight(images, labels, weight=weight, partners=partners)


def cutmix(
  key: Array,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  alpha: ArrayLike = 1.0,
  prob: ArrayLike = 1.0,
  per_example: bool = False,
  correct_lam: bool = True,
  minmax: tuple[float, float] | None = None,
  num_classes: int | None = None,
  smoothing: ArrayLike = 0.0,
) -> tuple[Array, Array]:
  """CutMix: pastes a box of each partner image, mixes labels by area.

  `lambda ~ Beta(alpha, alpha)` and the box follow the official rule (see
  `jaxmix.sample_cutmix_box`). With `correct_lam` the label weight is the
  exact fraction of pixels kept from each example's own image.

  Args:
    key: a PRNG key.
    images: float or uint8 ``[B, H, W, C]`` (CutMix only selects pixels, so
      it may run before normalisation; the output is then uint8, equal to
      the float path's cast back).
    labels: dense float ``[B, K]``.
    alpha: Beta concentration, > 0 (1.0 in the CutMix paper). May be traced.
    prob: probability of mixing at all, per batch (or per example when
      `per_example`); 1.0 for ImageNet and 0.5 for CIFAR in the paper. May be
      traced.
    per_example: one lambda, box and gate per example instead of one per
      batch (timm's `elem` mode). Static.
    correct_lam: weight labels by the kept-pixel fraction (default) instead
      of the sampled lambda. Static.
    minmax: optional `(min, max)` box side fractions (timm's
      `cutmix_minmax`); replaces the Beta draw, and labels are always weighted
      by area. Static.
    num_classes: K, when `labels` are integer class indices ``[B]``: they are
      one-hot encoded (and smoothed) first. Static.
    smoothing: label smoothing of integer labels, in [0, 1]. May be traced.

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
  checks.check_key(key)
  labels = class_labels.dense_labels(labels, num_classes, smoothing)
  select_inputs.check_select_batch(images, labels)
  checks.check_positive('alpha', alpha)
  checks.check_probability('prob', prob)
  batch_size, height, width, _ = jnp.shape(images)
  box, partners, weight = sample_cutmix(
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
  return cutmix_with_box(
    images, labels, box=box, partners=partners, weight=weight
  )


def sample_cutmix(
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
) -> tuple[boxes_lib.Box, Array, Array | None]:
  """Samples everything `cutmix` draws: the box, the partners, the weight.

  Together with `cutmix_with_box` this is `cutmix`; on its own it lets other
  ops (ReLabel's localised CutMix) paste exactly the same box.

  Args:
    key: a PRNG key.
    batch_size: B. Static.
    height: image height H. Static.
    width: image width W. Static.
    alpha: Beta concentration, > 0. May be traced.
    prob: probability of mixing. May be traced.
    per_example: one box and gate per example. Static.
    correct_lam: label weights from the box area (returns `None`). Static.
    minmax: optional `(min, max)` box side fractions. Static.

  Returns:
    `(box, partners, weight)`: the `Box` (empty where not mixed), int32
    partners ``[B]``, and the label weight to pass to `cutmix_with_box`
    (`None` for the kept-pixel fraction).

  Examples:
    >>> import jax
    >>> box, partners, weight = sample_cutmix(
    ...     jax.random.key(0), batch_size=4, height=8, width=8)
    >>> partners.shape, weight is None
    ((4,), True)
  """
  checks.check_key(key)
  key_weight, key_box, key_gate, key_partners = jax.random.split(key, 4)
  shape = (batch_size,) if per_example else ()
  apply = _gate(key_gate, prob, shape)
  weight = None
  if minmax is None:
    lam = sample_mix_weight(key_weight, alpha=alpha, shape=shape)
    box = boxes_lib.sample_cutmix_box(
      key_box, height=height, width=width, weight=lam
    )
    if not correct_lam:
      weight = jnp.where(apply, lam, 1.0)
  else:
    box = boxes_lib.sample_cutmix_box_minmax(
      key_box, height=height, width=width, minmax=minmax, shape=shape
    )
  partners = sample_partners(key_partners, batch_size=batch_size)
  return _empty_unless(apply, box), partners, weight
