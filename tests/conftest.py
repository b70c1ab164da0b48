"""Shared pytest set-up: 8 fake CPU devices, set before JAX is imported.

XLA programs are compiled once per test run: a compilation cache in a
temporary folder, made by the first process (pytest, or xdist's controller)
and inherited through the environment by the xdist workers and every
subprocess a test starts (trainer command lines, multi-host workers). A
test that trains twice with the same shapes (a resume, a reference run)
then loads the second executable instead of compiling it again. The cache
keys cover the program, the flags and the devices, so results are those of
a fresh compile; the folder is removed when its maker exits.
"""

import atexit
import fcntl
import os
import shutil
import tempfile

import pytest

# XLA's CPU backend compiles at its default optimisation level: levels 0
# and 1 compile faster but round some fused programs differently (the
# trainer's recorded losses move by an ulp), and the golden and parity
# tests hold the default's bits.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# TensorFlow (used by jaxmix.data only) must never grab an accelerator or spam.
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _cache = tempfile.mkdtemp(prefix='jaxmix-test-xla-cache-')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
# One cache folder per xdist worker (and the subprocesses it starts): two
# workers compiling the same program at once could otherwise read an entry
# the other is still writing, which crashes the reader.
if os.environ.get('PYTEST_XDIST_WORKER') and not os.environ.get(
  'JAXMIX_TEST_WORKER_CACHE'
):
  _worker_cache = os.path.join(
    os.environ['JAX_COMPILATION_CACHE_DIR'], os.environ['PYTEST_XDIST_WORKER']
  )
  os.makedirs(_worker_cache, exist_ok=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _worker_cache
  os.environ['JAXMIX_TEST_WORKER_CACHE'] = '1'
# Cache every program, however small or quick to compile.
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


@pytest.fixture(scope='session')
def digit_scenes_small(tmp_path_factory) -> str:
  """A TFDS data_dir holding digit_scenes/small, prepared once per run.

  Rendering and writing the scenes costs about 5 CPU seconds; the tests
  that only read them share one copy. Under xdist the workers share it too:
  the first to take the lock prepares it, the others find it ready
  (`prepare` is a no-op then). Read it only: a test that changes a dataset
  prepares its own.
  """
  from jaxmix.datasets import digit_scenes

  root = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    root = root.parent  # this run's folder, shared by its workers
  data_dir = root / 'shared-digit-scenes-small'
  with open(root / 'shared-digit-scenes-small.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      digit_scenes.prepare(str(data_dir), 'small')
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  return str(data_dir)


# A worker that dies of a signal (a segfault inside jaxlib's CPU compiler or
# its executable serialisation, seen about once in a few full runs) takes
# one test with it. That test runs once more on a fresh worker and passes or
# fails on its own merits; a second crash fails it. Only crashes are run
# again: an ordinary failure is reported as it is, the first time.
_CRASH_RERUNS = 1
_crashed: dict[str, int] = {}


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
  count = _crashed.get(crashitem, 0)
  _crashed[crashitem] = count + 1
  if count < _CRASH_RERUNS:
    sched.mark_test_pending(crashitem)
    report.outcome = 'rerun'
    report.longrepr = f'{report.longrepr}; running it again on a new worker'


def pytest_report_teststatus(report):
  if report.outcome == 'rerun':
    return 'crashed and rerun', 'R', ('RERUN', {'yellow': True})
  return None


def pytest_terminal_summary(terminalreporter):
  for report in terminalreporter.stats.get('crashed and rerun', []):
    terminalreporter.write_line(f'RERUN {report.nodeid}: {report.longrepr}')
