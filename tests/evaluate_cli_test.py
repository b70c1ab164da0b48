"""Tests of `load_run`, the evaluation suites and their command line."""

import json
import os
import shutil
from unittest import mock

import jax
import numpy as np
import pytest

from configs import default
from jaxmix.evaluate import __main__ as cli
from jaxmix.evaluate import runs, sources, suites
from jaxmix.evaluate.suites_imagenet import V2_VARIANTS as V2
from jaxmix.train import loop


def _smoke_config(**data):
  config = default.get_config('smoke')
  for key, value in data.items():
    config.data[key] = value
  return config


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('runs') / 'smoke')
  config = _smoke_config()
  config.optimizer.ema_decay = 0.5  # the trainer logs both evaluations
  loop.train_and_evaluate(config, workdir)
  return workdir


def _last_eval(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if 'eval/top1' in r][-1]


@pytest.mark.parametrize('use_ema', [False, True])
def test_load_run_reproduces_the_trainers_eval(smoke_run, use_ema):
  run = runs.load_run(smoke_run, use_ema=use_ema)
  logged = _last_eval(smoke_run)
  prefix = 'eval/ema_' if use_ema else 'eval/'
  assert run.step == logged['step'] == 8
  assert run.use_ema == use_ema and run.method == 'baseline'
  assert run.num_classes == 10 and run.image_size == 32
  from jaxmix.data import synthetic

  batches = synthetic.create_eval_iterator(
    run.config.data, global_batch_size=16, image_size=32
  )
  found = suites.predict(run, batches, keep=('label',))
  assert found['logits'].shape == (40, 10)
  logits, labels = found['logits'], found['label']
  top1 = np.mean(logits.argmax(-1) == labels)
  logp = jax.nn.log_softmax(logits)
  loss = -np.mean(np.take_along_axis(np.asarray(logp), labels[:, None], 1))
  assert top1 == logged[prefix + 'top1']
  np.testing.assert_allclose(loss, logged[prefix + 'loss'], rtol=1e-5)
  # The eager model (for CAMs) and the jitted logits agree.
  images = batches_first_images(run)
  np.testing.assert_allclose(
    np.asarray(run.model(run.normalize(images))),
    np.asarray(run.logits_fn(images)),
    rtol=1e-4,
    atol=1e-4,
  )


def batches_first_images(run):
  from jaxmix.data import synthetic

  batch = next(
    iter(
      synthetic.create_eval_iterator(
        run.config.data, global_batch_size=8, image_size=run.image_size
      )
    )
  )
  return batch['image']


def test_load_run_errors(tmp_path, smoke_run):
  with pytest.raises(FileNotFoundError, match=r'config\.json'):
    runs.load_run(tmp_path)
  with pytest.raises(ValueError, match=r'step=3 has no checkpoint.*\[4, 8\]'):
    runs.load_run(smoke_run, step=3)
  assert runs.load_run(smoke_run, step=4).step == 4


def test_occlusion_suite_on_the_synthetic_eval_set(smoke_run):
  run = runs.load_run(smoke_run, use_ema=False)
  args = suites.SuiteArgs(batch_size=16, occlusion_sizes=(0.0, 0.5, 1.0))
  result = suites.evaluate_run(run, 'occlusion', args)
  with open(os.path.join(smoke_run, 'eval', 'occlusion.json')) as f:
    written = json.load(f)
  assert written['curves']['center']['size'] == [0, 16, 32]
  # No hole = the plain top-1 the trainer logged.
  logged = _last_eval(smoke_run)['eval/top1']
  assert written['curves']['center']['top1'][0] == logged
  assert written['curves']['boundary']['top1'][2] == logged
  assert set(result['metrics']) == {'center_half', 'boundary_half'}
  assert '_occlusion' not in written


def test_not_prepared_error_says_how_to_prepare(tmp_path, smoke_run):
  run = runs.load_run(smoke_run)
  empty = str(tmp_path / 'tfds')
  args = suites.SuiteArgs(data_dir=empty)
  with pytest.raises(ValueError) as info:
    suites.evaluate_run(run, 'real', args)
  message = str(info.value)
  assert "'imagenet2012_real'" in message
  assert 'jaxmix never downloads' in message
  assert f'tfds build imagenet2012_real --data_dir={empty}' in message
  assert os.path.join(empty, 'downloads', 'manual') in message
  assert 'ILSVRC2012_img_val.tar' in message
  with pytest.raises(ValueError, match=r'python -m jaxmix\.data\.digit_scenes'):
    sources.checked_builder('digit_scenes/small', 'test', data_dir=empty)
  assert not os.path.exists(os.path.join(empty, 'imagenet2012_real'))


