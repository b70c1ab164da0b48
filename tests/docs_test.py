"""The documentation: built with warnings as errors, opened in a browser.

Builds the Sphinx site the way `python -m sphinx -W` does in CI (the API
pages, their coverage check and the getting-started notebook's execution
included), then checks what a reader gets: every internal link of every
page resolves, every public name has its page, and headless Chromium
(Debian's `chromium`) loads the index and the `jaxmix.cutmix` page, shows
the signature, and loads every image. Select these tests with `-m docs`.
"""

import contextlib
import doctest
import functools
import http.server
import importlib
import inspect
import json
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / 'docs'
sys.path.insert(0, str(DOCS / '_ext'))

import api_pages  # noqa: E402  (docs/_ext)
import docstring_markup  # noqa: E402
import recipe_table  # noqa: E402

pytestmark = pytest.mark.docs


def _conf_api_modules() -> list[str]:
  """`api_modules` as docs/conf.py lists them, expanded."""
  text = (DOCS / 'conf.py').read_text()
  block = re.search(r'api_modules = \[(.*?)\]', text, re.S).group(1)
  return api_pages.expand(re.findall(r"'([\w.*]+)'", block))


def _build(tmp_path_factory) -> pathlib.Path:
  """The built HTML site (a build that warns fails here)."""
  out = tmp_path_factory.mktemp('docs')
  html = out / 'html'
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'sphinx',
      '-W',
      '--keep-going',
      '-q',
      '-b',
      'html',
      '-d',
      str(out / 'doctrees'),
      str(DOCS),
      str(html),
    ],
    capture_output=True,
    text=True,
    cwd=ROOT,
    timeout=900,
  )
  assert result.returncode == 0, result.stderr[-6000:]
  return html


def test_coverage_check_names_what_is_missing():
  documented = {f'jaxmix.{name}' for name in api_pages.public_names('jaxmix')}
  assert api_pages.missing_names(documented, ['jaxmix']) == []
  documented.discard('jaxmix.cutmix')
  assert api_pages.missing_names(documented, ['jaxmix']) == ['jaxmix.cutmix']


def test_public_names_follow_all():
  import jaxmix

  assert api_pages.public_names('jaxmix') == sorted(jaxmix.__all__)
  # A module without __all__: the functions and classes it defines.
  store = api_pages.public_names('jaxmix.data.label_maps.store')
  assert 'LabelMapStore' in store
  assert all(not name.startswith('_') for name in store)


def test_docstring_markup_rewrites():
  fixed = docstring_markup.fix_lines(
    ['a `MixDraw`s here:', '', '  code = 1', '', 'Args:', '  x: `y`.']
  )
  assert fixed == [
    'a `MixDraw`\\ s here::',
    '',
    '  code = 1',
    '',
    'Args:',
    '  x: `y`.',
  ]


def test_recipe_rows_come_from_the_docstrings():
  rows = {r['recipe']: r for r in recipe_table.recipe_rows(['imagenet'])}
  cutmix = rows['configs/imagenet/cutmix_resnet50.py']
  assert cutmix['expected'].startswith('78.60 % top-1')
  assert cutmix['parity'] == 'yes'
  assert rows['configs/imagenet/cutout_resnet50.py']['parity'] == ''
  assert cutmix['status'] == 'not yet run'


def _documented_modules() -> list[str]:
  """The documented modules and the modules their public names live in."""
  modules = set(_conf_api_modules())
  for module_name in list(modules):
    module = importlib.import_module(module_name)
    for name in api_pages.public_names(module_name):
      home = getattr(getattr(module, name), '__module__', None)
      if home and home.startswith('jaxmix'):
        modules.add(home)
  return sorted(modules)


@pytest.mark.parametrize('module_name', _documented_modules())
def test_docstring_examples_run(module_name):
  module = importlib.import_module(module_name)
  result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
  assert result.failed == 0, module_name


def _every_public_name_has_a_page(site):
  missing = [
    f'{module}.{name}'
    for module in _conf_api_modules()
    for name in api_pages.public_names(module)
    if not (site / 'api' / '_generated' / f'{module}.{name}.html').exists()
  ]
  assert not missing


def _internal_links_resolve(site):
  broken = []
  for page in site.rglob('*.html'):
    for ref in re.findall(r'(?:href|src)="([^"]+)"', page.read_text()):
      url = urllib.parse.urlsplit(ref)
      if url.scheme or url.netloc or not url.path or ref.startswith('//'):
        continue
      target = (page.parent / urllib.parse.unquote(url.path)).resolve()
      if not target.exists():
        broken.append(f'{page.relative_to(site)} -> {ref}')
  assert not broken, broken[:20]


