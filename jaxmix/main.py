"""Command-line entry point of the jaxmix trainer.

  python -m jaxmix.main --config configs/imagenet/cutmix_resnet50.py \
    --workdir /path/to/run
  python -m jaxmix.main --config configs/default.py:smoke --workdir /tmp/run

Any field can be overridden (`--config.mix.cutmix_alpha=0.5`); the config is
locked, so a misspelled field fails instead of being ignored. Run from the
repository root (recipes import `configs.default`). Starting again with the
same `--workdir` resumes from its latest checkpoint.
"""

import logging as logging_lib
import os

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
  'config',
  None,
  'Config file, e.g. configs/default.py or configs/default.py:smoke.',
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  'workdir', None, 'Run directory (checkpoints, logs, config.json).'
)
flags.mark_flags_as_required(['config', 'workdir'])


def _quiet_orbax(record: logging_lib.LogRecord) -> bool:
  """Drops orbax's per-save INFO chatter; warnings and errors still show."""
  return record.levelno > logging_lib.INFO or 'orbax' not in record.pathname


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging_lib.getLogger('absl').addFilter(_quiet_orbax)
  # Imported here so that `--help` answers without loading JAX. The tf.data
  # pipeline (TFDS datasets only) hides the accelerators from TensorFlow.
  from jaxmix.train import loop

  loop.train_and_evaluate(_CONFIG.value, os.path.abspath(_WORKDIR.value))


if __name__ == '__main__':
  app.run(main)
