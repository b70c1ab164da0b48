"""Tests of jaxmix.apps.experiment: the every-recipe experiment and its table."""

import json
import os

import pytest

from jaxmix.apps import demo, digit_runs, experiment


def test_results_table_is_in_percent():
  row = dict.fromkeys(digit_runs.COLUMNS, 0.5)
  row['digits/top1'] = 0.8123
  rows = [row] + [{}] * (len(experiment.RECIPES) - 1)
  table = experiment.results_table(
    rows, dict.fromkeys(experiment.RECIPES, 61.0)
  )
  lines = table.splitlines()
  assert len(lines) == 2 + len(experiment.RECIPES)
  assert (
    lines[2] == '| baseline | 81.23 | 50.00 | 50.00 | 50.00 | 50.00 | 61 s |'
  )
  assert lines[3] == '| cutout | - | - | - | - | - | 61 s |'


def test_logged_seconds_and_evaluated(tmp_path):
  run_dir = str(tmp_path)
  with open(os.path.join(run_dir, 'metrics.jsonl'), 'w') as f:
    for step, time in ((1, 100.0), (8, 130.5), (8, 161.0)):
      f.write(json.dumps({'step': step, 'time': time}) + '\n')
  assert experiment.logged_seconds(run_dir) == 61.0
  os.makedirs(os.path.join(run_dir, 'checkpoints', '4'))
  os.makedirs(os.path.join(run_dir, 'checkpoints', '8'))
  assert not digit_runs.evaluated(run_dir)
  os.makedirs(os.path.join(run_dir, 'eval'))
  scored = {'top1_loc_threshold': 0.4}
  for step, metrics, want in (
    (4, scored, False),
    (8, {}, False),
    (8, scored, True),
  ):
    with open(os.path.join(run_dir, 'eval', 'digits.json'), 'w') as f:
      json.dump({'step': step, 'metrics': metrics}, f)
    assert digit_runs.evaluated(run_dir) == want


@pytest.mark.slow
def test_all_recipes_long_smoke_end_to_end(tmp_path):
  """Annotator, label maps, every recipe, the table: the whole pipeline."""
  workdir = str(tmp_path)
  recipes = ('baseline', 'relabel_cutmix_localized')
  path = experiment.all_recipes(
    workdir, smoke=True, long=True, recipes=recipes, seed=1
  )
  assert path == os.path.join(workdir, 'results_long_seed1.md')
  with open(path) as f:
    text = f.read()
  lines = text.splitlines()
  assert lines[0] == (
    '# digit_scenes: 2 recipes (long schedule: '
    '3,000 training scenes, width 32, 60 epochs, seed 1)'
  )
  rows = [line for line in lines if line.startswith('| ')][1:]
  assert [row.split(' | ')[0][2:] for row in rows] == list(recipes)
  for row in rows:  # every column measured, in percent
    cells = row.strip('| ').split(' | ')[1:-1]
    assert all(0.0 <= float(cell) <= 100.0 for cell in cells), row
  assert "CutMix's area labels on these scenes" in text
  assert os.path.exists(os.path.join(workdir, 'label_maps', 'metadata.json'))
  for name in recipes:
    run_dir = os.path.join(workdir, 'long_seed1', name)
    assert digit_runs.evaluated(run_dir), name
    with open(os.path.join(run_dir, 'config.json')) as f:
      config = json.load(f)
    assert config['data']['train_split'] == 'train[:30%]'
    assert config['seed'] == 1
    assert config['relabel']['enabled'] == name.startswith('relabel')


def test_cli_flags_need_all(tmp_path):
  for flags in (['--long'], ['--seed', '1'], ['--recipes', 'cutmix']):
    with pytest.raises(SystemExit):
      demo.main(['--workdir', str(tmp_path), *flags])
  assert not os.listdir(tmp_path)
