"""Command-line entry point of the jaxmix trainer.

  python -m jaxmix.apps.train --config configs/imagenet/cutmix_resnet50.py \
    --workdir /path/to/run
  python -m jaxmix.apps.train --config imagenet/cutmix_resnet50.py:smoke \
    --workdir /tmp/run

`--config` is a recipe file, or a recipe jaxmix ships named by its path
under `configs/` (so the command works from any directory after `pip
install`). Any field can be overridden (`--config.mix.cutmix_alpha=0.5`);
the config is locked, so a misspelled field fails instead of being
ignored. Starting again with the same `--workdir` resumes from its latest
checkpoint.
"""

import logging as logging_lib
import os

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


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging_lib.getLogger('absl').addFilter(_quiet_orbax)
  # Imported here so that `--help` answers without loading JAX. The tf.data
  # pipeline (TFDS datasets only) hides the accelerators from TensorFlow.
  from jaxmix.train import loop

  loop.train_and_evaluate(_CONFIG.value, os.path.abspath(_WORKDIR.value))


def run() -> None:
  """The console-script entry point."""
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
