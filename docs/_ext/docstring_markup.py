"""Reads jaxmix's docstrings, written for `help()`, as reStructuredText.

The docstrings follow the Google style and write code in single backticks,
as plain text reads best. Two habits of plain text are not valid
reStructuredText, and this extension rewrites them as autodoc reads each
docstring (the source stays as it is):

* a plural or suffix glued to code, "`MixDraw`s", becomes "`MixDraw`\\ s";
* an indented example after a sentence ending in ":" and a blank line
  becomes a literal block ("::"), as it is meant; Google section headers
  ("Args:", "Examples:") are left to napoleon.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx

_GLUED = re.compile(r'(`[^`\s][^`]*`)(?=[A-Za-z0-9])')
_SECTION = re.compile(r'^\s*[A-Z][A-Za-z ]*:\s*$')


def _indent(line: str) -> int:
  return len(line) - len(line.lstrip())


def fix_lines(lines: list[str]) -> list[str]:
  """The docstring's lines with the two rewrites applied."""
  out = [_GLUED.sub(r'\1\\ ', line) for line in lines]
  for i in range(len(out) - 2):
    line, blank, nxt = out[i], out[i + 1], out[i + 2]
    if (
      line.rstrip().endswith(':')
      and not line.rstrip().endswith('::')
      and not _SECTION.match(line)
      and not blank.strip()
      and nxt.strip()
      and _indent(nxt) > _indent(line)
    ):
      out[i] = line.rstrip() + ':'
  return out


def process(app, what, name, obj, options, lines: list[str]) -> None:
  lines[:] = fix_lines(lines)


def setup(app: Sphinx) -> dict:
  # Before napoleon (priority 500) turns the sections into fields.
  app.connect('autodoc-process-docstring', process, priority=400)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
