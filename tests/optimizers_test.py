"""Tests for jaxmix.train.optimizers against NumPy versions of the formulas."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from jaxmix.train import optimizers
from jaxmix.train.optimizers import (
  adamp,
  adamp_projection,
  create_optimizer,
  ema_update,
  weight_decay_mask,
)

RNG = np.random.default_rng(0)


def _params() -> dict[str, np.ndarray]:
  return {
    'conv': RNG.normal(size=(3, 3, 4, 8)),  # HWIO
    'dense': RNG.normal(size=(16, 6)),  # IO
    'layer_case': RNG.normal(size=(5, 4)),
    'bias': RNG.normal(size=(6,)),
  }


# ---------------------------------------------------------------- reference
# AdamP written as in Heo et al.'s torch code, on torch-layout weights
# (output channel first): the Flax kernels are transposed in and out, so the
# test also checks which axis the implementation treats as the channel.


def _to_torch(x):
  return np.moveaxis(x, -1, 0)


def _from_torch(x):
  return np.moveaxis(x, 0, -1)


def _torch_cosine(x, y, eps):
  nx = np.maximum(np.linalg.norm(x, axis=1), eps)
  ny = np.maximum(np.linalg.norm(y, axis=1), eps)
  return np.abs(np.sum(x * y, axis=1)) / (nx * ny)


def _torch_projection(p, grad, perturb, delta, wd_ratio, eps):
  """Returns (perturb, wd, view) with view in {'channel', 'layer', None}."""
  expand = [-1] + [1] * (p.ndim - 1)
  views = {
    'channel': lambda x: x.reshape(x.shape[0], -1),
    'layer': lambda x: x.reshape(1, -1),
  }
  for name, view in views.items():
    cos = _torch_cosine(view(grad), view(p), eps)
    if cos.max() < delta / math.sqrt(view(p).shape[1]):
      p_n = p / (np.linalg.norm(view(p), axis=1).reshape(expand) + eps)
      perturb = perturb - p_n * view(p_n * perturb).sum(1).reshape(expand)
      return perturb, wd_ratio, name
  return perturb, 1.0, None


class ReferenceAdamP:
  """float64 NumPy AdamP; `step` mutates `params` like `optimizer.step()`."""

  def __init__(self, params, *, lr, b1, b2, eps, wd, delta, wd_ratio, nesterov):
    self.params = {k: np.array(v, np.float64) for k, v in params.items()}
    self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
    self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
    self.t = 0
    self.hp = dict(
      lr=lr, b1=b1, b2=b2, eps=eps, wd=wd, delta=delta, wd_ratio=wd_ratio
    )
    self.nesterov = nesterov

  def step(self, grads, decays):
    hp, self.t = self.hp, self.t + 1
    views = {}
    for k, p in self.params.items():
      g = np.asarray(grads[k], np.float64)
      self.m[k] = hp['b1'] * self.m[k] + (1 - hp['b1']) * g
      self.v[k] = hp['b2'] * self.v[k] + (1 - hp['b2']) * g * g
      bc1, bc2 = 1 - hp['b1'] ** self.t, 1 - hp['b2'] ** self.t
      denom = np.sqrt(self.v[k]) / math.sqrt(bc2) + hp['eps']
      if self.nesterov:
        perturb = (hp['b1'] * self.m[k] + (1 - hp['b1']) * g) / denom
      else:
        perturb = self.m[k] / denom
      ratio, views[k] = 1.0, None
      if p.ndim > 1:
        perturb, ratio, views[k] = _torch_projection(
          _to_torch(p),
          _to_torch(g),
          _to_torch(perturb),
          hp['delta'],
          hp['wd_ratio'],
          hp['eps'],
        )
        perturb = _from_torch(perturb)
      if hp['wd'] > 0 and decays[k]:
        p = p * (1 - hp['lr'] * hp['wd'] * ratio)
      self.params[k] = p - hp['lr'] / bc1 * perturb
    return views


def _orthogonal_per_channel(p, noise):
  """`noise` with each output channel's component along `p` removed."""
  p2, n2 = p.reshape(-1, p.shape[-1]), noise.reshape(-1, p.shape[-1])
  p_hat = p2 / np.linalg.norm(p2, axis=0)
  return (n2 - p_hat * np.sum(p_hat * n2, axis=0)).reshape(p.shape)


