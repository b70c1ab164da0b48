"""Integer class labels: dense targets for the ops, and a two-target loss.

The ops mix dense targets ``[B, K]``. With many classes that array is large
(batch 4,096 x 21,843 ImageNet-21k classes is 358 MB in float32), and it
carries no more than two classes and a weight per example. So the ops also
take integer labels ``[B]`` with `num_classes` (and `smoothing`), and
`mixed_cross_entropy` computes the mixed loss from the integer labels and
the draw without building any ``[B, K]`` target (`two_target_cross_entropy`
from the two labels and the weight, once the partners' labels are
gathered).
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import draws
from jaxmix._src import labels as labels_lib

Array = jax.Array


def dense_labels(
  labels: ArrayLike, num_classes: int | None, smoothing: ArrayLike
) -> Array:
  """`labels` as the ops' dense targets: one-hot (smoothed) when integer.

  With `num_classes=None` the labels are returned as given (they must then
  already be dense); otherwise they must be integer ``[B]``.
  """
  if num_classes is None:
    if isinstance(smoothing, (int, float)) and smoothing != 0:
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
  return labels_lib.one_hot(labels, num_classes, smoothing=smoothing)


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
    labels: integer class indices ``[B]``.
    draw: the `MixDraw` the batch was mixed with.
    smoothing: label smoothing in [0, 1]. May be traced.

  Returns:
    float32 per-example losses ``[B]``.

  Examples:
    >>> import jax, jax.numpy as jnp, jaxmix
    >>> draw = jaxmix.draw_mixup(jax.random.key(0), batch_size=2, alpha=1.0)
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
  weight = jnp.asarray(weight, jnp.float32)
  if weight.shape not in ((), (batch,)):
    raise ValueError(
      f'`weight` must be a scalar or have shape ({batch},), got {weight.shape}.'
    )
  labels_lib._check_smoothing(smoothing)
  logits = logits.astype(jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  smooth_part = lse - logits.mean(axis=-1)

  def loss_of(classes):
    classes = jnp.asarray(classes)
    picked = jnp.take_along_axis(logits, classes[:, None], axis=-1)[:, 0]
    return (1.0 - smoothing) * (lse - picked) + smoothing * smooth_part

  return weight * loss_of(labels) + (1.0 - weight) * loss_of(partner_labels)
