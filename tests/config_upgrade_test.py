"""Tests of jaxmix.train.run_dir.upgrade: one rule for recorded configs."""

import json

from jaxmix.configs import default
from jaxmix.evaluate import runs
from jaxmix.train import run_dir


def test_a_full_config_is_unchanged():
  full = run_dir.as_json(default.get_config())
  assert run_dir.upgrade(full) == full


def test_an_old_record_gets_the_values_its_run_used(tmp_path):
  full = run_dir.as_json(default.get_config())
  old = json.loads(json.dumps(full))
  del old['data']['train_resize'], old['data']['crop_sampler']
  del old['mix']['targets'], old['random_erasing'], old['data']['photometric']
  old['model']['kwargs'] = {'width': 3}  # the schema's kwargs is empty
  old['mix']['method'] = 'cutmix'
  old['note'] = 'a field the schema does not know'
  upgraded = run_dir.upgrade(old)
  # ADDED_LATER: what such a run used, not today's default.
  for field, value in run_dir.ADDED_LATER.items():
    *sections, name = field.split('.')
    recorded, got = old, upgraded
    for section in sections:
      recorded, got = recorded.get(section, {}), got[section]
    # The schema's model.kwargs is empty: the model's own default applies.
    if name not in recorded and sections != ['model', 'kwargs']:
      assert got[name] == value, field
  assert upgraded['random_erasing'] == full['random_erasing']
  assert upgraded['model']['kwargs'] == {'width': 3}
  assert upgraded['data']['photometric'] == 'host'  # colour ran on the host
  assert upgraded['mix']['method'] == 'cutmix'
  assert upgraded['note'] == old['note']
  assert run_dir.differences(old, upgraded) == {}  # one rule for both
  (tmp_path / 'config.json').write_text(json.dumps(old))
  loaded = runs.load_config(tmp_path)
  assert loaded.data.train_resize == run_dir.ADDED_LATER['data.train_resize']
  assert runs.method_of(loaded) == 'cutmix'
