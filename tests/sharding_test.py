"""Tests of jaxmix.per_shard and of every op under jax.pmap, on 8 devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import jaxmix
from tests.augment_cases import LABEL_PRESERVING, OPS, PUBLIC_OPS, make_batch

NUM_DEVICES = 8
KEY = jax.random.key(42)


def _mesh(axis_type=AxisType.Explicit):
  return jax.make_mesh((NUM_DEVICES,), ('data',), axis_types=(axis_type,))


def _by_hand(op, key, images, labels, fold=True):
  """The op applied to each device's shard with the folded per-device key."""
  size = images.shape[0] // NUM_DEVICES
  outs = []
  for d in range(NUM_DEVICES):
    shard_key = jax.random.fold_in(key, d) if fold else key
    part = slice(d * size, (d + 1) * size)
    outs.append(op(shard_key, images[part], labels[part]))
  return [np.concatenate(parts) for parts in zip(*outs)]


def test_there_are_eight_fake_devices():
  assert jax.device_count() == NUM_DEVICES


@pytest.mark.parametrize('name', PUBLIC_OPS)
def test_per_shard_equals_the_op_on_each_shard(name):
  mesh = _mesh()
  images, labels = make_batch(batch_size=32)
  sharding = NamedSharding(mesh, PartitionSpec('data'))
  images = jax.device_put(images, sharding)
  labels = jax.device_put(labels, sharding)
  fn = jax.jit(jaxmix.per_shard(OPS[name], mesh))
  out_images, out_labels = fn(KEY, images, labels)
  assert out_images.sharding.spec[0] == 'data'
  expected = _by_hand(OPS[name], KEY, np.asarray(images), np.asarray(labels))
  np.testing.assert_allclose(out_images, expected[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(out_labels, expected[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name', PUBLIC_OPS)
def test_every_op_runs_under_pmap_shard_by_shard(name):
  images, labels = make_batch(batch_size=32)
  keys = jax.random.split(KEY, NUM_DEVICES)
  stacked = (
    images.reshape(NUM_DEVICES, 4, *images.shape[1:]),
    labels.reshape(NUM_DEVICES, 4, -1),
  )
  out_images, out_labels = jax.pmap(OPS[name])(keys, *stacked)
  for d in range(NUM_DEVICES):
    ref_images, ref_labels = OPS[name](keys[d], stacked[0][d], stacked[1][d])
    np.testing.assert_allclose(out_images[d], ref_images, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out_labels[d], ref_labels, rtol=1e-6, atol=1e-6)


def test_pairing_never_crosses_shards():
  mesh = _mesh(AxisType.Auto)
  images, labels = make_batch(batch_size=64, num_classes=64)
  classes = np.argmax(np.asarray(labels), -1).tolist()
  _, out = jaxmix.per_shard(jaxmix.mixup, mesh)(KEY, images, labels, alpha=1.0)
  shard_of_class = {c: i // 8 for i, c in enumerate(classes)}
  for i, row in enumerate(np.asarray(out)):
    for c in np.flatnonzero(row > 0):
      assert shard_of_class[c] == i // 8


@pytest.mark.parametrize('name', ['mixup', 'cutmix', 'mixup_or_cutmix'])
def test_compiled_step_has_no_cross_device_traffic(name):
  mesh = _mesh()
  images, labels = make_batch(batch_size=32)
  sharding = NamedSharding(mesh, PartitionSpec('data'))
  images = jax.device_put(images, sharding)
  labels = jax.device_put(labels, sharding)
  hlo = (
    jax.jit(jaxmix.per_shard(OPS[name], mesh))
    .lower(KEY, images, labels)
    .compile()
    .as_text()
  )
  for collective in ('collective-permute', 'all-gather', 'all-to-all'):
    assert collective not in hlo


def test_shared_keys_give_every_shard_the_same_draw():
  mesh = _mesh()
  images, labels = make_batch(batch_size=16, num_classes=16)
  fn = jaxmix.per_shard(jaxmix.cutmix, mesh, per_device_keys=False)
  out_images, out_labels = fn(KEY, images, labels)
  expected = _by_hand(
    jaxmix.cutmix, KEY, np.asarray(images), np.asarray(labels), fold=False
  )
  np.testing.assert_array_equal(out_images, expected[0])
  np.testing.assert_array_equal(out_labels, expected[1])


def test_traced_knobs_pass_through_without_retracing():
  mesh = _mesh()
  images, labels = make_batch(batch_size=16)
  traces = []
  mix = jaxmix.per_shard(jaxmix.mixup, mesh)

  @jax.jit
  def step(key, prob):
    traces.append(None)
    return mix(key, images, labels, alpha=1.0, prob=prob)

  off_images, off_labels = step(KEY, jnp.float32(0.0))
  on_images, _ = step(KEY, jnp.float32(1.0))
  assert len(traces) == 1
  np.testing.assert_array_equal(off_images, images)
  np.testing.assert_array_equal(off_labels, labels)
  assert not np.array_equal(on_images, images)


def test_eager_calls_reuse_the_compiled_program():
  mesh = _mesh()
  images, labels = make_batch(batch_size=16)
  traces = []

  def counted(key, images, labels, *, alpha):
    traces.append(alpha)
    return jaxmix.mixup(key, images, labels, alpha=alpha)

  first = jaxmix.per_shard(counted, mesh)(KEY, images, labels, alpha=1.0)
  # A new wrapper of the same op on the same mesh: the same program.
  again = jaxmix.per_shard(counted, mesh)(KEY, images, labels, alpha=1.0)
  assert traces == [1.0]
  np.testing.assert_array_equal(first[0], again[0])
  jaxmix.per_shard(counted, mesh)(KEY, images, labels, alpha=0.5)
  assert traces == [1.0, 0.5]  # a static knob is part of the program


def test_errors_name_the_problem():
  mesh = _mesh()
  images, labels = make_batch(batch_size=12)
  with pytest.raises(ValueError, match='divisible by the 8 devices'):
    jaxmix.per_shard(jaxmix.mixup, mesh)(KEY, images, labels)
  with pytest.raises(ValueError, match="`axis` 'batch' is not an axis"):
    jaxmix.per_shard(jaxmix.mixup, mesh, axis='batch')
  with pytest.raises(TypeError, match='`op` must be callable'):
    jaxmix.per_shard('mixup', mesh)


def test_shared_op_tables_are_consistent():
  assert set(LABEL_PRESERVING) <= set(OPS)
  assert set(PUBLIC_OPS) <= set(OPS)
