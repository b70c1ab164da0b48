"""ConvNeXt: timm's layout, logits equal to timm's, drop path, export."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmix import models
from jaxmix.models import torch_names

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden')


def small_model(**kwargs):
  return models.ConvNeXt(
    depths=(1, 1, 2, 1),
    dims=(8, 16, 24, 32),
    num_classes=10,
    rngs=nnx.Rngs(0),
    **kwargs,
  )


def test_convnext_tiny_has_timms_layout_and_size():
  with open(os.path.join(GOLDEN, 'convnext_layout.json')) as f:
    layout = json.load(f)
  model = nnx.eval_shape(
    lambda: models.create_model(
      'convnext_tiny', num_classes=1000, rngs=nnx.Rngs(0)
    )
  )
  shapes = torch_names.torch_shapes(model)
  assert list(shapes.items()) == [(k, tuple(v)) for k, v in layout['shapes']]
  params = nnx.state(model, nnx.Param)
  assert sum(x.size for x in jax.tree.leaves(params)) == layout['num_params']
  assert layout['num_params'] == 28_589_128


def test_logits_equal_timms_on_its_weights():
  golden = np.load(os.path.join(GOLDEN, 'convnext_small_random.npz'))
  assert json.loads(str(golden['config']))['dims'] == [8, 16, 24, 32]
  state_dict = models.read_state_dict(
    os.path.join(GOLDEN, 'convnext_small_random.safetensors')
  )
  model = small_model()
  models.assign_torch_weights(model, state_dict)
  model.eval()
  logits = jax.jit(lambda m, x: m(x))(model, jnp.asarray(golden['images']))
  np.testing.assert_allclose(logits, golden['logits'], rtol=1e-4, atol=1e-4)
  # Export gives timm's state dict back, tensor for tensor.
  out = models.torch_state_dict(model)
  assert sorted(out) == sorted(state_dict)  # safetensors sorts its keys
  for key, value in state_dict.items():
    np.testing.assert_array_equal(out[key], value, err_msg=key)


def test_head_only_is_the_fc():
  model = small_model()
  keys = [e.key for e in torch_names.head_entries(model)]
  assert keys == ['head.fc.weight', 'head.fc.bias']
  # Fine-tuning start: the body (head.norm included) from the file.
  state_dict = models.read_state_dict(
    os.path.join(GOLDEN, 'convnext_small_random.safetensors')
  )
  state_dict['head.fc.weight'] = np.zeros((3, 32), np.float32)
  models.assign_torch_weights(model, state_dict, head=False)
  np.testing.assert_array_equal(
    model.head_norm.scale[...], state_dict['head.norm.weight']
  )


def test_drop_path_rates_and_modes():
  model = small_model(drop_path_rate=0.1)
  rates = [b.drop_path.rate for blocks in model.stages for b in blocks]
  np.testing.assert_allclose(rates, [0.0, 0.1 / 4, 0.2 / 4, 0.3 / 4, 0.1])
  x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
  model.eval()
  a, b = model(x), model(x)
  np.testing.assert_array_equal(a, b)  # inference: no drops
  model.train()
  c = model(x)
  assert c.shape == (4, 10) and c.dtype == jnp.float32


def test_init_follows_timm_and_errors():
  model = small_model()
  gammas = [b.gamma[...] for blocks in model.stages for b in blocks]
  assert all(np.all(np.asarray(g) == np.float32(1e-6)) for g in gammas)
  kernel = np.asarray(model.stages[2][0].fc1.kernel[...])
  assert np.abs(kernel).max() <= 0.04 + 1e-6  # truncated at 2 std
  assert abs(kernel.std() - 0.0176) < 0.004  # std of N(0, .02) cut at 2
  with pytest.raises(ValueError, match='same non-zero length'):
    models.ConvNeXt(depths=(1, 1), dims=(8,), num_classes=2, rngs=nnx.Rngs(0))


def test_bfloat16_compute_keeps_float32_logits():
  model = small_model(dtype=jnp.bfloat16)
  model.eval()
  out = model(jnp.ones((2, 32, 32, 3), jnp.bfloat16))
  assert out.dtype == jnp.float32


def test_recipe_builds_convnext_tiny_with_its_regularisers():
  from jaxmix.train import build, recipes

  config = recipes.load('configs/imagenet/convnext_t.py')
  model = nnx.eval_shape(build.model_fn(config))
  assert isinstance(model, models.ConvNeXt)
  assert model.stages[-1][-1].drop_path.rate == pytest.approx(0.1)
  assert config.optimizer.ema_decay == 0.9999
  assert (config.mix.mixup_alpha, config.mix.cutmix_alpha) == (0.8, 1.0)
  assert config.random_erasing.prob == 0.25 and config.label_smoothing == 0.1
  assert config.optimizer.learning_rate == 4e-3
  assert config.global_batch_size == 4096
