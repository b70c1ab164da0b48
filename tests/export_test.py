"""A trained run out to a torch state dict, and a new run started from one.

`python -m jaxmix.apps.export` (latest checkpoint, EMA parameters) and
`config.model.init_from` (`jaxmix.train.build.import_torch_weights`).
"""

import logging

import jax
import numpy as np
import pytest

from jaxmix import models
from jaxmix.apps import export
from jaxmix.configs import default
from jaxmix.evaluate import runs
from jaxmix.train import loop, setup


def _config(num_classes: int = 10):
  config = default.get_config('smoke')
  config.model.name = 'resnet18'
  config.model.kwargs = {}
  config.data.num_classes = num_classes
  config.num_epochs = 1
  config.optimizer.ema_decay = 0.5
  return config


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp('export')
  workdir = str(root / 'run')
  loop.train_and_evaluate(_config(), workdir)
  out = str(root / 'resnet18.safetensors')
  export.main(['--workdir', workdir, '--out', out])
  return workdir, out


@pytest.mark.slow
def test_export_holds_the_runs_ema_weights(exported):
  workdir, out = exported
  run = runs.load_run(workdir)
  assert run.use_ema and run.step == 4
  model = models.load_torch_weights('resnet18', out)
  pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
  want = np.asarray(run.logits_fn(pixels))
  got = np.asarray(jax.jit(lambda x: model(x))(run.normalize(pixels)))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  with pytest.raises(SystemExit, match=r'must end in \.safetensors'):
    export.main(['--workdir', workdir, '--out', out + '.pth'])


@pytest.mark.slow
def test_export_says_which_batchnorm_rule_the_run_kept(exported, capsys):
  """The fixture's run keeps flax's rule; torch's needs no note."""
  workdir, out = exported
  export.main(['--workdir', workdir, '--out', out])
  said = capsys.readouterr().out
  assert "20 BatchNorm running variances by flax's rule" in said
  config = runs.load_config(workdir)
  assert not config.model.kwargs.get('unbiased_running_var', False)


@pytest.mark.slow
@pytest.mark.parametrize('num_classes', [10, 5])
def test_init_from_starts_a_run_from_the_file(
  exported, tmp_path, caplog, num_classes
):
  _, out = exported
  config = _config(num_classes)
  config.model.init_from = out
  with caplog.at_level(logging.INFO):
    built = setup.build_run(config, str(tmp_path / 'fine_tune'))
  imported = models.read_state_dict(out)
  kernel = np.asarray(built.state.params['stem_conv']['kernel'][...])
  np.testing.assert_array_equal(
    kernel, imported['conv1.weight'].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(
    np.asarray(built.state.batch_stats['stem_bn']['var'][...]),
    imported['bn1.running_var'],
  )
  ema = np.asarray(built.state.ema_params['stem_conv']['kernel'][...])
  np.testing.assert_array_equal(ema, kernel)
  head = np.asarray(built.state.params['head']['kernel'][...])
  log = caplog.text
  assert f'init_from {out}: 102 arrays imported into resnet18' in log
  if num_classes == 10:
    np.testing.assert_array_equal(head, imported['fc.weight'].T)
    assert 'keeping the freshly initialised head' not in log
  else:
    assert head.shape == (512, 5)
    assert 'does not fit 5 classes; keeping the freshly initialised' in log
  built.checkpointer.close()
  built.logger.close()
