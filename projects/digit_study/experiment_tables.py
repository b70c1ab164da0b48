"""The tables and the plot of `experiment`, from its record.

`results_markdown(record, workdir)` turns the experiment's record (the
contents of `WORKDIR/results.json`) into `WORKDIR/results.md` and draws
`WORKDIR/gain_vs_coverage.png`. Percentages throughout; each row is the
mean +- standard deviation over the plan's seeds; differences are paired by
seed with 95 % t intervals (`jaxmix.evaluate.seed_stats`), marked `*`
where the interval excludes zero. Where the plan has them, KD stands next
to ReLabel (`comparison_table`: accuracy and train wall time per run, KD's
teacher forward being paid on every step) and label cleaning next to the
baseline (with the scenes its keep list dropped).
"""

import os

from jaxmix.apps import digit_runs
from jaxmix.evaluate import seed_stats

GAIN_COLUMNS = (
  'digits/top1',
  'digits/occluded_half_top1',
  'digits/top1_loc',
)
GAIN_NAMES = ('top-1', 'top-1, half occluded', 'CAM top-1 loc.')


def per_seed(record: dict, coverage: str, recipe: str, column: str) -> list:
  """[n] values of one column over the plan's seeds (None if missing)."""
  results = record['results']
  values = []
  for seed in record['plan']['seeds']:
    found = results.get(f'{coverage}/{recipe}/{seed}', {})
    values.append(found.get('metrics', {}).get(column))
  return values


def _complete(values: list) -> bool:
  return bool(values) and all(v is not None for v in values)


def _count_note(found: int, planned: int) -> str:
  """' (n=k)' for a row with fewer seeds than planned."""
  return '' if found == planned else f' (n={found})'


def _mean_std(values: list) -> str:
  """'mean ± std' in percent over the seeds that finished ('-': none)."""
  found = [100 * v for v in values if v is not None]
  if not found:
    return '-'
  s = seed_stats.summarize(found)
  text = f'{s.mean:.2f}' if s.count == 1 else f'{s.mean:.2f} ± {s.std:.2f}'
  return text + _count_note(len(found), len(values))


def seconds_per_seed(record: dict, coverage: str, recipe: str) -> list:
  """[n] train wall times of a row over the plan's seeds (None if missing)."""
  return [
    record['results'].get(f'{coverage}/{recipe}/{seed}', {}).get('seconds')
    for seed in record['plan']['seeds']
  ]


def _paired(a: list, b: list, scale: float):
  """`seed_stats.paired_difference` of a - b over the seeds both have."""
  pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
  if not pairs:
    return None
  return seed_stats.paired_difference(
    [scale * x for x, _ in pairs], [scale * y for _, y in pairs]
  )


def difference(
  record: dict,
  coverage: str,
  recipe: str,
  column: str,
  reference: str = 'baseline',
):
  """The paired difference from `reference`, in points, or None.

  Paired over the seeds both runs finished.
  """
  return _paired(
    per_seed(record, coverage, recipe, column),
    per_seed(record, coverage, reference, column),
    100.0,
  )


def _difference_cell(d, planned: int) -> str:
  if d is None:
    return '-'
  note = _count_note(d.count, planned)
  if d.count == 1:
    return f'{d.mean:+.2f}{note}'
  mark = ' *' if d.distinguishable else ''
  return f'{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}]{mark}{note}'


def recipes_at(record: dict, coverage: str) -> list[str]:
  plan = record['plan']
  names = list(plan['recipes'])
  if coverage in plan['relabel_coverages']:
    names += list(plan['relabel_recipes']) + list(plan['annotator_recipes'])
  return names


def coverage_label(record: dict, coverage: str) -> str:
  area = record['label_fit'][coverage]['object_area']
  return f'{coverage} ({100 * area:.1f} % coverage)'


def scenes_table(record: dict) -> str:
  """Per config: object coverage and how far CutMix's area labels are off."""
  lines = [
    '| scenes | main digit covers | CutMix boxes pasting none of the '
    "partner's digit | mean area-label error |",
    '|---|---:|---:|---:|',
  ]
  for coverage in record['plan']['coverages']:
    fit = record['label_fit'][coverage]
    lines.append(
      f'| digit_scenes/{coverage} | {100 * fit["object_area"]:.1f} % | '
      f'{100 * fit["partner_absent"]:.1f} % | {fit["weight_error"]:.3f} |'
    )
  return '\n'.join(lines) + '\n'


