"""jaxmix's own datasets: offline TFDS builders, fixtures and synthetic data.

`BUILDERS` is the explicit registry of the TFDS builders jaxmix defines:
TFDS knows a builder once its module is imported, and `import_builder`
imports the module registered for a dataset name (nothing for TFDS's own
datasets such as `imagenet2012`). Every dataset is prepared with TFDS's
command line, `build_command` spells it (docs/datasets.md). Nothing is
imported on `import jaxmix.datasets`, so the TF-free synthetic data loads
without TensorFlow.

- `digit_scenes` (+ `digit_render`): multi-digit scenes with boxes, built
  offline from scikit-learn's digits (the default job's dataset).
- `backgrounds_challenge`: ImageNet-9 of the Backgrounds Challenge (Xiao
  et al.), from the user's download of the official release.
- `fgvc_aircraft`: FGVC Aircraft (Maji et al.), from the user's download
  of the 2013b release (a transfer-learning dataset).
- `imagenet_fixture`: tiny real-JPEG stand-ins of ImageNet's manual files,
  so `imagenet2012` builds offline through TFDS's own builder.
- `synthetic`: TF-free image-classification batches with the input
  pipeline's interface (smoke runs, speed runs without TensorFlow).
"""

import importlib

# Dataset name (before any '/config') -> module defining its TFDS builder.
BUILDERS: dict[str, str] = {
  'backgrounds_challenge': 'jaxmix.datasets.backgrounds_challenge',
  'digit_scenes': 'jaxmix.datasets.digit_scenes',
  'fgvc_aircraft': 'jaxmix.datasets.fgvc_aircraft',
}


def import_builder(name: str) -> None:
  """Registers jaxmix's TFDS builder for `name` ('digit_scenes/small')."""
  module = BUILDERS.get(name.split('/')[0])
  if module is not None:
    importlib.import_module(module)


def build_command(
  name: str, data_dir: str, manual_dir: str | None = None
) -> str:
  """The `tfds build` command that prepares `name` ('digit_scenes/small').

  jaxmix's own builders get `--imports` with their module (TFDS knows them
  once it is imported); a name without '/config' builds every config.
  """
  base, _, config = name.partition('/')
  command = f'tfds build {base}'
  if base in BUILDERS:
    command += f' --imports {BUILDERS[base]}'
  command += f' --data_dir {data_dir}'
  if config:
    command += f' --config {config}'
  if manual_dir:
    command += f' --manual_dir {manual_dir}'
  return command
