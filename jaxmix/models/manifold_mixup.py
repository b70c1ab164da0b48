"""Manifold Mixup (Verma et al. 2019): mixing the hidden states of a layer.

Each step draws one mixing point k uniformly from a set (the authors' code
draws k in {0, 1, 2} for its ResNets: the input, and the outputs of the
first and second residual stages) and one mixing draw (`jaxmix.draw_mixup`,
Beta(alpha, alpha)); the network runs unchanged up to point k, the hidden
state there is mixed with its partners' by the draw
(`jaxmix.apply_draw(h, draw, roles='image')`), the rest of the network runs
on the mixed state, and the targets are mixed with the same weight
(`roles='target'`). With k = 0 this is input Mixup.

The models take the point and the mixing function as arguments
(`ResNet.__call__(x, mix_at=k, mix_fn=fn)`), so k may be traced: every
point applies `fn` and keeps it where it is the drawn one, with static
shapes under `jit`.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

# The authors' set for ResNets: input, after stage 1, after stage 2.
MANIFOLD_MIXUP_LAYERS = (0, 1, 2)

MixFn = Callable[[jax.Array], jax.Array]


def draw_mix_layer(
  key: jax.Array, layers: Sequence[int] = MANIFOLD_MIXUP_LAYERS
) -> jax.Array:
  """One mixing point, uniform over `layers` (int32 scalar)."""
  if not layers or any(k < 0 for k in layers):
    raise ValueError(
      f'`layers` must be non-empty mixing points >= 0, got {tuple(layers)}.'
    )
  choices = jnp.asarray(tuple(layers), jnp.int32)
  return choices[jax.random.randint(key, (), 0, len(choices))]


def mix_if_at(
  x: jax.Array, point: int, mix_at: jax.Array | None, mix_fn: MixFn | None
) -> jax.Array:
  """`mix_fn(x)` where `point` is the drawn `mix_at`, `x` elsewhere."""
  if mix_fn is None or mix_at is None:
    return x
  return jnp.where(jnp.asarray(mix_at) == point, mix_fn(x).astype(x.dtype), x)