@contextlib.contextmanager
def _served(site):
  """The site over HTTP on localhost, as `python -m http.server` serves it."""
  handler = functools.partial(
    http.server.SimpleHTTPRequestHandler, directory=str(site)
  )
  handler.log_message = lambda *args: None
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  threading.Thread(target=httpd.serve_forever, daemon=True).start()
  try:
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
  finally:
    httpd.shutdown()


def test_the_built_site(tmp_path_factory, tmp_path):
  """One build (one test, so parallel workers never build twice)."""
  site = _build(tmp_path_factory)
  _every_public_name_has_a_page(site)
  _internal_links_resolve(site)
  with _served(site) as server:
    _browser_loads_index_with_images(site, server, tmp_path)
    _browser_shows_the_cutmix_signature(site, server)
    _browser_loads_the_notebook_pictures(site, server)


def _chromium(*args: str) -> str:
  exe = shutil.which('chromium') or shutil.which('chromium-browser')
  if exe is None:
    pytest.fail('chromium is not installed (apt-get install chromium)')
  result = subprocess.run(
    [
      exe,
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--virtual-time-budget=20000',
      *args,
    ],
    capture_output=True,
    text=True,
    timeout=180,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


# A page that opens another in a frame and reports, once it has loaded,
# its title, its text and every image that did not load.
_CHECKER = """<!doctype html><html><body><pre id="out">pending</pre>
<iframe id="f" src="{page}" width="1280" height="2000"></iframe>
<script>
const f = document.getElementById('f');
f.addEventListener('load', () => {{
  const doc = f.contentDocument;
  const images = [...doc.images];
  document.getElementById('out').textContent = JSON.stringify({{
    title: doc.title,
    text: doc.body.innerText,
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0))
                  .map(i => i.getAttribute('src')),
  }});
}});
</script></body></html>"""


def _open(site, server, page: str) -> dict:
  checker = site / f'_check_{page.replace("/", "_")}'
  checker.write_text(_CHECKER.format(page=page))
  dom = _chromium('--dump-dom', f'{server}/{checker.name}')
  found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)
  assert found != 'pending', 'the page did not finish loading'
  import html

  return json.loads(html.unescape(found))


def _browser_loads_index_with_images(site, server, tmp_path):
  seen = _open(site, server, 'index.html')
  assert seen['title'].startswith('jaxmix')
  assert seen['images'] >= 1 and not seen['broken'], seen['broken']
  shot = tmp_path / 'index.png'
  _chromium(
    f'--screenshot={shot}', '--window-size=1280,900', f'{server}/index.html'
  )
  assert shot.read_bytes().startswith(b'\x89PNG')


def _browser_shows_the_cutmix_signature(site, server):
  import jaxmix

  seen = _open(site, server, 'api/_generated/jaxmix.cutmix.html')
  text = ' '.join(seen['text'].split())
  assert 'jaxmix.cutmix(' in text
  for name in inspect.signature(jaxmix.cutmix).parameters:
    assert name in text, name
  assert not seen['broken']


def _browser_loads_the_notebook_pictures(site, server):
  seen = _open(site, server, 'getting_started.html')
  # The photos with CutMix and Mixup, the preview, and the label map.
  assert seen['images'] >= 3 and not seen['broken'], seen['broken']
  assert 'left third' in seen['text']


README = ROOT / 'README.md'


def test_readme_is_short_and_its_links_resolve():
  text = README.read_text()
  assert len(text.encode()) <= 10 * 1024, 'README.md is over 10 KB'
  for target in re.findall(r'\]\(([^)#]+)[^)]*\)', text):
    if '://' not in target:
      assert (ROOT / target).exists(), target


def test_readme_recipe_table_agrees_with_the_recipes():
  """Each row's expected numbers are those its recipes' docstrings state."""
  rows = {
    r['recipe'].removeprefix('configs/'): r
    for r in recipe_table.recipe_rows(['imagenet', 'cifar100'])
  }
  checked = 0
  for line in README.read_text().splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    if len(cells) != 5 or not cells[0].startswith('`'):
      continue
    recipe = cells[0].split('`')[1]
    numbers = re.findall(r'\d+\.\d+', cells[2])
    assert recipe in rows, recipe
    assert numbers and numbers[0] in rows[recipe]['expected'], (recipe, cells)
    assert cells[3] == rows[recipe]['status'], recipe
    assert (cells[4] == 'tested') == (rows[recipe]['parity'] == 'yes'), recipe
    checked += 1
  assert checked >= 10
