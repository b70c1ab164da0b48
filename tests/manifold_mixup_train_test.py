"""Manifold Mixup in the train step (`mix.method='manifold_mixup'`).

The step's point follows the uniform law over `mix.manifold_layers`; with
the input drawn, the loss is input Mixup's with the same draw; the loss is
the same under `jit` and eagerly; gradients reach every layer; integer-label
targets give the dense targets' loss; bad settings fail naming the field.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from tiny_cnn_util import TinyCnnOnMesh

import jaxmix
from jaxmix import models
from jaxmix.configs import default
from jaxmix.models.manifold_mixup import draw_mix_layer
from jaxmix.train import (
  augment,
  augment_schedule,
  manifold_mixup,
  samplers,
  setup,
  steps,
  validation,
)

NUM_CLASSES = 10
DEVICES = 8


def smoke_config(**mix):
  config = default.get_config('smoke')
  config.image_size = 16
  config.global_batch_size = 32  # 4 per device
  config.mix.method = 'manifold_mixup'
  config.mix.mixup_alpha = 2.0
  config.mix.update(mix)
  validation.check_config(config)
  return config


class Setup(TinyCnnOnMesh):
  """A tiny CNN's initial state on the mesh, and one prepared batch."""

  def __init__(self):
    super().__init__(NUM_CLASSES, smoke_config().data)
    self.schedule = augment_schedule.Schedule(
      jnp.float32(1.0), jnp.float32(0.0)
    )

  def augmented(self, config):
    settings = setup.step_config(config)
    return steps.inputs_and_targets(
      jax.random.key(5),
      self.batch,
      self.schedule,
      augment_fn=augment.create_augment_fn(config, self.mesh),
      config=settings,
    )

  def loss(self, config, key, *, jit=True):
    """(losses, logits) of the step's loss_fn, the model in train mode."""
    settings = setup.step_config(config)
    loss_fn = manifold_mixup.create_loss_fn(
      config, self.mesh, step_config=settings
    )
    augmented = self.augmented(config)
    state = self.state()

    def run(params, batch_stats, augmented, key):
      model = self.model_def.merge(params, batch_stats, train=True)
      return loss_fn(model, augmented, key, self.schedule)

    run = jax.jit(run) if jit else run
    return run(state.params, state.batch_stats, augmented, key)

  def step(self, config):
    settings = setup.step_config(config)
    train_step = steps.jit_train_step(
      self.mesh,
      model_def=self.model_def,
      tx=self.tx,
      learning_rate_fn=optax.constant_schedule(1.0),
      augment_fn=augment.create_augment_fn(config, self.mesh),
      config=settings,
      loss_fn=manifold_mixup.create_loss_fn(
        config, self.mesh, step_config=settings
      ),
    )
    state, metrics = train_step(self.state(), self.batch, self.schedule)
    return jax.device_get((metrics, state.params))


@pytest.fixture(scope='module')
def tiny():
  return Setup()


def _step_model_keys(seed: int, count: int) -> list[jax.Array]:
  """The loss_fn key of steps 0..count-1, derived as `train_step` does."""
  keys = []
  for step in range(count):
    key = jax.random.fold_in(jax.random.key(seed), step)
    aug_key, _ = jax.random.split(key)
    keys.append(jax.random.fold_in(aug_key, 1))
  return keys


@pytest.mark.parametrize('layers', [(0, 1, 2), (1, 3)])
def test_the_steps_point_is_uniform_over_the_configured_set(layers):
  count = 3000
  keys = jnp.stack(_step_model_keys(0, count))
  got = np.asarray(
    jax.vmap(lambda k: draw_mix_layer(manifold_mixup.layer_key(k), layers))(
      keys
    )
  )
  values, counts = np.unique(got, return_counts=True)
  assert tuple(values) == tuple(sorted(layers))
  p = 1 / len(layers)
  sigma = np.sqrt(p * (1 - p) / count)
  assert np.all(np.abs(counts / count - p) < 4 * sigma), counts
  # The point is one per step (all devices, all examples): a scalar.
  assert draw_mix_layer(manifold_mixup.layer_key(keys[0]), layers).shape == ()


