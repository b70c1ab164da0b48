"""Every backticked jaxmix name in docstrings and docs/*.md resolves.

A backticked `jaxmix.<module>[.<name>[.<attribute>]]` must name a module
of the package and, after it, a name the module defines (a function, a
class, a constant, an import) and, after a class, one of its members; a
backticked `tests/<file>.py` must exist. The README is left out while it is
rewritten.
"""

import ast
import functools
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted(
  [
    *(ROOT / 'jaxmix').rglob('*.py'),
    *(ROOT / 'projects').rglob('*.py'),
    *(ROOT / 'projects').rglob('*.md'),
    *(ROOT / 'docs').glob('*.md'),
  ]
)
BACKTICKED = re.compile(r'`([^`\n]+)`')
NAME = re.compile(r'\bjaxmix(?:\.\w+)+')
TEST_FILE = re.compile(r'\btests/[\w/]+\.py\b')
COMMAND = re.compile(r'python -m ((?:jaxmix|projects)(?:\.\w+)+)')


@functools.cache
def _tree(path: pathlib.Path) -> ast.Module:
  return ast.parse(path.read_text())


def _module_file(parts: list[str]) -> pathlib.Path | None:
  base = ROOT.joinpath(*parts)
  for path in (base.with_suffix('.py'), base / '__init__.py'):
    if path.is_file():
      return path
  return None


def _defined(body: list[ast.stmt]) -> dict[str, ast.AST]:
  """The names a module or class body binds, at any if/try depth."""
  names = {}
  for node in body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      names[node.name] = node
    elif isinstance(node, ast.Assign):
      for target in node.targets:
        for leaf in ast.walk(target):
          if isinstance(leaf, ast.Name):
            names[leaf.id] = node
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
      if isinstance(node.target, ast.Name):
        names[node.target.id] = node
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
      for alias in node.names:
        names[(alias.asname or alias.name).split('.')[0]] = node
    elif isinstance(node, (ast.If, ast.Try, ast.With)):
      for block in (
        node.body,
        getattr(node, 'orelse', []),
        getattr(node, 'finalbody', []),
      ):
        names.update(_defined(block))
  return names


def resolve(name: str) -> str | None:
  """None if `name` resolves, else why not."""
  parts = name.split('.')
  for cut in range(len(parts), 0, -1):
    path = _module_file(parts[:cut])
    if path is not None:
      break
  else:
    return 'no such module'
  rest = parts[cut:]
  if not rest:
    return None
  names = _defined(_tree(path).body)
  if rest[0] not in names:
    submodule = _module_file([*parts[:cut], rest[0]])
    if submodule is None:
      return f'{path.relative_to(ROOT)} defines no {rest[0]!r}'
    return None
  node = names[rest[0]]
  if len(rest) > 1 and isinstance(node, ast.ClassDef):
    members = _defined(node.body)
    for fn in node.body:
      if isinstance(fn, ast.FunctionDef) and fn.name == '__init__':
        for leaf in ast.walk(fn):
          if isinstance(leaf, ast.Attribute) and isinstance(
            leaf.ctx, ast.Store
          ):
            members[leaf.attr] = leaf
    if rest[1] not in members and not node.decorator_list:
      return f'class {rest[0]} has no {rest[1]!r}'
  return None


def _references(path: pathlib.Path):
  text = path.read_text()
  for quoted in BACKTICKED.findall(text):
    yield from NAME.findall(quoted)
    yield from TEST_FILE.findall(quoted)


@pytest.mark.parametrize(
  'path', SOURCES, ids=lambda p: str(p.relative_to(ROOT))
)
def test_backticked_references_resolve(path):
  bad = []
  for ref in sorted(set(_references(path))):
    if ref.startswith('tests/'):
      why = None if (ROOT / ref).is_file() else 'no such test file'
    else:
      why = resolve(ref)
    if why:
      bad.append(f'`{ref}`: {why}')
  assert not bad, f'{path.relative_to(ROOT)}:\n' + '\n'.join(bad)


@pytest.mark.parametrize(
  'path', SOURCES, ids=lambda p: str(p.relative_to(ROOT))
)
def test_documented_commands_exist(path):
  """`python -m NAME` names a module that runs as a command."""
  bad = []
  for name in sorted(set(COMMAND.findall(path.read_text()))):
    module = _module_file(name.split('.'))
    if module is None or "__name__ == '__main__'" not in module.read_text():
      bad.append(name)
  assert not bad, f'{path.relative_to(ROOT)}: no command {bad}'


def test_the_resolver_catches_stale_names():
  assert resolve('jaxmix.evaluate.suites.registry.evaluate_run') is None
  assert resolve('jaxmix.train.checkpoints.Checkpointer.open_read_only') is None
  assert resolve('jaxmix.relabel_cutmix') is None  # a re-export
  assert resolve('jaxmix.evaluate.suite_registry') == 'no such module' or (
    'defines no' in resolve('jaxmix.evaluate.suite_registry')
  )
  assert 'defines no' in resolve('jaxmix.datasets.checked_builder')
  assert 'has no' in resolve('jaxmix.train.checkpoints.Checkpointer.nothing')
