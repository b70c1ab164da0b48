"""Tests of jaxmix.demo: the offline default job, end to end, smoke-sized."""

import json
import os
import shutil

import pytest

from jaxmix import demo


def test_recipes_load_and_smoke_keeps_the_recipe():
  for name in (*demo.RECIPES, 'annotator'):
    full = demo.load_recipe(name, smoke=False)
    small = demo.load_recipe(name, smoke=True)
    assert full.data.dataset == 'digit_scenes'
    assert small.data.dataset == 'digit_scenes/small'
    assert small.model.name == 'tiny_cnn' and small.global_batch_size == 16
    assert small.mix.to_dict() == full.mix.to_dict()
    assert small.relabel.enabled == full.relabel.enabled
    assert small.cutout.size == full.cutout.size
  assert demo.load_recipe('cutmix', smoke=False).mix.method == 'cutmix'
  assert demo.load_recipe('relabel_cutmix', smoke=False).relabel.enabled
  with pytest.raises(ValueError, match="'cutmixx'"):
    demo.load_recipe('cutmixx', smoke=True)


def test_results_table_is_in_percent():
  row = dict.fromkeys(demo.COLUMNS, 0.5)
  row['digits/top1'] = 0.8123
  rows = [row] + [{}] * (len(demo.RECIPES) - 1)
  table = demo.results_table(rows, dict.fromkeys(demo.RECIPES, 61.0))
  lines = table.splitlines()
  assert len(lines) == 2 + len(demo.RECIPES)
  assert (
    lines[2] == '| baseline | 81.23 | 50.00 | 50.00 | 50.00 | 50.00 | 61 s |'
  )
  assert lines[3] == '| cutout | - | - | - | - | - | 61 s |'


def _digits_json(run_dir):
  with open(os.path.join(run_dir, 'eval', 'digits.json')) as f:
    return json.load(f)


@pytest.mark.slow
def test_default_job_trains_evaluates_draws_and_resumes(tmp_path, capsys):
  workdir = str(tmp_path)
  metrics = demo.default_job(workdir, smoke=True)
  run_dir = os.path.join(workdir, 'cutmix')
  # 256 train images / batch 16 = 16 steps per epoch, two epochs.
  assert sorted(os.listdir(os.path.join(run_dir, 'checkpoints'))) == [
    '24',
    '32',
  ]
  events = os.listdir(os.path.join(run_dir, 'tensorboard'))
  assert any(name.startswith('events.out.tfevents') for name in events)
  for name in ('augment_preview.png', 'training_curves.png'):
    assert os.path.getsize(os.path.join(run_dir, 'pictures', name)) > 1000
  for name in ('digits_cams.png', 'digits_occlusion.png'):
    assert os.path.getsize(os.path.join(run_dir, 'eval', name)) > 1000
  first = _digits_json(run_dir)
  assert first['step'] == 32 and first['metrics']['count'] == 64
  assert 0.0 <= metrics['top1'] <= metrics['multilabel_top1'] <= 1.0
  assert 'top-1, half occluded' in capsys.readouterr().out

  # Interrupt after step 24: the second call resumes and ends where the
  # uninterrupted run ended, with the same weights (same evaluation).
  shutil.rmtree(os.path.join(run_dir, 'checkpoints', '32'))
  demo.default_job(workdir, smoke=True)
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert any('train/loss' in r and r['step'] == 32 for r in rows[-3:])
  second = _digits_json(run_dir)
  assert second['step'] == 32
  assert second['metrics'] == first['metrics']


def test_logged_seconds_and_evaluated(tmp_path):
  run_dir = str(tmp_path)
  with open(os.path.join(run_dir, 'metrics.jsonl'), 'w') as f:
    for step, time in ((1, 100.0), (8, 130.5), (8, 161.0)):
      f.write(json.dumps({'step': step, 'time': time}) + '\n')
  assert demo.logged_seconds(run_dir) == 61.0
  os.makedirs(os.path.join(run_dir, 'checkpoints', '4'))
  os.makedirs(os.path.join(run_dir, 'checkpoints', '8'))
  assert not demo.evaluated(run_dir)
  os.makedirs(os.path.join(run_dir, 'eval'))
  for step, want in ((4, False), (8, True)):
    with open(os.path.join(run_dir, 'eval', 'digits.json'), 'w') as f:
      json.dump({'step': step}, f)
    assert demo.evaluated(run_dir) == want
