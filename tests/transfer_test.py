"""The transfer recipes (configs/transfer/), their suite and report table.

Every recipe's `:smoke` variant trains a few steps from an `init_from`
file with a 1000-class head (a jaxmix ResNet-18 of width 8 written as a
torchvision state dict), which the run replaces for the dataset's classes;
FGVC Aircraft's also runs through jaxmix's real builder on a tiny fake
release (`fgvc_aircraft_fixtures`), trained on the release's trainval
('train+validation') and evaluated by the 'transfer' suite. The five
smoke trainings are marked slow (about a minute on 2 busy cores); the
aircraft run is the one end-to-end training of the quick tests.
"""

import json
import logging
import math
import os

import fgvc_aircraft_fixtures as ff
import numpy as np
import pytest
from flax import nnx
from safetensors import numpy as safetensors_numpy

from jaxmix import models
from jaxmix.evaluate import report, runs
from jaxmix.evaluate.suites import registry as suite_registry
from jaxmix.evaluate.suites import transfer as suites_transfer
from jaxmix.models import torch_names
from jaxmix.train import loop, recipes, validation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = {  # recipe -> (TFDS name, classes, train split, eval split)
  'food101': ('food101', 101, 'train', 'validation'),
  'stanford_cars': ('cars196', 196, 'train', 'test'),
  'dtd': ('dtd', 47, 'train+validation', 'test'),
  'fgvc_aircraft': ('fgvc_aircraft/variant', 100, 'train+validation', 'test'),
  'oxford_pets': ('oxford_iiit_pet', 37, 'train', 'test'),
}


def _load(name, arg=''):
  path = os.path.join(ROOT, 'jaxmix', 'configs', 'transfer', f'{name}.py')
  return recipes.load(path + (f':{arg}' if arg else ''))


