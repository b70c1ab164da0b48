"""The `--all` experiment of `jaxmix.apps.demo`: every recipe, one table.

  python -m jaxmix.apps.demo --all --workdir workdir/digits
  python -m jaxmix.apps.demo --all --long --workdir workdir/digits

ReLabel's whole pipeline in miniature: the annotator is trained on the
single-digit split and writes label maps of the train split; every recipe
trains (or, already trained, is only reopened), runs the 'digits' suite on
the test split and becomes one row of `WORKDIR/results.md` (or
`results_long.md` in the regime of `jaxmix.apps.digit_runs.long_schedule`).
"""

import datetime
import json
import os
import platform
import time

from jaxmix.apps import digit_runs

RECIPES = (
  'baseline',
  'cutout',
  'mixup',
  'cutmix',
  'relabel',
  'relabel_cutmix',
  'relabel_cutmix_localized',
)


def annotate(workdir: str, data_dir: str, *, smoke: bool) -> str:
  """Trains the annotator and writes the train split's label maps."""
  from jaxmix.apps import annotate as annotate_app

  config = digit_runs.load_recipe('annotator', smoke=smoke)
  config.data.data_dir = data_dir
  run_dir = os.path.join(workdir, 'annotator')
  digit_runs.train(config, run_dir)
  store = os.path.join(workdir, 'label_maps')
  if not os.path.exists(os.path.join(store, 'metadata.json')):
    argv = ['--workdir', run_dir, '--data_dir', data_dir, '--split', 'train']
    if smoke:
      argv += ['--dataset', 'digit_scenes/small']
    annotate_app.main([*argv, '--out', store])
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
  """The papers' table: one row per recipe, percentages, wall time.

  Args:
    rows: each recipe's 'digits/...' metrics (fractions), in table order.
    seconds: each recipe's training time, keyed by recipe in table order.
  """
  header = ['recipe', *digit_runs.COLUMN_NAMES, 'train time']
  lines = [
    '| ' + ' | '.join(header) + ' |',
    '|---|' + '---:|' * (len(header) - 1),
  ]
  for name, row in zip(seconds, rows):
    cells = [
      '-' if row.get(c) is None else f'{100 * row[c]:.2f}'
      for c in digit_runs.COLUMNS
    ]
    lines.append(
      f'| {name} | ' + ' | '.join(cells) + f' | {seconds[name]:.0f} s |'
    )
  return '\n'.join(lines) + '\n'


def label_fit_note(data_dir: str, *, smoke: bool) -> str:
  """One paragraph: how far CutMix's area labels are from the digits."""
  from jaxmix.evaluate import label_fit

  fit = label_fit.dataset_label_fit(
    'digit_scenes/small' if smoke else 'digit_scenes', 'test', data_dir=data_dir
  )
  return (
    "CutMix's area labels on these scenes (`python -m "
    'jaxmix.evaluate.label_fit`, true boxes of the test split): a main '
    f'digit covers {100 * fit["object_area"]:.1f} % of its scene; '
    f'{100 * fit["partner_absent"]:.1f} % of the mixes give the partner a '
    f'label weight (mean {fit["partner_absent_weight"]:.2f}) with none of '
    f'its digit pasted, {100 * fit["own_erased"]:.1f} % cover the own digit '
    f'entirely and still give it {fit["own_erased_weight"]:.2f}; the mean '
    'gap between the area weight and the object-based weight is '
    f'{fit["weight_error"]:.3f}.\n'
  )


def all_recipes(
  workdir: str,
  *,
  smoke: bool = False,
  long: bool = False,
  recipes: tuple[str, ...] = RECIPES,
  seed: int = 0,
) -> str:
  """The recipes' experiment; returns the path of the results file.

  `long`: the regime of `long_schedule`, runs in `WORKDIR/long/`, results
  in `WORKDIR/results_long.md`. A `seed` other than 0 (the recipes' own)
  adds `_seed<N>` to both (`WORKDIR/long_seed1/`, `results_long_seed1.md`);
  the annotator and its label maps stay those of seed 0.
  """
  from jaxmix.evaluate import report

  begin = time.perf_counter()
  data_dir = os.path.join(workdir, 'data')
  digit_runs.prepare_data(data_dir, smoke=smoke)
  store = annotate(workdir, data_dir, smoke=smoke)
  suffix = ('_long' if long else '') + (f'_seed{seed}' if seed else '')
  runs_dir = os.path.join(workdir, suffix[1:]) if suffix else workdir
  seconds, rows = {}, []
  for name in recipes:
    config = digit_runs.load_recipe(name, smoke=smoke, long=long)
    config.seed = seed
    config.data.data_dir = data_dir
    if config.relabel.enabled:
      config.relabel.store_dir = store
    run_dir = os.path.join(runs_dir, name)
    digit_runs.train(config, run_dir)
    seconds[name] = logged_seconds(run_dir)
    if not digit_runs.evaluated(run_dir):
      digit_runs.evaluate(run_dir, data_dir, smoke=smoke)
    rows.append(report.row_for_run(run_dir))
    print(
      f'{name}: {json.dumps({c: rows[-1].get(c) for c in digit_runs.COLUMNS})}'
    )
  minutes = (time.perf_counter() - begin) / 60
  machine = (
    f'{platform.machine()}, {os.cpu_count()} CPU cores, '
    f'{platform.python_implementation()} {platform.python_version()}'
  )
  regime = (
    'long schedule: 3,000 training scenes, width 32, 60 epochs'
    if long
    else '12 epochs'
  ) + (f', seed {seed}' if seed else '')
  text = (
    f'# digit_scenes: {len(recipes)} recipes ({regime})\n\n'
    f'{results_table(rows, seconds)}\n'
    f'Test split of digit_scenes ({"small" if smoke else "default"}), '
    f'percent. Machine: {machine}. This call: {minutes:.1f} min (runs '
    'already trained are only reopened and evaluated) '
    "(train time: each run's logged training and evaluation time, "
    'without start-up), '
    f'{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.\n\n'
    f'{label_fit_note(data_dir, smoke=smoke)}'
  )
  path = os.path.join(workdir, f'results{suffix}.md')
  with open(path, 'w') as f:
    f.write(text)
  print(text)
  return path
