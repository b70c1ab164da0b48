"""MixToken and the token-labeling loss (Jiang et al., LV-ViT).

MixToken is CutMix applied to a ViT's patch embeddings instead of its
pixels: a box drawn on the `h x w` token grid by CutMix's rule (so it is
aligned to tokens by construction), the partner's tokens and token labels
inside it, the class labels mixed by the kept-token fraction. Mixing after
the patch embedding means no token sees pixels of two images.

The token-labeling loss adds to the class token's cross-entropy the mean of
the per-token cross-entropies against the token labels, weighted by
`token_weight` (0.5 in LV-ViT).
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import checks, draws, mixing
from jaxmix._src import labels as labels_lib
from jaxmix._src.knobs import takes

Array = jax.Array


# MixToken draws CutMix's draw on the `h x w` token grid.
sample_mixtoken = mixing.sample_cutmix


@takes('alpha', 'prob', 'per_example', 'axis_name')
def mixtoken(
  key: Array,
  tokens: ArrayLike,
  labels: ArrayLike,
  token_labels: ArrayLike,
  **knobs,
) -> tuple[Array, Array, Array]:
  """MixToken: CutMix on the token grid of tokens and token labels.

  The draw is `sample_mixtoken` with the same key; apply it to other
  per-token arrays with `jaxmix.apply_draw`.

  Args:
    key: a PRNG key.
    tokens: patch embeddings ``[B, h, w, D]`` (reshape ``[B, h * w, D]``
      sequences first; the class token is not mixed).
    labels: dense float ``[B, K]`` class targets.
    token_labels: ``[B, h, w, ...]`` per-token targets (soft ``[B, h, w,
      K]`` or integer ``[B, h, w]``).
    alpha, prob, per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.

  Returns:
    `(tokens, labels, token_labels)` with the input shapes and dtypes; the
    class labels weighted by the kept-token fraction.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> tokens, labels = jnp.ones((2, 4, 4, 8)), jnp.eye(2)
    >>> token_labels = jnp.broadcast_to(labels[:, None, None], (2, 4, 4, 2))
    >>> t, y, ty = mixtoken(jax.random.key(0), tokens, labels, token_labels)
    >>> bool(jnp.allclose(y, ty.mean((1, 2))))  # labels follow the tokens
    True

  References:
    Jiang et al., All Tokens Matter: Token Labeling for Training Better
    Vision Transformers, https://arxiv.org/abs/2104.10858
  """
  checks.check_key(key)
  tokens, token_labels = jnp.asarray(tokens), jnp.asarray(token_labels)
  if tokens.ndim != 4:
    raise ValueError(
      f'`tokens` must be [B, h, w, D] (reshape [B, N, D] to the grid), got '
      f'shape {tokens.shape}.'
    )
  checks.check_labels(labels, tokens.shape[0])
  if token_labels.shape[:3] != tokens.shape[:3]:
    raise ValueError(
      f'`token_labels` must be [B, h, w, ...] = {tokens.shape[:3]} + ..., got '
      f'shape {token_labels.shape}.'
    )
  batch_size, height, width, _ = tokens.shape  # The token grid.
  draw = sample_mixtoken(
    key, batch_size=batch_size, height=height, width=width, **knobs
  )
  return draws.apply_draw(
    (tokens, labels, token_labels), draw, roles=('mask', 'target', 'mask')
  )


def token_labeling_loss(
  class_logits: ArrayLike,
  token_logits: ArrayLike,
  labels: ArrayLike,
  token_labels: ArrayLike,
  *,
  token_weight: ArrayLike = 0.5,
) -> Array:
  """Class-token cross-entropy plus `token_weight` x the mean token one.

  Args:
    class_logits: ``[B, K]`` logits of the class token.
    token_logits: ``[B, h, w, K]`` (or ``[B, N, K]``) logits of the
      auxiliary head on every patch token.
    labels: dense float ``[B, K]`` class targets.
    token_labels: dense float targets of `token_logits`' shape.
    token_weight: weight of the token term (0.5 in LV-ViT). May be traced.

  Returns:
    float32 per-example losses ``[B]``.

  Examples:
    >>> import jax.numpy as jnp
    >>> loss = token_labeling_loss(jnp.zeros((1, 2)), jnp.zeros((1, 3, 2)),
    ...     jnp.array([[1.0, 0.0]]), jnp.full((1, 3, 2), 0.5))
    >>> round(float(loss[0]), 4)  # log 2 * (1 + 0.5)
    1.0397
  """
  token_logits = jnp.asarray(token_logits)
  token_labels = jnp.asarray(token_labels)
  if token_logits.shape != token_labels.shape or token_logits.ndim < 3:
    raise ValueError(
      '`token_logits` and `token_labels` must both be [B, ..., K] with the '
      f'same shape, got {token_logits.shape} and {token_labels.shape}.'
    )
  class_loss = labels_lib.soft_cross_entropy(class_logits, labels)
  batch, classes = token_logits.shape[0], token_logits.shape[-1]
  per_token = labels_lib.soft_cross_entropy(
    token_logits.reshape(-1, classes), token_labels.reshape(-1, classes)
  )
  return class_loss + token_weight * per_token.reshape(batch, -1).mean(-1)
