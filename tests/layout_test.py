"""The import rules of docs/architecture.md, checked on every module."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'jaxmix'
TF = ('tensorflow', 'tensorflow_datasets')
HEAVY = (*TF, 'flax', 'optax', 'orbax', 'matplotlib', 'torch')

# Layer -> modules it must never import (prefix match), anywhere in a file,
# lazily inside functions included. The most specific layer holding a
# module applies (docs/architecture.md has the same table).
LIBRARY = (
  'jaxmix.data',
  'jaxmix.datasets',
  'jaxmix.train',
  'jaxmix.evaluate',
  'jaxmix.models',
  'jaxmix.apps',
  'jaxmix.io',
  *HEAVY,
)
ABOVE_DATA = ('jaxmix.train', 'jaxmix.evaluate', 'jaxmix.apps')
RULES = {
  # The library, ReLabel's pooling and ReLabel-CutMix included.
  'jaxmix': LIBRARY,
  'jaxmix._src': LIBRARY,
  'jaxmix.io': ('jaxmix.', *HEAVY),
  'jaxmix.models': (*ABOVE_DATA, 'jaxmix.data', 'jaxmix.datasets', *TF),
  # The input pipeline, the eval reader and ReLabel's label-map store.
  'jaxmix.data': ABOVE_DATA,
  'jaxmix.datasets': ABOVE_DATA,
  'jaxmix.train': ('jaxmix.evaluate', 'jaxmix.apps'),
  # The trainer's hooks run in the step: no TensorFlow.
  'jaxmix.train.relabel': ('jaxmix.evaluate', 'jaxmix.apps', *TF),
  'jaxmix.train.cmo': ('jaxmix.evaluate', 'jaxmix.apps', *TF),
  'jaxmix.train.token_labeling': ('jaxmix.evaluate', 'jaxmix.apps', *TF),
  'jaxmix.train.manifold_mixup': ('jaxmix.evaluate', 'jaxmix.apps', *TF),
  'jaxmix.train.distill': ('jaxmix.evaluate', 'jaxmix.apps', *TF),
  # Measures, suites, the annotator and the label-map viewer.
  'jaxmix.evaluate': ('jaxmix.apps',),
  'jaxmix.apps': (),
}


# One release: the library's deprecated names of host-side helpers that moved
# up a layer forward there, importing their new home inside the alias only.
MOVED_UP = {
  'jaxmix._src.deprecated': (
    'jaxmix.train.augment_schedule',
    'jaxmix.data.minority',
  ),
}


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported(path: pathlib.Path) -> set[str]:
  """Every module a file imports, at any depth of the file."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
  return names


def rule_for(name: str) -> tuple[str, ...]:
  """The forbidden prefixes of the most specific layer holding `name`."""
  best = max(
    (k for k in RULES if name == k or name.startswith(k + '.')), key=len
  )
  return RULES[best]


MODULES = sorted(PACKAGE.rglob('*.py'))


def _forbids(prefix: str, name: str) -> bool:
  if prefix.endswith('.'):
    return name.startswith(prefix)
  return name == prefix or name.startswith(prefix + '.')


@pytest.mark.parametrize('path', MODULES, ids=module_name)
def test_module_respects_its_layer(path):
  name = module_name(path)
  bad = sorted(
    dep
    for dep in imported(path)
    for prefix in rule_for(name)
    if _forbids(prefix, dep)
    and not dep.startswith(name)
    and not dep.startswith(MOVED_UP.get(name, ()))
  )
  assert not bad, f'{name} imports {bad}, which its layer forbids'


def test_moved_names_import_their_new_home_lazily_only():
  for name, homes in MOVED_UP.items():
    path = ROOT / (name.replace('.', '/') + '.py')
    tree = ast.parse(path.read_text())
    top = set()
    for node in tree.body:  # imports at module level, run by `import jaxmix`
      if isinstance(node, ast.ImportFrom) and node.module:
        top |= {node.module, *(f'{node.module}.{a.name}' for a in node.names)}
      elif isinstance(node, ast.Import):
        top |= {a.name for a in node.names}
    assert not [d for d in top if d.startswith(homes)], name
    assert {d for d in imported(path) if d.startswith(homes)} >= set(homes)


