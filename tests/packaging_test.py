"""A real wheel, installed into a fresh directory, run away from the checkout.

The recipes ship inside the wheel (`jaxmix.configs`); `--config` finds them
by their path under `configs/`, and the unknown-key check holds for an
installed jaxmix as for a checkout.
"""

import os
import pathlib
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
  """(site directory holding only jaxmix, environment to run it with)."""
  dist = tmp_path_factory.mktemp('dist')
  subprocess.run(
    [
      sys.executable,
      '-m',
      'pip',
      'wheel',
      '--no-deps',
      '--no-build-isolation',
      '-q',
      '-w',
      str(dist),
      str(ROOT),
    ],
    check=True,
    capture_output=True,
  )
  (wheel,) = dist.glob('jaxmix-*.whl')
  site = tmp_path_factory.mktemp('site')
  subprocess.run(
    [
      sys.executable,
      '-m',
      'pip',
      'install',
      '--no-deps',
      '-q',
      '--target',
      str(site),
      str(wheel),
    ],
    check=True,
    capture_output=True,
  )
  env = dict(os.environ, PYTHONPATH=str(site), JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)
  return site, wheel, env


def test_wheel_holds_every_module_and_recipe(installed):
  _, wheel, _ = installed
  names = set(zipfile.ZipFile(wheel).namelist())
  sources = {str(p.relative_to(ROOT)) for p in (ROOT / 'jaxmix').rglob('*.py')}
  assert any(n.startswith('jaxmix/configs/imagenet/') for n in sources)
  assert sources <= names, sorted(sources - names)


def test_wheel_holds_no_study_module(installed):
  _, wheel, _ = installed
  names = zipfile.ZipFile(wheel).namelist()
  study = [
    n
    for n in names
    if n.startswith('projects/')
    or any(
      word in n
      for word in ('experiment', 'cam_anatomy', 'label_fit', 'study_runs')
    )
  ]
  assert not study, study


def test_a_checkout_on_the_path_shadows_no_user_package():
  # A checkout on sys.path (flax's examples/imagenet has its own `configs`)
  # must add `jaxmix` alone: no other importable package at the root.
  packages = sorted(
    p.parent.name
    for p in ROOT.glob('*/__init__.py')
    if not p.parent.name.startswith('.')
  )
  assert packages == ['jaxmix'], packages


def _run(env, cwd, *args):
  return subprocess.run(
    [sys.executable, *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )


def test_installed_trainer_runs_a_packaged_recipe(installed, tmp_path):
  site, _, env = installed
  where = _run(env, tmp_path, '-c', 'import jaxmix; print(jaxmix.__file__)')
  assert where.stdout.strip().startswith(str(site)), where
  result = _run(
    env,
    tmp_path,
    '-m',
    'jaxmix.apps.train',
    '--config',
    'imagenet/cutmix_resnet50.py:smoke',
    '--workdir',
    str(tmp_path / 'run'),
    '--config.num_epochs=1',
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / 'run' / 'config.json').exists()
  missing = _run(
    env,
    tmp_path,
    '-m',
    'jaxmix.apps.train',
    '--config',
    'imagenet/no_such_recipe.py',
    '--workdir',
    str(tmp_path / 'none'),
  )
  assert missing.returncode != 0
  assert 'neither a file nor a packaged recipe' in missing.stderr


def test_installed_unknown_key_check_fails_a_misspelled_field(
  installed, tmp_path
):
  _, _, env = installed
  recipe = tmp_path / 'my_recipe.py'
  recipe.write_text(
    textwrap.dedent(
      """
      from jaxmix.configs import default

      def get_config(arg=None):
        config = default.get_config()
        config.mix.cutmx_alpha = 1.0  # misspelled
        return default.finish(config, arg)
      """
    )
  )
  code = (
    'from jaxmix.train import recipes, validation; '
    f'validation.check_config(recipes.load({str(recipe) + ":smoke"!r}))'
  )
  result = _run(env, tmp_path, '-c', code)
  assert result.returncode != 0
  assert "Unknown config field(s) ['mix.cutmx_alpha']" in result.stderr