@pytest.fixture(scope='module')
def imagenet_file(tmp_path_factory):
  """A 1000-class ResNet-18 (width 8) as a torchvision state dict.

  The names and shapes are those of jaxmix's model (`torch_shapes` of its
  abstract shape); the values are NumPy draws scaled by fan-in, so that no
  XLA program is compiled just to initialise weights the runs replace.
  """
  abstract = nnx.eval_shape(
    lambda: models.create_model(
      'resnet18', num_classes=1000, rngs=nnx.Rngs(7), width=8
    )
  )
  rng = np.random.default_rng(7)
  state_dict = {}
  for name, shape in torch_names.torch_shapes(abstract).items():
    if name.endswith('num_batches_tracked'):
      state_dict[name] = np.zeros(shape, np.int64)
    elif name.endswith('running_var'):
      state_dict[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif len(shape) > 1:  # kernels: variance 1 / fan-in
      scale = 1.0 / math.sqrt(math.prod(shape[1:]))
      state_dict[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    else:  # BatchNorm scales near 1; biases and running means near 0
      centre = 1.0 if name.endswith('weight') else 0.0
      value = centre + 0.1 * rng.standard_normal(shape)
      state_dict[name] = value.astype(np.float32)
  path = tmp_path_factory.mktemp('init') / 'imagenet_rn18.safetensors'
  path.write_bytes(safetensors_numpy.save(state_dict))
  return str(path)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_states_the_protocol(name):
  dataset, classes, train, test = RECIPES[name]
  config = _load(name)
  validation.check_config(config)
  assert (config.data.dataset, config.data.num_classes) == (dataset, classes)
  assert (config.data.train_split, config.data.eval_split) == (train, test)
  # Kornblith et al.'s protocol as ReLabel states it: the whole network,
  # SGD with Nesterov momentum, 224 px.
  assert (config.model.name, config.image_size) == ('resnet50', 224)
  opt = config.optimizer
  assert (opt.name, opt.nesterov, opt.momentum) == ('sgd', True, 0.9)
  assert config.mix.method == 'none' and config.label_smoothing == 0.0
  search = _load(name, 'search')
  assert search.data.train_split != train and search.data.eval_split != test
  # The grid search never sees the test split.
  assert 'test' not in search.data.train_split + search.data.eval_split
  smoke = _load(name, 'search,smoke')
  assert smoke.model.name == 'resnet18' and smoke.data.num_classes == classes
  assert smoke.data.dataset == 'synthetic'
  with pytest.raises(Exception, match='not known'):
    _load(name, 'tiny')


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(RECIPES))
def test_smoke_trains_from_an_imagenet_file(
  name, imagenet_file, tmp_path, caplog
):
  config = _load(name, 'smoke')
  config.model.init_from = imagenet_file
  config.num_epochs = 1  # 4 steps
  workdir = str(tmp_path / name)
  with caplog.at_level(logging.INFO):
    loop.train_and_evaluate(config, workdir)
  classes = RECIPES[name][1]
  assert f'does not fit {classes} classes; keeping the freshly' in caplog.text
  run = runs.load_run(workdir)
  assert run.step == 4 and run.num_classes == classes
  # The stem started from the file (4 steps move it a little; a fresh
  # initialisation would be uncorrelated with it).
  start = models.read_state_dict(imagenet_file)['conv1.weight'].ravel()
  now = models.torch_state_dict(run.model)['conv1.weight'].ravel()
  assert np.corrcoef(start, now)[0, 1] > 0.8


def test_aircraft_through_the_real_builder_and_the_report(
  imagenet_file, tmp_path
):
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  ff.write_release(manual)
  ff.prepare(manual, data_dir)
  config = _load('fgvc_aircraft', 'smoke')
  config.data.dataset = 'fgvc_aircraft/variant'
  config.data.data_dir = data_dir
  config.data.num_classes = len(ff.VARIANTS)
  config.data.train_split = 'train+validation'  # the recipe's: 9 images
  config.global_batch_size = 8
  config.num_epochs = 1
  config.model.init_from = imagenet_file
  workdir = str(tmp_path / 'aircraft')
  loop.train_and_evaluate(config, workdir)
  run = runs.load_run(workdir)
  assert run.step == 1  # 9 // 8 steps an epoch
  result = suite_registry.evaluate_run(
    run, 'transfer', suite_registry.SuiteArgs(batch_size=8)
  )
  assert result['dataset'] == 'fgvc_aircraft/variant'
  assert result['split'] == 'test' and result['init_from'] == imagenet_file
  metrics = result['metrics']
  assert metrics['count'] == 2 and metrics['top1'] in (0.0, 0.5, 1.0)
  with open(os.path.join(workdir, 'eval', 'transfer.json')) as f:
    assert json.load(f)['metrics'] == metrics
  table = report.transfer_table(report.load_results(workdir))
  assert table.splitlines()[0] == '| pretrained | fgvc_aircraft/variant |'
  cell = f'{100 * metrics["top1"]:.2f}'
  assert table.splitlines()[2] == f'| imagenet_rn18.safetensors | {cell} |'


def test_mean_class_accuracy():
  logits = np.eye(3, dtype=np.float32)[[0, 0, 1, 2, 2, 2]]
  labels = np.array([0, 1, 1, 2, 2, 0])
  # Class 0: 1 of 2 right, class 1: 1 of 2, class 2: 2 of 2.
  assert suites_transfer.mean_class_accuracy(logits, labels) == pytest.approx(
    (0.5 + 0.5 + 1.0) / 3
  )


def _result(run, dataset, init, top1):
  return {
    'suite': 'transfer',
    'run': run,
    'dataset': dataset,
    'init_from': init,
    'metrics': {'top1': top1},
  }


def test_transfer_table_by_pretrained_file_and_dataset():
  results = [
    _result('a', 'oxford_iiit_pet', '/w/relabel.safetensors', 0.93),
    _result('b', 'food101', '/w/relabel.safetensors', 0.875),
    _result('c', 'food101', '/w/baseline.safetensors', 0.87),
    _result('d', 'my_set', None, 0.5),
    {'suite': 'imagenet', 'metrics': {'top1': 0.7}},
  ]
  assert report.transfer_table(results) == (
    '| pretrained | food101 | oxford_iiit_pet | my_set |\n'
    '|---|---:|---:|---:|\n'
    '| relabel.safetensors | 87.50 | 93.00 | - |\n'
    '| baseline.safetensors | 87.00 | - | - |\n'
    '| (from scratch) | - | - | 50.00 |\n'
  )
  assert report.transfer_table(results[-1:]) is None
  twice = [*results, _result('e', 'food101', '/x/baseline.safetensors', 0.1)]
  with pytest.raises(ValueError, match="'c' and 'e' both fine-tune"):
    report.transfer_table(twice)


def test_a_fresh_run_without_init_from_stops_before_recording(tmp_path):
  config = _load('dtd', 'smoke')
  assert config.model.init_required and config.model.init_from is None
  workdir = tmp_path / 'dtd'
  with pytest.raises(ValueError, match=r'init_from is not set.*init_required'):
    loop.train_and_evaluate(config, str(workdir))
  # Nothing was recorded or trained: a corrected command starts clean.
  assert not (workdir / 'config.json').exists()
  assert not (workdir / 'checkpoints').exists() or not any(
    (workdir / 'checkpoints').iterdir()
  )
