"""Runs a small synthetic training run in its own process, for the tests.

  python tests/multihost_worker.py WORKDIR [--devices 2] [--num_processes 2
    --process_id 0 --port 12345] [--delay 0.2] [--every 1] [--out p.npz]

Used by `multihost_test.py` (2 processes x 2 CPU devices over gloo vs one
process x 4 devices) and `checkpoints_test.py` (kill -9 / SIGTERM and
resume). The inherited XLA_FLAGS (8 fake devices from conftest) are replaced
by `--devices` before JAX starts. The final parameters are written to
`--out` by process 0.
"""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument('workdir')
parser.add_argument('--devices', type=int, default=2)
parser.add_argument('--num_processes', type=int, default=1)
parser.add_argument('--process_id', type=int, default=0)
parser.add_argument('--port', type=int, default=0)
parser.add_argument('--delay', type=float, default=0.0)
parser.add_argument('--every', type=int, default=1)
parser.add_argument('--out', default='')
args = parser.parse_args()

from worker_jax import start_cpu_jax  # noqa: E402

jax = start_cpu_jax(args.devices)

import numpy as np  # noqa: E402
from absl import logging  # noqa: E402

from jaxmix.configs import default  # noqa: E402
from jaxmix.datasets import synthetic  # noqa: E402
from jaxmix.train import loop  # noqa: E402

logging.set_verbosity(logging.INFO)

config = default.get_config('smoke')
config.image_size = 16
config.model.kwargs.width = 4
config.num_epochs = 4  # 4 steps per epoch: 16 steps
config.mix.method = 'cutmix'
config.mix.off_epoch = 1
config.checkpoint.every_steps = args.every
config.log_every_steps = 1
config.eval_every_epochs = 4
if args.num_processes > 1:
  config.distributed.initialize = True
  config.distributed.coordinator_address = f'127.0.0.1:{args.port}'
  config.distributed.num_processes = args.num_processes
  config.distributed.process_id = args.process_id

if args.delay:  # slow the data down so a test can interrupt mid-run
  next_batch = synthetic.SyntheticTrainIterator.__next__

  def slow_next(self):
    time.sleep(args.delay)
    return next_batch(self)

  synthetic.SyntheticTrainIterator.__next__ = slow_next

state = loop.train_and_evaluate(config, args.workdir)
if args.out and jax.process_index() == 0:
  leaves = jax.tree.leaves((state.params, state.batch_stats))
  np.savez(args.out, *[np.asarray(x.addressable_data(0)) for x in leaves])
print('worker done', jax.process_index(), int(state.step.addressable_data(0)))
