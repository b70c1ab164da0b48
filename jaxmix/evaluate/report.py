"""Result tables and comparison pictures over several evaluated runs.

  python -m jaxmix.apps.report RUN_DIR... [--out table.md]
    [--curves curves.png] [--cams cams.png --data_dir DIR --dataset NAME]

The table has one row per run (name, training method, checkpoint step),
then a column for every scalar metric of every `RUN/eval/<suite>.json`
found, named `suite/metric`, like the papers' tables: fractions are shown
in percent with two decimals (`mce` too, as usual; CAM thresholds and
counts as they are). Runs with a 'transfer' result also get a second
table, like ReLabel's transfer table: the top-1 of each pretrained file (a
row, `model.init_from`) fine-tuned on each dataset (a column). `--curves`
draws the runs' `metrics.jsonl` against the step; `--cams` draws the class
activation maps of all runs side by side for the same images of a boxed
dataset (digit_scenes by default). Run directories and outputs may be URLs
(`gs://...`): every file goes through `jaxmix.io.paths`.
"""

import json
import os
from collections.abc import Mapping, Sequence

from jaxmix.evaluate import runs
from jaxmix.io import paths

# The suites in the order of the papers' tables (the table's column order).
SUITE_ORDER = (
  'imagenet',
  'real',
  'v2',
  'multilabel',
  'imagenet_a',
  'imagenet_r',
  'sketch',
  'imagenet_c',
  'backgrounds',
  'backgrounds_challenge',
  'occlusion',
  'in_between',
  'fgsm',
  'ood',
  'wsol',
  'digits',
  'transfer',
  'long_tail',
)
# ReLabel's transfer datasets, in the order the issue tracker and the
# recipes (configs/transfer/) list them: the transfer table's columns.
TRANSFER_DATASETS = (
  'food101',
  'cars196',
  'dtd',
  'fgvc_aircraft/variant',
  'oxford_iiit_pet',
)
_FIXED = ('run', 'method', 'step')
_RAW_SUFFIXES = ('_threshold', 'count')


def load_results(run_dir: str | os.PathLike) -> list[dict]:
  """The suite results `RUN/eval/*.json` of one run, sorted by suite."""
  eval_dir = runs.results_dir(run_dir)
  found = sorted(eval_dir.glob('*.json')) if eval_dir.exists() else []
  results = []
  for path in found:
    try:
      result = json.loads(path.read_text())
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON ({e}).') from e
    if not isinstance(result, dict) or 'metrics' not in result:
      raise ValueError(f"{path}: not a suite result (no 'metrics').")
    result.setdefault('suite', path.stem)
    results.append(result)
  return results


def row_from_result(result: Mapping) -> dict:
  """One suite result -> {'run', 'method', 'step', 'suite/metric': value}."""
  row = {k: result.get(k) for k in _FIXED}
  for name, value in result['metrics'].items():
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      row[f'{result["suite"]}/{name}'] = value
  return row


def row_for_run(run_dir: str | os.PathLike) -> dict:
  """The table row of a run: every suite's scalar metrics."""
  results = load_results(run_dir)
  row = {
    'run': paths.resolve(run_dir).name,
    'method': None,
    'step': None,
  }
  for result in results:
    part = row_from_result(result)
    for key in _FIXED[1:]:
      row[key] = row[key] if part[key] is None else part[key]
    row.update({k: v for k, v in part.items() if k not in _FIXED})
  if (
    row['method'] is None and (paths.resolve(run_dir) / 'config.json').exists()
  ):
    row['method'] = runs.method_of(runs.load_config(run_dir))
  return row


def format_value(column: str, value) -> str:
  """Fractions in percent (2 decimals); counts, thresholds as they are."""
  if value is None:
    return '-'
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return str(value)
  if column in _FIXED or isinstance(value, int):
    return str(value)
  if column.endswith(_RAW_SUFFIXES):
    return f'{value:g}'
  return f'{100 * value:.2f}'


