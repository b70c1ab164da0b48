"""The train step's augmentation: draw granularity and occlusion order."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.configs import default
from jaxmix.train import augment, augment_schedule, samplers, steps, validation

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
  fn = augment.create_mix_fn(config, mesh)
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
  fn = augment.create_mix_fn(config, mesh)
  images, labels = batch(mesh, 10)
  out, _ = fn(KEY, images, labels, mix_prob=jnp.float32(1.0))
  has_hole = (np.asarray(out) == 0).all(-1).any((1, 2))
  assert has_hole.mean() < 0.5
  config.mix.method = 'none'  # occlusion alone: every example has its hole
  alone, _ = augment.create_mix_fn(config, mesh)(
    KEY, images, labels, mix_prob=jnp.float32(1.0)
  )
  assert (np.asarray(alone) == 0).all(-1).any((1, 2)).all()


def test_unknown_draw_fails_naming_the_field():
  with pytest.raises(ValueError, match=r'config\.mix\.draw must be one of'):
    validation.check_config(config_for(method='cutmix', draw='step'))


KEY = jax.random.key(3)


# --- pair mode, alpha 0, integer-label targets ------------------------------

ALL_METHODS = ('mixup', 'cutmix', 'mixup_or_cutmix')


def augmented(config, images, labels, key=KEY):
  fn = augment.create_mix_fn(config, steps.create_mesh())
  out = fn(key, images, labels, mix_prob=jnp.float32(1.0))
  return jax.tree.map(np.asarray, out)


@pytest.mark.parametrize('method', ALL_METHODS)
def test_pair_draw_is_shared_by_the_two_examples_of_each_pair(method):
  """Example i and b-1-i of a shard are partners with one lambda and box."""
  config = config_for(
    method=method, draw='pair', mixup_alpha=0.8, cutmix_alpha=1.0
  )
  mesh = steps.create_mesh()
  count = DEVICES * PER_DEVICE
  images, labels = batch(mesh, count)  # every example its own class
  out_images, out_labels = augmented(config, images, labels)
  values = np.asarray(images)[:, 0, 0, 0]
  weights, branches = [], set()
  for d in range(DEVICES):
    for i in range(PER_DEVICE // 2):
      a, b = d * PER_DEVICE + i, d * PER_DEVICE + PER_DEVICE - 1 - i
      va, vb = values[a], values[b]
      # Labels: only the pair's two classes, the same own weight for both.
      w = out_labels[a, a]
      assert out_labels[b, b] == w
      np.testing.assert_allclose(out_labels[a, b], 1 - w, atol=1e-6)
      np.testing.assert_allclose(out_labels[b, a], 1 - w, atol=1e-6)
      assert out_labels[[a, b]].sum() == pytest.approx(2.0)
      xa, xb = out_images[a, ..., 0], out_images[b, ..., 0]
      pasted_a, pasted_b = xa == vb, xb == va
      if w == 1.0:  # not mixed (a Beta draw of exactly 1)
        assert (xa == va).all() and (xb == vb).all()
      elif (pasted_a | (xa == va)).all():  # CutMix: one box, swapped
        branches.add('cutmix')
        np.testing.assert_array_equal(pasted_a, pasted_b)
        assert ((xb == vb) | pasted_b).all()
        np.testing.assert_allclose(w, 1 - pasted_a.mean(), atol=1e-6)
      else:  # Mixup: one lambda for both, equal to the label weight
        branches.add('mixup')
        np.testing.assert_allclose((xa - vb) / (va - vb), w, atol=1e-4)
        np.testing.assert_allclose((xb - va) / (vb - va), w, atol=1e-4)
      weights.append(float(w))
  # One draw per pair, not per device: the pairs of a device differ.
  assert len(set(np.round(weights[: PER_DEVICE // 2], 6))) > 1
  expected = {'mixup': {'mixup'}, 'cutmix': {'cutmix'}}
  assert branches == expected.get(method, {'mixup', 'cutmix'})


@pytest.mark.parametrize('draw', augment.MIX_DRAWS)
@pytest.mark.parametrize(
  ('off', 'same_as'),
  [
    ({'mixup_alpha': 0.0}, {'switch_prob': 1.0}),
    ({'cutmix_alpha': 0.0}, {'switch_prob': 0.0}),
    ({'mixup_alpha': 0.0, 'minmax': (0.3, 0.7)}, {'switch_prob': 1.0}),
  ],
)
def test_alpha_zero_switches_its_branch_off_in_the_step(draw, off, same_as):
  """mixup_alpha=0 is the CutMix-only step (switch_prob 1), bit for bit."""
  mesh = steps.create_mesh()
  images, labels = batch(mesh, 10)
  base = dict(
    method='mixup_or_cutmix', draw=draw, mixup_alpha=0.8, cutmix_alpha=1.0
  )
  base['minmax'] = off.get('minmax')
  got = augmented(config_for(**{**base, **off}), images, labels)
  want = augmented(config_for(**{**base, **same_as}), images, labels)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
  # And the batch was mixed.
  assert not np.array_equal(got[1], np.asarray(labels))


def test_cutmix_minmax_ignores_its_alpha_which_may_be_zero():
  mesh = steps.create_mesh()
  images, labels = batch(mesh, 10)
  config = config_for(method='cutmix', minmax=(0.3, 0.7), cutmix_alpha=0.0)
  validation.check_config(config)
  got = augmented(config, images, labels)
  want = augmented(
    config_for(method='cutmix', minmax=(0.3, 0.7)), images, labels
  )
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
  # timm's minmax sides: at least int(16 * 0.3) = 4 rows pasted per example.
  moved = (got[0][..., 0] != np.asarray(images)[..., 0]).reshape(-1, SIZE, SIZE)
  rows = moved.any(-1).sum(-1)
  partnered = rows > 0
  assert partnered.mean() > 0.5 and (rows[partnered] >= 4).all()
  assert (rows[partnered] < int(SIZE * 0.7)).all()


@pytest.mark.parametrize('draw', augment.MIX_DRAWS)
@pytest.mark.parametrize('method', ALL_METHODS)
def test_two_target_form_draws_what_the_dense_form_draws(method, draw):
  """Same images; dense targets = w onehot(a) + (1 - w) onehot(b)."""
  mesh = steps.create_mesh()
  classes = 10
  images, dense = batch(mesh, classes)
  ints = sharded(mesh, np.arange(DEVICES * PER_DEVICE, dtype=np.int32) % 10)
  config = config_for(method=method, draw=draw, mixup_alpha=0.8)
  want_images, want = augmented(config, images, dense)
  config.mix.targets = 'two_target'
  got_images, got = augmented(config, images, ints)
  assert isinstance(got, augment.TwoTargets)
  np.testing.assert_array_equal(got_images, want_images)
  np.testing.assert_array_equal(got.labels, np.asarray(ints))
  eye = np.eye(classes, dtype=np.float32)
  w = got.weight[:, None]
  rebuilt = w * eye[got.labels] + (1 - w) * eye[got.partner_labels]
  np.testing.assert_allclose(rebuilt, want, atol=1e-6)
  assert (got.weight < 1).mean() > 0.5


def test_two_target_form_refuses_dense_labels():
  mesh = steps.create_mesh()
  images, dense = batch(mesh, 10)
  config = config_for(method='cutmix', targets='two_target')
  with pytest.raises(ValueError, match=r"targets='two_target' takes integer"):
    augment.create_mix_fn(config, mesh)(
      KEY, images, dense, mix_prob=jnp.float32(1.0)
    )


# --- one draw per step and shard ----------------------------------------------


def _count_sampler_calls(monkeypatch, name):
  calls = []
  real = samplers.SAMPLERS[name]

  def counted(*args, **kwargs):
    calls.append(kwargs['batch_size'])
    return real(*args, **kwargs)

  monkeypatch.setitem(samplers.SAMPLERS, name, counted)
  return calls


@pytest.mark.parametrize(
  ('method', 'draw', 'targets', 'sampler'),
  [
    ('cutmix', 'device', 'dense', 'cutmix'),
    ('cutmix', 'device', 'two_target', 'cutmix'),
    ('mixup', 'example', 'two_target', 'mixup'),
    ('mixup_or_cutmix', 'batch', 'two_target', 'mixup_or_cutmix'),
    ('cutmix', 'pair', 'dense', 'mixup_or_cutmix'),
  ],
)
def test_the_step_draws_once_per_shard(
  monkeypatch, method, draw, targets, sampler
):
  """One sampler call in the traced step, on the shard's batch size."""
  calls = _count_sampler_calls(monkeypatch, sampler)
  config = config_for(method=method, draw=draw, targets=targets)
  mesh = steps.create_mesh()
  fn = augment.create_augment_fn(config, mesh)
  count = DEVICES * PER_DEVICE
  images = jnp.zeros((count, SIZE, SIZE, 3))
  batch = {'label': jnp.arange(count, dtype=jnp.int32) % 10}
  schedule = augment_schedule.Schedule(jnp.float32(1.0), jnp.float32(0.0))
  jax.jit(fn).lower(KEY, images, batch, schedule)
  assert calls == [PER_DEVICE]


