"""Tests of `jaxmix.evaluate.report`: result tables over run directories."""

import json
import os

import pytest

from jaxmix.apps import report as report_app
from jaxmix.evaluate import report


def _write(run_dir, suite, metrics, **fields):
  os.makedirs(os.path.join(run_dir, 'eval'), exist_ok=True)
  result = {'suite': suite, 'metrics': metrics, 'curves': {}, **fields}
  with open(os.path.join(run_dir, 'eval', f'{suite}.json'), 'w') as f:
    json.dump(result, f)


@pytest.fixture
def two_runs(tmp_path):
  base = str(tmp_path / 'baseline')
  cutmix = str(tmp_path / 'cutmix')
  _write(
    base,
    'imagenet',
    {'top1': 0.7612, 'top5': 0.92871, 'count': 50000},
    method='baseline',
    step=100,
  )
  _write(
    cutmix,
    'imagenet',
    {'top1': 0.7828, 'top5': 0.94, 'count': 50000},
    method='cutmix',
    step=100,
  )
  _write(
    cutmix,
    'digits',
    {'top1': 0.5, 'max_box_acc': 0.25, 'max_box_acc_threshold': 0.35},
    method='cutmix',
    step=100,
  )
  return base, cutmix


EXPECTED = """\
| run | method | step | imagenet/top1 | imagenet/top5 | imagenet/count \
| digits/top1 | digits/max_box_acc | digits/max_box_acc_threshold |
|---|---|---|---:|---:|---:|---:|---:|---:|
| baseline | baseline | 100 | 76.12 | 92.87 | 50000 | - | - | - |
| cutmix | cutmix | 100 | 78.28 | 94.00 | 50000 | 50.00 | 25.00 | 0.35 |
"""


def test_markdown_table_of_two_runs(two_runs):
  rows = [report.row_for_run(d) for d in two_runs]
  assert report.markdown_table(rows) == EXPECTED
  # Columns follow the papers' suite order, not the order runs are given.
  lines = EXPECTED.splitlines()
  assert report.markdown_table(rows[::-1]).splitlines() == [
    *lines[:2],
    lines[3],
    lines[2],
  ]


def test_cli_writes_stdout_and_out(two_runs, tmp_path, capsys):
  out = str(tmp_path / 'table.md')
  assert report_app.main([*two_runs, '--out', out]) == 0
  assert capsys.readouterr().out == EXPECTED
  with open(out) as f:
    assert f.read() == EXPECTED


def test_selected_columns_and_formatting():
  rows = [{'run': 'a', 'method': 'mixup', 'step': 5, 'x/top1': 0.5}]
  assert report.markdown_table(rows, ['x/top1', 'x/mce']) == (
    '| run | method | step | x/top1 | x/mce |\n'
    '|---|---|---|---:|---:|\n'
    '| a | mixup | 5 | 50.00 | - |\n'
  )
  assert report.format_value('v2/topimages_count', 7) == '7'
  assert report.format_value('digits/max_box_acc_threshold', 0.2) == '0.2'


def test_method_from_config_when_no_result_has_it(tmp_path):
  run_dir = str(tmp_path / 'r')
  _write(run_dir, 'fgsm', {'eps_0': 0.5})
  with open(os.path.join(run_dir, 'config.json'), 'w') as f:
    json.dump({'mix': {'method': 'mixup'}}, f)
  row = report.row_for_run(run_dir)
  assert row == {'run': 'r', 'method': 'mixup', 'step': None, 'fgsm/eps_0': 0.5}


def test_bad_result_files_are_errors(tmp_path):
  run_dir = tmp_path / 'r'
  (run_dir / 'eval').mkdir(parents=True)
  (run_dir / 'eval' / 'x.json').write_text('{')
  with pytest.raises(ValueError, match=r'x.json: not valid JSON'):
    report.load_results(run_dir)
  (run_dir / 'eval' / 'x.json').write_text('{"a": 1}')
  with pytest.raises(ValueError, match='not a suite result'):
    report.load_results(run_dir)


def test_training_curves_picture(tmp_path):
  runs = []
  for name, loss in (('a', 2.0), ('b', 1.0)):
    run_dir = tmp_path / name
    run_dir.mkdir()
    rows = [{'step': s, 'train/loss': loss / s} for s in (1, 2, 3)]
    (run_dir / 'metrics.jsonl').write_text(
      '\n'.join(json.dumps(r) for r in rows) + '\n'
    )
    _write(str(run_dir), 'imagenet', {'top1': 0.5})
    runs.append(str(run_dir))
  png = str(tmp_path / 'curves.png')
  assert report_app.main([*runs, '--curves', png]) == 0
  assert os.path.getsize(png) > 1000


def test_every_suite_is_orderable_and_on_the_command_line():
  from jaxmix.evaluate.suites import registry as suite_registry

  assert set(report.SUITE_ORDER) == set(suite_registry.SUITES)
