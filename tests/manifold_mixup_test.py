"""Manifold Mixup through the ResNet: layer law, input Mixup, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxmix
from jaxmix import models
from jaxmix.models import manifold_mixup


def resnet():
  model = models.create_model(
    'resnet18', num_classes=5, rngs=nnx.Rngs(0), width=8
  )
  model.eval()  # BatchNorm by running averages: outputs compare exactly
  return model


def mixer(key, batch_size):
  draw = jaxmix.sample_mixup(key, batch_size=batch_size, alpha=1.0)

  def mix_fn(h):
    return jaxmix.apply_draw(h, draw, roles='image')

  return draw, mix_fn


def test_layer_law_is_uniform_over_the_papers_set():
  keys = jax.random.split(jax.random.key(0), 6000)
  layers = np.asarray(jax.vmap(manifold_mixup.draw_mix_layer)(keys))
  values, counts = np.unique(layers, return_counts=True)
  assert values.tolist() == [0, 1, 2]
  assert np.all(np.abs(counts / 6000 - 1 / 3) < 4 * np.sqrt(2 / 9 / 6000))
  with pytest.raises(ValueError, match='layers'):
    manifold_mixup.draw_mix_layer(jax.random.key(0), ())


def test_layer_zero_is_input_mixup():
  model = resnet()
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  draw, mix_fn = mixer(jax.random.key(2), 4)
  want = model(jaxmix.apply_draw(x, draw, roles='image'))
  got = model(x, mix_at=jnp.int32(0), mix_fn=mix_fn)
  np.testing.assert_array_equal(got, want)
  # And labels take the same weight.
  labels = jaxmix.one_hot(jnp.arange(4), 5)
  mixed = jaxmix.apply_draw(labels, draw, roles='target')
  w = draw.weight[:, None]
  np.testing.assert_allclose(
    mixed, w * labels + (1 - w) * labels[draw.partners], rtol=1e-6
  )


def test_each_point_mixes_its_own_hidden_state():
  model = resnet()
  x = jax.random.normal(jax.random.key(3), (4, 32, 32, 3))
  _, mix_fn = mixer(jax.random.key(4), 4)
  plain = model(x)
  # A point that is not drawn leaves the network alone.
  np.testing.assert_array_equal(
    model(x, mix_at=jnp.int32(7), mix_fn=mix_fn), plain
  )
  outs = [model(x, mix_at=jnp.int32(k), mix_fn=mix_fn) for k in range(5)]
  for k in range(5):
    assert not np.allclose(outs[k], plain), k
  # Point k = mixing the output of group k by hand, then the rest.
  seen = []
  model.features(x, mix_at=jnp.int32(2), mix_fn=lambda h: seen.append(h) or h)
  assert seen[0].shape == (4, 32, 32, 3)  # point 0 is called too (where)
  assert [s.shape[1] for s in seen] == [32, 8, 4, 2, 1]


def test_gradients_flow_and_jit_equals_eager():
  model = resnet()
  model.train()
  x = jax.random.normal(jax.random.key(5), (4, 32, 32, 3))
  draw, mix_fn = mixer(jax.random.key(6), 4)
  targets = jaxmix.apply_draw(
    jaxmix.one_hot(jnp.arange(4), 5), draw, roles='target'
  )
  graphdef, state = nnx.split(model)

  def loss(state, layer):
    m = nnx.merge(graphdef, state)
    logits = m(x, mix_at=layer, mix_fn=mix_fn)
    return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), -1))

  for layer in (0, 1, 2):
    grads = jax.grad(loss)(state, jnp.int32(layer))
    leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
    assert all(np.isfinite(g).all() for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0
  eager = loss(state, jnp.int32(1))
  jitted = jax.jit(loss)(state, jnp.int32(1))
  np.testing.assert_allclose(eager, jitted, rtol=1e-5)
