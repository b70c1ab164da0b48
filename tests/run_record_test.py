"""The run directory as a record: one test (or more) per reliability case.

| case | before | after |
|---|---|---|
| resume with another model | config.json overwritten | refused, record kept |
| resume with batch/mixup changes | trains nothing, says nothing | refused |
| resume extending num_epochs | config.json rewritten | trained, history |
| resume of a finished run | exit 0, silent | 'nothing to do', exit 3 |
| resume with model.kwargs.width | buried in tracebacks | refused, one line |
| truncated / emptied / deleted / flipped | crash or silent load | fallback |
| two trainers | interleaved logs | second refused, stale lock taken |
| a full disk at a save | 6-30 tracebacks | one line, unlocked, resumes |
| gs:// workdir | `./gs:/...` local folder | works (url_workdir_test.py) |
| preemption | exit 0 | status 'preempted', exit 75 |
| evaluation, read-only run | results lost | checked first, --out |
| unknown dataset | 495 lines | one line, closest names |
| data.on_corrupt='skp' | accepted | refused at start-up |
| NCHW images, bad label-map boxes/ids | accepted | errors |
"""

import contextlib
import errno
import inspect
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from etils import epath
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import jaxmix
from jaxmix import models
from jaxmix.apps import train as train_app
from jaxmix.configs import default
from jaxmix.datasets import synthetic
from jaxmix.evaluate import runs
from jaxmix.evaluate.suites import registry as suite_registry
from jaxmix.io import paths
from jaxmix.train import checkpoints, loop, run_dir, steps, validation
from jaxmix.train import state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(os.path.dirname(__file__), 'multihost_worker.py')


def tiny_config(**overrides):
  """The smoke run at 16x16, width 4: 4 steps per epoch, one epoch."""
  config = default.get_config('smoke')
  config.image_size = 16
  config.model.kwargs.width = 4
  config.num_epochs = 1
  config.eval_every_epochs = 100  # evaluates only at the end
  config.checkpoint.every_steps = 1
  for field, value in overrides.items():
    node = config
    *parents, name = field.split('.')
    for parent in parents:
      node = node[parent]
    node[name] = value
  return config


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
  """A finished 4-step run (checkpoints 2, 3, 4); tests copy it to change."""
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  outcome = loop.train(tiny_config(), str(workdir))
  assert (outcome.status, outcome.step) == ('finished', 4)
  return workdir


def copy_of(run, tmp_path):
  shutil.copytree(run, tmp_path / 'run')
  return tmp_path / 'run'


def snapshot(workdir):
  """Every file of the run record, checkpoints aside: name -> bytes."""
  found = {}
  for root, dirs, names in os.walk(workdir):
    dirs[:] = [d for d in dirs if not d.startswith('checkpoints')]
    for name in names:
      path = os.path.join(root, name)
      found[os.path.relpath(path, workdir)] = pathlib.Path(path).read_bytes()
  return found


# --- identity ---------------------------------------------------------------


def test_every_schema_field_is_in_one_of_the_two_lists():
  fields = run_dir.flatten(run_dir.as_json(default.get_config()))
  for field in fields:
    top = field.split('.')[0]
    assert top in run_dir.IDENTITY or top in run_dir.MAY_CHANGE, field
  assert not set(run_dir.IDENTITY) & set(run_dir.MAY_CHANGE)
  assert not run_dir.may_change('model.kwargs.width')
  assert not run_dir.may_change('data.dataset')
  assert not run_dir.may_change('data.on_corrupt')
  assert run_dir.may_change('data.data_dir')
  assert run_dir.may_change('num_epochs')
  assert run_dir.may_change('checkpoint.every_steps')


def test_resume_with_another_model_is_refused_and_the_record_kept(
  finished_run,
):
  before = snapshot(finished_run)
  with pytest.raises(run_dir.RunIdentityError) as error:
    loop.train(tiny_config(**{'model.name': 'cifar_resnet'}), finished_run)
  message = str(error.value)
  assert "model.name: 'tiny_cnn' (run) -> 'cifar_resnet' (requested)" in message
  assert 'another --workdir' in message
  assert snapshot(finished_run) == before  # config.json, logs: untouched
  assert runs.load_run(finished_run).step == 4  # evaluation still loads it


