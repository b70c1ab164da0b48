"""The changelog page shows the repository's CHANGELOG.md.

`docs/changelog.md` is a stand-in; when the build reads it, its text is
replaced by CHANGELOG.md's, so the changelog is kept in one file. Without a
CHANGELOG.md the stand-in's own text is shown.
"""

from __future__ import annotations

import pathlib

from sphinx.application import Sphinx

CHANGELOG = pathlib.Path(__file__).resolve().parents[2] / 'CHANGELOG.md'


def read_changelog(app: Sphinx, docname: str, source: list[str]) -> None:
  if docname == 'changelog' and CHANGELOG.exists():
    source[0] = CHANGELOG.read_text()


def setup(app: Sphinx) -> dict:
  app.connect('source-read', read_changelog)
  # Rebuild the page when CHANGELOG.md changes.
  app.connect(
    'env-get-outdated',
    lambda app, env, added, changed, removed: (
      ['changelog']
      if CHANGELOG.exists()
      and env.all_docs.get('changelog', 0) < CHANGELOG.stat().st_mtime
      else []
    ),
  )
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
