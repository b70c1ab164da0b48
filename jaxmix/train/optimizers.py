"""Optimisers of the jaxmix recipes: SGD, AdamW and AdamP, as optax transforms.

* 'sgd': torch-style SGD with (Nesterov) momentum and *coupled* L2 weight
  decay, `g <- g + wd * p` before the momentum, as `torch.optim.SGD` does.
* 'adamw': `optax.adamw`, decoupled decay `p <- p - lr * wd * p`.
* 'adamp': AdamP (Heo et al., ICLR 2021), the optimiser of the ReLabel +
  CutMix ResNet-50 recipe; decoupled decay.
* 'rmsproptf': timm's `RMSpropTF` (TensorFlow 1's RMSProp), the optimiser of
  timm's EfficientNet recipes: coupled L2 decay, squared-gradient average
  (decay `b2`, default 0.9) started at 1, `g / sqrt(avg + eps)` with `eps`
  inside the root, the learning rate applied before the momentum buffer
  (`buf <- momentum * buf + lr * step`), as timm's `lr_in_momentum`.

AdamP removes the radial (norm-increasing) component of the Adam step for
weights that are scale-invariant, i.e. followed by a normalisation layer. A
weight is taken to be scale-invariant when its gradient is nearly orthogonal
to it: `max |cos(g, p)| < delta / sqrt(d)`, tested first per output channel
(channel view, `d` = fan-in of a channel) and then over the whole tensor
(layer view, `d` = size). Only parameters with `ndim > 1` are tested.

Output channel axis: torch stores conv weights `[O, I, kh, kw]` and linear
weights `[O, I]`, so AdamP's channel view is `weight.view(O, -1)` (dim 0).
Flax stores conv kernels `[kh, kw, I, O]` (HWIO) and dense kernels `[I, O]`,
so the output channel is the *last* axis and the channel view here is
`kernel.reshape(-1, O)`, reducing over axis 0. This is the axis a following
BatchNorm normalises, which is what makes each output channel's filter
scale-invariant, so it is the right axis and matches torch's choice exactly.
The same rule (last axis) is used for every `ndim > 1` parameter; for
parameters that are not kernels (a ViT's `[1, N, D]` position embedding) it
differs from torch, whose dim 0 there has size 1.

Weight-decay masks: 'all' decays every parameter (the ReLabel and CutMix
recipes); 'no_bias_norm' skips parameters with `ndim <= 1` (biases, BatchNorm
and LayerNorm scales and offsets) and a ViT's `cls_token` and `pos_embed`.
"""

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

DECAY_MASKS = ('all', 'no_bias_norm')
_NO_DECAY_NAMES = frozenset({'cls_token', 'pos_embed'})


def _path_names(path: tuple) -> set[str]:
  names = set()
  for entry in path:
    for attr in ('key', 'name'):
      value = getattr(entry, attr, None)
      if isinstance(value, str):
        names.add(value)
  return names


def _check_mask_kind(kind: str) -> None:
  if kind not in DECAY_MASKS:
    raise ValueError(
      f'`decay_mask` must be one of {DECAY_MASKS}, got {kind!r}.'
    )


def weight_decay_mask(params: Any, kind: str = 'no_bias_norm') -> Any:
  """Which parameters get weight decay.

  Args:
    params: a pytree of arrays (an `nnx.State` of `nnx.Param`s or a dict).
    kind: 'all' or 'no_bias_norm' (no decay on `ndim <= 1` parameters and
      on ViT `cls_token` / `pos_embed`).

  Returns:
    A pytree of Python bools with the structure of `params`.
  """
  _check_mask_kind(kind)

  def decays(path, leaf) -> bool:
    if kind == 'all':
      return True
    return jnp.ndim(leaf) > 1 and not _path_names(path) & _NO_DECAY_NAMES

  return jax.tree_util.tree_map_with_path(decays, params)


class ScaleByAdamPState(NamedTuple):
  """AdamP state: int32 step count and the two moment estimates."""

  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def _cosine(x: jax.Array, y: jax.Array, axis, eps: float) -> jax.Array:
  """|cos(x, y)| along `axis`, each norm clamped at `eps` (as torch does)."""
  nx = jnp.maximum(jnp.linalg.norm(x, axis=axis), eps)
  ny = jnp.maximum(jnp.linalg.norm(y, axis=axis), eps)
  return jnp.abs(jnp.sum(x * y, axis=axis)) / (nx * ny)


def _remove_radial(p: jax.Array, u: jax.Array, axis, eps: float) -> jax.Array:
  """`u - p_hat <p_hat, u>` with `p_hat = p / (|p| + eps)` along `axis`."""
  p_hat = p / (jnp.linalg.norm(p, axis=axis, keepdims=True) + eps)
  return u - p_hat * jnp.sum(p_hat * u, axis=axis, keepdims=True)


