"""Labels: one-hot encoding, label smoothing, class-id checks and the losses.

Every jaxmix op works on dense float labels `[B, K]` (one-hot, smoothed or
soft ReLabel targets), so mixing composes with any of them. Smoothing is
affine with weights that sum to one, so smoothing before or after mixing gives
the same targets.

With many classes the dense array is large (batch 4,096 x 21,843
ImageNet-21k classes is 358 MB in float32), and it carries no more than two
classes and a weight per example. So the ops also take integer labels
``[B]`` with `num_classes` (and `smoothing`), and `mixed_cross_entropy`
computes the mixed loss from the integer labels and the draw without
building any ``[B, K]`` target (`two_target_cross_entropy` from the two
labels and the weight, once the partners' labels are gathered).

Class ids. Integer labels outside ``[0, K)`` would give an all-zero (or
all-`smoothing / K`) row that contaminates the partner's mixed row, or wrap
to another class in a gather. Concrete labels (outside `jit`) are checked by
every op and loss that takes them, with a `ValueError` naming the positions
and values. Traced labels cannot raise; check them with `check_class_ids`
under `jax.experimental.checkify.checkify` (or before the step, on the
host).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify
from jax.typing import ArrayLike

from jaxmix._src import checks, draws

Array = jax.Array


def smooth_labels(labels: ArrayLike, smoothing: ArrayLike) -> jax.Array:
  """Label smoothing: `labels * (1 - smoothing) + smoothing / K`.

  Args:
    labels: float targets ``[..., K]``; each row sums to one.
    smoothing: mass moved to the uniform distribution, in [0, 1]. May be
      traced.

  Returns:
    Smoothed targets with the shape and dtype of `labels`; rows still sum to
    one.

  Examples:
    >>> import jax.numpy as jnp
    >>> smooth_labels(jnp.array([[0.0, 1.0]]), 0.5).tolist()
    [[0.25, 0.75]]

  References:
    Szegedy et al., Rethinking the Inception Architecture for Computer Vision,
    https://arxiv.org/abs/1512.00567
  """
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.floating):
    raise TypeError(
      f'`labels` must be float [..., K], got dtype {labels.dtype}; use '
      'jaxmix.one_hot(labels, num_classes, smoothing=...) for integer labels.'
    )
  checks.check_probability('smoothing', smoothing)
  num_classes = labels.shape[-1]
  smoothed = labels * (1.0 - smoothing) + smoothing / num_classes
  return smoothed.astype(labels.dtype)


def one_hot(
  labels: ArrayLike,
  num_classes: int,
  *,
  smoothing: ArrayLike = 0.0,
  dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
  """Integer class labels to dense (optionally smoothed) targets.

  Args:
    labels: integer class indices ``[B]`` (any leading shape), in
      ``[0, num_classes)``. Out-of-range indices give an all-`smoothing / K`
      row, as `jax.nn.one_hot` does (the ops check them first).
    num_classes: K, the number of classes. Static.
    smoothing: label smoothing in [0, 1]; 0 gives exact one-hot rows. May be
      traced.
    dtype: float dtype of the result. Static.

  Returns:
    Dense targets ``[B, K]`` whose rows sum to one.

  Examples:
    >>> import jax.numpy as jnp
    >>> one_hot(jnp.array([2, 0]), 3)
    Array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
  """
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(
      f'`labels` must hold integer class indices, got dtype {labels.dtype} '
      f'and shape {labels.shape}.'
    )
  checks.check_int('num_classes', num_classes)
  targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  return smooth_labels(targets, smoothing).astype(dtype)


def soft_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
  """Cross-entropy against dense targets, per example.

  `-sum_k labels[b, k] * log_softmax(logits[b])[k]`, computed in float32.
  Because it is linear in the target, a mixed target `w * y_a + (1 - w) * y_b`
  gives `w * CE(y_a) + (1 - w) * CE(y_b)`, the loss of the CutMix and Mixup
  papers.

  Args:
    logits: unnormalised scores ``[B, K]``.
    labels: dense float targets ``[B, K]`` (rows sum to one).

  Returns:
    Per-example losses ``[B]`` in float32.

  Examples:
    >>> import jax.numpy as jnp
    >>> loss = soft_cross_entropy(jnp.zeros((1, 4)), jnp.full((1, 4), 0.25))
    >>> round(float(loss[0]), 4)
    1.3863
  """
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels)
  if logits.ndim != 2 or logits.shape != labels.shape:
    raise ValueError(
      '`logits` and `labels` must both be [B, K] with the same shape, got '
      f'{logits.shape} and {labels.shape}.'
    )
  if not jnp.issubdtype(labels.dtype, jnp.floating):
    raise TypeError(
      f'`labels` must be dense float targets, got dtype {labels.dtype}.'
    )
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.sum(labels.astype(jnp.float32) * log_probs, axis=-1)


def check_class_ids(
  labels: ArrayLike, num_classes: int, *, name: str = 'labels'
) -> Array:
  """Checks that class ids lie in ``[0, num_classes)``.

  Concrete labels raise at once. Traced labels (inside `jit`, `vmap`,
  `pmap`) are checked with `jax.experimental.checkify.check`, so the caller
  must be functionalised by `checkify.checkify` (e.g.
  `checkify.checkify(step, errors=checkify.user_checks)`), which returns the
  error beside the step's outputs; `err.throw()` raises it on the host.

  Args:
    labels: integer class ids of any shape.
    num_classes: K. Static.
    name: the argument's name, for the message.

  Returns:
    `labels`, unchanged.

  Raises:
    ValueError: concrete ids outside the range, naming (the first ten of)
      their positions and values.

  Examples:
    >>> import jax.numpy as jnp
    >>> check_class_ids(jnp.array([0, 2]), 3).tolist()
    [0, 2]
  """
  if isinstance(labels, jax.core.Tracer):
    labels = jnp.asarray(labels)
    bad = ((labels < 0) | (labels >= num_classes)).ravel()
    first = jnp.argmax(bad)
    checkify.check(
      ~bad.any(),
      f'`{name}` holds class ids outside [0, {num_classes}): value {{value}} '
      'at flat position {position}',
      value=labels.ravel()[first],
      position=first,
    )
    return labels
  _check_if_concrete(labels, num_classes, name)
  return labels


def _check_if_concrete(labels: ArrayLike, num_classes: int, name: str) -> None:
  """`check_class_ids` where `labels` are concrete; traced ones pass."""
  if isinstance(labels, jax.core.Tracer):
    return
  values = np.asarray(labels)
  bad = np.argwhere((values < 0) | (values >= num_classes))
  if bad.size:
    positions = [tuple(int(i) for i in p) for p in bad[:10]]
    found = [int(values[p]) for p in positions]
    if values.ndim == 1:
      positions = [p[0] for p in positions]
    raise ValueError(
      f'`{name}` must hold class ids in [0, {num_classes}), got {found} at '
      f'positions {positions} ({len(bad)} out of range in all).'
    )


def dense_labels(
  labels: ArrayLike, num_classes: int | None, smoothing: ArrayLike
) -> Array:
  """`labels` as the ops' dense targets: one-hot (smoothed) when integer.

  With `num_classes=None` the labels are returned as given (they must then
  already be dense); otherwise they must be integer ``[B]``.
  """
  if num_classes is None:
    if checks.is_number(smoothing) and smoothing != 0:
      raise ValueError(
        '`smoothing` applies to integer labels and needs `num_classes`; '
        'smooth dense labels with jaxmix.smooth_labels.'
      )
    return labels
  if jnp.ndim(labels) != 1 or not jnp.issubdtype(
    jnp.result_type(labels), jnp.integer
  ):
    raise ValueError(
      '`labels` must be integer class indices [B] when `num_classes` is '
      f'given, got shape {jnp.shape(labels)} and dtype '
      f'{jnp.result_type(labels)}.'
    )
  _check_if_concrete(labels, num_classes, 'labels')
  return one_hot(labels, num_classes, smoothing=smoothing)


def mixed_cross_entropy(
  logits: ArrayLike,
  labels: ArrayLike,
  draw: draws.MixDraw,
  *,
  smoothing: ArrayLike = 0.0,
) -> Array:
  """The mixed loss from integer labels: `w CE(y) + (1 - w) CE(y[partner])`.

  Equal to `jaxmix.soft_cross_entropy(logits, mixed_targets)` for the dense
  targets the op would have built (one-hot, smoothed by `smoothing`, mixed
  with `draw.weight`), because cross-entropy is linear in its target; but
  only `logsumexp` and two gathered logits per example are computed. With
  smoothing `s`, `CE = (1 - s) * (lse - z[y]) + s * (lse - mean(z))`.

  Args:
    logits: unnormalised scores ``[B, K]``.
    labels: integer class indices ``[B]`` in ``[0, K)``.
    draw: the `MixDraw` the batch was mixed with.
    smoothing: label smoothing in [0, 1]. May be traced.

  Returns:
    float32 per-example losses ``[B]``.

  Examples:
    >>> import jax, jax.numpy as jnp, jaxmix
    >>> draw = jaxmix.sample_mixup(jax.random.key(0), batch_size=2, alpha=1.0)
    >>> logits, labels = jnp.zeros((2, 4)), jnp.array([0, 3])
    >>> [round(float(v), 4) for v in mixed_cross_entropy(logits, labels, draw)]
    [1.3863, 1.3863]
  """
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels)
  if logits.ndim != 2:
    raise ValueError(f'`logits` must be [B, K], got shape {logits.shape}.')
  batch = logits.shape[0]
  if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
      f'`labels` must be integer class indices of shape ({batch},), got '
      f'shape {labels.shape} and dtype {labels.dtype}.'
    )
  if not isinstance(draw, draws.MixDraw):
    raise TypeError(f'`draw` must be a jaxmix.MixDraw, got {type(draw)}.')
  if draw.partners.shape != (batch,):
    raise ValueError(
      f'`draw` must be a jaxmix.MixDraw for a batch of {batch}, got one for '
      f'partners of shape {draw.partners.shape}.'
    )
  return two_target_cross_entropy(
    logits,
    labels,
    labels[draw.partners],
    draw.weight,
    smoothing=smoothing,
  )


def two_target_cross_entropy(
  logits: ArrayLike,
  labels: ArrayLike,
  partner_labels: ArrayLike,
  weight: ArrayLike,
  *,
  smoothing: ArrayLike = 0.0,
) -> Array:
  """The two-target loss `w CE(a) + (1 - w) CE(b)` of integer labels.

  The form of `mixed_cross_entropy` once the partners' labels are gathered
  (where the draw was applied, e.g. inside each device's shard under
  `jaxmix.per_shard`, whose partner indices are local to the shard). Each
  `CE` is against the one-hot target smoothed by `smoothing`, K being the
  logits' last axis; no ``[B, K]`` target is built.

  Args:
    logits: unnormalised scores ``[B, K]``.
    labels: integer class indices ``[B]``, each example's own label.
    partner_labels: integer class indices ``[B]``, its partner's label.
    weight: the share of the own label, a scalar or ``[B]``.
    smoothing: label smoothing in [0, 1]. May be traced.

  Returns:
    float32 per-example losses ``[B]``.

  Examples:
    >>> import jax.numpy as jnp
    >>> logits = jnp.log(jnp.array([[0.5, 0.25, 0.25]]))
    >>> loss = two_target_cross_entropy(logits, jnp.array([0]),
    ...                                 jnp.array([1]), 0.5)
    >>> round(float(loss[0]), 4)  # (ln 2 + ln 4) / 2
    1.0397
  """
  logits = jnp.asarray(logits)
  if logits.ndim != 2:
    raise ValueError(f'`logits` must be [B, K], got shape {logits.shape}.')
  batch = logits.shape[0]
  for name, value in (('labels', labels), ('partner_labels', partner_labels)):
    value = jnp.asarray(value)
    if value.shape != (batch,) or not jnp.issubdtype(value.dtype, jnp.integer):
      raise ValueError(
        f'`{name}` must be integer class indices of shape ({batch},), got '
        f'shape {value.shape} and dtype {value.dtype}.'
      )
    _check_if_concrete(value, logits.shape[1], name)
  weight = jnp.asarray(weight, jnp.float32)
  if weight.shape not in ((), (batch,)):
    raise ValueError(
      f'`weight` must be a scalar or have shape ({batch},), got {weight.shape}.'
    )
  checks.check_probability('smoothing', smoothing)
  logits = logits.astype(jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  smooth_part = lse - logits.mean(axis=-1)

  def loss_of(classes):
    classes = jnp.asarray(classes)
    picked = jnp.take_along_axis(logits, classes[:, None], axis=-1)[:, 0]
    return (1.0 - smoothing) * (lse - picked) + smoothing * smooth_part

  return weight * loss_of(labels) + (1.0 - weight) * loss_of(partner_labels)
