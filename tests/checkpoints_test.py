"""Tests of checkpoints: orbax round trip, retention, preemption, resume."""

import errno
import logging
import os
import signal
import subprocess
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix import models
from jaxmix.train import checkpoints, steps
from jaxmix.train import state as state_lib

WORKER = os.path.join(os.path.dirname(__file__), 'multihost_worker.py')


@pytest.fixture(scope='module')
def mesh_and_state():
  """A tiny TrainState (Adam, EMA) on the 8-device mesh, built once."""
  mesh = steps.create_mesh()

  def model_fn():
    return models.create_model(
      'tiny_cnn', num_classes=3, rngs=nnx.Rngs(0), width=2
    )

  _, state = state_lib.create_train_state(
    model_fn, optax.adam(1e-3), mesh=mesh, ema=True
  )
  return mesh, jax.device_get(state)


def on_mesh(mesh, host_state, offset=0):
  replicated = NamedSharding(mesh, PartitionSpec())
  return jax.device_put(
    jax.tree.map(lambda x: x + offset, host_state), replicated
  )


def test_save_restore_round_trip_keeps_values_shardings_and_position(
  tmp_path, mesh_and_state
):
  mesh, host_state = mesh_and_state
  state = on_mesh(mesh, host_state)
  ckpt = checkpoints.Checkpointer(str(tmp_path), every_steps=2, keep=2)
  assert ckpt.latest_step() is None
  for step in range(1, 7):
    state = state.replace(step=state.step + 1)
    ckpt.save(step, state, {'epoch': step // 4, 'batch_in_epoch': step % 4})
  ckpt.wait()
  assert ckpt.all_steps() == [4, 6]  # every 2 steps, the last 2 kept
  target = on_mesh(mesh, host_state, offset=1)  # other values, same tree
  restored, position = ckpt.restore(target)
  ckpt.close()
  assert position == {'epoch': 1, 'batch_in_epoch': 2}
  assert int(restored.step) == 6
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    np.testing.assert_array_equal(got, want)
    assert got.sharding == NamedSharding(mesh, PartitionSpec())
  assert type(restored.params) is type(state.params)


def test_force_saves_off_the_interval(tmp_path, mesh_and_state):
  state = on_mesh(*mesh_and_state)
  ckpt = checkpoints.Checkpointer(str(tmp_path), every_steps=100, keep=3)
  assert not ckpt.save(3, state, {})
  assert ckpt.save(5, state, {}, force=True)
  ckpt.close()
  assert ckpt.all_steps() == [5]


def test_checkpointer_rejects_bad_settings(tmp_path):
  with pytest.raises(ValueError, match='every_steps'):
    checkpoints.Checkpointer(str(tmp_path), every_steps=0, keep=1)
  with pytest.raises(ValueError, match='keep'):
    checkpoints.Checkpointer(str(tmp_path), every_steps=1, keep=0)


def test_preemption_guard_turns_sigterm_into_a_flag():
  previous = signal.getsignal(signal.SIGTERM)
  with checkpoints.PreemptionGuard() as guard:
    assert not guard.requested
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    assert guard.requested
  assert signal.getsignal(signal.SIGTERM) is previous


def start_worker(workdir, *extra):
  """Starts a 2-device worker; its output goes to a new log file."""
  log = f'{workdir}.{time.monotonic_ns()}.log'
  with open(log, 'w') as out:  # a file: a full pipe would stall the worker
    process = subprocess.Popen(
      [sys.executable, WORKER, str(workdir), '--devices', '2', *extra],
      stdout=out,
      stderr=subprocess.STDOUT,
    )
  process.log = log
  return process


def saved_steps(workdir):
  path = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(path):
    return []
  return sorted(int(name) for name in os.listdir(path) if name.isdigit())


def wait_for(predicate, process, timeout=600):
  deadline = time.time() + timeout
  while not predicate():
    if process.poll() is not None:
      raise AssertionError(f'worker exited early:\n{read(process.log)}')
    if time.time() > deadline:
      process.kill()
      raise AssertionError('worker made no progress')
    time.sleep(0.05)


def read(path):
  with open(path) as f:
    return f.read()


def finish(process):
  process.wait(timeout=600)
  output = read(process.log)
  assert process.returncode == 0, output
  return output


def load(path):
  with np.load(path) as data:
    return [data[k] for k in sorted(data, key=lambda k: int(k.split('_')[1]))]


class Reference:
  """The uninterrupted run, started once and awaited when first needed."""

  def __init__(self, directory):
    self.out = directory / 'reference.npz'
    self.process = start_worker(directory / 'ref', '--out', str(self.out))
    self.params = None

  def get(self):
    if self.params is None:
      finish(self.process)
      self.params = load(self.out)
    return self.params


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  return Reference(tmp_path_factory.mktemp('reference'))


@pytest.mark.slow
def test_resume_after_kill_9_equals_the_uninterrupted_run(tmp_path, reference):
  killed = start_worker(tmp_path / 'run', '--delay', '0.25')
  wait_for(lambda: max(saved_steps(tmp_path / 'run'), default=0) >= 5, killed)
  killed.send_signal(signal.SIGKILL)
  killed.wait()
  interrupted_at = max(saved_steps(tmp_path / 'run'))
  assert 5 <= interrupted_at < 16
  resumed = start_worker(tmp_path / 'run', '--out', str(tmp_path / 'b.npz'))
  output = finish(resumed)
  assert f'Resumed from step {interrupted_at}' in output
  for got, want in zip(load(tmp_path / 'b.npz'), reference.get()):
    np.testing.assert_array_equal(got, want)  # bit-identical


@pytest.mark.slow
def test_sigterm_saves_at_the_next_step_and_the_run_resumes(
  tmp_path, reference
):
  metrics = tmp_path / 'run' / 'metrics.jsonl'

  def logged_steps():
    return metrics.exists() and len(metrics.read_text().splitlines()) >= 3

  # Checkpoints every 100 steps: only the preemption save can write one.
  run = start_worker(tmp_path / 'run', '--delay', '0.25', '--every', '100')
  wait_for(logged_steps, run)
  run.send_signal(signal.SIGTERM)
  output = finish(run)
  assert 'Preempted' in output
  (stopped_at,) = saved_steps(tmp_path / 'run')
  assert 3 <= stopped_at < 16
  resumed = start_worker(
    tmp_path / 'run', '--every', '100', '--out', str(tmp_path / 'b.npz')
  )
  assert f'Resumed from step {stopped_at}' in finish(resumed)
  for got, want in zip(load(tmp_path / 'b.npz'), reference.get()):
    np.testing.assert_array_equal(got, want)


def test_restore_without_checkpoint_names_the_directory(tmp_path):
  ckpt = checkpoints.Checkpointer(str(tmp_path), every_steps=1, keep=1)
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    ckpt.restore(jnp.zeros(()))


def test_a_checkpointer_drops_only_the_disk_full_reports_of_orbax(tmp_path):
  """orbax's threads and asyncio each log the one ENOSPC with a traceback."""
  checkpoints.Checkpointer(str(tmp_path), every_steps=1, keep=1)
  full = ValueError(
    'RESOURCE_EXHAUSTED: Failed writing: "x": No space left on device '
    "[os_error_code='28']"
  )

  def record(name, path, error, level=logging.ERROR, message='failed'):
    info = (type(error), error, None) if error else None
    return logging.LogRecord(name, level, path, 1, message, (), info)

  orbax = '/site-packages/orbax/checkpoint/checkpoint_manager.py'
  absl, asyncio_logger = logging.getLogger('absl'), logging.getLogger('asyncio')
  dropped = [
    (absl, record('absl', orbax, full)),
    (absl, record('absl', orbax, None, message=f'raised: {full}')),
    (absl, record('absl', orbax, OSError(errno.ENOSPC, 'No space left'))),
    (asyncio_logger, record('asyncio', 'base_events.py', full)),
  ]
  kept = [
    (absl, record('absl', orbax, ValueError('NOT_FOUND: no file'))),
    (absl, record('absl', '/jaxmix/train/loop.py', full)),  # not orbax
    (absl, record('absl', orbax, full, level=logging.WARNING)),
    (asyncio_logger, record('asyncio', 'base_events.py', KeyError('x'))),
  ]
  assert [bool(logger.filter(r)) for logger, r in dropped] == [False] * 4
  assert [bool(logger.filter(r)) for logger, r in kept] == [True] * 4


def test_a_checkpointer_silences_the_echoes_of_a_failed_save(
  tmp_path, monkeypatch
):
  """Installed before any save, not only around restores; nothing else."""
  reached = []
  monkeypatch.setattr(sys, 'unraisablehook', reached.append)
  checkpoints.Checkpointer(str(tmp_path), every_steps=1, keep=1)
  echoes = [
    RuntimeError('Event loop is closed'),
    ImportError('sys.meta_path is None, Python is likely shutting down'),
  ]
  real = ValueError('RESOURCE_EXHAUSTED: No space left on device')
  for error in [*echoes, real]:
    sys.unraisablehook(types.SimpleNamespace(exc_value=error))
  assert [x.exc_value for x in reached] == [real]
