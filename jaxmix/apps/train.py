"""Command-line entry point of the jaxmix trainer.

  python -m jaxmix.apps.train --config configs/imagenet/cutmix_resnet50.py \
    --workdir /path/to/run
  python -m jaxmix.apps.train --config imagenet/cutmix_resnet50.py:smoke \
    --workdir /tmp/run

`--config` is a recipe file, or a recipe jaxmix ships named by its path
under `configs/` (so the command works from any directory after `pip
install`). Any field can be overridden (`--config.mix.cutmix_alpha=0.5`);
the config is locked, so a misspelled field fails instead of being
ignored. Starting again with the same `--workdir` resumes from its newest
intact checkpoint. `--workdir` may be a URL (`gs://bucket/run`).

Exit status (what a scheduler needs to requeue a preempted job):

  0   finished: the run reached its last step (and saved it).
  1   an error (a bad config field, a corrupt dataset, a non-finite loss,
      a full disk: one line naming the run directory and the checkpoint
      step; the run resumes once space is freed).
  3   nothing to do: the run had already reached its last step; nothing
      was trained or recorded.
  4   refused: the run directory holds a run of another config (identity
      fields differ), or another trainer holds its lock.
  75  preempted (SIGTERM): saved; start the same command again to resume
      (75 is EX_TEMPFAIL of sysexits.h, "try again later").
"""

import logging as logging_lib
import sys

from absl import app, flags
from ml_collections import config_flags

from jaxmix.train import recipes

_CONFIG = config_flags.DEFINE_config_file(
  'config',
  None,
  'Recipe file or packaged recipe, e.g. configs/default.py:smoke or '
  'imagenet/cutmix_resnet50.py.',
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  'workdir', None, 'Run directory (checkpoints, logs, config.json).'
)
flags.mark_flags_as_required(['config', 'workdir'])

EXIT_FINISHED = 0
EXIT_ERROR = 1
EXIT_NOTHING_TO_DO = 3
EXIT_REFUSED = 4
EXIT_PREEMPTED = 75
EXIT_CODES = {
  'finished': EXIT_FINISHED,
  'nothing_to_do': EXIT_NOTHING_TO_DO,
  'preempted': EXIT_PREEMPTED,
}


def _quiet_orbax(record: logging_lib.LogRecord) -> bool:
  """Drops orbax's per-save INFO chatter; warnings and errors still show."""
  return record.levelno > logging_lib.INFO or 'orbax' not in record.pathname


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with `--config` resolved to a recipe file."""
  try:
    argv = recipes.resolve_argv(argv)
  except FileNotFoundError as error:
    raise SystemExit(f'FATAL: {error}') from None
  return flags.FLAGS(argv)


def main(argv: list[str]) -> int:
  """Trains; returns the exit status (see the module docstring)."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging_lib.getLogger('absl').addFilter(_quiet_orbax)
  # Imported here so that `--help` answers without loading JAX. The tf.data
  # pipeline (TFDS datasets only) hides the accelerators from TensorFlow.
  from jaxmix.train import loop, run_dir

  try:
    outcome = loop.train(_CONFIG.value, _WORKDIR.value)
  except (run_dir.RunIdentityError, run_dir.RunLockedError) as error:
    print(f'FATAL: {error}', file=sys.stderr)
    return EXIT_REFUSED
  except run_dir.DiskFullError as error:
    print(f'FATAL: {error}', file=sys.stderr)
    return EXIT_ERROR
  return EXIT_CODES[outcome.status]


def run() -> None:
  """The console-script entry point."""
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
