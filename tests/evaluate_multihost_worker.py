"""Runs `python -m jaxmix.apps.evaluate` in its own process, for the tests.

  python tests/evaluate_multihost_worker.py RUNS DIGITS_DIR IMAGENET_DIR
    [--devices 2] [--num_processes 2 --process_id 0 --port 12345]
    [--out predictions.npz]

Used by `evaluate_multihost_test.py`: 2 processes x 2 CPU devices over
gloo, compared with the suites run in one process on 4 devices. Evaluates
RUNS/digits with the 'digits' suite (digit_scenes/small, 45 examples) and
the 'in_between' suite (its eval split, 45 examples),
RUNS/imagenet (1000 classes) with the 'imagenet' suite (the imagenet2012
fixture) through the command line, then writes the logits of `predict` on
the digit_scenes test images to `--out` (process 0). The files opened for
writing under RUNS are printed on the last line ('writes: [...]').
"""

import argparse
import builtins
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument('runs')
parser.add_argument('digits_dir')
parser.add_argument('imagenet_dir')
parser.add_argument('--devices', type=int, default=2)
parser.add_argument('--num_processes', type=int, default=1)
parser.add_argument('--process_id', type=int, default=0)
parser.add_argument('--port', type=int, default=0)
parser.add_argument('--out', default='')
args = parser.parse_args()

from worker_jax import start_cpu_jax  # noqa: E402

jax = start_cpu_jax(args.devices)

import numpy as np  # noqa: E402

from jaxmix.apps import evaluate as cli  # noqa: E402

writes = []
_open, _makedirs = builtins.open, os.makedirs


def tracked_open(file, mode='r', *a, **k):
  if set(mode) & set('wax+') and str(file).startswith(args.runs):
    writes.append(str(file))
  return _open(file, mode, *a, **k)


def tracked_makedirs(name, *a, **k):
  if str(name).startswith(args.runs) and not os.path.isdir(name):
    writes.append(str(name))
  return _makedirs(name, *a, **k)


builtins.open, os.makedirs = tracked_open, tracked_makedirs

distributed = []
if args.num_processes > 1:
  distributed = [
    '--distributed',
    '--coordinator_address',
    f'127.0.0.1:{args.port}',
    '--num_processes',
    str(args.num_processes),
    '--process_id',
    str(args.process_id),
  ]
digits_run = os.path.join(args.runs, 'digits')
digits = ['--workdir', digits_run, '--suite', 'digits', *distributed]
digits += ['--dataset', 'digit_scenes/small', '--data_dir', args.digits_dir]
digits += ['--batch_size', '8', '--limit', '45', '--occlusion_sizes', '0,0.5']
assert cli.main(digits) == 0
in_between = ['--workdir', digits_run, '--suite', 'in_between', *distributed]
in_between += ['--batch_size', '8', '--limit', '45', '--lambdas', '0,0.5,1']
assert cli.main(in_between) == 0
imagenet = ['--workdir', os.path.join(args.runs, 'imagenet'), *distributed]
imagenet += ['--suite', 'imagenet', '--data_dir', args.imagenet_dir]
assert cli.main([*imagenet, '--batch_size', '4']) == 0

from jaxmix.data import eval_batches  # noqa: E402
from jaxmix.evaluate import runs  # noqa: E402
from jaxmix.evaluate.suites import registry as suite_registry  # noqa: E402

run = runs.load_run(digits_run)
found = suite_registry.predict(
  run,
  eval_batches.batches(
    'digit_scenes/small',
    'test',
    data_dir=args.digits_dir,
    image_size=run.image_size,
    batch_size=8,
    limit=45,
    extras={'label': lambda ex: ex['label']},
  ),
  keep=('label',),
)
if args.out and jax.process_index() == 0:
  np.savez(args.out, **found)
print('writes:', json.dumps(sorted(set(writes))))
sys.stdout.flush()
