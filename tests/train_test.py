"""Tests of the trainer: synthetic data, steps, augmentation, loop, logs."""

import glob
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from tensorboard.backend.event_processing import event_accumulator

import jaxmix
from jaxmix import models
from jaxmix.configs import default
from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.datasets import synthetic
from jaxmix.train import augment, augment_schedule, loop, metrics_log, steps
from jaxmix.train import state as state_lib

NUM_CLASSES = 10


def schedule(mix_prob):
  """The step's schedule with `mix_prob` (CMO off)."""
  return augment_schedule.Schedule(np.float32(mix_prob), np.float32(0))


def smoke_config(**overrides):
  config = default.get_config('smoke')
  for field, value in overrides.items():
    node = config
    *parents, name = field.split('.')
    for parent in parents:
      node = node[parent]
    node[name] = value
  return config


STEP_CONFIG = steps.StepConfig(
  num_classes=NUM_CLASSES,
  label_smoothing=0.1,
  mean=(100.0, 110.0, 120.0),
  std=(50.0, 60.0, 70.0),
  ema_decay=0.75,
)


def tiny_loop_config(**overrides):
  """The smoke config at 16x16 with a 4-channel tiny_cnn (fast to compile)."""
  config = smoke_config(image_size=16, **overrides)
  config.model.kwargs.width = 4
  return config


class Setup:
  """One tiny model, optimiser and its compiled steps, shared by the tests."""

  def __init__(self):
    self.mesh = steps.create_mesh()
    self.config = smoke_config(
      **{'mix.method': 'cutmix', 'label_smoothing': STEP_CONFIG.label_smoothing}
    )
    plain = smoke_config(label_smoothing=STEP_CONFIG.label_smoothing)
    self.plain_augment = augment.create_augment_fn(plain, self.mesh)

    def model_fn():
      return models.create_model(
        'tiny_cnn', num_classes=NUM_CLASSES, rngs=nnx.Rngs(0), width=4
      )

    self.tx = optax.sgd(0.1, momentum=0.9)
    self.model_def, state = state_lib.create_train_state(
      model_fn, self.tx, mesh=self.mesh, ema=True
    )
    self.host_state = jax.device_get(state)
    self.batch = device_batch(self.mesh, self.config)
    self.train_steps = {
      name: steps.jit_train_step(
        self.mesh,
        model_def=self.model_def,
        tx=self.tx,
        learning_rate_fn=optax.constant_schedule(0.1),
        augment_fn=fn,
        config=STEP_CONFIG,
      )
      for name, fn in (
        ('none', self.plain_augment),
        ('cutmix', augment.create_augment_fn(self.config, self.mesh)),
      )
    }

  def fresh_state(self, step=0):
    """A new copy of the initial state on the mesh (steps donate it)."""
    replicated = NamedSharding(self.mesh, PartitionSpec())
    state = jax.device_put(self.host_state, replicated)
    return state.replace(step=jax.device_put(jnp.int32(step), replicated))


@pytest.fixture(scope='module')
def setup():
  return Setup()


def device_batch(mesh, config, *, seed=0):
  it = synthetic.create_train_iterator(
    config.data,
    global_batch_size=config.global_batch_size,
    image_size=16,
    seed=seed,
  )
  return next(prefetch_to_mesh(it, mesh))


# --- synthetic data -------------------------------------------------------


def test_synthetic_process_slices_make_the_global_batch():
  config = smoke_config()
  whole = synthetic.create_train_iterator(
    config.data, global_batch_size=16, image_size=8, seed=3
  )
  parts = [
    synthetic.create_train_iterator(
      config.data,
      global_batch_size=16,
      image_size=8,
      seed=3,
      process_index=p,
      process_count=4,
    )
    for p in range(4)
  ]
  for _ in range(6):  # crosses an epoch boundary (4 steps per epoch)
    full = next(whole)
    pieces = [next(p) for p in parts]
    for key in ('image', 'label', 'file_name'):
      np.testing.assert_array_equal(
        full[key], np.concatenate([p[key] for p in pieces])
      )
    assert full['image'].dtype == np.uint8 and full['label'].dtype == np.int32


def test_synthetic_epochs_are_permutations_and_resume_exactly():
  config = smoke_config()
  it = synthetic.create_train_iterator(
    config.data, global_batch_size=16, image_size=8, seed=0
  )
  epoch0 = np.concatenate([next(it)['file_name'] for _ in range(4)])
  assert len(set(epoch0)) == 64  # every example once per epoch
  next(it)
  state = it.get_state()
  assert state == {'epoch': 1, 'batch_in_epoch': 1}
  expected = next(it)
  other = synthetic.create_train_iterator(
    config.data, global_batch_size=16, image_size=8, seed=0
  )
  other.set_state(state)
  np.testing.assert_array_equal(next(other)['image'], expected['image'])
  with pytest.raises(ValueError, match='batch_in_epoch'):
    other.set_state({'epoch': 0, 'batch_in_epoch': 4})


