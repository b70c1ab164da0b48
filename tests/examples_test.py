"""Runs the worked Flax example of the docs (examples/flax_imagenet/).

The CutMix step is the flax ImageNet example's pmapped step with jaxmix
added; this checks it trains, and that it does what the docs say: a draw
per step and per device, the loss that of each device's CutMix batch.
"""

import functools
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import jax_utils
from flax import linen as nn

import jaxmix

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / 'examples'
NUM_CLASSES = 10
DEVICES = jax.local_devices()[:2]


def _load(name):
  path = EXAMPLES / 'flax_imagenet' / f'{name}.py'
  spec = importlib.util.spec_from_file_location(f'flax_imagenet_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class TinyNet(nn.Module):
  """A convolution, BatchNorm and a classifier: the example's model, tiny."""

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(4, (3, 3))(x)
    x = nn.relu(nn.BatchNorm(use_running_average=False)(x))
    return nn.Dense(NUM_CLASSES)(x.mean(axis=(1, 2)))


def _state(module):
  model = TinyNet()
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  return module.TrainState.create(
    apply_fn=model.apply,
    params=variables['params'],
    batch_stats=variables['batch_stats'],
    tx=optax.sgd(0.1, momentum=0.9),
  )


def _batch():
  """The same 4 examples on each device (so only the draws differ)."""
  rng = np.random.default_rng(0)
  images = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
  labels = np.arange(4, dtype=np.int32)
  return {
    'image': np.stack([images] * len(DEVICES)),
    'label': np.stack([labels] * len(DEVICES)),
  }


def _p_step(module, **kwargs):
  step = functools.partial(
    module.train_step,
    learning_rate_fn=lambda step: 0.1,
    num_classes=NUM_CLASSES,
    **kwargs,
  )
  return jax.pmap(step, axis_name='batch', devices=DEVICES)


@pytest.mark.skipif(len(DEVICES) < 2, reason='needs 2 devices')
def test_plain_and_cutmix_steps_train():
  plain, cutmix = _load('plain_step'), _load('cutmix_step')
  key = jax_utils.replicate(jax.random.key(1), devices=DEVICES)
  for module, args in ((plain, ()), (cutmix, (key,))):
    state = jax_utils.replicate(_state(module), devices=DEVICES)
    p_step = _p_step(module)
    before = jax.tree.leaves(state.params)
    for _ in range(2):
      state, metrics = p_step(state, _batch(), *args)
    assert np.all(np.isfinite(np.asarray(metrics['loss'])))
    assert int(state.step[0]) == 2
    after = jax.tree.leaves(state.params)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


@pytest.mark.skipif(len(DEVICES) < 2, reason='needs 2 devices')
def test_cutmix_step_draws_per_step_and_device():
  cutmix = _load('cutmix_step')
  state = _state(cutmix)
  key = jax.random.key(1)
  batch = _batch()
  _, metrics = _p_step(cutmix)(
    jax_utils.replicate(state, devices=DEVICES),
    batch,
    jax_utils.replicate(key, devices=DEVICES),
  )

  # By hand: device d mixes with fold_in(fold_in(key, step), d).
  def device_loss(d):
    device_key = jax.random.fold_in(jax.random.fold_in(key, 0), d)
    targets = jaxmix.one_hot(batch['label'][d], NUM_CLASSES)
    images, targets = jaxmix.cutmix(
      device_key, batch['image'][d], targets, alpha=1.0
    )
    logits, _ = state.apply_fn(
      {'params': state.params, 'batch_stats': state.batch_stats},
      images,
      mutable=['batch_stats'],
    )
    l2 = sum(jnp.sum(x**2) for x in jax.tree.leaves(state.params) if x.ndim > 1)
    ce = optax.softmax_cross_entropy(logits, targets).mean()
    return ce + 1e-4 * 0.5 * l2, images

  losses, images = zip(*(device_loss(d) for d in range(len(DEVICES))))
  assert not np.array_equal(images[0], images[1]), 'devices drew alike'
  np.testing.assert_allclose(
    metrics['loss'][0], np.mean(losses), rtol=1e-5, atol=1e-6
  )
