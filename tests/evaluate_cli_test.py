"""Tests of `load_run`, the evaluation suites and their command line."""

import dataclasses
import importlib.util
import json
import os
import shutil

import jax
import numpy as np
import pytest

from jaxmix.apps import evaluate as cli
from jaxmix.configs import default
from jaxmix.data import tfds_source
from jaxmix.evaluate import multihost, runs
from jaxmix.evaluate.suites import registry as suite_registry
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
  from jaxmix.datasets import synthetic

  batches = synthetic.create_eval_iterator(
    run.config.data, global_batch_size=16, image_size=32
  )
  found = suite_registry.predict(run, batches, keep=('label',))
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
  from jaxmix.datasets import synthetic

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
  args = suite_registry.SuiteArgs(
    batch_size=16, occlusion_sizes=(0.0, 0.5, 1.0)
  )
  result = suite_registry.evaluate_run(run, 'occlusion', args)
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
  args = suite_registry.SuiteArgs(data_dir=empty)
  with pytest.raises(ValueError) as info:
    suite_registry.evaluate_run(run, 'real', args)
  message = str(info.value)
  assert "'imagenet2012_real'" in message
  assert 'jaxmix never downloads' in message
  # Where `tfds` cannot start, the message says what it lacks.
  cli_ready = all(map(importlib.util.find_spec, ('apache_beam', 'mlcroissant')))
  assert ("TFDS's command line needs apache-beam" in message) != cli_ready
  assert f'tfds build imagenet2012_real --data_dir {empty} ' in message
  assert os.path.join(empty, 'downloads', 'manual') in message
  assert 'ILSVRC2012_img_val.tar' in message
  # jaxmix's own builder: `--imports` its module; one config, not all.
  for name, config in (
    ('digit_scenes/small', 'small'),
    ('digit_scenes', 'default'),
  ):
    with pytest.raises(ValueError) as own:
      tfds_source.checked_builder(name, 'test', data_dir=empty)
    assert (
      '`tfds build digit_scenes --imports jaxmix.datasets.digit_scenes '
      f'--data_dir {empty} --config {config}`.'
    ) in str(own.value)
  assert not os.path.exists(os.path.join(empty, 'imagenet2012_real'))
  assert 'opencv' not in message and 'ImageMagick' not in message
  # Builders that need OpenCV, and ImageNet-C's ImageMagick corruptions.
  opencv = 'Building it needs OpenCV (`pip install opencv-python-headless`)'
  magick = 'ImageMagick `convert` binary on the PATH as `imagemagick`'
  for name, needs in (
    ('caltech_birds2011', [opencv]),
    ('imagenet2012_corrupted/fog_1', [opencv]),
    ('imagenet2012_corrupted/snow_3', [opencv, magick]),
    ('imagenet2012_corrupted/motion_blur_5', [opencv, magick]),
  ):
    with pytest.raises(ValueError) as info:
      tfds_source.checked_builder(name, 'validation', data_dir=empty)
    message = str(info.value)
    assert f"TFDS dataset '{name}' has no prepared split" in message
    assert [n in message for n in (opencv, magick)] == [
      n in needs for n in (opencv, magick)
    ], name


def test_imagenet_suite_needs_imagenets_classes(tmp_path_factory, smoke_run):
  from imagenet_fixture_util import prepared_imagenet

  data_dir, _ = prepared_imagenet(str(tmp_path_factory.mktemp('imagenet')))
  run = runs.load_run(smoke_run)
  args = suite_registry.SuiteArgs(data_dir=data_dir, batch_size=8)
  # A 10-class run has no ImageNet numbers (evaluate_builders_test has them).
  with pytest.raises(ValueError, match=r'predicts 10 classes'):
    suite_registry.evaluate_run(run, 'imagenet', args)


def test_in_between_pairs_do_not_depend_on_the_batch_size(tmp_path, smoke_run):
  run = runs.load_run(smoke_run)
  found = [
    suite_registry.SUITES['in_between'](
      run,
      suite_registry.SuiteArgs(
        batch_size=size, lambdas=(0.0, 0.5, 1.0), out=str(tmp_path)
      ),
    )
    for size in (16, 48)
  ]
  assert found[0]['curves'] == found[1]['curves']
  assert found[0]['metrics'] == found[1]['metrics']
  # At lambda 1 Mixup leaves the image itself: 'own' is the top-1 of the
  # examples of pairs (2k, 2k + 1) of two classes (all 40 are paired).
  batches, _, _ = suite_registry.eval_set(
    run, suite_registry.SuiteArgs(batch_size=16)
  )
  rows = suite_registry.predict(run, batches, keep=('label',))
  pred, label = rows['logits'].argmax(-1), rows['label']
  assert len(label) == 40
  mate, mate_pred = (
    x.reshape(-1, 2)[:, ::-1].reshape(-1) for x in (label, pred)
  )
  mixed = label != mate
  assert mixed.any()
  mixup = found[0]['curves']['mixup']
  assert mixup['lambda'] == [0.0, 0.5, 1.0]
  assert mixup['own'][2] == np.mean(pred[mixed] == label[mixed])
  # At lambda 0 the image is its mate.
  assert mixup['partner'][0] == np.mean(mate_pred[mixed] == mate[mixed])