def test_synthetic_eval_pads_and_masks_the_last_batch():
  config = smoke_config()  # 40 eval examples, batch 16 -> 3 batches
  it = synthetic.create_eval_iterator(
    config.data, global_batch_size=16, image_size=8
  )
  masks = [b['mask'] for b in it]
  assert [m.sum() for m in masks] == [16, 16, 8]
  assert not masks[-1][8:].any()


# --- steps ----------------------------------------------------------------


def test_normalize_is_exact():
  x = jnp.array([[[[0, 128, 255]]]], jnp.uint8)
  y = steps.normalize(x, (0.0, 128.0, 5.0), (1.0, 2.0, 250.0))
  np.testing.assert_array_equal(y, [[[[0.0, 0.0, 1.0]]]])


def test_finite_flag_catches_non_finite_parameters_of_a_finite_loss(setup):
  # An optimiser whose update is infinite: this step's loss and gradients
  # (of the old parameters) are finite, its new parameters are not.
  tx = optax.stateless(
    lambda updates, params: jax.tree.map(
      lambda u: jnp.full_like(u, jnp.inf), updates
    )
  )
  model_def, state = state_lib.create_train_state(
    lambda: models.create_model(
      'tiny_cnn', num_classes=NUM_CLASSES, rngs=nnx.Rngs(0), width=4
    ),
    tx,
    mesh=setup.mesh,
  )
  train_step = steps.jit_train_step(
    setup.mesh,
    model_def=model_def,
    tx=tx,
    learning_rate_fn=optax.constant_schedule(0.1),
    augment_fn=setup.plain_augment,
    config=STEP_CONFIG,
  )
  _, metrics = train_step(state, setup.batch, schedule(0))
  assert np.isfinite(float(metrics['loss']))
  assert np.isfinite(float(metrics['grad_norm']))
  assert float(metrics['finite']) == 0.0


def test_create_mesh_is_auto_over_all_devices():
  mesh = steps.create_mesh()
  assert mesh.shape == {'data': jax.device_count()}
  assert mesh.axis_types == (jax.sharding.AxisType.Auto,)


def test_train_step_loss_metrics_and_global_batchnorm(setup):
  state = setup.fresh_state()
  batch = setup.batch
  # Reference: the same model, unsharded, outside the trainer.
  images = np.asarray(batch['image'])
  labels = np.asarray(batch['label'])
  model = setup.model_def.merge(state.params, state.batch_stats, train=True)
  logits = model(steps.normalize(images, STEP_CONFIG.mean, STEP_CONFIG.std))
  want_loss = jaxmix.soft_cross_entropy(
    logits, jaxmix.one_hot(labels, NUM_CLASSES, smoothing=0.1)
  ).mean()
  want_top1 = np.mean(np.argmax(logits, -1) == labels)
  want_stats = state_lib.batch_stats_of(model)

  old_params = jax.tree.leaves(state.params)
  new_state, metrics = setup.train_steps['none'](state, batch, schedule(1))
  np.testing.assert_allclose(metrics['loss'], want_loss, rtol=1e-5)
  assert float(metrics['top1']) == pytest.approx(want_top1)
  assert float(metrics['learning_rate']) == pytest.approx(0.1)
  assert float(metrics['finite']) == 1.0
  assert int(new_state.step) == 1
  # Statistics over the global batch, although it is split over 8 devices.
  for got, want in zip(
    jax.tree.leaves(new_state.batch_stats), jax.tree.leaves(want_stats)
  ):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  # The state was donated.
  assert all(x.is_deleted() for x in old_params)
  # The EMA moved by (1 - decay) towards the new parameters.
  for ema, new, old in zip(
    jax.tree.leaves(new_state.ema_params),
    jax.tree.leaves(new_state.params),
    jax.tree.leaves(setup.host_state.params),
  ):
    np.testing.assert_allclose(
      ema, 0.75 * old + 0.25 * new, rtol=1e-5, atol=1e-7
    )


def test_mix_prob_is_traced_and_zero_means_no_mixing(setup):
  losses = {}
  for name, train_step in setup.train_steps.items():
    losses[name] = [
      float(
        train_step(setup.fresh_state(), setup.batch, schedule(p))[1]['loss']
      )
      for p in (1.0, 0.0)
    ]
    assert train_step._cache_size() == 1  # no recompilation
  assert losses['cutmix'][1] == losses['none'][1]  # prob 0: identical
  assert losses['cutmix'][0] != losses['none'][0]  # prob 1: mixed


