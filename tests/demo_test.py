"""Tests of jaxmix.apps.demo: the offline default job, end to end, smoke-sized."""

import json
import os
import shutil
import time

import pytest

from jaxmix.apps import demo, digit_runs
from projects.digit_study import experiment


def test_recipes_load_and_smoke_keeps_the_recipe():
  for name in (*experiment.RECIPES, 'annotator'):
    full = digit_runs.load_recipe(name, smoke=False)
    small = digit_runs.load_recipe(name, smoke=True)
    assert full.data.dataset == 'digit_scenes'
    assert small.data.dataset == 'digit_scenes/small'
    assert small.model.name == 'tiny_cnn' and small.global_batch_size == 16
    assert small.mix.to_dict() == full.mix.to_dict()
    assert small.relabel.enabled == full.relabel.enabled
    assert small.cutout.size == full.cutout.size
  assert digit_runs.load_recipe('cutmix', smoke=False).mix.method == 'cutmix'
  assert digit_runs.load_recipe('relabel_cutmix', smoke=False).relabel.enabled
  localized = digit_runs.load_recipe('relabel_cutmix_localized', smoke=False)
  assert localized.relabel.localized_cutmix and localized.mix.method == 'cutmix'
  with pytest.raises(ValueError, match="'cutmixx'"):
    digit_runs.load_recipe('cutmixx', smoke=True)


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
  for name in (
    'augment_preview.png',
    'videomix_preview.png',
    'training_curves.png',
  ):
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


def test_flags(tmp_path):
  with pytest.raises(SystemExit):
    demo.main([])  # --workdir is required
  for flags in (['--all'], ['--long'], ['--workdir', str(tmp_path), 'extra']):
    with pytest.raises(SystemExit):
      demo.main(['--workdir', str(tmp_path), *flags])
  assert not os.listdir(tmp_path)


def test_a_quiet_stage_hides_python_and_native_output_and_beats(capfd):
  with demo.stage('Quiet stage', every=0.05, hide_output=True):
    print('Downloading and preparing dataset Unknown size')
    os.write(2, b'oneDNN custom operations are on\n')  # as C++ writes it
    time.sleep(0.3)
  out, err = capfd.readouterr()
  assert out.startswith('Quiet stage ...\n') and 'done in' in out
  assert out.count('  ... ') >= 2  # the heartbeat
  assert 'Downloading' not in out and 'oneDNN' not in err


def test_a_failing_quiet_stage_shows_what_it_hid(capfd):
  with (
    pytest.raises(RuntimeError, match='broken'),
    demo.stage('Loud stage', hide_output=True),
  ):
    print('the banner')
    os.write(2, b'the native line\n')
    raise RuntimeError('broken')
  out, err = capfd.readouterr()
  assert 'the banner' in out and 'the native line' in err
  assert 'done in' not in out