def test_nothing_imports_the_applications():
  for path in MODULES:
    name = module_name(path)
    if name.startswith('jaxmix.apps'):
      continue
    apps = [d for d in imported(path) if d.startswith('jaxmix.apps')]
    assert not apps, f'{name} imports applications {apps}'


def test_no_module_imports_the_study():
  """projects/ builds on jaxmix; jaxmix never on a project."""
  for path in MODULES:
    found = [d for d in imported(path) if d.split('.')[0] == 'projects']
    assert not found, f'{module_name(path)} imports {found}'


def test_relabel_is_no_layer_of_its_own():
  assert not (PACKAGE / 'relabel').exists()
  assert not [k for k in RULES if k.startswith('jaxmix.relabel')]


EVALUATE = sorted((PACKAGE / 'evaluate').rglob('*.py'))


@pytest.mark.parametrize('path', EVALUATE, ids=module_name)
def test_evaluation_has_no_second_reader_restore_or_tally(path):
  """One eval reader (`jaxmix.data.eval_batches`), one restore path (the
  trainer's `Checkpointer`), one top-k count (`jaxmix.train.accuracy`),
  one results folder (`runs.results_dir`)."""
  text = path.read_text()
  name = module_name(path)
  assert not [d for d in imported(path) if d.startswith('orbax')], name
  assert '.padded_batch(' not in text, name
  assert 'CheckpointManager' not in text, name
  if name != 'jaxmix.evaluate.runs':
    assert "'eval')" not in text, f'{name} builds RUN/eval itself'
  # metrics: the 200-class subset tally; annotator: a map's top-k classes.
  if name not in ('jaxmix.evaluate.metrics', 'jaxmix.evaluate.annotator'):
    assert 'lax.top_k(' not in text, name


def test_the_eval_step_and_the_suites_share_the_top_k_count():
  for path in ('train/steps.py', 'evaluate/metrics.py'):
    text = (PACKAGE / path).read_text()
    assert 'accuracy.top_k_correct(' in text, path
  assert 'lax.top_k(' not in (PACKAGE / 'train' / 'steps.py').read_text()


def _loaded(code: str) -> list[str]:
  out = subprocess.run(
    [sys.executable, '-c', code + '; import sys; print(sorted(sys.modules))'],
    capture_output=True,
    text=True,
    check=True,
    cwd=ROOT,
  )
  return eval(out.stdout.strip().splitlines()[-1])


def test_the_trainer_and_models_import_without_tensorflow():
  loaded = _loaded(
    'import jaxmix.models, jaxmix.train.setup, jaxmix.train.loop, '
    'jaxmix.datasets.synthetic, jaxmix.data'
  )
  assert not [m for m in loaded if m.split('.')[0] in TF]


def test_data_entry_points_are_one_hop():
  loaded = _loaded(
    'import jaxmix.data as d; d.create_train_iterator; d.create_eval_iterator'
  )
  assert 'tensorflow' in loaded  # loaded on first use, not on import


def test_every_command_parses_absl_flags():
  """One command-line library, absl flags, for every command."""
  commands = [
    *(PACKAGE / 'apps').glob('*.py'),
    *(PACKAGE / 'datasets').glob('*.py'),
    *(PACKAGE / 'evaluate').rglob('*.py'),
    *(PACKAGE / 'data').rglob('*.py'),
    *(ROOT / 'projects').rglob('*.py'),
  ]
  found = [p.name for p in commands if 'argparse' in imported(p)]
  assert not found, found


def test_datasets_are_prepared_with_tfds_build():
  """No module of `jaxmix.datasets` is a command: TFDS's `tfds build` with
  `--imports` prepares each builder, given once in docs/datasets.md (the
  command runs in `tests/digit_scenes_test.py`)."""
  from jaxmix import datasets

  modules = (PACKAGE / 'datasets').glob('*.py')
  commands = [
    p.name
    for p in modules
    if 'absl' in imported(p) or "__name__ == '__main__'" in p.read_text()
  ]
  assert not commands, commands
  page = (ROOT / 'docs' / 'datasets.md').read_text()
  for name, module in datasets.BUILDERS.items():
    command = f'tfds build {name} --imports {module} '
    lines = [line for line in page.splitlines() if line.startswith(command)]
    assert len(lines) == 1, (name, lines)
