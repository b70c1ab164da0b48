"""Dense label targets: one-hot encoding, label smoothing and the soft loss.

Every jaxmix op works on dense float labels `[B, K]` (one-hot, smoothed or
soft ReLabel targets), so mixing composes with any of them. Smoothing is
affine with weights that sum to one, so smoothing before or after mixing gives
the same targets.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _check_smoothing(smoothing) -> None:
  if isinstance(smoothing, (int, float)) and not 0.0 <= smoothing <= 1.0:
    raise ValueError(f'`smoothing` must be in [0, 1], got {smoothing}.')


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
  _check_smoothing(smoothing)
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
      row, as `jax.nn.one_hot` does.
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
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(
      f'`num_classes` must be a positive Python int, got {num_classes!r}.'
    )
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