def test_localized_relabel_targets_come_from_the_same_draw(monkeypatch):
  calls = _count_sampler_calls(monkeypatch, 'cutmix')
  config = config_for(method='cutmix', draw='device')
  config.relabel.update(enabled=True, localized_cutmix=True)
  mesh = steps.create_mesh()
  count, s, k = DEVICES * PER_DEVICE, 4, 3
  batch = {
    'label': jnp.arange(count, dtype=jnp.int32) % 10,
    'label_map_scores': jnp.ones((count, s, s, k), jnp.float16),
    'label_map_indices': jnp.zeros((count, s, s, k), jnp.uint16),
    'label_map_found': jnp.ones(count, bool),
    'crop_box': jnp.tile(jnp.array([0.0, 0.0, 1.0, 1.0]), (count, 1)),
    'flip': jnp.zeros(count, bool),
  }
  schedule = augment_schedule.Schedule(jnp.float32(1.0), jnp.float32(0.0))
  fn = augment.create_augment_fn(config, mesh)
  jax.jit(fn).lower(KEY, jnp.zeros((count, SIZE, SIZE, 3)), batch, schedule)
  assert calls == [PER_DEVICE]


def test_the_trainer_looks_no_op_up_by_name():
  train = pathlib.Path(augment.__file__).parent
  for path in sorted(train.glob('*.py')):
    text = path.read_text()
    assert 'getattr(jaxmix' not in text, path.name
