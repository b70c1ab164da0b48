"""absl flags for jaxmix's commands, each with its own `FlagValues`.

Every command defines its flags on a private `flags.FlagValues` (not absl's
global `FLAGS`), so that several commands can be imported into one process
(the demo runs the preview; tests import them all) without their `--workdir`
flags clashing, and parses them with `parse`: `--help` prints the command's
docstring and flags; an unknown or malformed flag, or a missing required
one, exits with status 2 and names it.
"""

import sys
from collections.abc import Sequence

from absl import flags


def parse(
  flag_values: flags.FlagValues,
  argv: Sequence[str] | None,
  doc: str,
  *,
  positional: bool = False,
) -> list[str]:
  """Parses `argv` (without the program name; default `sys.argv[1:]`).

  Args:
    flag_values: the command's flags; reset to their defaults first, so a
      second call (a test) sees none of the first call's values.
    argv: the arguments.
    doc: the command's docstring, printed by `--help`.
    positional: whether arguments other than flags are allowed.

  Returns:
    The positional arguments.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  if '--help' in argv or '-h' in argv:
    print(doc.strip() + '\n\nflags:\n' + flag_values.get_help())
    raise SystemExit(0)
  flag_values.unparse_flags()
  try:
    rest = flag_values(['command', *argv])[1:]
  except flags.Error as error:
    print(f'FATAL Flags parsing error: {error}', file=sys.stderr)
    raise SystemExit(2) from None
  if rest and not positional:
    print(f'FATAL Unexpected arguments: {rest}', file=sys.stderr)
    raise SystemExit(2)
  return rest