def test_bfloat16_step_stays_close_to_the_float32_step():
  """Same weights, batch and CutMix draw; bf16 compute, f32 params and loss.

  Tolerance: 2 % of the loss for a 3-step run (bfloat16 keeps 8 bits of
  mantissa, ~0.4 % per rounding; the tiny CNN has 3 layers).
  """
  mesh = steps.create_mesh()
  config = smoke_config(**{'mix.method': 'cutmix'})
  batch = device_batch(mesh, config)
  losses = {}
  for dtype in (jnp.float32, jnp.bfloat16):

    def model_fn(dtype=dtype):
      return models.create_model(
        'tiny_cnn',
        num_classes=NUM_CLASSES,
        rngs=nnx.Rngs(0),
        width=4,
        dtype=dtype,
      )

    tx = optax.sgd(0.1, momentum=0.9)
    model_def, state = state_lib.create_train_state(model_fn, tx, mesh=mesh)
    settings = steps.StepConfig(
      num_classes=NUM_CLASSES,
      mean=STEP_CONFIG.mean,
      std=STEP_CONFIG.std,
      compute_dtype=dtype,
    )
    train_step = steps.jit_train_step(
      mesh,
      model_def=model_def,
      tx=tx,
      learning_rate_fn=optax.constant_schedule(0.1),
      augment_fn=augment.create_augment_fn(config, mesh),
      config=settings,
    )
    losses[dtype] = []
    for _ in range(3):
      state, metrics = train_step(state, batch, schedule(1))
      assert metrics['loss'].dtype == jnp.float32
      losses[dtype].append(float(metrics['loss']))
    # Parameters and optimizer state stay float32.
    leaves = jax.tree.leaves((state.params, state.opt_state))
    assert {x.dtype for x in leaves if x.dtype.kind == 'f'} == {
      np.dtype('float32')
    }
  np.testing.assert_allclose(
    losses[jnp.bfloat16], losses[jnp.float32], rtol=0.02
  )
  assert losses[jnp.bfloat16] != losses[jnp.float32]  # it did compute in bf16


def test_normalize_goes_straight_to_the_compute_dtype():
  x = jnp.array([[[[0, 128, 255]]]], jnp.uint8)
  y = steps.normalize(x, (0.0, 128.0, 5.0), (1.0, 2.0, 250.0), jnp.bfloat16)
  assert y.dtype == jnp.bfloat16
  np.testing.assert_array_equal(y.astype(jnp.float32), [[[[0.0, 0.0, 1.0]]]])


def test_step_key_is_folded_from_the_step(setup):
  train_step = setup.train_steps['cutmix']
  losses = [
    float(
      train_step(setup.fresh_state(step), setup.batch, schedule(1))[1]['loss']
    )
    for step in (3, 3, 4)
  ]
  assert losses[0] == losses[1] != losses[2]


def test_eval_step_counts_are_exact_and_masked(setup):
  state = setup.fresh_state()
  eval_step = steps.jit_eval_step(
    setup.mesh, model_def=setup.model_def, config=STEP_CONFIG
  )
  it = synthetic.create_eval_iterator(
    setup.config.data, global_batch_size=16, image_size=16
  )
  host = list(it)
  totals = {'top1_correct': 0, 'top5_correct': 0, 'count': 0}
  loss_sum = 0.0
  for batch in prefetch_to_mesh(iter(host), setup.mesh):
    counts = eval_step(state.params, state.batch_stats, batch)
    for k in totals:
      totals[k] += int(counts[k])
    loss_sum += float(counts['loss_sum'])
  model = setup.model_def.merge(state.params, state.batch_stats, train=False)
  want1 = want5 = 0
  want_loss = 0.0
  for batch in host:
    logits = np.asarray(
      model(steps.normalize(batch['image'], STEP_CONFIG.mean, STEP_CONFIG.std)),
      np.float64,
    )
    own = logits[np.arange(16), batch['label']]
    rank = (logits > own[:, None]).sum(-1)
    want1 += int(((rank == 0) & batch['mask']).sum())
    want5 += int(((rank < 5) & batch['mask']).sum())
    # Unsmoothed cross-entropy of the real examples, padding excluded.
    top = logits.max(-1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(-1))
    want_loss += float(((lse - own) * batch['mask']).sum())
  assert totals == {'top1_correct': want1, 'top5_correct': want5, 'count': 40}
  assert loss_sum == pytest.approx(want_loss, rel=1e-5)


# --- loop -----------------------------------------------------------------


def test_mix_prob_is_off_in_the_last_epochs():
  config = smoke_config(**{'mix.prob': 0.7, 'mix.off_epoch': 1})
  probs = [augment_schedule.schedule_at(config, e) for e in range(2)]
  assert [p.cmo_prob for p in probs] == [0.0, 0.0]  # CMO is off
  assert [p.mix_prob for p in probs] == [
    pytest.approx(0.7),
    0.0,
  ]