def _input_mixup_reference(tiny, config, key):
  """Input Mixup with the step's draw, applied shard by shard."""
  augmented = tiny.augmented(config)
  images, targets = augmented.images, augmented.targets
  b = images.shape[0] // DEVICES
  draw = samplers.mix_sampler(config)(
    manifold_mixup.draw_key(key),
    batch_size=b,
    height=images.shape[1],
    width=images.shape[2],
    prob=jnp.float32(1.0),
  )

  def per_shard(x, role):
    shards = x.reshape(DEVICES, b, *x.shape[1:])
    mixed = jax.vmap(lambda s: jaxmix.apply_draw(s, draw, roles=role))(shards)
    return mixed.reshape(x.shape)

  mixed_images = per_shard(images, 'image')
  mixed_targets = per_shard(targets, 'target')
  state = tiny.state()

  @jax.jit
  def run(params, batch_stats):
    model = tiny.model_def.merge(params, batch_stats, train=True)
    logits = model(mixed_images)
    return jaxmix.soft_cross_entropy(logits, mixed_targets), logits

  return run(state.params, state.batch_stats), draw


def test_the_input_point_is_input_mixup_with_the_same_draw(tiny):
  config = smoke_config(draw='batch', manifold_layers=(0,))
  key = jax.random.key(11)
  (want_losses, want_logits), draw = _input_mixup_reference(tiny, config, key)
  assert not np.allclose(draw.weight, 1.0)  # it did mix
  losses, logits = tiny.loss(config, key)
  np.testing.assert_allclose(losses, want_losses, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-5)
  # A deeper point mixes something else: not input Mixup.
  deeper, _ = tiny.loss(smoke_config(draw='batch', manifold_layers=(2,)), key)
  assert not np.allclose(deeper, want_losses, rtol=1e-4)


@pytest.mark.parametrize('draw', ['batch', 'device', 'example', 'pair'])
def test_jit_equals_eager(tiny, draw):
  config = smoke_config(draw=draw, manifold_layers=(1,))
  key = jax.random.key(3)
  jitted = tiny.loss(config, key)
  eager = tiny.loss(config, key, jit=False)
  np.testing.assert_allclose(eager[0], jitted[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(eager[1], jitted[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('layer', [0, 1, 2])
def test_gradients_reach_every_layer(tiny, layer):
  metrics, params = tiny.step(smoke_config(manifold_layers=(layer,)))
  assert metrics['finite'] == 1.0
  start = jax.tree.leaves(tiny.host_state.params)
  for new, old in zip(jax.tree.leaves(params), start):
    assert np.all(np.isfinite(new))
    assert not np.allclose(new, old), 'a parameter got no gradient'


def test_two_target_loss_equals_the_dense_loss(tiny):
  key = jax.random.key(7)
  dense = tiny.loss(smoke_config(draw='example'), key)
  two = tiny.loss(smoke_config(draw='example', targets='two_target'), key)
  np.testing.assert_allclose(two[0], dense[0], rtol=1e-5, atol=1e-6)


def test_bad_settings_fail_naming_the_field():
  config = smoke_config()
  config.mix.manifold_layers = (0, 0)
  with pytest.raises(ValueError, match=r'config\.mix\.manifold_layers'):
    validation.check_config(config)
  config.mix.manifold_layers = (0, -1)
  with pytest.raises(ValueError, match=r'config\.mix\.manifold_layers\[1\]'):
    validation.check_config(config)
  config.mix.manifold_layers = ()
  with pytest.raises(ValueError, match=r'config\.mix\.manifold_layers'):
    validation.check_config(config)
  config.mix.manifold_layers = (0, 1)
  config.mix.mixup_alpha = 0.0
  with pytest.raises(ValueError, match=r'config\.mix\.mixup_alpha'):
    validation.check_config(config)
  vit = models.create_model(
    'vit_ti16',
    num_classes=3,
    rngs=nnx.Rngs(0),
    image_size=16,
    patch_size=4,
    dim=16,
    depth=1,
    num_heads=2,
  )
  with pytest.raises(ValueError, match=r"'manifold_mixup'.*VisionTransformer"):
    manifold_mixup.check_model(vit)


def test_the_recipe_is_the_authors_law_and_its_smoke_trains(tmp_path):
  from jaxmix.train import recipes

  full = recipes.load('imagenet/manifold_mixup_resnet50.py')
  assert full.mix.method == 'manifold_mixup'
  assert tuple(full.mix.manifold_layers) == (0, 1, 2)
  assert full.mix.mixup_alpha == 2.0 and full.model.name == 'resnet50'
  # The knobs reach the Mixup sampler the step draws with.
  assert samplers.mix_op(full) == (
    'mixup',
    {'alpha': 2.0, 'per_example': False},
  )
  smoke = recipes.load('imagenet/manifold_mixup_resnet50.py:smoke')
  smoke.num_epochs = 1
  run = setup.build_run(smoke, str(tmp_path / 'run'))
  try:
    state = run.state
    for _ in range(2):
      state, metrics = run.train_step(
        state,
        next(run.device_batches),
        augment_schedule.schedule_at(smoke, 0),
      )
      assert metrics['finite'] == 1.0
  finally:
    run.device_batches.close()
    run.close()
