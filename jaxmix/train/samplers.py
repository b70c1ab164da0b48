"""The library calls the trainer's augmentation makes, in one table.

The trainer never looks an op up by name: `SAMPLERS` maps each pixel
mixing method, and CMO, to the library's `MixDraw` sampler, written out
here; `mix_sampler` turns `config.mix` and `cmo_sampler` turns `config.cmo`
into one function of the key, the shard's sizes and the traced probability.
The occlusions (`cutout`, `random_erasing`) take and return images only. A
rename in the library's vocabulary touches this module alone.
"""

from collections.abc import Callable
from typing import Any, Protocol

import jax

import jaxmix


class Sampler(Protocol):
  """Draws one `jaxmix.MixDraw` for a shard of `batch_size` images."""

  def __call__(
    self,
    key: jax.Array,
    *,
    batch_size: int,
    height: int,
    width: int,
    prob: jax.Array,
  ) -> jaxmix.MixDraw: ...


# config.mix.method (or the op a 'pair' draw runs) -> the library sampler,
# each spending its key exactly as the op of the same name.
SAMPLERS: dict[str, Callable[..., jaxmix.MixDraw]] = {
  'mixup': jaxmix.sample_mixup,
  'cutmix': jaxmix.sample_cutmix,
  'mixup_or_cutmix': jaxmix.sample_mixup_or_cutmix,
  'cmo': jaxmix.sample_cmo,
}
# Samplers that draw no box, and so take no image size.
_SIZELESS = ('mixup',)


def mix_op(config: Any) -> tuple[str, dict[str, Any]]:
  """The sampler `config.mix` draws with (a key of `SAMPLERS`), its knobs.

  Pair mode is an option of Mixup-or-CutMix only; a 'mixup' or 'cutmix'
  run in that mode draws it with the other branch's alpha 0 (timm's way of
  switching a branch off), which is Mixup or CutMix drawn per pair.
  `config.mix.minmax` boxes do not use the CutMix alpha (timm sets it to 1).
  """
  mix = config.mix
  # Manifold Mixup draws as Mixup; it applies the draw to a hidden state.
  method = 'mixup' if mix.method == 'manifold_mixup' else mix.method
  minmax = None if mix.minmax is None else tuple(mix.minmax)
  per_example = mix.draw == 'example'
  if method == 'mixup_or_cutmix' or mix.draw == 'pair':
    mixes_up = method in ('mixup', 'mixup_or_cutmix')
    cuts = method in ('cutmix', 'mixup_or_cutmix')
    return 'mixup_or_cutmix', {
      'mixup_alpha': mix.mixup_alpha if mixes_up else 0.0,
      'cutmix_alpha': mix.cutmix_alpha if cuts else 0.0,
      'switch_prob': mix.switch_prob,
      'per_example': per_example,
      'pairs': mix.draw == 'pair',
      'correct_lam': mix.correct_lam,
      'minmax': minmax if cuts else None,
    }
  if method == 'mixup':
    return 'mixup', {'alpha': mix.mixup_alpha, 'per_example': per_example}
  return 'cutmix', {
    'alpha': mix.cutmix_alpha if minmax is None else 1.0,
    'per_example': per_example,
    'correct_lam': mix.correct_lam,
    'minmax': minmax,
  }


def _bound(name: str, knobs: dict[str, Any]) -> Sampler:
  """`SAMPLERS[name]` with the run's fixed `knobs`, as a `Sampler`."""
  sample = SAMPLERS[name]

  def sampler(key, *, batch_size, height, width, prob):
    size = {} if name in _SIZELESS else {'height': height, 'width': width}
    return sample(key, batch_size=batch_size, prob=prob, **size, **knobs)

  return sampler


def mix_sampler(config: Any) -> Sampler:
  """The sampler of a pixel-mixing `config.mix` (its method validated)."""
  return _bound(*mix_op(config))


def cmo_sampler(config: Any) -> Sampler:
  """CMO's sampler: one box and gate, lambda ~ Beta(`cmo.beta`, `cmo.beta`).

  Its draw pairs by position (identity partners): apply it with the
  minority batch as `jaxmix.apply_draw`'s `partner_tree`.
  """
  return _bound('cmo', {'alpha': float(config.cmo.beta)})


cutout = jaxmix.cutout
random_erasing = jaxmix.random_erasing
