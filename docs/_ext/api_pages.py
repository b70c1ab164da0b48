"""API pages generated from the code, and a check that nothing is missing.

Every documented module's public names are its `__all__` (or, for a module
without one, the names it defines that do not start with `_`). When a build
starts this extension writes one page per module, `api/<module>.rst`,
whose autosummary table lists those names; autosummary then writes a page
per name from its docstring. When the build has read everything, every
public name must have an entry in the Python domain: a name that autodoc
could not import or document fails the build, naming it.

The modules are listed once, in `API_MODULES` in `conf.py`.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
from collections.abc import Iterable

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError


def public_names(module_name: str) -> list[str]:
  """The public names of a module: `__all__`, or its own unprefixed names."""
  module = importlib.import_module(module_name)
  names = getattr(module, '__all__', None)
  if names is not None:
    return sorted(names)
  return sorted(
    name
    for name, obj in vars(module).items()
    if not name.startswith('_')
    and getattr(obj, '__module__', None) == module_name
    and (inspect.isclass(obj) or inspect.isfunction(obj))
  )


def submodules(package_name: str) -> list[str]:
  """The public submodules of a package, sorted."""
  package = importlib.import_module(package_name)
  return sorted(
    f'{package_name}.{info.name}'
    for info in pkgutil.iter_modules(package.__path__)
    if not info.name.startswith('_')
  )


def expand(spec: Iterable[str]) -> list[str]:
  """`pkg.*` entries expanded to the package's public submodules."""
  out = []
  for name in spec:
    if name.endswith('.*'):
      out += submodules(name[:-2])
    else:
      out.append(name)
  return out


def _group(module_name: str, names: list[str]) -> list[tuple[str, list[str]]]:
  """Names grouped by the module that defines them, in first-seen order."""
  if module_name != 'jaxmix':
    return [('', names)]
  module = importlib.import_module(module_name)
  groups: dict[str, list[str]] = {}
  for name in names:
    home = getattr(getattr(module, name), '__module__', module_name)
    doc = (importlib.import_module(home).__doc__ or home).strip()
    title = doc.splitlines()[0].split(':')[0].rstrip('.').replace('`', '')
    groups.setdefault(title, []).append(name)
  return sorted(groups.items())


def module_page(module_name: str) -> str:
  """The reStructuredText of one module's API page."""
  lines = [module_name, '=' * len(module_name), '']
  lines += [f'.. automodule:: {module_name}', '   :no-members:', '']
  lines += [f'.. currentmodule:: {module_name}', '']
  for title, names in _group(module_name, public_names(module_name)):
    if title:
      lines += [title, '-' * len(title), '']
    lines += ['.. autosummary::', '   :toctree: _generated', '']
    lines += [f'   {name}' for name in names]
    lines.append('')
  return '\n'.join(lines)


def write_pages(app: Sphinx, config=None) -> None:
  """Writes `api/<module>.rst` for every module and the API index."""
  out = pathlib.Path(app.srcdir) / 'api'
  out.mkdir(exist_ok=True)
  modules = expand(app.config.api_modules)
  for name in modules:
    text = module_page(name)
    path = out / f'{name}.rst'
    if not path.exists() or path.read_text() != text:
      path.write_text(text)  # unchanged pages keep their time: no rebuild
  index = ['API reference', '=============', '']
  index += [app.config.api_intro, '']
  index += ['.. toctree::', '   :maxdepth: 1', '']
  index += [f'   {name}' for name in modules]
  text = '\n'.join(index) + '\n'
  path = out / 'index.rst'
  if not path.exists() or path.read_text() != text:
    path.write_text(text)
  _remove_stale(out, modules)


def _remove_stale(out: pathlib.Path, modules: list[str]) -> None:
  """Drops the pages of modules and names no longer documented.

  A source tree built before a rename keeps autosummary's stub of the old
  name, which would then fail to import; a clean checkout has none.
  """
  keep = {'index', *modules}
  for path in out.glob('*.rst'):
    if path.stem not in keep:
      path.unlink()
  names = {f'{m}.{n}' for m in modules for n in public_names(m)}
  for path in (out / '_generated').glob('*.rst'):
    if not any(path.stem == n or path.stem.startswith(n + '.') for n in names):
      path.unlink()


def missing_names(documented: Iterable[str], modules: Iterable[str]):
  """The `module.name`s that are public but not in `documented`."""
  documented = set(documented)
  return [
    f'{module}.{name}'
    for module in modules
    for name in public_names(module)
    if f'{module}.{name}' not in documented
  ]


def check_coverage(app: Sphinx, env) -> None:
  """Fails the build when a public name has no API entry."""
  documented = env.get_domain('py').objects
  missing = missing_names(documented, expand(app.config.api_modules))
  if missing:
    raise ExtensionError(
      f'{len(missing)} public names have no API entry: {", ".join(missing)}'
      ' (is the module in API_MODULES, and does autodoc import it?)'
    )


def setup(app: Sphinx) -> dict:
  app.add_config_value('api_modules', [], 'env')
  app.add_config_value('api_intro', '', 'env')
  # Before the source files are listed, so autosummary sees the pages.
  app.connect('config-inited', write_pages)
  app.connect('env-check-consistency', check_coverage)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
