"""Multi-host evaluation on one machine: 2 processes x 2 CPU devices.

The same trained runs are evaluated by `python -m jaxmix.apps.evaluate` (the
'digits', 'in_between' and 'imagenet' suites) in two worker processes joined over
loopback (`--distributed`, gloo CPU collectives), each reading its own
slice of the data, and by the suites in one process with 4 devices. Split sizes are
uneven (45 digit_scenes images in batches of 8, 6 ImageNet images in
batches of 4), so the processes read different numbers of real examples
and pad; the results must be the same, and only process 0 writes.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxmix.configs import default
from jaxmix.train import loop

WORKER = os.path.join(os.path.dirname(__file__), 'evaluate_multihost_worker.py')


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(log, *args):
  # A file, not a pipe: a full pipe would stall a worker mid-collective.
  with open(log, 'w') as out:
    process = subprocess.Popen(
      [sys.executable, WORKER, *map(str, args)],
      stdout=out,
      stderr=subprocess.STDOUT,
    )
  process.log = log
  return process


def _result(runs, suite, run=None):
  with open(os.path.join(runs, run or suite, 'eval', f'{suite}.json')) as f:
    result = json.load(f)
  for key in ('workdir', 'pictures'):  # paths under RUNS
    result.pop(key, None)
  return result


def _evaluate_in_one_process(runs_dir, digits_dir, imagenet_dir, out):
  """What the worker does, with the suites called directly on 4 devices."""
  import jax

  from jaxmix.data import eval_batches
  from jaxmix.evaluate import runs
  from jaxmix.evaluate.suites import registry as suite_registry
  from jaxmix.train import steps

  mesh = steps.create_mesh(jax.devices()[:4])
  run = runs.load_run(runs_dir / 'digits', mesh=mesh)
  args = suite_registry.SuiteArgs(
    dataset='digit_scenes/small',
    data_dir=digits_dir,
    batch_size=8,
    limit=45,
    occlusion_sizes=(0.0, 0.5),
  )
  suite_registry.evaluate_run(run, 'digits', args)
  args = suite_registry.SuiteArgs(
    batch_size=8, limit=45, lambdas=(0.0, 0.5, 1.0)
  )
  suite_registry.evaluate_run(run, 'in_between', args)
  batches = eval_batches.batches(
    'digit_scenes/small',
    'test',
    data_dir=digits_dir,
    image_size=run.image_size,
    batch_size=8,
    limit=45,
    extras={'label': lambda ex: ex['label']},
  )
  np.savez(out, **suite_registry.predict(run, batches, keep=('label',)))
  run = runs.load_run(runs_dir / 'imagenet', mesh=mesh)
  args = suite_registry.SuiteArgs(data_dir=imagenet_dir, batch_size=4)
  suite_registry.evaluate_run(run, 'imagenet', args)


@pytest.mark.slow
def test_two_processes_evaluate_like_one(tmp_path):
  from imagenet_fixture_util import prepared_imagenet

  from jaxmix.datasets import digit_scenes

  digits_dir = str(tmp_path / 'digits')
  digit_scenes.prepare(digits_dir, 'small')
  imagenet_dir, _ = prepared_imagenet(str(tmp_path / 'imagenet'))
  config = default.get_config('smoke')
  config.model.kwargs.width = 8
  config.data.dataset = 'digit_scenes/small'
  config.data.data_dir = digits_dir
  config.data.eval_split = 'validation'
  config.global_batch_size = 32
  config.num_epochs = 1
  config.mix.method = 'cutmix'
  loop.train_and_evaluate(config, str(tmp_path / 'trained' / 'digits'))
  # The ImageNet suites need a 1000-class run.
  config = default.get_config('smoke')
  config.model.kwargs.width = 4
  config.image_size = 16
  config.data.num_classes = 1000
  config.global_batch_size = 8
  config.num_epochs = 1
  loop.train_and_evaluate(config, str(tmp_path / 'trained' / 'imagenet'))
  multi, single = tmp_path / 'multi', tmp_path / 'single'
  for runs in (multi, single):
    shutil.copytree(tmp_path / 'trained', runs)
  data = (digits_dir, imagenet_dir)
  port = _free_port()
  workers = [
    _start(
      tmp_path / f'multi{i}.log',
      multi,
      *data,
      '--devices=2',
      '--num_processes=2',
      f'--process_id={i}',
      f'--port={port}',
      f'--out={tmp_path / "multi.npz"}',
    )
    for i in range(2)
  ]
  try:
    # The reference, meanwhile: this process with 4 of its devices.
    _evaluate_in_one_process(single, *data, tmp_path / 'single.npz')
    outputs = []
    for process in workers:
      process.wait(timeout=300)
      output = process.log.read_text()
      assert process.returncode == 0, output
      outputs.append(output)
  finally:
    for process in workers:
      if process.poll() is None:
        process.kill()
  writes = [json.loads(o.split('writes: ')[-1]) for o in outputs]
  assert writes[1] == []  # process 1 writes nothing
  # Results are written atomically (a hidden temporary file, then renamed)
  # into a directory probed for writability first (a hidden file, removed).
  final = {
    re.sub(r'/\.([^/]+)\.tmp-[0-9a-f]+$', r'/\1', p)
    for p in writes[0]
    if not os.path.basename(p).startswith('.write-check')
  }
  assert sorted(os.path.relpath(p, multi) for p in final) == [
    'digits/eval',
    'digits/eval/digits.json',
    'digits/eval/digits_cams.png',
    'digits/eval/digits_occlusion.png',
    'digits/eval/in_between.json',
    'digits/eval/in_between.png',
    'imagenet/eval',
    'imagenet/eval/imagenet.json',
  ]
  # Only process 0 prints the tables.
  assert '| digits | cutmix | 8 |' in outputs[0]
  assert '| imagenet | baseline | 8 |' in outputs[0]
  assert '| digits |' not in outputs[1]
  for suite in ('digits', 'imagenet'):
    assert sorted(os.listdir(multi / suite / 'eval')) == sorted(
      os.listdir(single / suite / 'eval')
    )
    assert _result(multi, suite) == _result(single, suite), suite
  # In-between pairs are examples (2k, 2k + 1) of the split, whatever reads
  # them: the same pairs, boxes and numbers.
  mixed = _result(multi, 'in_between', 'digits')
  assert mixed == _result(single, 'in_between', 'digits')
  assert mixed['curves']['cutmix']['lambda'] == [0.0, 0.5, 1.0]
  digits = _result(multi, 'digits')
  assert digits['metrics']['count'] == 45
  assert digits['cam_threshold']['chosen_on'] == 'validation'
  assert _result(multi, 'imagenet')['metrics']['count'] == 6
  # Every process's rows, back in the split's order, with the same logits.
  with (
    np.load(tmp_path / 'multi.npz') as got,
    np.load(tmp_path / 'single.npz') as want,
  ):
    np.testing.assert_array_equal(got['index'], np.arange(45))
    np.testing.assert_array_equal(got['label'], want['label'])
    np.testing.assert_allclose(got['logits'], want['logits'], atol=1e-5)
