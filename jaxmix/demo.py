"""jaxmix's default job, offline: train with CutMix, evaluate, draw.

  python -m jaxmix.demo --workdir workdir/demo
  python -m jaxmix.demo --all --workdir workdir/digits

Run from the repository root (the recipes live in `configs/`). Nothing is
downloaded: the data is `digit_scenes` (`jaxmix.data.digit_scenes`), scenes
of 1-3 handwritten digits from scikit-learn on cluttered backgrounds, whose
one label is the largest digit.

The default job prepares the data in `WORKDIR/data` (once, ~30 s), trains
`configs/digits/cutmix.py` in `WORKDIR/cutmix` (checkpoints, metrics.jsonl,
TensorBoard events; a second call resumes or, when done, only evaluates),
runs the 'digits' evaluation suite on the test split (top-1, multi-label
top-1, top-1 under occlusion, CAM localisation against the true boxes) and
writes pictures: the augmentation preview, the training curves, CAMs with
predicted and true boxes, and the occlusion curve.

`--all` is the experiment behind the README's table, ReLabel's whole
pipeline in miniature: train the annotator (`configs/digits/annotator.py`)
on the single-digit 'annotator' split, write label maps of the train split
with it (`jaxmix.annotate`), train the seven recipes (baseline, Cutout,
Mixup, CutMix, ReLabel, ReLabel + CutMix with the official and with the
localised target rule), evaluate each, and write `WORKDIR/results.md` with
the machine, the wall times and how far CutMix's area labels are from the
pasted digits (`jaxmix.evaluate.label_fit`).

`--all --long` runs the same recipes in the regime where the baseline
overfits (`long_schedule`: 3,000 training scenes, a CNN twice as wide, 60
epochs) into `WORKDIR/long/` and writes `WORKDIR/results_long.md`; data,
annotator and label maps are shared with `--all`.
`--seed N` (runs and results get a `_seedN` suffix) and `--recipes a,b`
repeat or narrow either experiment.

`--smoke` shrinks everything to seconds (digit_scenes 'small', a tiny CNN,
two short epochs) for tests.
"""

import argparse
import importlib.util
import json
import os
import sys
import time

import ml_collections

DEFAULT_RECIPE = 'cutmix'
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


def repo_root() -> str:
  """The directory holding `configs/`: the current one, else the checkout."""
  for root in (os.getcwd(), os.path.dirname(os.path.dirname(__file__))):
    if os.path.isdir(os.path.join(root, 'configs', 'digits')):
      return os.path.abspath(root)
  raise FileNotFoundError(
    'configs/digits/ not found; run from the jaxmix repository root.'
  )


def long_schedule(config: ml_collections.ConfigDict) -> None:
  """The overfitting regime of `--long`, in place.

  30 % of the training scenes (3,000 of 10,000), the CNN twice as wide (4x
  the parameters: 298k) and 60 epochs: the baseline fits its training
  labels (98 % train top-1) instead of underfitting them as in 12 epochs.
  """
  config.data.train_split = 'train[:3000]'
  config.model.kwargs.width = 32
  config.num_epochs = 60
  config.eval_every_epochs = 20


