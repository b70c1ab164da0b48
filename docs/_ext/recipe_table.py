"""The `recipe-table` directive: the recipes' table, read from their docstrings.

Each recipe's module docstring states its paper row (first line), its
expected result (the first sentence after "Expected result:"), whether it
has been run with jaxmix (a "Measured" result; "not yet run" otherwise) and whether its train
step is matched against the official step ("Step parity:"). The table is
built from those, so it cannot disagree with the recipes.

  ```{recipe-table} imagenet cifar100
  ```
"""

from __future__ import annotations

import ast
import pathlib
import re

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / 'jaxmix' / 'configs'
# A sentence ends at '. ' unless the word before is an abbreviation.
_SENTENCE_END = re.compile(r'(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.\s')


def first_sentence(text: str) -> str:
  text = ' '.join(text.split())
  match = _SENTENCE_END.search(text + ' ')
  return text[: match.start()] if match else text


def recipe_row(path: pathlib.Path) -> dict[str, str] | None:
  """The table's fields of one recipe file, None for a file without a doc."""
  doc = ast.get_docstring(ast.parse(path.read_text()))
  if not doc:
    return None
  flat = ' '.join(doc.split())
  expected = ''
  if 'Expected result:' in flat:
    expected = first_sentence(flat.split('Expected result:', 1)[1])
  return {
    'recipe': str(path.relative_to(CONFIGS.parent)).replace('\\', '/'),
    'row': doc.splitlines()[0].rstrip('.'),
    'expected': expected or 'none stated',
    # A recipe counts as run once its docstring reports a measurement.
    'status': 'run' if 'Measured' in flat else 'not yet run',
    'parity': 'yes' if 'Step parity:' in flat else '',
  }


def recipe_rows(folders: list[str]) -> list[dict[str, str]]:
  rows = []
  for folder in folders:
    for path in sorted((CONFIGS / folder).glob('*.py')):
      if path.name.startswith('_'):
        continue
      row = recipe_row(path)
      if row is not None:
        rows.append(row)
  return rows


class RecipeTable(SphinxDirective):
  """Renders the table of the recipes in the given `jaxmix/configs` folders."""

  required_arguments = 1
  final_argument_whitespace = True

  def run(self) -> list[nodes.Node]:
    folders = self.arguments[0].split()
    for folder in folders:
      self.env.note_dependency(str(CONFIGS / folder))
    header = (
      'recipe',
      'paper row',
      'expected (source)',
      'status',
      'step parity',
    )
    keys = ('recipe', 'row', 'expected', 'status', 'parity')
    rows = [[r[k] for k in keys] for r in recipe_rows(folders)]
    # Built as nodes: the page may be Markdown, so no reST table source.
    table = nodes.table(classes=['recipe-table'])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
      group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    for cells, parent in [(header, head)] + [(row, body) for row in rows]:
      tr = nodes.row()
      for j, cell in enumerate(cells):
        text = (
          nodes.literal(text=cell)
          if parent is body and j == 0
          else nodes.Text(cell)
        )
        tr += nodes.entry('', nodes.paragraph('', '', text))
      parent += tr
    return [table]


def setup(app: Sphinx) -> dict:
  app.add_directive('recipe-table', RecipeTable)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
