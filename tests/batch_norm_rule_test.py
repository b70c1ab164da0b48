"""torch's BatchNorm running-variance rule as a model option."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmix import models
from jaxmix.models import layers
from jaxmix.train import run_dir


def _norm(on: bool) -> layers.BatchNorm:
  return (
    layers.batch_norm(
      3, dtype=jnp.float32, param_dtype=jnp.float32, rngs=nnx.Rngs(0)
    )
    if not on
    else layers.BatchNorm(
      3,
      momentum=layers.BN_MOMENTUM,
      epsilon=layers.BN_EPSILON,
      unbiased_running_var=True,
      rngs=nnx.Rngs(0),
    )
  )


def _batch():
  return jax.random.normal(jax.random.key(1), (2, 3, 4, 3)) * 2.0 + 1.0


def test_the_running_variance_follows_torchs_rule():
  x = _batch()
  bn = _norm(True)
  bn.var[...] = jnp.array([0.5, 1.0, 2.0])
  y = bn(x)
  flat = np.asarray(x, np.float64).reshape(-1, 3)
  want_var = 0.9 * np.array([0.5, 1.0, 2.0]) + 0.1 * flat.var(0, ddof=1)
  np.testing.assert_allclose(bn.var[...], want_var, rtol=2e-6)
  np.testing.assert_allclose(bn.mean[...], 0.1 * flat.mean(0), rtol=2e-6)
  # The normalisation is flax's (the biased batch variance), as torch's.
  plain = _norm(False)
  np.testing.assert_array_equal(y, plain(x))
  # Eval mode: running averages, no update.
  bn.use_running_average = True
  before = np.asarray(bn.var[...])
  bn(x)
  np.testing.assert_array_equal(bn.var[...], before)


def test_off_is_flax_bit_for_bit():
  x = _batch()
  ours, flax_bn = (
    _norm(False),
    nnx.BatchNorm(3, momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0)),
  )
  np.testing.assert_array_equal(ours(x), flax_bn(x))
  np.testing.assert_array_equal(ours.var[...], flax_bn.var[...])
  flat = np.asarray(x, np.float64).reshape(-1, 3)
  np.testing.assert_allclose(ours.var[...], 0.9 + 0.1 * flat.var(0), rtol=2e-6)


def test_jit_equals_eager():
  x = _batch()
  eager = _norm(True)
  eager(x)
  model = _norm(True)
  graphdef, state = nnx.split(model)

  @jax.jit
  def step(state, x):
    m = nnx.merge(graphdef, state)
    m(x)
    return nnx.state(m)

  got = nnx.merge(graphdef, step(state, x))
  np.testing.assert_allclose(got.var[...], eager.var[...], rtol=1e-6)


def test_models_take_the_option_and_torch_loads_turn_it_on(tmp_path):
  model = models.create_model(
    'resnet18', num_classes=10, rngs=nnx.Rngs(0), unbiased_running_var=True
  )
  norms = [
    m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)
  ]
  assert len(norms) == 20 and all(n.unbiased_running_var for n in norms)
  off = models.create_model('tiny_cnn', num_classes=10, rngs=nnx.Rngs(0))
  assert layers.set_unbiased_running_var(off, False) == 3
  with pytest.raises(ValueError, match="'vit_ti16' has no BatchNorm"):
    models.create_model(
      'vit_ti16', num_classes=10, rngs=nnx.Rngs(0), unbiased_running_var=True
    )
  path = tmp_path / 'r18.safetensors'
  models.save_torch_weights(model, path)
  loaded = models.load_torch_weights('resnet18', path)
  rules = [
    m.unbiased_running_var
    for _, m in nnx.iter_modules(loaded)
    if isinstance(m, layers.BatchNorm)
  ]
  assert len(rules) == 20 and all(rules)


def test_an_old_run_resumes_with_the_flax_rule_it_used():
  """Recorded before the option existed: compared as the flax rule."""
  recorded = {'model': {'name': 'resnet50', 'kwargs': {}}}
  torch_rule = {
    'model': {'name': 'resnet50', 'kwargs': {'unbiased_running_var': True}}
  }
  flax_rule = {
    'model': {'name': 'resnet50', 'kwargs': {'unbiased_running_var': False}}
  }
  assert run_dir.differences(recorded, torch_rule) == {
    'model.kwargs.unbiased_running_var': (False, True)
  }
  assert run_dir.differences(recorded, flax_rule) == {}


# Every model family with BatchNorm, small. The last EfficientNet stages see
# 1x1 maps of 2 images, where torch's factor n / (n - 1) is 2.
FAMILIES = {
  'resnet18': {'width': 8},
  'cifar_resnet': {'depth': 8, 'width': 4},
  'pyramidnet': {'depth': 11, 'alpha': 12, 'bottleneck': True},
  'tiny_cnn': {'width': 4},
  'efficientnet_b0': {},
  'tf_efficientnet_b0': {},
}


@pytest.mark.parametrize('name', FAMILIES)
def test_every_family_takes_torchs_running_variance_rule(name, monkeypatch):
  """Each BatchNorm's running variance against torch's and flax's formula.

  The inputs each BatchNorm saw are recorded; torch's rule averages their
  unbiased variance (ddof 1) into the running variance, flax's the biased.
  """
  seen = {}
  call = layers.BatchNorm.__call__

  def recording(self, x, *args, **kwargs):
    seen[id(self)] = (np.asarray(x, np.float64), np.asarray(self.var[...]))
    return call(self, x, *args, **kwargs)

  monkeypatch.setattr(layers.BatchNorm, '__call__', recording)
  x = jax.random.normal(jax.random.key(2), (2, 32, 32, 3))
  outputs = []
  for ddof in (1, 0):  # unbiased_running_var on, off
    model = models.create_model(
      name,
      num_classes=10,
      rngs=nnx.Rngs(0),
      unbiased_running_var=ddof == 1,
      **FAMILIES[name],
    )
    outputs.append(model(x))
    norms = [
      m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)
    ]
    assert norms and all(isinstance(m, layers.BatchNorm) for m in norms)
    factors = []
    for norm in norms:
      inputs, before = seen[id(norm)]
      flat = inputs.reshape(-1, inputs.shape[-1])
      want = 0.9 * before + 0.1 * flat.var(0, ddof=ddof)
      np.testing.assert_allclose(norm.var[...], want, rtol=1e-4, atol=1e-7)
      factors.append(len(flat) / (len(flat) - 1))
  # The rule changes the running variance only, never the output.
  np.testing.assert_array_equal(outputs[0], outputs[1])
  if 'efficientnet' in name:
    assert max(factors) == 2.0


def test_efficientnets_loaded_from_torch_keep_torchs_rule(tmp_path):
  model = models.create_model(
    'efficientnet_b0', num_classes=10, rngs=nnx.Rngs(0)
  )
  path = tmp_path / 'b0.safetensors'
  models.save_torch_weights(model, path)
  loaded = models.load_torch_weights('efficientnet_b0', path)
  rules = [
    m.unbiased_running_var
    for _, m in nnx.iter_modules(loaded)
    if isinstance(m, nnx.BatchNorm)
  ]
  assert len(rules) == 49 and all(rules)