def test_log_to_console_shows_progress_lines_outside_app_run(tmp_path):
  code = (
    'from absl import logging; from jaxmix.train import metrics_log; '
    "logging.info('before'); metrics_log.log_to_console(); "
    "logging.info('other library'); "
    "metrics_log.MetricLogger('{dir}').info('step %d', 3)"
  )
  out = subprocess.run(
    [sys.executable, '-c', code.format(dir=tmp_path)],
    capture_output=True,
    text=True,
    check=True,
  )
  assert 'step 3' in out.stderr
  assert out.stderr.count('step 3') == 1
  assert 'other library' not in out.stderr


def test_format_duration():
  assert metrics_log.format_duration(3725.0) == '1:02:05'
  assert metrics_log.format_duration(float('inf')) == '?'


@pytest.mark.slow
def test_train_and_evaluate_in_bfloat16_writes_logs_and_checkpoints(tmp_path):
  config = tiny_loop_config(
    **{'mix.method': 'cutmix', 'mix.off_epoch': 1, 'model.dtype': 'bfloat16'}
  )
  final = loop.train_and_evaluate(config, str(tmp_path))
  assert int(final.step) == 8
  # bfloat16 compute, float32 parameters.
  assert {x.dtype for x in jax.tree.leaves(final.params)} == {
    np.dtype('float32')
  }
  saved = json.loads((tmp_path / 'config.json').read_text())
  assert saved['mix']['method'] == 'cutmix'
  lines = [
    json.loads(x) for x in (tmp_path / 'metrics.jsonl').read_text().splitlines()
  ]
  train = [x for x in lines if 'train/loss' in x]
  evals = [x for x in lines if 'eval/top1' in x]
  assert [x['step'] for x in train] == [2, 4, 6, 8]
  assert [x['step'] for x in evals] == [4, 8]
  assert all(x['eval/count'] == 40 for x in evals)
  assert all(x['train/images_per_second'] > 0 for x in train)
  (events,) = glob.glob(str(tmp_path / 'tensorboard' / 'events.out.*'))
  loaded = event_accumulator.EventAccumulator(events)
  loaded.Reload()
  assert [e.step for e in loaded.Scalars('train/loss')] == [2, 4, 6, 8]
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['4', '8']


@pytest.mark.slow
def test_huge_learning_rate_stops_at_step_1_without_a_checkpoint(tmp_path):
  config = tiny_loop_config(
    **{'optimizer.learning_rate': 1e30, 'checkpoint.every_steps': 1}
  )
  with pytest.raises(FloatingPointError, match=r'at step 1 .*No checkpoint'):
    loop.train_and_evaluate(config, str(tmp_path))
  assert os.listdir(tmp_path / 'checkpoints') == []


def test_non_finite_loss_stops_with_the_step_and_keeps_a_good_checkpoint(
  tmp_path, monkeypatch
):
  # Fault injection: from update 4 on, the step sees NaN parameters.
  real_step = steps.train_step

  def poisoned_step(state, batch, schedule, **kwargs):
    bad = state.step >= 4
    params = jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), state.params)
    return real_step(state.replace(params=params), batch, schedule, **kwargs)

  monkeypatch.setattr(steps, 'train_step', poisoned_step)
  config = tiny_loop_config(**{'checkpoint.every_steps': 1})
  with pytest.raises(FloatingPointError, match='at step 5 ') as error:
    loop.train_and_evaluate(config, str(tmp_path))
  assert 'Last good checkpoint: step 4' in str(error.value)
  kept = sorted(int(s) for s in os.listdir(tmp_path / 'checkpoints'))
  assert kept == [2, 3, 4]  # keep=3; nothing after the bad step


def test_invalid_config_fails_before_training(tmp_path):
  config = tiny_loop_config(**{'global_batch_size': 12})
  with pytest.raises(ValueError, match='global_batch_size'):
    loop.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


@pytest.mark.slow
def test_command_line_runs_and_rejects_misspelled_fields(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_NUM_CPU_DEVICES': '1'}
  command = [
    sys.executable,
    '-m',
    'jaxmix.apps.train',
    '--config=configs/default.py:smoke',
    f'--workdir={tmp_path}',
  ]
  run = subprocess.run(
    [*command, '--config.num_epochs=1', '--config.model.kwargs.width=4'],
    cwd=root,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert run.returncode == 0, run.stderr
  assert 'step 4/4' in run.stderr and 'orbax' not in run.stderr.lower()
  assert json.loads((tmp_path / 'config.json').read_text())['num_epochs'] == 1
  bad = subprocess.run(
    [*command, '--config.mix.cutmix_alpah=0.5'],
    cwd=root,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert bad.returncode != 0 and 'cutmix_alpah' in bad.stderr