def recipe_table(record: dict, coverage: str) -> str:
  """Rows: recipes; columns: the 'digits' metrics, mean +- std."""
  header = ['recipe', *digit_runs.COLUMN_NAMES, 'train time']
  lines = [
    '| ' + ' | '.join(header) + ' |',
    '|---|' + '---:|' * (len(header) - 1),
  ]
  for recipe in recipes_at(record, coverage):
    cells = [
      _mean_std(per_seed(record, coverage, recipe, c))
      for c in digit_runs.COLUMNS
    ]
    seconds = seconds_per_seed(record, coverage, recipe)
    time_cell = (
      f'{sum(found) / len(found):.0f} s'
      if (found := [t for t in seconds if t is not None])
      else '-'
    )
    lines.append(f'| {recipe} | ' + ' | '.join(cells) + f' | {time_cell} |')
  return '\n'.join(lines) + '\n'


def difference_table(record: dict, coverage: str) -> str:
  """Each recipe minus the baseline, paired by seed, 95 % interval."""
  header = ['recipe − baseline', *digit_runs.COLUMN_NAMES]
  lines = [
    '| ' + ' | '.join(header) + ' |',
    '|---|' + '---:|' * (len(header) - 1),
  ]
  for recipe in recipes_at(record, coverage):
    if recipe == 'baseline':
      continue
    cells = [
      _difference_cell(
        difference(record, coverage, recipe, c), len(record['plan']['seeds'])
      )
      for c in digit_runs.COLUMNS
    ]
    lines.append(f'| {recipe} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def _seconds_cell(values: list) -> str:
  """'mean ± std s' of the train wall times that finished ('-': none)."""
  found = [v for v in values if v is not None]
  if not found:
    return '-'
  s = seed_stats.summarize(found)
  text = f'{s.mean:.0f} s' if s.count == 1 else f'{s.mean:.0f} ± {s.std:.0f} s'
  return text + _count_note(len(found), len(values))


def _seconds_difference_cell(a: list, b: list) -> str:
  """The paired time difference in seconds and the ratio of the means."""
  d = _paired(a, b, 1.0)
  if d is None:
    return '-'
  pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
  ratio = sum(x for x, _ in pairs) / sum(y for _, y in pairs)
  note = _count_note(d.count, len(a))
  if d.count == 1:
    return f'{d.mean:+.0f} s, {ratio:.2f}x{note}'
  return f'{d.mean:+.0f} s [{d.low:+.0f}, {d.high:+.0f}], {ratio:.2f}x{note}'


def comparison_table(
  record: dict, coverage: str, recipe: str, reference: str
) -> str:
  """`reference`, `recipe` and their paired difference, side by side.

  Rows: each recipe's mean ± std over the seeds and `recipe − reference`
  paired by seed with its 95 % interval; columns: the 'digits' metrics and
  the train wall time per run (`study_runs.logged_seconds`; for the
  difference, the paired seconds and the ratio of the means).
  """
  planned = len(record['plan']['seeds'])
  header = ['', *digit_runs.COLUMN_NAMES, 'train time per run']
  lines = [
    '| ' + ' | '.join(header) + ' |',
    '|---|' + '---:|' * (len(header) - 1),
  ]
  for name in (reference, recipe):
    cells = [
      _mean_std(per_seed(record, coverage, name, c)) for c in digit_runs.COLUMNS
    ]
    cells.append(_seconds_cell(seconds_per_seed(record, coverage, name)))
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  cells = [
    _difference_cell(
      difference(record, coverage, recipe, c, reference=reference), planned
    )
    for c in digit_runs.COLUMNS
  ]
  cells.append(
    _seconds_difference_cell(
      seconds_per_seed(record, coverage, recipe),
      seconds_per_seed(record, coverage, reference),
    )
  )
  lines.append(f'| {recipe} − {reference} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def cleaning_line(record: dict, coverage: str) -> str:
  """How many of the students' scenes the keep list dropped, and by what."""
  found = record['results'].get(f'{coverage}/keep_list', {}).get('cleaned')
  if found is None:
    return 'The keep list was not written.\n'
  dropped = found['examples'] - found['kept']
  return (
    f"The annotator kept {found['kept']:,} of the students' "
    f'{found["examples"]:,} training scenes and dropped {dropped:,} '
    f'({100 * dropped / found["examples"]:.1f} %); rule: '
    f'{found["rule"]}.\n'
  )


def annotator_sections(record: dict, coverage: str) -> list[str]:
  """KD next to ReLabel and label cleaning next to the baseline, if run."""
  names = recipes_at(record, coverage)
  parts = []
  if 'kd' in names and 'relabel' in names:
    parts += [
      f'### {coverage}: knowledge distillation against ReLabel\n',
      comparison_table(record, coverage, 'kd', 'relabel'),
    ]
  if 'label_cleaning' in names:
    parts += [
      f'### {coverage}: label cleaning against the baseline\n',
      comparison_table(record, coverage, 'label_cleaning', 'baseline'),
      '\n',
      cleaning_line(record, coverage),
    ]
  return parts


def annotator_lines(record: dict) -> str:
  """The annotator next to its students, or why its maps were not used."""
  out = []
  for coverage in record['plan']['relabel_coverages']:
    results = record['results']
    check = results.get(f'{coverage}/label_maps', {})
    found = results.get(f'{coverage}/annotator', {})
    if 'error' in check:
      out.append(f'- {coverage}: {check["error"]}')
      continue
    if 'metrics' not in found:
      out.append(f'- {coverage}: the annotator did not finish.')
      continue
    best = max(
      (
        (seed_stats.summarize([100 * v for v in vals]).mean, recipe)
        for recipe in recipes_at(record, coverage)
        if _complete(vals := per_seed(record, coverage, recipe, 'digits/top1'))
      ),
      default=(float('nan'), '-'),
    )
    out.append(
      f'- {coverage}: the annotator (`configs/digits/strong_annotator.py`, '
      'seed 0) reaches '
      f'{100 * found["metrics"]["digits/top1"]:.2f} % test top-1 '
      f'({100 * found["validation_top1"]:.2f} % on the validation scenes, '
      'where it was checked against the baseline students: '
      f'{100 * check["check"]["baseline_best"]:.2f} % for the best); the '
      f'strongest student, {best[1]}, reaches {best[0]:.2f} % on average. '
      f'Its own CAM top-1 localisation: '
      f'{100 * found["metrics"]["digits/top1_loc"]:.2f} %.'
    )
  return '\n'.join(out) + ('\n' if out else '')


def gains(record: dict) -> dict:
  """{metric name: {method: [(mean, low, high) per coverage]}}, points."""
  plan = record['plan']
  out = {}
  for column, name in zip(GAIN_COLUMNS, GAIN_NAMES):
    out[name] = {}
    for recipe in plan['recipes']:
      if recipe == 'baseline':
        continue
      points = []
      for coverage in plan['coverages']:
        d = difference(record, coverage, recipe, column)
        points.append(
          (float('nan'),) * 3 if d is None else (d.mean, d.low, d.high)
        )
      out[name][recipe] = points
  return out


def plot_gain_vs_coverage(record: dict, path: str) -> str:
  from jaxmix.evaluate import plots

  coverages = record['plan']['coverages']
  x = [100 * record['label_fit'][c]['object_area'] for c in coverages]
  return plots.plot_gains(
    x, gains(record), path, xlabel="main object's share of the image (%)"
  )


def results_markdown(record: dict, workdir: str) -> str:
  """The whole `results.md`; also draws `WORKDIR/gain_vs_coverage.png`."""
  plan = record['plan']
  seeds = ', '.join(str(s) for s in plan['seeds'])
  parts = [
    "# digit_scenes: the papers' methods at three object sizes\n",
    f'Seeds {seeds}; every student sees the same {record["schedule"]} '
    '(the annotator more); test split, percent, mean ± standard '
    'deviation over the seeds. Differences from the baseline are paired by '
    'seed with 95 % t intervals; `*`: the interval excludes zero.\n',
    '## Scenes\n',
    scenes_table(record),
    '## The annotator\n',
    annotator_lines(record) or '- no ReLabel runs in this plan.\n',
  ]
  for coverage in plan['coverages']:
    parts += [
      f'## {coverage_label(record, coverage)}\n',
      recipe_table(record, coverage),
      '\n',
      difference_table(record, coverage),
      *annotator_sections(record, coverage),
    ]
  picture = plot_gain_vs_coverage(
    record, os.path.join(workdir, 'gain_vs_coverage.png')
  )
  parts += [
    '## Gain against object size\n',
    f'![gain vs coverage]({os.path.basename(picture)})\n',
    _timing(record),
  ]
  return '\n'.join(parts)


def _timing(record: dict) -> str:
  """The machine and the wall time, or what a tables-only call read."""
  runs = [r for r in record['results'].values() if 'seconds' in r]
  if record.get('tables_only'):
    return (
      f'Tables of the {len(runs)} runs finished by '
      f'{record["finished"]} (the study was still under way; rows with '
      f'`-` are not finished). Machine: {record["machine"]}.\n'
    )
  return (
    f'Machine: {record["machine"]}, {record["jobs"]} runs at a time. This '
    f'call: {record["minutes"]:.1f} min (runs trained by an earlier call are '
    f'only reopened), finished {record["finished"]}.\n'
  )
