"""Top-k correctness: the one tally of the trainer's eval step and the suites.

Standard ImageNet protocol (both papers): an example is correct at k when
its label is among the k highest logits. Ties are broken by
`jax.lax.top_k` (lower class index first). `jaxmix.train.steps.eval_step`
and `jaxmix.evaluate.metrics.top_k_tally` both count with `top_k_correct`,
so the trainer's logged 'eval/top1' and a suite's 'top1' agree bit for bit.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def top_k_correct(
  logits: jax.Array, labels: jax.Array, ks: Sequence[int]
) -> tuple[jax.Array, ...]:
  """Whether each label is among the `k` highest logits, for each `k`.

  One `jax.lax.top_k` of `max(ks)` serves every `k`.

  Args:
    logits: float `[B, K]`.
    labels: int `[B]` class indices.
    ks: static, each `1 <= k <= K`.

  Returns:
    One bool `[B]` per `k` of `ks`.
  """
  num_classes = logits.shape[-1]
  if not ks or not all(1 <= k <= num_classes for k in ks):
    raise ValueError(f'Every k of ks={ks} must be in [1, {num_classes}].')
  _, top = jax.lax.top_k(logits, max(ks))
  same = top == labels[:, None]
  return tuple(jnp.any(same[:, :k], axis=-1) for k in ks)