def test_resume_with_batch_and_mixup_changes_lists_every_field(finished_run):
  config = tiny_config(global_batch_size=32, **{'mix.method': 'mixup'})
  with pytest.raises(run_dir.RunIdentityError) as error:
    loop.train(config, finished_run)
  assert 'global_batch_size: 16 (run) -> 32' in str(error.value)
  assert "mix.method: 'none' (run) -> 'mixup'" in str(error.value)


def test_a_record_without_newer_fields_resumes_at_their_defaults(
  finished_run, tmp_path
):
  workdir = copy_of(finished_run, tmp_path)
  recorded = json.loads((workdir / 'config.json').read_text())
  del recorded['cmo'], recorded['relabel']['token_labels']
  (workdir / 'config.json').write_text(json.dumps(recorded))
  assert run_dir.check_resume(tiny_config(), workdir) == {}
  with pytest.raises(run_dir.RunIdentityError, match=r'cmo\.enabled'):
    run_dir.check_resume(tiny_config(**{'cmo.enabled': True}), workdir)


def test_resume_with_a_wider_model_is_refused_before_any_restore(
  finished_run,
):
  with pytest.raises(run_dir.RunIdentityError, match=r'model\.kwargs\.width'):
    loop.train(tiny_config(**{'model.kwargs.width': 32}), finished_run)


def test_a_finished_run_has_nothing_to_do_and_changes_nothing(finished_run):
  before = snapshot(finished_run)
  outcome = loop.train(tiny_config(), finished_run)
  assert (outcome.status, outcome.step) == ('nothing_to_do', 4)
  assert snapshot(finished_run) == before
  assert train_app.EXIT_CODES['nothing_to_do'] == 3


@pytest.mark.slow
def test_extending_a_run_trains_and_records_a_dated_history(
  finished_run, tmp_path
):
  workdir = copy_of(finished_run, tmp_path)
  original = (workdir / 'config.json').read_bytes()
  config = tiny_config(num_epochs=2, log_every_steps=1)
  outcome = loop.train(config, workdir)
  assert (outcome.status, outcome.step) == ('finished', 8)
  assert (workdir / 'config.json').read_bytes() == original
  (entry,) = [
    json.loads(x)
    for x in (workdir / 'config_history.jsonl').read_text().splitlines()
  ]
  assert entry['step'] == 4 and entry['time'][:4].isdigit()
  assert entry['changes'] == {'log_every_steps': [2, 1], 'num_epochs': [1, 2]}
  # Once recorded, the same config resumes with no new entry.
  assert loop.train(config, workdir).status == 'nothing_to_do'
  assert len((workdir / 'config_history.jsonl').read_text().splitlines()) == 1


# --- verified checkpoints ---------------------------------------------------


@pytest.fixture(scope='module')
def mesh_and_state():
  mesh = steps.create_mesh()

  def model_fn():
    return models.create_model(
      'tiny_cnn', num_classes=3, rngs=nnx.Rngs(0), width=2
    )

  _, state = state_lib.create_train_state(
    model_fn, optax.adam(1e-3), mesh=mesh, ema=True
  )
  return mesh, jax.device_get(state)


def on_mesh(mesh, host_state, offset=0.0):
  replicated = NamedSharding(mesh, PartitionSpec())
  return jax.device_put(
    jax.tree.map(lambda x: x + np.asarray(offset, x.dtype), host_state),
    replicated,
  )


def largest_array_file(step_dir):
  """The biggest data file of the state's OCDBT store.

  `state/d/` holds the arrays once the save is finalised (the per-process
  stores are merged into it).
  """
  data = step_dir / 'state' / 'd'
  return max((data / n for n in os.listdir(data)), key=os.path.getsize)