def test_boxed_suites_need_the_datasets_classes(tmp_path, smoke_run):
  from jaxmix.datasets import digit_scenes

  data_dir = str(tmp_path / 'tfds')
  digit_scenes.prepare(data_dir, 'small')
  run = runs.load_run(smoke_run)
  config = run.config.copy_and_resolve_references()
  config.data.num_classes = 5
  fewer = dataclasses.replace(run, config=config)
  args = suite_registry.SuiteArgs(
    dataset='digit_scenes/small', data_dir=data_dir
  )
  for suite in ('wsol', 'digits'):
    with pytest.raises(ValueError) as info:
      suite_registry.evaluate_run(fewer, suite, args)
    assert str(info.value) == (
      "Run 'smoke' predicts 5 classes, but the class features of TFDS "
      "'digit_scenes/small' have {'label': 10} classes."
    )
  assert not os.path.exists(os.path.join(smoke_run, 'eval', 'wsol.json'))


def test_gather_batches_keeps_real_rows_in_split_order():
  parts = [
    {
      'mask': np.array([True, True]),
      'index': np.array([2, 0]),
      'x': [[5], [3]],
    },
    {
      'mask': np.array([True, False]),
      'index': np.array([1, -1]),
      'x': [[4], [9]],
    },
  ]
  found = multihost.gather_batches(parts)
  assert set(found) == {'index', 'x'}
  np.testing.assert_array_equal(found['index'], [0, 1, 2])
  np.testing.assert_array_equal(found['x'], [[3], [4], [5]])
  with pytest.raises(ValueError, match='empty'):
    multihost.gather_batches([])


def test_multi_host_flags_need_distributed(smoke_run):
  argv = ['--workdir', smoke_run, '--suite', 'imagenet']
  with pytest.raises(ValueError, match='--num_processes need --distributed'):
    cli.main([*argv, '--num_processes', '2'])
  ns = cli.parse_args([*argv, '--distributed', '--process_id', '1'])
  assert (ns.distributed, ns.process_id, ns.coordinator_address) == (
    True,
    1,
    None,
  )


def test_unknown_suite_is_an_error(smoke_run):
  run = runs.load_run(smoke_run)
  with pytest.raises(ValueError, match="Unknown suite 'nope'"):
    suite_registry.evaluate_run(run, 'nope')


@pytest.mark.slow
def test_digits_suite_and_cli(tmp_path, capsys):
  from jaxmix.datasets import digit_scenes

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
  # Top-1 loc.'s CAM threshold is the best on validation (lowest of ties).
  chosen, val = result['cam_threshold'], result['curves']['top1_loc_validation']
  assert chosen['chosen_on'] == 'validation'
  assert chosen['value'] == found['top1_loc_threshold']
  best = max(val['top1_loc'])
  assert chosen['validation_top1_loc'] == best
  assert val['threshold'][val['top1_loc'].index(best)] == chosen['value']
  # The same numbers with the threshold fixed by the flag: on the test
  # split, and on validation at the chosen and at another threshold.
  run = runs.load_run(workdirs[0])
  for split, threshold, want in (
    ('test', chosen['value'], found['top1_loc']),
    ('validation', chosen['value'], best),
    ('validation', 0.2, val['top1_loc'][20]),
  ):
    args = suite_registry.SuiteArgs(
      data_dir=data_dir,
      split=split,
      batch_size=32,
      cam_threshold=threshold,
      occlusion_sizes=(0.5,),
      out=str(tmp_path / 'flag'),
    )
    flagged = suite_registry.SUITES['digits'](run, args)
    assert flagged['cam_threshold'] == {'value': threshold, 'chosen_on': 'flag'}
    assert flagged['metrics']['top1_loc'] == want, (split, threshold)
  eval_dir = os.path.join(workdirs[0], 'eval')
  for name in ('digits_cams.png', 'digits_occlusion.png'):
    assert os.path.getsize(os.path.join(eval_dir, name)) > 1000
  assert os.path.getsize(os.path.join(eval_dir, 'digits_cams_runs.png')) > 1000
  # OOD against itself (validation vs validation) is chance level exactly.
  args = suite_registry.SuiteArgs(
    dataset='digit_scenes/small', split='validation'
  )
  same = suite_registry.evaluate_run(run, 'ood', args)
  assert same['split'] == 'validation' and same['ood_split'] == 'validation'
  assert same['metrics']['auroc'] == 0.5
  assert set(same['metrics']) == {
    'tnr_at_tpr95',
    'auroc',
    'detection_accuracy',
  }
