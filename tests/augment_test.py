"""The train step's augmentation: draw granularity and occlusion order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.configs import default
from jaxmix.train import augment, steps

DEVICES = 8
PER_DEVICE = 16
SIZE = 16


def config_for(**mix):
  config = default.get_config('smoke')
  config.mix.update(mix)
  return config


def sharded(mesh, array):
  return jax.device_put(array, NamedSharding(mesh, PartitionSpec('data')))


def batch(mesh, classes):
  """Constant images `[B, S, S, 3]` (value = index + 1) and one-hot labels."""
  count = DEVICES * PER_DEVICE
  values = np.arange(1, count + 1, dtype=np.float32)
  images = np.broadcast_to(values[:, None, None, None], (count, SIZE, SIZE, 3))
  labels = np.eye(classes, dtype=np.float32)[np.arange(count) % classes]
  return sharded(mesh, np.array(images)), sharded(mesh, labels)


def own_weights(config, key):
  """Per device: the label weight each mixed example keeps of itself."""
  mesh = steps.create_mesh()
  fn = augment.create_augment_fn(config, mesh)
  classes = DEVICES * PER_DEVICE  # every example its own class
  images, labels = batch(mesh, classes)
  out_images, out_labels = fn(key, images, labels, mix_prob=jnp.float32(1.0))
  out_labels = np.asarray(out_labels)
  own = out_labels[np.arange(classes), np.arange(classes)]
  moved = np.asarray(out_images)[..., 0] != np.asarray(images)[..., 0]
  return own.reshape(DEVICES, PER_DEVICE), moved.reshape(
    DEVICES, PER_DEVICE, SIZE, SIZE
  )


def mixed_rows(own):
  """Rows whose partner was another example (a fixed point keeps 1.0)."""
  return own < 1.0 - 1e-6


@pytest.mark.parametrize('method', ['mixup', 'cutmix'])
def test_batch_draw_is_one_lambda_for_every_device(method):
  own, moved = own_weights(config_for(method=method, draw='batch'), KEY)
  weights = own[mixed_rows(own)]
  assert weights.size > DEVICES * PER_DEVICE // 2
  np.testing.assert_allclose(weights, weights[0], rtol=1e-6)
  if method == 'cutmix':
    # One box for the whole global batch: the same pasted pixels everywhere.
    boxes = moved[mixed_rows(own)]
    assert (boxes == boxes[0]).all() and boxes[0].any()


@pytest.mark.parametrize('method', ['mixup', 'cutmix'])
def test_device_draw_is_one_lambda_per_device_and_they_differ(method):
  own, moved = own_weights(config_for(method=method, draw='device'), KEY)
  draws = set()
  for d in range(DEVICES):
    rows = mixed_rows(own[d])
    weights = own[d][rows]
    np.testing.assert_allclose(weights, weights[0], rtol=1e-6)
    # CutMix weights are pixel fractions and may repeat: compare the boxes.
    box = moved[d][rows][0].tobytes() if method == 'cutmix' else None
    draws.add((round(float(weights[0]), 6), box))
  assert len(draws) == DEVICES


def test_example_draw_differs_within_a_device():
  own, _ = own_weights(config_for(method='mixup', draw='example'), KEY)
  weights = own[0][mixed_rows(own[0])]
  assert len(np.unique(np.round(weights, 6))) == weights.size


def test_occlusion_runs_before_mixing_per_example():
  """Cutout, then Mixup: a hole survives only where both partners had one.

  Mixing first would leave every example with its own exact-zero square.
  """
  config = config_for(method='mixup', draw='example')
  config.cutout.size = 4
  config.cutout.prob = 1.0
  mesh = steps.create_mesh()
  fn = augment.create_augment_fn(config, mesh)
  images, labels = batch(mesh, 10)
  out, _ = fn(KEY, images, labels, mix_prob=jnp.float32(1.0))
  has_hole = (np.asarray(out) == 0).all(-1).any((1, 2))
  assert has_hole.mean() < 0.5
  config.mix.method = 'none'  # occlusion alone: every example has its hole
  alone, _ = augment.create_augment_fn(config, mesh)(
    KEY, images, labels, mix_prob=jnp.float32(1.0)
  )
  assert (np.asarray(alone) == 0).all(-1).any((1, 2)).all()


def test_unknown_draw_fails_naming_the_field():
  with pytest.raises(ValueError, match=r'config\.mix\.draw must be one of'):
    augment.create_augment_fn(
      config_for(method='cutmix', draw='step'), steps.create_mesh()
    )


KEY = jax.random.key(3)
