"""Command line of the evaluation suites.

  python -m jaxmix.apps.evaluate --workdir RUN --suite imagenet \
    [--data_dir DIR --split S --batch_size N --out DIR]
  python -m jaxmix.apps.evaluate --workdir RUN_A --workdir RUN_B --suite digits \
    --data_dir DIR

Writes `RUN/eval/<suite>.json` (plus PNG pictures for the suites that draw)
for every run and prints a short table; with `--out`, they go there instead
(`<out>/<run name>/` for each of several runs), so a read-only run directory
can be evaluated. The results directory is checked writable before a suite
starts and each run's JSON is written, atomically, as soon as it is
computed. With several runs, 'wsol' and 'digits' also draw the CAMs of all
runs side by side for the same images (`<out>/<suite>_cams_runs.png`,
`--out` default: the first run's eval/).

Multi-host (a TPU pod slice, several GPU hosts): run the same command on
every host with `--distributed` (`jax.distributed.initialize()`, as the
trainer's `config.distributed`); `--coordinator_address`,
`--num_processes` and `--process_id` may stay unset where JAX detects them
(Cloud TPU, Slurm, Kubernetes). Every host reads its own slice of the data;
all get the same metrics and only process 0 writes and prints.
"""

import argparse
import dataclasses
import os
import sys

from jaxmix.evaluate import report


def _floats(text: str) -> tuple[float, ...]:
  try:
    return tuple(float(v) for v in text.split(','))
  except ValueError:
    raise argparse.ArgumentTypeError(
      f'expected comma-separated numbers, got {text!r}'
    ) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog='python -m jaxmix.apps.evaluate', description=__doc__.splitlines()[0]
  )
  add = parser.add_argument
  add('--workdir', action='append', required=True, help='Run dir (repeat).')
  add('--suite', required=True, choices=report.SUITE_ORDER)
  add('--data_dir', help='TFDS data_dir (default: the run config).')
  add('--manual_dir', help='Where manually downloaded files live.')
  add('--split', help="Split to read (default: the suite's).")
  add('--dataset', help='wsol: boxed dataset; ood: OOD dataset; digits.')
  add('--batch_size', type=int, default=128)
  add('--out', help='Directory for pictures (default RUN/eval).')
  add('--limit', type=int, help='Read at most this many examples.')
  add('--step', type=int, help='Checkpoint step (default: the latest).')
  add('--no_ema', action='store_true', help='Use raw, not EMA, params.')
  add('--occlusion_sizes', type=_floats, help='Hole sides / image side.')
  add('--lambdas', type=_floats, help='In-between mixing weights.')
  add('--epsilons', type=_floats, help='FGSM epsilons in pixels (0..255).')
  add(
    '--cam_threshold',
    type=float,
    help='CAM box threshold (default: best top-1 loc. on validation).',
  )
  add('--num_pictures', type=int, default=8)
  add('--seed', type=int, default=0)
  add('--distributed', action='store_true', help='Multi-host: initialise.')
  add('--coordinator_address', help='host:port of process 0.')
  add('--num_processes', type=int, help='Processes (hosts) in all.')
  add('--process_id', type=int, help='This process (0 .. n-1).')
  return parser.parse_args(argv)


def initialize_distributed(ns: argparse.Namespace) -> None:
  """`jax.distributed.initialize` with the given flags (as the trainer)."""
  explicit = {
    name: getattr(ns, name)
    for name in ('coordinator_address', 'num_processes', 'process_id')
    if getattr(ns, name) is not None
  }
  if explicit and not ns.distributed:
    raise ValueError(
      f'--{", --".join(explicit)} need --distributed (multi-host start-up).'
    )
  if not ns.distributed:
    return
  import jax

  if jax.distributed.is_initialized():
    return  # already joined (e.g. a second evaluation in one process)
  jax.distributed.initialize(**explicit)


def suite_args(ns: argparse.Namespace, suites_lib) -> object:
  """The `SuiteArgs` of parsed flags (unset tuples keep their defaults)."""
  fields = {
    k: getattr(ns, k)
    for k in (
      'data_dir',
      'manual_dir',
      'split',
      'dataset',
      'batch_size',
      'out',
      'limit',
      'cam_threshold',
      'num_pictures',
      'seed',
      'occlusion_sizes',
      'lambdas',
      'epsilons',
    )
    if getattr(ns, k) is not None
  }
  return suites_lib.SuiteArgs(**fields)


def main(argv: list[str] | None = None) -> int:
  ns = parse_args(argv)
  initialize_distributed(ns)
  # Imported after parsing so that `--help` answers without loading JAX.
  from jaxmix.evaluate import multihost, runs
  from jaxmix.evaluate.suites import registry as suite_registry
  from jaxmix.io import paths

  args = suite_args(ns, suite_registry)
  if ns.out and multihost.is_primary():
    paths.check_writable(ns.out)  # before any run is loaded or evaluated
  results = []
  for workdir in ns.workdir:
    run = runs.load_run(workdir, step=ns.step, use_ema=not ns.no_ema)
    run_args = args
    if ns.out and len(ns.workdir) > 1:
      run_args = dataclasses.replace(args, out=os.path.join(ns.out, run.name))
    results.append(suite_registry.evaluate_run(run, ns.suite, run_args))
    if multihost.is_primary():
      print(f'{run.name}: wrote {results[-1]["json"]}')
  if not multihost.is_primary():
    return 0
  out = os.fspath(runs.results_dir(results[0]['workdir'], ns.out))
  combined = None
  if ns.suite in ('wsol', 'digits'):
    path = os.path.join(out, f'{ns.suite}_cams_runs.png')
    combined = report.combined_cam_grid(results, path)
  if combined:
    print(f'CAMs of all runs: {combined}')
  rows = [report.row_from_result(r) for r in results]
  print(report.markdown_table(rows))
  return 0


if __name__ == '__main__':
  sys.exit(main())
