"""Multi-host data parallelism on one machine: 2 processes x 2 CPU devices.

Two worker processes join over loopback (`jax.distributed`, gloo CPU
collectives), each feeding its own half of every global batch; they must
reach the parameters of one process with 4 devices after the same steps.
The synthetic examples depend on their global index, so a wrong split
(both hosts reading the same half, or halves swapped) changes the result.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), 'multihost_worker.py')


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def start(workdir, log, *args):
  """Starts a worker; its output goes to the file `log`."""
  # A file, not a pipe: a full pipe would stall a worker mid-collective.
  with open(log, 'w') as out:
    process = subprocess.Popen(
      [sys.executable, WORKER, str(workdir), *args],
      stdout=out,
      stderr=subprocess.STDOUT,
    )
  process.log = log
  return process


def load(path):
  with np.load(path) as data:
    return [data[k] for k in sorted(data, key=lambda k: int(k.split('_')[1]))]


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_devices(tmp_path):
  port = str(free_port())
  multi = tmp_path / 'multi'
  workers = [
    start(
      multi,
      tmp_path / f'multi{i}.log',
      '--devices',
      '2',
      '--num_processes',
      '2',
      '--process_id',
      str(i),
      '--port',
      port,
      *(['--out', str(tmp_path / 'multi.npz')] if i == 0 else []),
    )
    for i in range(2)
  ]
  single = start(
    tmp_path / 'single',
    tmp_path / 'single.log',
    '--devices',
    '4',
    '--out',
    str(tmp_path / 'one.npz'),
  )
  outputs = []
  for process in [*workers, single]:
    process.wait(timeout=600)
    output = process.log.read_text()
    assert process.returncode == 0, output
    outputs.append(output)
  assert 'worker done 0 16' in outputs[0]
  assert 'worker done 1 16' in outputs[1]
  got, want = load(tmp_path / 'multi.npz'), load(tmp_path / 'one.npz')
  assert len(got) == len(want) > 0
  for a, b in zip(got, want):
    # Same data, pairing and keys; only the order of the cross-process sums
    # differs (gloo all-reduce vs in-process), hence the tolerance.
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # Only process 0 logs: one event file and each step once in metrics.jsonl.
  assert len(os.listdir(multi / 'tensorboard')) == 1
  lines = [
    json.loads(x) for x in (multi / 'metrics.jsonl').read_text().splitlines()
  ]
  train_steps = [x['step'] for x in lines if 'train/loss' in x]
  assert train_steps == list(range(2, 17))
  single_lines = (tmp_path / 'single' / 'metrics.jsonl').read_text()
  single_lines = single_lines.splitlines()
  assert len(lines) == len(single_lines)
