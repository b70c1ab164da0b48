"""Sphinx configuration of jaxmix's documentation.

Build (warnings are errors, as in CI):

  python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'docs' / '_ext'))
# The notebook's kernel is a subprocess: it finds jaxmix the same way.
os.environ['PYTHONPATH'] = os.pathsep.join(
  filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])
)
# The API pages import jaxmix.data (TensorFlow): keep TF on the CPU and quiet.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

import jaxmix  # noqa: E402

project = 'jaxmix'
author = 'jaxmix authors'
copyright = 'jaxmix authors'
release = version = jaxmix.__version__

extensions = [
  'api_pages',
  'changelog_page',
  'recipe_table',
  'myst_nb',
  'sphinx.ext.autodoc',
  'sphinx.ext.autosummary',
  'sphinx.ext.napoleon',
  'sphinx.ext.viewcode',
  'docstring_markup',  # after autodoc, whose event it uses
]

# The modules whose public names get API pages (the coverage check reads
# the same list). `pkg.*` stands for every public submodule of `pkg`.
api_modules = [
  'jaxmix',
  'jaxmix.data',
  'jaxmix.models',
  'jaxmix.train.*',
  'jaxmix.data.label_maps.store',
  'jaxmix.data.label_maps.manifest',
  'jaxmix.data.label_maps.integrity',
]
api_intro = (
  'Generated from the docstrings. The public names of each module are its '
  '``__all__`` (or, for a module without one, the functions and classes it '
  'defines without a leading underscore); the build fails when one has no '
  'entry here.'
)

exclude_patterns = [
  '_build',
  'jupyter_execute',
  # Included by other pages, not pages of their own.
  'benchmarks.md',
]
templates_path = ['_templates']
source_suffix = {'.rst': 'restructuredtext', '.md': 'myst-nb'}

# Backticked words in docstrings are code, never a guessed cross-reference.
default_role = 'code'

autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_typehints = 'signature'
autodoc_member_order = 'bysource'
autodoc_default_options = {'member-order': 'bysource'}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Attributes as fields of their class: NamedTuple fields are not documented
# twice.
napoleon_use_ivar = True

myst_enable_extensions = ['colon_fence', 'deflist']
myst_heading_anchors = 3
# The getting-started notebook runs at every build, and an error fails it.
nb_execution_mode = 'force'
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_merge_streams = True

html_theme = 'furo'
html_title = f'jaxmix {release}'
html_static_path = []
suppress_warnings = []