def adamp_projection(
  param: jax.Array,
  grad: jax.Array,
  perturb: jax.Array,
  delta: float,
  eps: float,
) -> tuple[jax.Array, jax.Array]:
  """AdamP's projection of one `ndim > 1` parameter's step.

  Args:
    param: the weight, e.g. a conv kernel `[kh, kw, I, O]` or `[I, O]`.
    grad: its gradient, same shape.
    perturb: the Adam direction `m_hat / (sqrt(v_hat) + eps)`, same shape.
    delta: the threshold constant (0.1).
    eps: the Adam epsilon, also used in the norms.

  Returns:
    `(perturb, projected)`: the step with its radial part removed where the
    channel or the layer test fires, and a bool scalar saying whether it did.
  """
  shape = param.shape
  p, g, u = (a.reshape(-1, shape[-1]) for a in (param, grad, perturb))
  channel_fires = jnp.max(_cosine(g, p, 0, eps)) < delta / math.sqrt(p.shape[0])
  layer_fires = _cosine(g, p, None, eps) < delta / math.sqrt(p.size)
  channel = _remove_radial(p, u, 0, eps)
  layer = _remove_radial(p, u, None, eps)
  out = jnp.where(channel_fires, channel, jnp.where(layer_fires, layer, u))
  return out.reshape(shape), channel_fires | layer_fires


def adamp(
  learning_rate: optax.ScalarOrSchedule,
  *,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  weight_decay: float = 0.0,
  delta: float = 0.1,
  wd_ratio: float = 0.1,
  nesterov: bool = False,
  mask: Any = None,
) -> optax.GradientTransformation:
  """AdamP (Heo et al., ICLR 2021) with decoupled weight decay.

  Per parameter `p` with gradient `g`, at step `t` (from 1):
  `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
  `denom = sqrt(v) / sqrt(1 - b2^t) + eps`,
  `perturb = m / denom` (Nesterov: `(b1 m + (1 - b1) g) / denom`);
  for `ndim > 1` the projection (`adamp_projection`) may remove the radial
  part of `perturb` and then scales the decay by `wd_ratio`;
  `p <- p (1 - lr wd ratio) - lr / (1 - b1^t) perturb`.

  Args:
    learning_rate: a float or an optax schedule (called with the number of
      updates done so far, 0 for the first).
    b1: first-moment decay.
    b2: second-moment decay.
    eps: added to the denominator and to norms.
    weight_decay: decoupled decay coefficient (multiplied by the lr).
    delta: scale-invariance threshold constant.
    wd_ratio: decay multiplier for projected parameters.
    nesterov: use the Nesterov momentum direction.
    mask: which parameters get weight decay: None (all), a pytree of bools
      like the params, or a callable `params -> pytree of bools`. Masked-out
      parameters are still projected.

  Returns:
    An `optax.GradientTransformation`; `update` needs `params`.
  """
  for name, value in (('b1', b1), ('b2', b2)):
    if not 0.0 <= value < 1.0:
      raise ValueError(f'`{name}` must be in [0, 1), got {value}.')
  if eps <= 0 or delta <= 0:
    raise ValueError(f'`eps` and `delta` must be > 0, got {eps}, {delta}.')
  if weight_decay < 0 or not 0.0 <= wd_ratio <= 1.0:
    raise ValueError(
      '`weight_decay` must be >= 0 and `wd_ratio` in [0, 1], got '
      f'{weight_decay} and {wd_ratio}.'
    )

  def init_fn(params):
    zeros = lambda p: jnp.zeros(jnp.shape(p), jnp.float32)  # noqa: E731
    return ScaleByAdamPState(
      count=jnp.zeros((), jnp.int32),
      mu=jax.tree.map(zeros, params),
      nu=jax.tree.map(zeros, params),
    )

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
        'adamp needs `params` in `update(grads, state, params)`.'
      )
    lr = (
      learning_rate(state.count) if callable(learning_rate) else learning_rate
    )
    count = state.count + 1
    bc1 = 1.0 - b1 ** count.astype(jnp.float32)
    bc2 = 1.0 - b2 ** count.astype(jnp.float32)
    decay_mask = mask(params) if callable(mask) else mask
    if decay_mask is None:
      decay_mask = jax.tree.map(lambda _: True, params)

    def one(g, m, v, p, decays):
      g32, p32 = g.astype(jnp.float32), p.astype(jnp.float32)
      m = b1 * m + (1.0 - b1) * g32
      v = b2 * v + (1.0 - b2) * g32 * g32
      denom = jnp.sqrt(v) / jnp.sqrt(bc2) + eps
      perturb = (b1 * m + (1.0 - b1) * g32 if nesterov else m) / denom
      ratio = 1.0
      if p.ndim > 1:
        perturb, projected = adamp_projection(p32, g32, perturb, delta, eps)
        ratio = jnp.where(projected, wd_ratio, 1.0)
      decay = weight_decay * ratio * jnp.asarray(decays, jnp.float32)
      step = -lr * (perturb / bc1 + decay * p32)
      return step.astype(p.dtype), m, v

    out = jax.tree.map(one, updates, state.mu, state.nu, params, decay_mask)
    treedef = jax.tree.structure(updates)
    steps, mu, nu = (
      jax.tree.unflatten(treedef, leaves)
      for leaves in zip(*treedef.flatten_up_to(out))
    )
    return steps, ScaleByAdamPState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