def markdown_table(
  rows: Sequence[Mapping], columns: Sequence[str] | None = None
) -> str:
  """A markdown table: run, method, step, then the metric columns.

  Args:
    rows: dicts from `row_for_run` / `row_from_result`.
    columns: the metric columns to show (default: all, suites in
      `SUITE_ORDER` (unknown ones after, by name), metrics of a suite in
      first-seen order).

  Returns:
    The table, lines joined by newlines, ending with a newline.
  """
  if columns is None:
    seen = dict.fromkeys(k for row in rows for k in row if k not in _FIXED)

    def suite_rank(column: str):
      suite = column.split('/')[0]
      known = suite in SUITE_ORDER
      return (not known, SUITE_ORDER.index(suite) if known else 0, suite)

    columns = sorted(seen, key=suite_rank)  # stable: first-seen in a suite
  header = [*_FIXED, *columns]
  lines = [
    '| ' + ' | '.join(header) + ' |',
    '|' + '|'.join(['---'] * len(_FIXED) + ['---:'] * len(columns)) + '|',
  ]
  for row in rows:
    cells = [format_value(c, row.get(c)) for c in header]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def transfer_table(results: Sequence[Mapping]) -> str | None:
  """Top-1 of 'transfer' results: a row per pretrained file, a column
  per dataset (`TRANSFER_DATASETS` first, others after by name).

  Args:
    results: suite results (`load_results`); others than 'transfer' are
      ignored. Each names its 'dataset' and 'init_from' (the file the run
      started from; None: trained from scratch).

  Returns:
    The markdown table, or None without transfer results.

  Raises:
    ValueError: two runs fill the same cell (naming both).
  """
  cells, seen = {}, {}
  for result in results:
    if result.get('suite') != 'transfer':
      continue
    init = result.get('init_from')
    pretrained = os.path.basename(init) if init else '(from scratch)'
    cell = (pretrained, result['dataset'])
    if cell in seen:
      raise ValueError(
        f'Runs {seen[cell]!r} and {result.get("run")!r} both fine-tune '
        f'{pretrained} on {result["dataset"]}; report one of them.'
      )
    seen[cell] = result.get('run')
    cells[cell] = result['metrics']['top1']
  if not cells:
    return None
  found = {d for _, d in cells}
  datasets = [d for d in TRANSFER_DATASETS if d in found]
  datasets += sorted(found - set(TRANSFER_DATASETS))
  rows = list(dict.fromkeys(p for p, _ in cells))
  lines = [
    '| pretrained | ' + ' | '.join(datasets) + ' |',
    '|---|' + '---:|' * len(datasets),
  ]
  for pretrained in rows:
    values = [
      format_value('top1', cells.get((pretrained, d))) for d in datasets
    ]
    lines.append(f'| {pretrained} | ' + ' | '.join(values) + ' |')
  return '\n'.join(lines) + '\n'


def combined_cam_grid(results: list[dict], path: str) -> str | None:
  """One CAM grid, a column per run, from 'wsol'/'digits' results.

  Runs whose images differ in shape from the first run's are left out;
  returns None when fewer than two runs remain.
  """
  from jaxmix.evaluate import plots

  found = [r for r in results if r.get('_cams') is not None]
  if not found:
    return None
  first = found[0]['_cams']
  same = [
    r for r in found if r['_cams']['images'].shape == first['images'].shape
  ]
  if len(same) < 2:
    return None
  names = [f'{r["run"]} ({r["method"]})' for r in same]
  return plots.plot_cam_grid(
    first['images'],
    {n: r['_cams']['cams'] for n, r in zip(names, same)},
    path,
    boxes_by_run={n: r['_cams']['boxes'] for n, r in zip(names, same)},
    true_boxes=first['true_boxes'],
    row_titles=first['titles'],
  )


def plot_run_cams(
  run_dirs: list[str],
  path: str,
  *,
  dataset: str = 'digit_scenes',
  split: str = 'test',
  data_dir: str | None = None,
  num_images: int = 8,
) -> str:
  """CAMs of several runs side by side on the first images of a split.

  Args:
    run_dirs: run directories (same image size).
    path: the PNG to write.
    dataset: a boxed TFDS dataset: 'digit_scenes[/config]' or
      'caltech_birds2011'.
    split: its split.
    data_dir: TFDS data_dir.
    num_images: rows of the grid.

  Returns:
    `path`.
  """
  import tempfile

  from jaxmix.evaluate import plots
  from jaxmix.evaluate.suites import localization as suites_localization

  results = []
  with tempfile.TemporaryDirectory() as scratch:
    args = suites_localization.SuiteArgs(
      data_dir=data_dir,
      split=split,
      dataset=dataset,
      limit=num_images,
      num_pictures=num_images,
      out=scratch,
    )
    for run_dir in run_dirs:
      run = runs.load_run(run_dir)
      result = suites_localization.wsol(run, args)
      result.update(run=run.name, method=run.method)
      results.append(result)
  if len(results) == 1:
    only = results[0]
    names = {f'{only["run"]} ({only["method"]})': only['_cams']}
    return plots.plot_cam_grid(
      only['_cams']['images'],
      {n: c['cams'] for n, c in names.items()},
      path,
      boxes_by_run={n: c['boxes'] for n, c in names.items()},
      true_boxes=only['_cams']['true_boxes'],
      row_titles=only['_cams']['titles'],
    )
  combined = combined_cam_grid(results, path)
  if combined is None:
    raise ValueError(
      f'The runs {run_dirs} evaluate images of different sizes; their CAMs '
      'cannot share a grid.'
    )
  return combined