def test_imagenet_suite_on_a_prepared_fixture(tmp_path_factory, smoke_run):
  from imagenet_fixture_util import NUM_VALIDATION, prepared_imagenet

  from jaxmix.data import input_pipeline

  data_dir, _ = prepared_imagenet(str(tmp_path_factory.mktemp('imagenet')))
  run = runs.load_run(smoke_run)
  args = suites.SuiteArgs(data_dir=data_dir, batch_size=8)
  result = suites.evaluate_run(run, 'imagenet', args)
  assert result['dataset'] == 'imagenet2012'
  assert result['metrics']['count'] == NUM_VALIDATION
  # The same images as the trainer's eval pipeline, hence the same logits.
  config = run.config.data.copy_and_resolve_references()
  config.dataset, config.data_dir, config.num_classes = (
    'imagenet2012',
    data_dir,
    1000,
  )
  (batch,) = list(
    input_pipeline.create_eval_iterator(
      config, global_batch_size=8, image_size=run.image_size
    )
  )
  (ours,) = list(
    sources.batches(
      'imagenet2012',
      'validation',
      data_dir=data_dir,
      image_size=run.image_size,
      batch_size=8,
      extras={'label': lambda ex: ex['label']},
    )
  )
  np.testing.assert_array_equal(ours['image'], batch['image'])
  np.testing.assert_array_equal(ours['mask'], batch['mask'])
  mask = batch['mask']
  logits = np.asarray(run.logits_fn(batch['image']))[mask]
  top1 = np.mean(logits.argmax(-1) == batch['label'][mask])
  assert result['metrics']['top1'] == top1


@pytest.mark.parametrize(
  'suite, keys',
  [
    ('real', {'real_top1', 'real_count', 'original_top1'}),
    ('multilabel', {'multilabel_top1', 'multilabel_class_balanced', 'count'}),
    ('sketch', {'top1', 'top5', 'count'}),
    ('v2', {f'{v}_{k}' for v in V2 for k in ('top1', 'top5', 'count')}),
  ],
)
def test_imagenet_family_suites_on_mock_data(suite, keys, smoke_run):
  """The feature plumbing of every suite, on TFDS's random mock examples."""
  import tensorflow_datasets as tfds

  run = runs.load_run(smoke_run)

  def unchecked(name, split, **kwargs):
    return sources.builder(name, kwargs['data_dir'])

  policy = tfds.testing.MockPolicy.USE_CODE
  with (
    tfds.testing.mock_data(num_examples=12, policy=policy),
    mock.patch.object(sources, 'checked_builder', unchecked),
  ):
    result = suites.SUITES[suite](run, suites.SuiteArgs(batch_size=8))
  assert set(result['metrics']) == keys
  for key, value in result['metrics'].items():
    if key.endswith('count'):
      assert 0 < value <= 12
    else:
      assert 0.0 <= value <= 1.0


def test_unknown_suite_is_an_error(smoke_run):
  run = runs.load_run(smoke_run)
  with pytest.raises(ValueError, match="Unknown suite 'nope'"):
    suites.evaluate_run(run, 'nope')


@pytest.mark.slow
def test_digits_suite_and_cli(tmp_path, capsys):
  from jaxmix.data import digit_scenes

  data_dir = str(tmp_path / 'tfds')
  digit_scenes.prepare(data_dir, 'small')
  config = _smoke_config(
    dataset='digit_scenes/small', data_dir=data_dir, eval_split='validation'
  )
  config.global_batch_size = 32
  config.num_epochs = 1
  config.mix.method = 'cutmix'
  workdirs = [str(tmp_path / 'cutmix'), str(tmp_path / 'copy')]
  loop.train_and_evaluate(config, workdirs[0])
  shutil.copytree(workdirs[0], workdirs[1])
  argv = ['--suite', 'digits', '--data_dir', data_dir, '--batch_size', '32']
  for workdir in workdirs:
    argv += ['--workdir', workdir]
  assert cli.main(argv) == 0
  printed = capsys.readouterr().out
  assert '| cutmix | cutmix | 8 |' in printed
  assert '| copy | cutmix | 8 |' in printed
  with open(os.path.join(workdirs[0], 'eval', 'digits.json')) as f:
    result = json.load(f)
  found = result['metrics']
  assert result['dataset'] == 'digit_scenes/small'
  assert result['split'] == 'test' and found['count'] == 64
  for key in (
    'top1',
    'multilabel_top1',
    'top1_loc',
    'max_box_acc',
    'max_box_acc_threshold',
    'occluded_half_top1',
  ):
    assert 0.0 <= found[key] <= 1.0, key
  assert found['multilabel_top1'] >= found['top1']
  assert found['top1_loc'] <= found['multilabel_top1']
  curve = result['curves']['center']
  assert curve['size'][0] == 0 and curve['top1'][0] == found['top1']
  eval_dir = os.path.join(workdirs[0], 'eval')
  for name in ('digits_cams.png', 'digits_occlusion.png'):
    assert os.path.getsize(os.path.join(eval_dir, name)) > 1000
  assert os.path.getsize(os.path.join(eval_dir, 'digits_cams_runs.png')) > 1000
  # OOD against itself (validation vs validation) is chance level exactly.
  run = runs.load_run(workdirs[0])
  args = suites.SuiteArgs(dataset='digit_scenes/small', split='validation')
  same = suites.evaluate_run(run, 'ood', args)
  assert same['split'] == 'validation' and same['ood_split'] == 'validation'
  assert same['metrics']['auroc'] == 0.5
  assert set(same['metrics']) == {
    'tnr_at_tpr95',
    'auroc',
    'detection_accuracy',
  }
