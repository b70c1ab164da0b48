"""The train step with integer-label targets (`mix.targets='two_target'`).

One SGD step (learning rate 1, no momentum, so the parameter change is the
gradient) of a tiny CNN with the two-target form gives the dense form's
loss, gradients and BatchNorm statistics, for every mixing method and draw
granularity, with label smoothing.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec
from tiny_cnn_util import TinyCnnOnMesh

from jaxmix.configs import default
from jaxmix.train import augment, augment_schedule, setup, steps, validation

NUM_CLASSES = 10
SMOOTHING = 0.1


def smoke_config(**mix):
  config = default.get_config('smoke')
  config.image_size = 16
  config.global_batch_size = 32  # 4 per device: two pairs each
  config.label_smoothing = SMOOTHING
  config.mix.update(mix)
  return config


class Model(TinyCnnOnMesh):
  """A tiny CNN's initial state on the mesh, and one batch."""

  def __init__(self):
    super().__init__(NUM_CLASSES, smoke_config().data)

  def step(self, config):
    """One step of `config`: (metrics, new parameters, batch statistics)."""
    validation.check_config(config)
    train_step = steps.jit_train_step(
      self.mesh,
      model_def=self.model_def,
      tx=self.tx,
      learning_rate_fn=optax.constant_schedule(1.0),
      augment_fn=augment.create_augment_fn(config, self.mesh),
      config=setup.step_config(config),
    )
    state = jax.device_put(
      self.host_state, NamedSharding(self.mesh, PartitionSpec())
    )
    schedule = augment_schedule.Schedule(jnp.float32(1.0), jnp.float32(0.0))
    state, metrics = train_step(state, self.batch, schedule)
    return jax.device_get((metrics, state.params, state.batch_stats))


@pytest.fixture(scope='module')
def model():
  return Model()


CASES = [
  (method, draw)
  for method in ('mixup', 'cutmix', 'mixup_or_cutmix')
  for draw in augment.MIX_DRAWS
] + [('none', 'device')]


@pytest.mark.parametrize(('method', 'draw'), CASES)
def test_two_target_step_equals_the_dense_step(model, method, draw):
  config = smoke_config(method=method, draw=draw, mixup_alpha=0.8)
  if method == 'none':
    config.cutout.size = 4  # the occlusions alone still run
  dense = model.step(config)
  config.mix.targets = 'two_target'
  assert setup.step_config(config).targets == 'two_target'
  two = model.step(config)
  np.testing.assert_allclose(two[0]['loss'], dense[0]['loss'], rtol=1e-5)
  assert two[0]['top1'] == dense[0]['top1']
  # Parameters after one step of learning rate 1: minus the gradients.
  initial = model.host_state.params
  for got, want, start in zip(
    jax.tree.leaves(two[1]), jax.tree.leaves(dense[1]), jax.tree.leaves(initial)
  ):
    np.testing.assert_allclose(got - start, want - start, rtol=1e-4, atol=1e-6)
  assert any(
    not np.allclose(w, s)
    for w, s in zip(jax.tree.leaves(dense[1]), jax.tree.leaves(initial))
  )
  for got, want in zip(jax.tree.leaves(two[2]), jax.tree.leaves(dense[2])):
    np.testing.assert_array_equal(got, want)  # the same images went in


def test_two_target_step_without_augmentation_is_the_smoothed_loss(model):
  config = smoke_config()
  images, labels = jnp.ones((8, 4, 4, 3)), jnp.eye(8)
  mixed = augment.create_mix_fn(config, model.mesh)(
    jax.random.key(0), images, labels, mix_prob=1.0
  )
  assert mixed[0] is images and mixed[1] is labels  # nothing to augment
  dense = model.step(config)
  config.mix.targets = 'two_target'
  two = model.step(config)
  np.testing.assert_allclose(two[0]['loss'], dense[0]['loss'], rtol=1e-5)


def token_labels(config):
  config.relabel.update(enabled=True, token_labels=True)
  config.model.kwargs.token_head = True


@pytest.mark.parametrize(
  ('field', 'edit'),
  [
    ('relabel.enabled', lambda c: c.relabel.update(enabled=True)),
    ('relabel.token_labels', token_labels),
    ('cmo.enabled', lambda c: c.cmo.update(enabled=True)),
  ],
)
def test_two_target_with_dense_only_targets_fails_naming_the_field(field, edit):
  config = default.get_config('smoke')
  config.mix.update(method='none', targets='two_target')
  edit(config)
  with pytest.raises(
    ValueError, match=rf"targets='two_target'.*config\.{field}=True"
  ):
    validation.check_config(config)
