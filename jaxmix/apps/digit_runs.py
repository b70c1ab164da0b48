"""One digit_scenes run: recipe, train, evaluate.

The default job (`jaxmix.apps.demo`) and the digit study of
`projects/digit_study/` build on it: the recipes of `configs/digits/`
(shipped as `jaxmix.configs.digits`), their `:smoke` variants, and one
run's training and 'digits' evaluation.
"""

import dataclasses
import importlib
import time

import ml_collections

COLUMNS = (
  'digits/top1',
  'digits/multilabel_top1',
  'digits/occluded_half_top1',
  'digits/top1_loc',
  'digits/max_box_acc',
)
COLUMN_NAMES = (
  'top-1',
  'multi-label top-1',
  'top-1, half occluded',
  'CAM top-1 loc.',
  'MaxBoxAcc',
)


def load_recipe(name: str, *, smoke: bool) -> ml_collections.ConfigDict:
  """The recipe `configs/digits/<name>.py` (packaged with jaxmix); with `smoke`, shrunk to seconds.

  The smoke version keeps the recipe (mixing, Cutout, ReLabel) and the
  real data pipeline, on digit_scenes 'small' with a tiny CNN.
  """
  try:
    module = importlib.import_module(f'jaxmix.configs.digits.{name}')
  except ModuleNotFoundError:
    raise ValueError(
      f'Unknown digit_scenes recipe {name!r} (configs/digits/{name}.py).'
    ) from None
  config = module.get_config()
  if smoke:
    config.data.dataset = 'digit_scenes/small'
    config.model.name = 'tiny_cnn'
    config.model.kwargs = ml_collections.ConfigDict({'width': 8})
    config.global_batch_size = 16
    config.num_epochs = 2
    config.schedule.warmup_epochs = 0.5
    config.mix.off_epoch = 0
    config.checkpoint.every_steps = 8
    config.log_every_steps = 8
    config.eval_every_epochs = 1
  return config


def prepare_data(data_dir: str, *, smoke: bool) -> None:
  """Prepares digit_scenes (no-op when already prepared)."""
  from jaxmix.datasets import digit_scenes

  digit_scenes.prepare(data_dir, 'small' if smoke else 'default')


def train(config: ml_collections.ConfigDict, run_dir: str) -> float:
  """Trains (or resumes, or just reopens) a run; returns seconds spent."""
  from jaxmix.train import loop

  start = time.perf_counter()
  loop.train_and_evaluate(config, run_dir)
  return time.perf_counter() - start


def evaluate(
  run_dir: str,
  data_dir: str,
  *,
  smoke: bool = False,
  dataset: str | None = None,
  occlusion_sizes: tuple[float, ...] | None = None,
) -> dict:
  """The 'digits' suite on the test split; writes `RUN/eval/digits.*`.

  `dataset`: the digit_scenes config to test on (default 'digit_scenes',
  or 'digit_scenes/small' with `smoke`); `occlusion_sizes`: the hole sides
  of the occlusion curve (default the suite's nine; the table needs 0.5).
  """
  from jaxmix.evaluate import runs
  from jaxmix.evaluate.suites import registry as suite_registry

  if dataset is None:
    dataset = 'digit_scenes/small' if smoke else 'digit_scenes'
  args = suite_registry.SuiteArgs(data_dir=data_dir, dataset=dataset)
  if occlusion_sizes is not None:
    args = dataclasses.replace(args, occlusion_sizes=tuple(occlusion_sizes))
  return suite_registry.evaluate_run(runs.load_run(run_dir), 'digits', args)
