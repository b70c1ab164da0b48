"""Runs the two Backgrounds Challenge suites in one process of a job.

  python tests/backgrounds_multihost_worker.py DATA_DIR WORKDIR
    --num_processes 2 --process_id I --port P

Used by `evaluate_backgrounds_test.py`: 2 processes x 2 CPU devices over
gloo evaluate `backgrounds_fixtures.SwitchRun` on a prepared fake release;
the suites write `WORKDIR/eval/<suite>.json` (process 0). Every process
prints its metrics on the last line ('metrics: {...}').
"""

import argparse
import json
import sys

parser = argparse.ArgumentParser()
parser.add_argument('data_dir')
parser.add_argument('workdir')
parser.add_argument('--num_processes', type=int, default=2)
parser.add_argument('--process_id', type=int, default=0)
parser.add_argument('--port', type=int, default=0)
args = parser.parse_args()

from worker_jax import start_cpu_jax  # noqa: E402

jax = start_cpu_jax(2)
jax.distributed.initialize(
  coordinator_address=f'127.0.0.1:{args.port}',
  num_processes=args.num_processes,
  process_id=args.process_id,
)

import backgrounds_fixtures as bf  # noqa: E402

from jaxmix.evaluate.suites import registry as suite_registry  # noqa: E402

run = bf.switch_run(args.workdir)
found = {}
for suite in ('backgrounds', 'backgrounds_challenge'):
  options = suite_registry.SuiteArgs(data_dir=args.data_dir, batch_size=4)
  found[suite] = suite_registry.evaluate_run(run, suite, options)['metrics']
print('metrics:', json.dumps(found))
sys.stdout.flush()