def _layer_only(p, noise):
  """Per channel correlated with `p`, but the correlations cancel overall."""
  g = _orthogonal_per_channel(p, noise).reshape(-1, p.shape[-1])
  p2 = p.reshape(-1, p.shape[-1])
  signs = np.where(np.arange(p.shape[-1]) % 2 == 0, 1.0, -1.0)
  g = g + signs * p2 / np.sum(p2 * p2, axis=0)  # <g_c, p_c> = +-1
  return g.reshape(p.shape)


def _grads(params, rng):
  return {
    'conv': _orthogonal_per_channel(
      params['conv'], rng.normal(size=params['conv'].shape)
    ),
    'dense': rng.normal(size=params['dense'].shape) + params['dense'],
    'layer_case': _layer_only(
      params['layer_case'], rng.normal(size=params['layer_case'].shape)
    ),
    'bias': rng.normal(size=params['bias'].shape),
  }


# --------------------------------------------------------------------- tests


@pytest.mark.parametrize('nesterov', [False, True])
def test_adamp_matches_numpy_reference(nesterov):
  hp = dict(
    lr=2e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.1, delta=0.1, wd_ratio=0.1
  )
  init = _params()
  reference = ReferenceAdamP(init, nesterov=nesterov, **hp)
  decays = {'conv': True, 'dense': True, 'layer_case': True, 'bias': False}
  tx = adamp(
    hp['lr'],
    b1=hp['b1'],
    b2=hp['b2'],
    eps=hp['eps'],
    weight_decay=hp['wd'],
    delta=hp['delta'],
    wd_ratio=hp['wd_ratio'],
    nesterov=nesterov,
    mask=decays,
  )
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), init)
  state = tx.init(params)
  update = jax.jit(tx.update)
  rng = np.random.default_rng(1)
  for _ in range(4):
    grads = _grads(reference.params, rng)
    views = reference.step(grads, decays)
    # The cases cover every branch of the projection.
    assert views == {
      'conv': 'channel',
      'dense': None,
      'layer_case': 'layer',
      'bias': None,
    }
    grads32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grads)
    updates, state = update(grads32, state, params)
    params = optax.apply_updates(params, updates)
    for k, value in reference.params.items():
      np.testing.assert_allclose(params[k], value, rtol=2e-5, atol=2e-6)
  assert int(state.count) == 4


def test_adamp_projection_removes_radial_part_only_when_orthogonal():
  p = RNG.normal(size=(3, 3, 4, 8))
  perturb = jnp.asarray(RNG.normal(size=p.shape), jnp.float32)
  orthogonal = _orthogonal_per_channel(p, RNG.normal(size=p.shape))
  out, projected = adamp_projection(
    jnp.asarray(p, jnp.float32),
    jnp.asarray(orthogonal, jnp.float32),
    perturb,
    0.1,
    1e-8,
  )
  assert bool(projected)
  # Per output channel (last axis), the step is now orthogonal to the weight.
  radial = np.sum(p.reshape(-1, 8) * np.asarray(out).reshape(-1, 8), axis=0)
  np.testing.assert_allclose(radial, 0.0, atol=1e-4)
  out, projected = adamp_projection(
    jnp.asarray(p, jnp.float32),
    jnp.asarray(p + orthogonal, jnp.float32),  # |cos| ~ 0.3 per channel
    perturb,
    0.1,
    1e-8,
  )
  assert not bool(projected)
  np.testing.assert_array_equal(out, perturb)


def test_adamp_first_step_without_projection_is_adam_plus_decay():
  # g = p: no projection, full decay; first step: perturb = g / (|g| + eps).
  p = {'w': jnp.asarray(RNG.normal(size=(4, 3)), jnp.float32)}
  tx = adamp(1e-2, weight_decay=0.5, nesterov=False)
  updates, _ = tx.update(p, tx.init(p), p)
  expected = -1e-2 * (np.sign(p['w']) + 0.5 * p['w'])
  np.testing.assert_allclose(updates['w'], expected, rtol=1e-5)


