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
with it (`jaxmix.annotate`), train the six recipes (baseline, Cutout,
Mixup, CutMix, ReLabel, ReLabel + CutMix), evaluate each, and write
`WORKDIR/results.md` with the machine and the wall times.

`--smoke` shrinks everything to seconds (digit_scenes 'small', a tiny CNN,
two short epochs) for tests.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import time

import ml_collections

DEFAULT_RECIPE = 'cutmix'
RECIPES = ('baseline', 'cutout', 'mixup', 'cutmix', 'relabel', 'relabel_cutmix')
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


def load_recipe(name: str, *, smoke: bool) -> ml_collections.ConfigDict:
  """`configs/digits/<name>.py`; with `smoke`, shrunk to seconds.

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
  """Whether `RUN/eval/digits.json` is of the run's latest checkpoint."""
  path = os.path.join(run_dir, 'eval', 'digits.json')
  if not os.path.exists(path):
    return False
  with open(path) as f:
    step = json.load(f).get('step')
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


def annotate(workdir: str, data_dir: str, *, smoke: bool) -> str:
  """Trains the annotator and writes the train split's label maps."""
  from jaxmix import annotate as annotate_lib

  config = load_recipe('annotator', smoke=smoke)
  config.data.data_dir = data_dir
  run_dir = os.path.join(workdir, 'annotator')
  train(config, run_dir)
  store = os.path.join(workdir, 'label_maps')
  if not os.path.exists(os.path.join(store, 'metadata.json')):
    argv = ['--workdir', run_dir, '--data_dir', data_dir, '--split', 'train']
    if smoke:
      argv += ['--dataset', 'digit_scenes/small']
    annotate_lib.main([*argv, '--out', store])
  return store


def logged_seconds(run_dir: str) -> float:
  """Wall time between the first and last rows of `RUN/metrics.jsonl`.

  The run's own training and evaluation time, also when it was resumed or
  trained by an earlier call (without start-up and the first compilation).
  """
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    times = [json.loads(line)['time'] for line in f if line.strip()]
  return max(times) - min(times) if times else 0.0


def results_table(rows: list[dict], seconds: dict[str, float]) -> str:
  """The papers' table: one row per recipe, percentages, wall time."""
  header = ['recipe', *COLUMN_NAMES, 'train time']
  lines = [
    '| ' + ' | '.join(header) + ' |',
    '|---|' + '---:|' * (len(header) - 1),
  ]
  for name, row in zip(RECIPES, rows):
    cells = [
      '-' if row.get(c) is None else f'{100 * row[c]:.2f}' for c in COLUMNS
    ]
    lines.append(
      f'| {name} | ' + ' | '.join(cells) + f' | {seconds[name]:.0f} s |'
    )
  return '\n'.join(lines) + '\n'


def all_recipes(workdir: str, *, smoke: bool = False) -> str:
  """The six-recipe experiment; returns the path of `results.md`."""
  from jaxmix.evaluate import report

  begin = time.perf_counter()
  data_dir = os.path.join(workdir, 'data')
  prepare_data(data_dir, smoke=smoke)
  store = annotate(workdir, data_dir, smoke=smoke)
  seconds, rows = {}, []
  for name in RECIPES:
    config = load_recipe(name, smoke=smoke)
    config.data.data_dir = data_dir
    if config.relabel.enabled:
      config.relabel.store_dir = store
    run_dir = os.path.join(workdir, name)
    train(config, run_dir)
    seconds[name] = logged_seconds(run_dir)
    if not evaluated(run_dir):
      evaluate(run_dir, data_dir, smoke=smoke)
    rows.append(report.row_for_run(run_dir))
    print(f'{name}: {json.dumps({c: rows[-1].get(c) for c in COLUMNS})}')
  minutes = (time.perf_counter() - begin) / 60
  machine = (
    f'{platform.machine()}, {os.cpu_count()} CPU cores, '
    f'{platform.python_implementation()} {platform.python_version()}'
  )
  text = (
    '# digit_scenes: six recipes\n\n'
    f'{results_table(rows, seconds)}\n'
    f'Test split of digit_scenes ({"small" if smoke else "default"}), '
    f'percent. Machine: {machine}. This call: {minutes:.1f} min (runs '
    'already trained are only reopened and evaluated) '
    "(train time: each run's logged training and evaluation time, "
    'without start-up), '
    f'{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.\n'
  )
  path = os.path.join(workdir, 'results.md')
  with open(path, 'w') as f:
    f.write(text)
  print(text)
  return path


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True, help='Output directory.')
  parser.add_argument(
    '--all', action='store_true', help='Run the six-recipe experiment.'
  )
  parser.add_argument(
    '--smoke', action='store_true', help='Tiny data and model (seconds).'
  )
  args = parser.parse_args(argv)
  workdir = os.path.abspath(args.workdir)
  if args.all:
    all_recipes(workdir, smoke=args.smoke)
  else:
    default_job(workdir, smoke=args.smoke)


if __name__ == '__main__':
  main()
