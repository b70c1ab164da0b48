"""Project-level rules of the public API: signatures, docs, light import."""

import doctest
import importlib
import inspect
import pathlib
import subprocess
import sys

import pytest

import jaxmix

ROOT = pathlib.Path(__file__).resolve().parents[1]
PUBLIC = [getattr(jaxmix, name) for name in jaxmix.__all__]
FUNCTIONS = [obj for obj in PUBLIC if inspect.isfunction(obj)]
LIBRARY_MODULES = [
  'jaxmix._src.boxes',
  'jaxmix._src.checks',
  'jaxmix._src.cmo',
  'jaxmix._src.deprecated',
  'jaxmix._src.draws',
  'jaxmix._src.erasing',
  'jaxmix._src.labels',
  'jaxmix._src.mix_or_cut',
  'jaxmix._src.mixing',
  'jaxmix._src.mixtoken',
  'jaxmix._src.saliency',
  'jaxmix._src.token_labels',
  'jaxmix._src.video',
  'jaxmix._src.label_map_pooling',
  'jaxmix._src.relabel_cutmix',
  'jaxmix._src.sharding',
]


def test_all_is_sorted_unique_and_importable():
  assert list(jaxmix.__all__) == sorted(set(jaxmix.__all__))
  assert isinstance(jaxmix.__version__, str)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_signature_rules(fn):
  params = list(inspect.signature(fn).parameters.values())
  names = [p.name for p in params]
  # Randomness comes from a `key`, always the first argument.
  assert not {'rng', 'seed', 'prng', 'rng_key'} & set(names)
  if 'key' in names:
    assert names[0] == 'key', f'{fn.__name__}: `key` must come first'
  # Optional knobs are keyword-only, so call sites stay readable and
  # positional mistakes are impossible.
  for p in params:
    if p.default is not inspect.Parameter.empty:
      assert p.kind is inspect.Parameter.KEYWORD_ONLY, (
        f'{fn.__name__}: `{p.name}` has a default but is not keyword-only'
      )


@pytest.mark.parametrize('obj', PUBLIC, ids=lambda f: f.__name__)
def test_docstrings_have_the_sections(obj):
  doc = inspect.getdoc(obj) or ''
  assert doc, f'{obj.__name__} has no docstring'
  if inspect.isfunction(obj):
    for section in ('Args:', 'Returns:', 'Examples:'):
      assert section in doc, f'{obj.__name__} lacks {section}'


@pytest.mark.parametrize('module_name', LIBRARY_MODULES)
def test_docstring_examples_run(module_name):
  module = importlib.import_module(module_name)
  assert module.__doc__, f'{module_name} has no module docstring'
  result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
  assert result.failed == 0


def test_import_jaxmix_stays_light():
  code = (
    'import sys, jaxmix; '
    "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'orbax', "
    "'orbax.checkpoint', 'flax', 'optax', 'torch', 'jaxmix.train', "
    "'jaxmix.data') if m in sys.modules]; "
    'print(heavy)'
  )
  out = subprocess.run(
    [sys.executable, '-c', code],
    capture_output=True,
    text=True,
    check=True,
    cwd=ROOT,
  )
  assert out.stdout.strip() == '[]', out.stdout