def load_recipe(
  name: str, *, smoke: bool, long: bool = False
) -> ml_collections.ConfigDict:
  """`configs/digits/<name>.py`; with `smoke`, shrunk to seconds.

  With `long`, in the regime of `long_schedule`.

  The smoke version keeps the recipe (mixing, Cutout, ReLabel) and the
  real data pipeline, on digit_scenes 'small' with a tiny CNN.
  """
  root = repo_root()
  if root not in sys.path:
    sys.path.insert(0, root)  # the recipes import `configs.default`
  path = os.path.join(root, 'configs', 'digits', f'{name}.py')
  if not os.path.exists(path):
    raise ValueError(f'Unknown digit_scenes recipe {name!r} ({path}).')
  spec = importlib.util.spec_from_file_location(f'digits_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  if long:
    long_schedule(config)
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
    if long:  # 'small' has 256 training scenes
      config.data.train_split = 'train[:30%]'
  return config


def prepare_data(data_dir: str, *, smoke: bool) -> None:
  """Prepares digit_scenes (no-op when already prepared)."""
  from jaxmix.data import digit_scenes

  digit_scenes.prepare(data_dir, 'small' if smoke else 'default')


def train(config: ml_collections.ConfigDict, run_dir: str) -> float:
  """Trains (or resumes, or just reopens) a run; returns seconds spent."""
  from jaxmix.train import loop

  start = time.perf_counter()
  loop.train_and_evaluate(config, run_dir)
  return time.perf_counter() - start


def evaluate(run_dir: str, data_dir: str, *, smoke: bool) -> dict:
  """The 'digits' suite on the test split; writes `RUN/eval/digits.*`."""
  from jaxmix.evaluate import runs, suites

  args = suites.SuiteArgs(
    data_dir=data_dir,
    dataset='digit_scenes/small' if smoke else 'digit_scenes',
  )
  return suites.evaluate_run(runs.load_run(run_dir), 'digits', args)


def evaluated(run_dir: str) -> bool:
  """Whether `RUN/eval/digits.json` is of the run's latest checkpoint.

  Results of an older evaluation (CAM threshold not yet chosen on the
  validation split: no 'top1_loc_threshold') count as not evaluated.
  """
  path = os.path.join(run_dir, 'eval', 'digits.json')
  if not os.path.exists(path):
    return False
  with open(path) as f:
    found = json.load(f)
  step = found.get('step')
  if 'top1_loc_threshold' not in found.get('metrics', {}):
    return False
  names = os.listdir(os.path.join(run_dir, 'checkpoints'))
  return step == max((int(n) for n in names if n.isdigit()), default=None)


def draw(run_dir: str) -> list[str]:
  """The augmentation preview and the training curves of a run."""
  from jaxmix import preview
  from jaxmix.evaluate import plots

  pictures = os.path.join(run_dir, 'pictures')
  os.makedirs(pictures, exist_ok=True)
  out = os.path.join(pictures, 'augment_preview.png')
  preview.main(['--out', out, '--size', '128'])
  curves = plots.plot_training_curves(
    {os.path.basename(run_dir): os.path.join(run_dir, 'metrics.jsonl')},
    os.path.join(pictures, 'training_curves.png'),
  )
  return [out, curves]


def default_job(workdir: str, *, smoke: bool = False) -> dict:
  """Prepare, train CutMix, evaluate, draw; returns the digits metrics."""
  data_dir = os.path.join(workdir, 'data')
  prepare_data(data_dir, smoke=smoke)
  config = load_recipe(DEFAULT_RECIPE, smoke=smoke)
  config.data.data_dir = data_dir
  run_dir = os.path.join(workdir, DEFAULT_RECIPE)
  seconds = train(config, run_dir)
  result = evaluate(run_dir, data_dir, smoke=smoke)
  pictures = draw(run_dir)
  eval_dir = os.path.join(run_dir, 'eval')
  pictures += [os.path.join(eval_dir, f) for f in sorted(os.listdir(eval_dir))]
  metrics = result['metrics']
  print(f'\nTrained {run_dir} in {seconds:.0f} s (step {result["step"]}).')
  for column, name in zip(COLUMNS, COLUMN_NAMES):
    value = metrics.get(column.split('/')[1])
    if isinstance(value, float):
      print(f'  {name:>22}: {100 * value:6.2f} %')
  print(f'Checkpoints: {os.path.join(run_dir, "checkpoints")}')
  print(f'TensorBoard: tensorboard --logdir {run_dir}')
  print('Pictures:\n  ' + '\n  '.join(p for p in pictures if p.endswith('png')))
  return metrics


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True, help='Output directory.')
  parser.add_argument(
    '--all', action='store_true', help='Run every recipe, write a table.'
  )
  parser.add_argument(
    '--long',
    action='store_true',
    help='With --all: the overfitting regime (3,000 scenes, 60 epochs).',
  )
  parser.add_argument(
    '--recipes',
    default=None,
    help='With --all: comma-separated recipes (default: all of them).',
  )
  parser.add_argument(
    '--seed', type=int, default=0, help="With --all: the runs' seed."
  )
  parser.add_argument(
    '--smoke', action='store_true', help='Tiny data and model (seconds).'
  )
  args = parser.parse_args(argv)
  workdir = os.path.abspath(args.workdir)
  if args.all:
    from jaxmix import demo_all

    recipes = demo_all.RECIPES
    if args.recipes:
      recipes = tuple(args.recipes.split(','))
    demo_all.all_recipes(
      workdir, smoke=args.smoke, long=args.long, recipes=recipes, seed=args.seed
    )
  elif args.long or args.recipes or args.seed:
    parser.error('--long, --recipes and --seed need --all.')
  else:
    default_job(workdir, smoke=args.smoke)


if __name__ == '__main__':
  main()
