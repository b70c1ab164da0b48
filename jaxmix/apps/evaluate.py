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

import dataclasses
import os
import sys
import types

from absl import flags

from jaxmix.evaluate import report
from jaxmix.io import command_line

FLAGS = flags.FlagValues()
_str, _int = flags.DEFINE_string, flags.DEFINE_integer
flags.DEFINE_multi_string(
  'workdir', None, 'Run directory (repeat).', flag_values=FLAGS
)
flags.DEFINE_enum(
  'suite', None, report.SUITE_ORDER, 'The suite.', flag_values=FLAGS
)
_str(
  'data_dir',
  None,
  'TFDS data_dir (default: the run config).',
  flag_values=FLAGS,
)
_str(
  'manual_dir', None, 'Where manually downloaded files live.', flag_values=FLAGS
)
_str('split', None, "Split to read (default: the suite's).", flag_values=FLAGS)
_str(
  'dataset',
  None,
  'wsol: boxed dataset; ood: OOD dataset; digits.',
  flag_values=FLAGS,
)
_int('batch_size', 128, 'Global batch size.', flag_values=FLAGS)
_str(
  'out', None, 'Directory for pictures (default RUN/eval).', flag_values=FLAGS
)
_int('limit', None, 'Read at most this many examples.', flag_values=FLAGS)
_int('step', None, 'Checkpoint step (default: the latest).', flag_values=FLAGS)
flags.DEFINE_bool(
  'no_ema', False, 'Use raw, not EMA, params.', flag_values=FLAGS
)
_FLOATS = {
  'occlusion_sizes': 'Hole sides / image side.',
  'lambdas': 'In-between mixing weights.',
  'epsilons': 'FGSM epsilons in pixels (0..255).',
}
for _name, _help in _FLOATS.items():
  flags.DEFINE_list(_name, None, _help + ' Comma-separated.', flag_values=FLAGS)
flags.DEFINE_float(
  'cam_threshold',
  None,
  'CAM box threshold (default: best top-1 loc. on validation).',
  flag_values=FLAGS,
)
_int('num_pictures', 8, 'Images in the pictures.', flag_values=FLAGS)
_int('seed', 0, 'Seed.', flag_values=FLAGS)
flags.DEFINE_bool(
  'distributed', False, 'Multi-host: initialise.', flag_values=FLAGS
)
_str('coordinator_address', None, 'host:port of process 0.', flag_values=FLAGS)
_int('num_processes', None, 'Processes (hosts) in all.', flag_values=FLAGS)
_int('process_id', None, 'This process (0 .. n-1).', flag_values=FLAGS)
flags.mark_flags_as_required(['workdir', 'suite'], flag_values=FLAGS)


def parse_args(argv: list[str] | None = None) -> types.SimpleNamespace:
  """The parsed flags as a snapshot; comma-separated numbers as tuples."""
  command_line.parse(FLAGS, argv, __doc__)
  ns = types.SimpleNamespace(**FLAGS.flag_values_dict())
  for name in _FLOATS:
    value = getattr(ns, name)
    if value is None:
      continue
    try:
      setattr(ns, name, tuple(float(v) for v in value))
    except ValueError:
      print(
        f'FATAL --{name}: expected comma-separated numbers, got {value!r}.',
        file=sys.stderr,
      )
      raise SystemExit(2) from None
  return ns


def initialize_distributed(ns: types.SimpleNamespace) -> None:
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


def suite_args(ns: types.SimpleNamespace, suites_lib) -> object:
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
