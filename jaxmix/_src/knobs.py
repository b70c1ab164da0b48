"""The knobs that jaxmix's samplers and ops share: one definition each.

The mixing knobs, taken under these names and with this meaning by the
samplers and ops of Mixup, CutMix, Mixup-or-CutMix, VideoMix, saliency
CutMix, CMO, MixToken and ReLabel-CutMix:

- `alpha`: the concentration of `lambda ~ Beta(alpha, alpha)`, > 0. May be
  traced: changing it never recompiles; a traced `alpha <= 0` (or NaN),
  outside Beta's domain, means no mixing (weight 1), as timm reads an alpha
  of 0; given as a Python number it is an error.
- `prob`: the probability of mixing at all, per batch (or per example with
  `per_example`). May be traced.
- `per_example`: one lambda, region and gate per example instead of one per
  batch (timm's `'elem'`). Static.
- `axis_name`: under `pmap` or `shard_map` a replicated key draws the same
  lambda, region and partners on every device; name the mapped axis to fold
  each device's index into the key (`jaxmix.device_key`), or use
  `jaxmix.per_shard`. Static.
- `num_classes`, `smoothing` (the ops): integer labels ``[B]`` in
  ``[0, K)`` are one-hot encoded with K = `num_classes` (static) and
  smoothed by `smoothing` in [0, 1] (may be traced) first; concrete labels
  outside ``[0, K)`` raise a `ValueError` naming their positions and values.

ReLabel's pooling knobs (`relabel_targets`, `token_label_targets`,
`relabel_cutmix`): `official_box_order` (see `jaxmix.pool_label_map`;
static) and `temperature`, which divides the pooled logits before the
softmax (1.0 is the official behaviour; may be traced).

Sizes (`batch_size`, `height`, `width`, `num_frames`) and the knobs that
change the program are static. A function's docstring names the shared
knobs it takes and says only what is its own (a paper's value, a default).

How a function takes them: it is written `fn(..., **knobs)` under
`@takes(...)`, which gives it a signature naming each knob, keyword-only
with its default, as if written out: `inspect.signature`, `help`, the API
pages and `jax.jit`'s `static_argnames` see it, a call is bound against it
(an unknown knob is a `TypeError`), and `fn` gets every knob in `knobs`.
"""

import functools
import inspect
from collections.abc import Callable

from jax.typing import ArrayLike

KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
# The sizes a sampler is given; an op reads them off its inputs instead.
SIZES = ('batch_size', 'num_frames', 'height', 'width')
# name: (annotation, default)
SHARED = {
  'alpha': (ArrayLike, 1.0),
  'prob': (ArrayLike, 1.0),
  'per_example': (bool, False),
  'num_classes': (int | None, None),
  'smoothing': (ArrayLike, 0.0),
  'official_box_order': (bool, False),
  'temperature': (ArrayLike, 1.0),
  'axis_name': (str | None, None),
}


def _knobs_of(source: str | Callable, defaults: dict) -> list:
  if callable(source):  # A sampler: its keyword-only knobs but the sizes.
    params = inspect.signature(source).parameters.values()
    return [p for p in params if p.kind is KEYWORD_ONLY and p.name not in SIZES]
  annotation, default = SHARED[source]
  default = defaults.get(source, default)
  return [
    inspect.Parameter(
      source, KEYWORD_ONLY, default=default, annotation=annotation
    )
  ]


def takes(*sources: str | Callable, **defaults) -> Callable:
  """Gives `fn(..., **knobs)` the knobs `sources` (module docstring).

  Args:
    *sources: shared knobs by name, or a sampler whose knobs (its
      keyword-only parameters but the sizes) an op takes, in order.
    **defaults: a default other than the shared one (Mixup's `alpha=0.2`).

  Returns:
    A decorator.
  """

  def decorate(fn: Callable) -> Callable:
    signature = inspect.signature(fn)
    *own, rest = signature.parameters.values()
    if rest.kind is not rest.VAR_KEYWORD:
      raise TypeError(f'{fn.__name__} takes shared knobs: end it in **knobs.')
    taken = [p for source in sources for p in _knobs_of(source, defaults)]
    signature = signature.replace(parameters=own + taken)

    @functools.wraps(fn)
    def with_knobs(*args, **kwargs):
      bound = signature.bind(*args, **kwargs)
      bound.apply_defaults()
      return fn(*bound.args, **bound.kwargs)

    with_knobs.__signature__ = signature
    return with_knobs

  return decorate
