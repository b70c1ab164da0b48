"""The suite's crash rule (conftest.py): a test whose xdist worker dies of
a signal runs once more on a new worker; ordinary failures never rerun."""

import os
import shutil
import subprocess
import sys

PROBE = """
import os
import signal


def test_crashes_once(tmp_path_factory):
  marker = tmp_path_factory.getbasetemp().parent / 'crashed-once'
  if not marker.exists():
    marker.write_text('')
    os.kill(os.getpid(), signal.SIGSEGV)


def test_crashes_always():
  os.kill(os.getpid(), signal.SIGSEGV)


def test_fails(tmp_path_factory):
  runs = tmp_path_factory.getbasetemp().parent / 'failed-runs'
  with open(runs, 'a') as f:
    f.write('x')
  assert False
"""


def test_a_crash_runs_once_more_and_a_failure_never(tmp_path):
  here = os.path.dirname(__file__)
  shutil.copy(os.path.join(here, 'conftest.py'), tmp_path / 'conftest.py')
  (tmp_path / 'probe_test.py').write_text(PROBE)
  base = tmp_path / 'base'
  proc = subprocess.run(
    [
      sys.executable,
      '-m',
      'pytest',
      '-n',
      '2',
      '-q',
      '-p',
      'no:cacheprovider',
      '-o',
      'python_files=*_test.py',
      f'--basetemp={base}',
      'probe_test.py',
    ],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=120,
  )
  summary = proc.stdout.strip().splitlines()[-1]
  assert proc.returncode == 1, proc.stdout
  assert '2 failed, 1 passed, 2 crashed and rerun' in summary, proc.stdout
  assert 'FAILED probe_test.py::test_crashes_always' in proc.stdout
  assert 'FAILED probe_test.py::test_fails' in proc.stdout
  # The ordinary failure ran once.
  assert (base / 'failed-runs').read_text() == 'x'
