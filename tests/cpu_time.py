"""A pytest plugin: each test's CPU seconds, summed per file at the end.

Load it with `-p cpu_time` (with `tests` on `PYTHONPATH`). Every test
appends one JSON line `{"id", "cpu", "wall"}` to the file named by
`JAXMIX_CPU_TIME_OUT` (default `cpu_time.jsonl`): `cpu` is the user and
system time of the process running the test and of the subprocesses it
waited for (trainer command lines, multi-host workers), so XLA's compile
threads count. Under xdist every worker appends to the same file, and the
controller prints the per-file totals of that file at the end.

CPU seconds, not wall time, are the figure that holds on a shared machine:
a test's wall time grows with the load, its CPU time much less.
"""

import collections
import json
import os
import resource
import time

import pytest


def _out() -> str:
  return os.environ.get('JAXMIX_CPU_TIME_OUT', 'cpu_time.jsonl')


def _cpu_seconds() -> float:
  own = resource.getrusage(resource.RUSAGE_SELF)
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  cpu, wall = _cpu_seconds(), time.time()
  yield
  line = {
    'id': item.nodeid,
    'cpu': round(_cpu_seconds() - cpu, 3),
    'wall': round(time.time() - wall, 3),
  }
  with open(_out(), 'a') as f:  # one short write: workers' lines never mix
    f.write(json.dumps(line) + '\n')


def pytest_terminal_summary(terminalreporter, config):
  if os.environ.get('PYTEST_XDIST_WORKER') or not os.path.exists(_out()):
    return
  per_file = collections.Counter()
  with open(_out()) as f:
    for line in f:
      test = json.loads(line)
      per_file[test['id'].split('::')[0]] += test['cpu']
  terminalreporter.section(f'CPU seconds per file ({_out()})')
  for path, cpu in per_file.most_common():
    terminalreporter.write_line(f'{cpu:8.1f}  {path}')
  terminalreporter.write_line(f'{sum(per_file.values()):8.1f}  total')