def test_adamp_uses_schedule_from_step_zero_and_needs_params():
  p = {'b': jnp.ones((3,))}
  seen = []
  tx = adamp(lambda count: seen.append(count) or 0.0, weight_decay=0.1)
  state = tx.init(p)
  updates, state = tx.update(p, state, p)
  updates, state = tx.update(p, state, p)
  assert [int(c) for c in seen] == [0, 1]
  np.testing.assert_array_equal(updates['b'], 0.0)
  with pytest.raises(ValueError, match='params'):
    tx.update(p, state)
  with pytest.raises(ValueError, match='wd_ratio'):
    adamp(1e-3, wd_ratio=2.0)
  with pytest.raises(ValueError, match='b2'):
    adamp(1e-3, b2=1.0)


def test_sgd_matches_torch_formula_with_coupled_decay_and_mask():
  # torch.optim.SGD: g += wd p; buf = m buf + g; d = g + m buf (nesterov).
  lr, m, wd = 0.1, 0.9, 1e-2
  init = {'kernel': RNG.normal(size=(3, 2)), 'bias': RNG.normal(size=(2,))}
  config = ml_collections.ConfigDict(
    dict(
      name='sgd',
      momentum=m,
      nesterov=True,
      weight_decay=wd,
      decay_mask='no_bias_norm',
    )
  )
  tx = create_optimizer(config, lr)
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), init)
  state = tx.init(params)
  ref = {k: v.copy() for k, v in init.items()}
  buf = {k: np.zeros_like(v) for k, v in init.items()}
  rng = np.random.default_rng(2)
  for _ in range(3):
    grads = {k: rng.normal(size=v.shape) for k, v in init.items()}
    for k in ref:
      g = grads[k] + (wd * ref[k] if k == 'kernel' else 0.0)
      buf[k] = m * buf[k] + g
      ref[k] = ref[k] - lr * (g + m * buf[k])
    g32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grads)
    updates, state = tx.update(g32, state, params)
    params = optax.apply_updates(params, updates)
  for k in ref:
    np.testing.assert_allclose(params[k], ref[k], rtol=1e-5, atol=1e-6)


def test_adamw_matches_formula():
  lr, b1, b2, eps, wd = 1e-2, 0.9, 0.99, 1e-8, 0.05
  p0 = RNG.normal(size=(4, 3))
  config = dict(name='adamw', b1=b1, b2=b2, eps=eps, weight_decay=wd)
  tx = create_optimizer(config, lr)
  params = {'w': jnp.asarray(p0, jnp.float32)}
  state = tx.init(params)
  p, mu, nu = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
  for t in range(1, 4):
    g = RNG.normal(size=p0.shape)
    mu, nu = b1 * mu + (1 - b1) * g, b2 * nu + (1 - b2) * g * g
    step = (mu / (1 - b1**t)) / (np.sqrt(nu / (1 - b2**t)) + eps)
    p = p - lr * (step + wd * p)
    updates, state = tx.update(
      {'w': jnp.asarray(g, jnp.float32)}, state, params
    )
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(params['w'], p, rtol=1e-5, atol=1e-6)


def test_weight_decay_masks_on_nnx_state_and_dicts():
  class Tiny(nnx.Module):
    def __init__(self, rngs):
      self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
      self.norm = nnx.LayerNorm(4, rngs=rngs)
      self.pos_embed = nnx.Param(jnp.zeros((1, 5, 4)))

  params = nnx.state(Tiny(nnx.Rngs(0)), nnx.Param)
  mask = weight_decay_mask(params, 'no_bias_norm')
  flat = {
    tuple(str(getattr(k, 'key', getattr(k, 'name', k))) for k in path): leaf
    for path, leaf in jax.tree_util.tree_flatten_with_path(mask)[0]
  }
  decayed = {
    '/'.join(p for p in path if p != 'value') for path, v in flat.items() if v
  }
  assert decayed == {'conv/kernel'}
  assert all(jax.tree.leaves(weight_decay_mask(params, 'all')))
  assert weight_decay_mask({'cls_token': jnp.ones((1, 1, 4))}) == {
    'cls_token': False
  }
  with pytest.raises(ValueError, match='decay_mask'):
    weight_decay_mask(params, 'none')


