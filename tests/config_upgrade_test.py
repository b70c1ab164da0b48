"""Tests of jaxmix.train.run_dir.upgrade: one rule for recorded configs."""

import json

import jax
import ml_collections
import pytest

from jaxmix.configs import default
from jaxmix.data import preprocess
from jaxmix.evaluate import runs
from jaxmix.train import augment, build, run_dir, setup


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


# Every field the code once read with a fallback of its own: a record
# written before it existed gets the value its run used, and the code reads
# it directly.
FORMER_FALLBACKS = (
  'data.crop_sampler',
  'data.train_resize',
  'data.photometric',
  'data.color_jitter_clip',
  'data.data_dir',
  'mix.targets',
  'model.dtype',
  'model.kwargs',
  'model.init_from',
  'model.init_required',
  'relabel.enabled',
  'relabel.localized_cutmix',
  'relabel.official_box_order',
  'relabel.temperature',
  'cmo.enabled',
)


def _record_without(tmp_path, field):
  old = run_dir.as_json(default.get_config())
  *sections, name = field.split('.')
  node = old
  for section in sections:
    node = node[section]
  del node[name]
  (tmp_path / 'config.json').write_text(json.dumps(old))
  return runs.load_config(tmp_path)


@pytest.mark.parametrize('field', FORMER_FALLBACKS)
def test_a_record_without_a_former_fallback_field_reads_it_directly(
  tmp_path, field
):
  loaded = _record_without(tmp_path, field)
  value = loaded
  for part in field.split('.'):
    value = getattr(value, part)  # direct reads, no .get
  if isinstance(value, ml_collections.ConfigDict):
    value = value.to_dict()
  assert value == run_dir.value_before_field(field)
  if field in run_dir.ADDED_LATER:  # what such a run used, not the default
    assert value == run_dir.ADDED_LATER[field]


def test_an_old_record_runs_through_the_code_that_reads_the_fields(tmp_path):
  """A record from before these fields (and before ReLabel and CMO had
  sections) builds the pipeline, the step, the augmentation and the model."""
  old = run_dir.as_json(default.get_config())
  for field in FORMER_FALLBACKS:
    section, name = field.split('.', 1)
    old.get(section, {}).pop(name, None)
  del old['relabel'], old['cmo']
  (tmp_path / 'config.json').write_text(json.dumps(old))
  loaded = runs.load_config(tmp_path)
  assert loaded.data.crop_sampler == 'tensorflow'
  assert loaded.data.photometric == 'host'
  assert not loaded.relabel.enabled and not loaded.cmo.enabled
  preprocess.check_config(loaded.data)
  preprocess.train_preprocess(loaded.data, image_size=32, seed=0)
  settings = setup.step_config(loaded)
  assert settings.targets == 'dense' and settings.color_jitter == 0.0
  mesh = jax.make_mesh((jax.device_count(),), ('data',))
  augment.create_augment_fn(loaded, mesh)
  assert build.model_fn(loaded)() is not None