OPTIMIZERS = ('sgd', 'adamw', 'adamp', 'rmsproptf')


def _field(config: Any, name: str, default: Any) -> Any:
  return config.get(name, default)


def create_optimizer(
  optimizer_config: Any, learning_rate: optax.ScalarOrSchedule
) -> optax.GradientTransformation:
  """Builds the optimiser a config names.

  Args:
    optimizer_config: `ml_collections.ConfigDict` (or dict) with `name`
      (one of `OPTIMIZERS`), `weight_decay`, `decay_mask` ('all' |
      'no_bias_norm'), `momentum` and `nesterov` (SGD; `nesterov` also for
      AdamP), `b1`, `b2`, `eps` (AdamW, AdamP; `b2` and `eps`
      for RMSpropTF too), `delta`, `wd_ratio` (AdamP).
      `learning_rate` and `ema_decay` are read by the trainer, not here.
    learning_rate: a float or an optax schedule.

  Returns:
    An `optax.GradientTransformation` (its `update` needs `params`).
  """
  name = _field(optimizer_config, 'name', None)
  weight_decay = float(_field(optimizer_config, 'weight_decay', 0.0))
  if weight_decay < 0:
    raise ValueError(
      f'`optimizer.weight_decay` must be >= 0, got {weight_decay}.'
    )
  kind = _field(optimizer_config, 'decay_mask', 'all')
  _check_mask_kind(kind)
  mask = (
    None if kind == 'all' else functools.partial(weight_decay_mask, kind=kind)
  )
  nesterov = bool(_field(optimizer_config, 'nesterov', True))
  b1 = _field(optimizer_config, 'b1', 0.9)
  b2 = _field(optimizer_config, 'b2', 0.999)
  eps = _field(optimizer_config, 'eps', 1e-8)
  if name == 'sgd':
    momentum = float(_field(optimizer_config, 'momentum', 0.9))
    if momentum < 0 or (nesterov and momentum == 0):
      raise ValueError(
        '`optimizer.momentum` must be >= 0, and > 0 with nesterov=True, got '
        f'{momentum} (nesterov={nesterov}).'
      )
    return optax.chain(
      optax.add_decayed_weights(weight_decay, mask),
      optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov),
    )
  if name == 'adamw':
    # Plain AdamW (Loshchilov & Hutter); `nesterov` applies to SGD / AdamP.
    return optax.adamw(
      learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=mask
    )
  if name == 'adamp':
    return adamp(
      learning_rate,
      b1=b1,
      b2=b2,
      eps=eps,
      weight_decay=weight_decay,
      delta=_field(optimizer_config, 'delta', 0.1),
      wd_ratio=_field(optimizer_config, 'wd_ratio', 0.1),
      nesterov=nesterov,
      mask=mask,
    )
  if name == 'rmsproptf':
    return optax.chain(
      optax.add_decayed_weights(weight_decay, mask),
      optax.rmsprop(
        learning_rate,
        decay=_field(optimizer_config, 'b2', 0.9),
        eps=eps,
        initial_scale=1.0,
        eps_in_sqrt=True,
        momentum=float(_field(optimizer_config, 'momentum', 0.9)) or None,
      ),
    )
  raise ValueError(
    f'`optimizer.name` must be one of {OPTIMIZERS}, got {name!r}.'
  )


def ema_update(ema_params: Any, params: Any, decay: float) -> Any:
  """Exponential moving average: `decay * ema + (1 - decay) * params`.

  Args:
    ema_params: the running average, a pytree like `params`.
    params: the current parameters.
    decay: in [0, 1]; 0 copies `params`, 1 keeps `ema_params`. May be traced.

  Returns:
    The new average, with the dtypes of `ema_params`.
  """
  if isinstance(decay, (int, float)) and not 0.0 <= decay <= 1.0:
    raise ValueError(f'`decay` must be in [0, 1], got {decay}.')

  def mix(e, p):
    return (decay * e + (1.0 - decay) * p).astype(e.dtype)

  return jax.tree.map(mix, ema_params, params)


__all__ = [
  'DECAY_MASKS',
  'OPTIMIZERS',
  'ScaleByAdamPState',
  'adamp',
  'adamp_projection',
  'create_optimizer',
  'ema_update',
  'weight_decay_mask',
]
