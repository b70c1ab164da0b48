"""Finding and loading recipes: local files or the recipes jaxmix ships.

A recipe spec is `PATH[:ARG]`, e.g. `configs/imagenet/cutmix_resnet50.py`
or `imagenet/cutmix_resnet50.py:smoke`. `PATH` is used as is when it is a
file; otherwise it is looked up among the packaged recipes
(`jaxmix.configs`, the repository's `configs/`), relative to `configs/`,
so the same command works from a checkout and from any directory after
`pip install jaxmix`.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Sequence

import ml_collections
from ml_collections import config_flags

_PACKAGED_PREFIX = 'configs/'


def packaged_root() -> str:
  """The directory of the packaged recipes (`jaxmix.configs`)."""
  return os.fspath(importlib.resources.files('jaxmix.configs'))


def resolve(spec: str) -> str:
  """`PATH[:ARG]` with `PATH` made a file that exists.

  Raises:
    FileNotFoundError: neither a local file nor a packaged recipe.
  """
  path, sep, arg = spec.partition(':')
  if os.path.isfile(path):
    return spec
  relative = path.removeprefix(_PACKAGED_PREFIX)
  packaged = os.path.join(packaged_root(), relative)
  if os.path.isfile(packaged):
    return packaged + sep + arg
  raise FileNotFoundError(
    f'Config file {path!r} is neither a file nor a packaged recipe '
    f'(looked for {packaged}); packaged recipes are named by their path '
    "under configs/, e.g. 'imagenet/cutmix_resnet50.py'."
  )


def resolve_argv(argv: Sequence[str], flag: str = 'config') -> list[str]:
  """`argv` with the value of `--flag` (either form) resolved."""
  out, args = [], list(argv)
  i = 0
  while i < len(args):
    arg = args[i]
    if arg == f'--{flag}' and i + 1 < len(args):
      out += [arg, resolve(args[i + 1])]
      i += 2
      continue
    if arg.startswith(f'--{flag}='):
      arg = f'--{flag}=' + resolve(arg.split('=', 1)[1])
    out.append(arg)
    i += 1
  return out


def load(spec: str, *overrides: str) -> ml_collections.ConfigDict:
  """The locked config of `spec`, with `--config.x=y` overrides applied.

  Parsed exactly as `python -m jaxmix.apps.train` parses `--config`, so a
  misspelled override fails here too.
  """
  from absl import flags

  argv = resolve_argv(['jaxmix', f'--config={spec}', *overrides])
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file(
    'config',
    None,
    'recipe',
    flag_values=flag_values,
    lock_config=True,
    sys_argv=argv,
  )
  flag_values(argv)
  return flag_values.config