@pytest.mark.parametrize('name', ['sgd', 'adamw', 'adamp'])
def test_create_optimizer_runs_on_nnx_state_with_masks(name):
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  params = nnx.state(model, nnx.Param)
  config = dict(name=name, weight_decay=1.0, decay_mask='no_bias_norm')
  tx = create_optimizer(config, 0.1)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
  # Zero gradients: only decay moves the kernel; the bias is never decayed.
  np.testing.assert_array_equal(updates['bias'][...], 0.0)
  assert np.all(np.sign(updates['kernel'][...]) == -np.sign(model.kernel[...]))


@pytest.mark.parametrize(
  'config, match',
  [
    (dict(name='lamb'), 'optimizer.name'),
    (dict(name='sgd', decay_mask='biases'), 'decay_mask'),
    (dict(name='sgd', momentum=0.0, nesterov=True), 'momentum'),
    (dict(name='adamw', weight_decay=-1.0), 'weight_decay'),
  ],
)
def test_create_optimizer_rejects_bad_configs(config, match):
  with pytest.raises(ValueError, match=match):
    create_optimizer(config, 0.1)


def test_sgd_without_momentum():
  tx = create_optimizer(dict(name='sgd', momentum=0.0, nesterov=False), 0.5)
  p = {'w': jnp.ones((2,))}
  updates, _ = tx.update({'w': jnp.full((2,), 2.0)}, tx.init(p), p)
  np.testing.assert_allclose(updates['w'], [-1.0, -1.0])


def test_ema_update():
  ema = {'w': jnp.zeros((2,)), 'b': jnp.ones((), jnp.bfloat16)}
  new = {'w': jnp.full((2,), 10.0), 'b': jnp.zeros((), jnp.bfloat16)}
  out = ema_update(ema, new, 0.9)
  np.testing.assert_allclose(out['w'], [1.0, 1.0], rtol=1e-6)
  assert out['b'].dtype == jnp.bfloat16 and float(out['b']) == 0.8984375
  np.testing.assert_array_equal(ema_update(ema, new, 0.0)['w'], new['w'])
  jitted = jax.jit(ema_update)(ema, new, jnp.float32(0.5))
  np.testing.assert_allclose(jitted['w'], [5.0, 5.0])
  with pytest.raises(ValueError, match='decay'):
    ema_update(ema, new, 1.5)


def test_module_exports():
  assert set(optimizers.__all__) >= {'adamp', 'create_optimizer', 'ema_update'}


def test_rmsproptf_matches_timms_update_rule():
  """timm's RMSpropTF, transcribed: coupled decay, avg from 1, lr in buf."""
  lr, wd, alpha, eps, momentum = 0.016, 1e-5, 0.9, 1e-3, 0.9
  tx = optimizers.create_optimizer(
    dict(name='rmsproptf', weight_decay=wd, b2=alpha, eps=eps, momentum=0.9),
    lr,
  )
  rng = np.random.default_rng(0)
  p = rng.normal(size=(3, 4)).astype(np.float32)
  params, state = jnp.asarray(p), tx.init(jnp.asarray(p))
  square_avg, buf = np.ones_like(p), np.zeros_like(p)
  for _ in range(4):
    g = rng.normal(size=p.shape).astype(np.float32)
    updates, state = tx.update(jnp.asarray(g), state, params)
    params = optax.apply_updates(params, updates)
    g = g + wd * p
    square_avg = alpha * square_avg + (1 - alpha) * g * g
    buf = momentum * buf + lr * g / np.sqrt(square_avg + eps)
    p = p - buf
    np.testing.assert_allclose(params, p, rtol=1e-5, atol=1e-7)