def damage(step_dir, how):
  """One of the four ways a checkpoint on disk goes bad."""
  if how == 'truncated':
    path = largest_array_file(step_dir)
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
  elif how == 'emptied_metadata':
    (step_dir / 'state' / '_METADATA').write_text('')
  elif how == 'deleted_item':
    shutil.rmtree(step_dir / 'state')
  elif how == 'flipped_bytes':
    path = largest_array_file(step_dir)
    size = os.path.getsize(path)
    count = min(400, size // 2)
    with open(path, 'r+b') as f:
      f.seek((size - count) // 2)
      data = f.read(count)
      f.seek((size - count) // 2)
      f.write(bytes(b ^ 0xFF for b in data))
  else:
    raise ValueError(how)


DAMAGES = ('truncated', 'emptied_metadata', 'deleted_item', 'flipped_bytes')


@pytest.mark.parametrize('how', DAMAGES)
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(
  tmp_path, mesh_and_state, how
):
  mesh, host_state = mesh_and_state
  directory = tmp_path / 'checkpoints'
  ckpt = checkpoints.Checkpointer(str(directory), every_steps=1, keep=3)
  for step in (1, 2):
    ckpt.save(step, on_mesh(mesh, host_state, step), {'step': step})
  ckpt.close()
  damage(directory / '2', how)
  ckpt = checkpoints.Checkpointer(str(directory), every_steps=1, keep=3)
  messages = []
  restored = ckpt.restore_latest(on_mesh(mesh, host_state), log=messages.append)
  assert restored.step == 1 and restored.data_state == {'step': 1}
  for got, want in zip(
    jax.tree.leaves(restored.state),
    jax.tree.leaves(on_mesh(mesh, host_state, 1)),
  ):
    np.testing.assert_array_equal(got, want)
  (skipped,) = restored.skipped
  assert skipped.step == 2 and str(directory / '2') in str(skipped)
  assert any('Skipping checkpoint step 2' in m for m in messages), messages
  # Moved aside: the resumed run will save step 2 again.
  assert ckpt.all_steps() == [1]
  assert os.listdir(f'{directory}_rejected') == ['2']
  ckpt.save(2, on_mesh(mesh, host_state, 2), {'step': 2})
  ckpt.close()
  assert ckpt.all_steps() == [1, 2]


def test_flipped_bytes_fail_the_digest_when_the_file_still_decodes(
  tmp_path, mesh_and_state
):
  mesh, host_state = mesh_and_state
  state = on_mesh(mesh, host_state)
  saved = checkpoints.state_digest(state)
  changed = jax.tree.map(lambda x: x, jax.device_get(state))
  changed = changed.replace(step=changed.step + 1)
  reason = checkpoints.digest_mismatch(saved, changed)
  assert '1 of' in reason and '.step' in reason
  assert checkpoints.digest_mismatch(saved, state) is None


def test_no_intact_checkpoint_lists_every_step_and_moves_nothing(
  tmp_path, mesh_and_state
):
  mesh, host_state = mesh_and_state
  directory = tmp_path / 'checkpoints'
  ckpt = checkpoints.Checkpointer(str(directory), every_steps=1, keep=3)
  for step in (1, 2):
    ckpt.save(step, on_mesh(mesh, host_state), {})
  ckpt.wait()
  # Another model's state: no step fits it.
  other = {'w': jnp.zeros((3,))}
  with pytest.raises(checkpoints.CheckpointError) as error:
    ckpt.restore_latest(other, log=lambda m: None)
  ckpt.close()
  assert 'step 2:' in str(error.value) and 'step 1:' in str(error.value)
  assert ckpt.all_steps() == [1, 2]


@pytest.mark.slow
def test_each_damage_is_skipped_and_the_resumed_run_is_bit_identical(
  tmp_path,
):
  def config(epochs):
    # 80 examples: 5 steps per epoch, all kept.
    return tiny_config(
      num_epochs=epochs,
      **{'checkpoint.keep': 5, 'data.synthetic.train_examples': 80},
    )

  reference = loop.train(config(2), str(tmp_path / 'ref'))
  workdir = tmp_path / 'run'
  assert loop.train(config(1), str(workdir)).step == 5
  # Steps 5, 4, 3 and 2 go bad in the four ways; step 1 is intact.
  for step, how in zip((5, 4, 3, 2), DAMAGES):
    damage(workdir / 'checkpoints' / str(step), how)
  resumed = loop.train(config(2), str(workdir))
  assert resumed.status == 'finished'
  assert sorted(os.listdir(workdir / 'checkpoints_rejected')) == list('2345')
  for got, want in zip(
    jax.tree.leaves((resumed.state.params, resumed.state.batch_stats)),
    jax.tree.leaves((reference.state.params, reference.state.batch_stats)),
  ):
    np.testing.assert_array_equal(got, want)  # bit-identical


# --- one writer -------------------------------------------------------------


def dead_pid():
  process = subprocess.Popen([sys.executable, '-c', 'pass'])
  process.wait()
  return process.pid


def test_lock_names_a_live_holder_and_takes_over_a_dead_one(tmp_path):
  owner = tmp_path / run_dir.OWNER
  with run_dir.RunLock(tmp_path):
    with pytest.raises(run_dir.RunLockedError) as error:
      run_dir.RunLock(tmp_path).acquire()
    message = str(error.value)
    assert f'process {os.getpid()} on host {socket.gethostname()}' in message
    assert str(tmp_path) in message
  assert not owner.exists()  # released
  # A record whose process died (kill -9): the OS lock is free, taken over.
  # Locally the OS lock decides, so another host's record is stale too.
  for host in (socket.gethostname(), 'elsewhere'):
    owner.write_text(json.dumps({'host': host, 'pid': dead_pid(), 'time': 't'}))
    said = []
    lock = run_dir.RunLock(tmp_path, log=said.append)
    lock.acquire()
    assert lock.held and 'stale lock' in said[0] and host in said[0]
    assert json.loads(owner.read_text())['pid'] == os.getpid()
    lock.release()


def test_a_crash_between_creating_and_writing_the_record_locks_nothing(
  tmp_path,
):
  """What an old or killed trainer leaves: empty `lock` and owner record."""
  (tmp_path / run_dir.LOCK).write_text('')
  for leftover in ('', '{"host": "x", "pi', '[1, 2]'):
    (tmp_path / run_dir.OWNER).write_text(leftover)
    said = []
    with run_dir.RunLock(tmp_path, log=said.append) as lock:
      assert lock.held
    assert 'empty or unreadable' in said[0] and run_dir.OWNER in said[0]


def test_a_killed_holder_leaves_the_directory_free(tmp_path):
  """The kernel drops the lock of a killed process, record or not."""
  code = (
    'import sys, time; from jaxmix.train import run_dir; '
    f'lock = run_dir.RunLock({str(tmp_path)!r}); lock.acquire(); '
    'print("held", flush=True); time.sleep(600)'
  )
  worker = subprocess.Popen(
    [sys.executable, '-c', code], stdout=subprocess.PIPE, text=True
  )
  try:
    assert worker.stdout.readline() == 'held\n'
    with pytest.raises(run_dir.RunLockedError, match=f'process {worker.pid}'):
      run_dir.RunLock(tmp_path).acquire()
    (tmp_path / run_dir.OWNER).write_text('')  # a live holder, record lost
    with pytest.raises(run_dir.RunLockedError, match='has not written'):
      run_dir.RunLock(tmp_path).acquire()
  finally:
    worker.kill()
    worker.wait()
    worker.stdout.close()
  with run_dir.RunLock(tmp_path) as lock:
    assert lock.held


def no_space_left(path, data):
  """`Path.write_bytes` on a full disk."""
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_start_failing_on_a_full_disk_leaves_the_run_startable(
  tmp_path, monkeypatch
):
  """The issue's case: the failed start used to leave an empty `lock`."""
  workdir = tmp_path / 'run'
  with monkeypatch.context() as full:
    full.setattr(epath.Path, 'write_bytes', no_space_left)
    with pytest.raises(OSError, match='No space left') as error:
      loop.train(tiny_config(), str(workdir))
  assert error.value.errno == errno.ENOSPC
  assert str(workdir / run_dir.OWNER) in str(error.value)
  assert not (workdir / run_dir.OWNER).exists()
  outcome = loop.train(tiny_config(), str(workdir))  # space freed
  assert (outcome.status, outcome.step) == ('finished', 4)
  assert not (workdir / run_dir.OWNER).exists()


@contextlib.contextmanager
def tmpfs_leaving(mount, free_bytes):
  """A real 4 MiB tmpfs at `mount` with `free_bytes` left; yields the filler.

  Mounting needs root on Linux; elsewhere the test is skipped (the injected
  `ENOSPC` above covers the start; nothing can inject a full disk into
  TensorStore's own writes).
  """
  mount.mkdir(exist_ok=True)
  if sys.platform != 'linux' or os.geteuid() != 0:
    pytest.skip('mounting a tmpfs needs root on Linux')
  done = subprocess.run(
    ['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(mount)],
    capture_output=True,
  )
  if done.returncode:
    pytest.skip(f'cannot mount a tmpfs: {done.stderr.decode().strip()}')
  try:
    filler = mount / 'filler'
    filler.touch()
    leave_free(filler, free_bytes)
    yield filler
  finally:
    subprocess.run(['umount', str(mount)], check=True)


def leave_free(filler, free_bytes):
  """Grows (with written zeros) or shrinks `filler` to leave `free_bytes`."""
  fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
  try:
    if shutil.disk_usage(filler.parent).free <= free_bytes:
      os.ftruncate(
        fd,
        os.fstat(fd).st_size
        - (free_bytes - shutil.disk_usage(filler.parent).free),
      )
      return
    with pytest.raises(OSError) as full:  # fill to the last byte
      while True:
        os.write(fd, b'\0' * 4096)
    assert full.value.errno == errno.ENOSPC
    os.ftruncate(fd, os.fstat(fd).st_size - free_bytes)
  finally:
    os.close(fd)


@pytest.fixture
def full_tmpfs(tmp_path):
  """A real tmpfs filled to the last byte, and its filler file."""
  with tmpfs_leaving(tmp_path / 'disk', 0) as filler:
    yield filler.parent, filler


def test_a_start_on_a_really_full_disk_then_with_space_freed(full_tmpfs):
  mount, filler = full_tmpfs
  workdir = mount / 'run'
  with pytest.raises(run_dir.DiskFullError, match=r'ENOSPC.*starting'):
    loop.train(tiny_config(), str(workdir))
  filler.unlink()
  with run_dir.RunLock(workdir) as lock:
    assert lock.held


def tmpfs_footprint(tree, mount):
  """Bytes a copy of the directory `tree` takes on the tmpfs at `mount`."""
  before = shutil.disk_usage(mount).used
  shutil.copytree(tree, mount / 'probe')
  taken = shutil.disk_usage(mount).used - before
  shutil.rmtree(mount / 'probe')
  return taken


@pytest.mark.parametrize('room', [0.5, 2.0], ids=['first_save', 'later_save'])
def test_a_save_on_a_full_disk_prints_one_message_and_resumes(
  tmp_path, finished_run, room
):
  """The command on a real tmpfs with room for `room` checkpoints.

  Before, orbax's threads and asyncio printed 6-30 tracebacks of the one
  ENOSPC (and, when the first save failed, once in three runs over a
  hundred lines of shutdown noise).
  """
  with tmpfs_leaving(tmp_path / 'disk', 1 << 20) as filler:
    mount = filler.parent
    one_step = tmpfs_footprint(finished_run / 'checkpoints' / '2', mount)
    leave_free(filler, int(room * one_step))
    workdir = mount / 'run'
    overrides = {
      'image_size': 16,
      'model.kwargs.width': 4,
      'num_epochs': 1,
      'eval_every_epochs': 100,
      'checkpoint.every_steps': 1,
    }
    failed = subprocess.run(
      [
        sys.executable,
        '-m',
        'jaxmix.apps.train',
        '--config=configs/default.py:smoke',
        f'--workdir={workdir}',
        *(f'--config.{k}={v}' for k, v in overrides.items()),
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=300,
    )
    assert failed.returncode == train_app.EXIT_ERROR, failed.stderr[-3000:]
    assert 'Traceback' not in failed.stderr, failed.stderr[-3000:]
    # Everything but absl's INFO lines: the one message.
    said = [x for x in failed.stderr.splitlines() if not x.startswith('I')]
    assert len(said) == 1, failed.stderr[-3000:]
    match = re.match(
      rf'FATAL: run directory {re.escape(str(workdir))}: the disk is full '
      r'\(ENOSPC\) while saving checkpoint step (\d+)\. (No checkpoint was '
      r'written|Last good checkpoint: step (\d+) in )',
      said[0],
    )
    assert match, said[0]
    step, kept = int(match[1]), match[3] and int(match[3])
    if room < 1:
      assert (step, kept) == (1, None)
    else:
      assert 2 <= step <= 4 and kept == step - 1
    assert not (workdir / run_dir.OWNER).exists()  # unlocked
    intact = checkpoints.Checkpointer(
      workdir / 'checkpoints', every_steps=1, keep=3
    )
    assert intact.latest_step() == kept
    intact.close()
    filler.unlink()  # space freed: the same run resumes and finishes
    resumed = loop.train(tiny_config(), str(workdir))
    assert (resumed.status, resumed.step) == ('finished', 4)
    digests = [
      json.loads(
        (run / 'checkpoints' / '4' / 'digest' / 'metadata').read_text()
      )
      for run in (workdir, finished_run)
    ]
    assert digests[0] == digests[1]  # bit for bit the uninterrupted run


def test_a_second_trainer_fails_at_once_and_writes_nothing(finished_run):
  before = snapshot(finished_run)
  with run_dir.RunLock(finished_run):
    started = time.perf_counter()
    with pytest.raises(run_dir.RunLockedError, match=str(os.getpid())):
      loop.train(tiny_config(num_epochs=2), finished_run)
    assert time.perf_counter() - started < 5
    during = snapshot(finished_run)
    assert during.pop(run_dir.OWNER) and during == before
  assert snapshot(finished_run) == before


@pytest.mark.slow
def test_a_running_trainer_holds_its_workdir(tmp_path):
  workdir = tmp_path / 'run'
  log = open(tmp_path / 'worker.log', 'w')  # noqa: SIM115
  worker = subprocess.Popen(
    [sys.executable, WORKER, str(workdir), '--devices', '2', '--delay', '0.5'],
    stdout=log,
    stderr=subprocess.STDOUT,
  )
  try:
    deadline = time.time() + 300
    while not (workdir / 'metrics.jsonl').exists():
      assert worker.poll() is None and time.time() < deadline
      time.sleep(0.1)
    with pytest.raises(run_dir.RunLockedError, match=f'process {worker.pid}'):
      loop.train(tiny_config(), workdir)
  finally:
    worker.kill()
    worker.wait()
    log.close()
  said = []
  run_dir.RunLock(workdir, log=said.append).acquire()  # kill -9: stale
  assert 'stale lock' in said[0] and str(worker.pid) in said[0]


# --- URL workdirs -----------------------------------------------------------


def test_urls_stay_urls_and_local_paths_become_absolute(tmp_path):
  assert os.fspath(paths.resolve('gs://bucket/run')) == 'gs://bucket/run'
  assert (
    os.fspath(paths.resolve('gs://bucket/run') / 'x') == 'gs://bucket/run/x'
  )
  assert paths.resolve('relative').is_absolute()
  path = paths.write_text(tmp_path / 'a' / 'b.json', '{}')
  assert path.read_text() == '{}' and os.listdir(tmp_path / 'a') == ['b.json']
  with pytest.raises(PermissionError, match='Cannot write'):
    paths.check_writable(path / 'below_a_file')


# --- preemption -------------------------------------------------------------


def test_preemption_saves_and_reports_preempted(tmp_path, monkeypatch):
  real_next = synthetic.SyntheticTrainIterator.__next__
  calls = []

  def next_then_sigterm(self):
    calls.append(1)
    if len(calls) == 3:
      os.kill(os.getpid(), signal.SIGTERM)
    return real_next(self)

  monkeypatch.setattr(
    synthetic.SyntheticTrainIterator, '__next__', next_then_sigterm
  )
  config = tiny_config(num_epochs=2, **{'checkpoint.every_steps': 100})
  outcome = loop.train(config, str(tmp_path))
  assert outcome.status == 'preempted' and 1 <= outcome.step < 8
  assert os.listdir(tmp_path / 'checkpoints') == [str(outcome.step)]
  assert train_app.EXIT_CODES['preempted'] == train_app.EXIT_PREEMPTED == 75
  assert train_app.EXIT_CODES['finished'] == 0
  assert not (tmp_path / run_dir.OWNER).exists()


# --- evaluation -------------------------------------------------------------


def test_evaluation_checks_the_results_dir_first_and_writes_to_out(
  finished_run, tmp_path, monkeypatch
):
  calls = []

  def fake_suite(run, args):
    calls.append(run.step)
    return {'metrics': {'top1': 0.5}, '_pixels': np.zeros(3)}

  monkeypatch.setitem(suite_registry.SUITES, 'fake', fake_suite)
  run = runs.load_run(finished_run)
  blocked = tmp_path / 'a_file'
  blocked.write_text('')
  args = suite_registry.SuiteArgs(out=str(blocked / 'eval'))
  with pytest.raises(PermissionError, match='Cannot write'):
    suite_registry.evaluate_run(run, 'fake', args)
  assert calls == []  # refused before the suite ran
  out = tmp_path / 'out'
  result = suite_registry.evaluate_run(
    run, 'fake', suite_registry.SuiteArgs(out=str(out))
  )
  assert calls == [4] and result['json'] == str(out / 'fake.json')
  saved = json.loads((out / 'fake.json').read_text())
  assert saved['metrics'] == {'top1': 0.5} and '_pixels' not in saved
  assert os.listdir(out) == ['fake.json']  # no temporary left behind
  assert not (finished_run / 'eval').exists()  # the run was not written


# --- validation -------------------------------------------------------------


def test_enumerated_fields_fail_at_start_up(tmp_path):
  for field, value in (
    ('data.on_corrupt', 'skp'),
    ('data.augment', 'inceptoin'),
    ('model.name', 'resnet5'),
    ('relabel.missing', 'zero'),
  ):
    with pytest.raises(ValueError, match=f'config.{field} must be one of'):
      loop.train(tiny_config(**{field: value}), str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_the_pipeline_and_the_validation_agree_on_the_choices():
  from jaxmix.data import preprocess

  assert validation._CHOICES['data.augment'] == preprocess.AUGMENTS
  assert validation._CHOICES['data.on_corrupt'] == preprocess.ON_CORRUPT
  assert validation._CHOICES['data.train_resize'] == preprocess.TRAIN_RESIZES


def test_an_unknown_dataset_is_one_line_with_the_closest_names():
  from jaxmix.data import tfds_source

  with pytest.raises(ValueError) as error:
    tfds_source.open_builder('imagenet2013', None)
  message = str(error.value)
  assert '\n' not in message and len(message) < 300
  assert "no dataset 'imagenet2013'" in message and 'imagenet2012' in message


# --- library inputs ---------------------------------------------------------


def test_channels_first_images_are_rejected():
  key = jax.random.key(0)
  nchw = jnp.zeros((2, 3, 32, 32))
  labels = jaxmix.one_hot(jnp.array([0, 1]), 10)
  with pytest.raises(ValueError, match='channels-first'):
    jaxmix.cutmix(key, nchw, labels)
  jaxmix.cutmix(key, jnp.zeros((2, 32, 32, 3)), labels)  # NHWC passes
  jaxmix.cutmix(key, jnp.zeros((2, 8, 8, 6)), labels)  # any C channels-last


def test_pool_label_map_rejects_bad_boxes_and_class_ids():
  scores = jnp.ones((2, 2, 2, 1))
  indices = jnp.zeros((2, 2, 2, 1), jnp.int32)
  good = jnp.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.5, 0.6]])
  for bad, what in (
    ([[0.0, 0.0, 1.0, 1.5]], 'row 1'),
    ([[0.5, 0.0, 0.2, 1.0]], 'row 1'),
    ([[np.nan, 0.0, 1.0, 1.0]], 'row 1'),
  ):
    boxes = jnp.concatenate([good[:1], jnp.array(bad)])
    with pytest.raises(ValueError, match=what):
      jaxmix.pool_label_map(scores, indices, boxes, num_classes=3)
  with pytest.raises(ValueError, match='num_classes=3'):
    jaxmix.pool_label_map(scores, indices + 3, good, num_classes=3)
  # Under jit the values are unknown: no check, no error.
  pooled = jax.jit(
    lambda b: jaxmix.pool_label_map(scores, indices, b, num_classes=3)
  )(good)
  assert pooled.shape == (2, 3)


# --- the command line -------------------------------------------------------


@pytest.mark.slow
def test_command_line_exit_codes(tmp_path):
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_NUM_CPU_DEVICES': '1'}
  command = [
    sys.executable,
    '-m',
    'jaxmix.apps.train',
    '--config=configs/default.py:smoke',
    f'--workdir={tmp_path / "run"}',
    '--config.num_epochs=1',
    '--config.model.kwargs.width=4',
    '--config.checkpoint.every_steps=1',
  ]

  def run(*extra):
    return subprocess.run(
      [*command, *extra],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )

  first = run()
  assert first.returncode == 0, first.stderr[-3000:]
  again = run()
  assert again.returncode == train_app.EXIT_NOTHING_TO_DO, again.stderr[-3000:]
  assert 'Nothing to do' in again.stderr
  wider = run('--config.model.kwargs.width=32')
  assert wider.returncode == train_app.EXIT_REFUSED, wider.stderr[-3000:]
  assert 'model.kwargs.width: 4 (run) -> 32 (requested)' in wider.stderr
  assert 'Traceback' not in wider.stderr
  assert 'Event loop is closed' not in wider.stderr
  # A truncated latest checkpoint: one line says so, the run goes on from
  # the previous one (no echoes of the failed read).
  with open(
    largest_array_file(tmp_path / 'run' / 'checkpoints' / '4'), 'r+b'
  ) as f:
    f.truncate(100)
  longer = run('--config.num_epochs=2')
  assert longer.returncode == 0, longer.stderr[-3000:]
  assert 'Skipping checkpoint step 4' in longer.stderr
  assert 'Resumed from step 3' in longer.stderr
  assert 'Traceback' not in longer.stderr
  assert 'Event loop is closed' not in longer.stderr


def test_a_field_added_later_compares_as_the_value_old_runs_used():
  recorded = {'data': {'dataset': 'x'}}  # written before the fields existed
  same = {'data': {'dataset': 'x', 'train_resize': 'antialias'}}
  assert run_dir.differences(recorded, same) == {}
  other = {'data': {'dataset': 'x', 'train_resize': 'area'}}
  assert run_dir.differences(recorded, other) == {
    'data.train_resize': ('antialias', 'area')
  }
  # The code reads every field of an upgraded record directly
  # (tests/config_upgrade_test.py); the one default left to the code is
  # the model's own, for a kwarg a record lacks.
  assert (
    run_dir.ADDED_LATER['model.kwargs.unbiased_running_var']
    == inspect.signature(models.create_model)
    .parameters['unbiased_running_var']
    .default
  )


def test_one_rule_gives_the_value_an_old_run_used_for_a_new_field():
  # A field added at its default: an old run used the default, so asking
  # for the default changes nothing and another value is reported against
  # it (not against '<absent>').
  recorded = {'cmo': {'enabled': False}}  # written before cmo.prob existed
  from jaxmix.configs import default

  default_prob = default.get_config().cmo.prob
  assert run_dir.value_before_field('cmo.prob') == default_prob
  same = {'cmo': {'enabled': False, 'prob': default_prob}}
  assert run_dir.differences(recorded, same) == {}
  other = {'cmo': {'enabled': False, 'prob': 0.123}}
  assert run_dir.differences(recorded, other) == {
    'cmo.prob': (default_prob, 0.123)
  }
  # A field whose default changed uses the recorded-era value instead.
  assert run_dir.value_before_field('data.train_resize') == 'antialias'
  # A field the schema does not know stays absent (a misspelling shows).
  assert run_dir.value_before_field('data.no_such_field') == '<absent>'
  # Whether a fresh run demands init_from never fixes a run.
  assert run_dir.may_change('model.init_required')
  assert not run_dir.may_change('model.init_from')


# --- the metrics log --------------------------------------------------------


def test_a_resumed_run_logs_each_step_once(finished_run, tmp_path):
  """Killed after logging step 4 but before saving steps 3 and 4."""
  workdir = copy_of(finished_run, tmp_path)
  for step in ('3', '4'):
    shutil.rmtree(workdir / 'checkpoints' / step)
  log = workdir / 'metrics.jsonl'
  before = [json.loads(x) for x in log.read_text().splitlines()]
  assert max(r['step'] for r in before) == 4
  with open(log, 'a') as f:
    f.write('{"step": 4, "train/lo')  # the line a kill -9 cut short
  outcome = loop.train(tiny_config(), str(workdir))
  assert (outcome.status, outcome.step) == ('finished', 4)
  rows = [json.loads(x) for x in log.read_text().splitlines()]
  kinds = [(r['step'], tuple(sorted(r))) for r in rows]
  assert len(kinds) == len(set(kinds))  # each step once per kind of row
  assert [r for r in rows if r['step'] <= 2] == [
    r for r in before if r['step'] <= 2
  ]
  redone = [r for r in rows if r['step'] > 2]
  assert redone and all(r not in before for r in redone)
