"""Every numeric config field with a domain is checked, naming the field."""

import math

import numpy as np
import pytest

from jaxmix.configs import default
from jaxmix.datasets import synthetic
from jaxmix.train import label_check, loop, validation


def smoke():
  return default.get_config('smoke')


def _set(config, field, value):
  node = config
  *parents, leaf = field.split('.')
  for parent in parents:
    node = node[parent]
  node[leaf] = value


def _outside(interval: str):
  """Values just outside each finite bound of `interval`, and NaN."""
  low, high = (float(v) for v in interval[1:-1].split(','))
  values = [math.nan]
  if math.isfinite(low):
    values.append(low if interval[0] == '(' else low - 1.0)
  if math.isfinite(high):
    values.append(high if interval[-1] == ')' else high + 1.0)
  return values


def _is_int_field(field):
  value = smoke()
  for part in field.split('.'):
    value = value[part]
  item = value[0] if isinstance(value, tuple) else value
  return isinstance(item, int)


SWEEP = [
  (field, value)
  for field, interval in validation._DOMAINS.items()
  for value in _outside(interval)
  if not (math.isnan(value) and _is_int_field(field))  # ints are never NaN
]


@pytest.mark.parametrize(('field', 'value'), SWEEP)
def test_every_field_outside_its_domain_fails_naming_it(field, value):
  config = smoke()
  current = config
  for part in field.split('.'):
    current = current[part]
  if isinstance(current, tuple):
    value = (value,) * len(current)
    name = rf'{field}\[0\]'
  else:
    name = field
    if isinstance(current, int) and not math.isnan(value):
      value = int(value)
  with config.unlocked():
    _set(config, field, value)
  with pytest.raises(ValueError, match=rf'config\.{name} must be'):
    validation.check_config(config)


def test_defaults_and_smoke_are_inside_every_domain():
  validation.check_config(smoke())
  validation.check_config(default.get_config())


@pytest.mark.parametrize(
  ('field', 'value', 'message'),
  [
    ('optimizer.learning_rate', -0.1, r'learning_rate must be > 0, got -0\.1'),
    ('optimizer.learning_rate', 0.0, r'learning_rate must be > 0'),
    ('data.std', (0.0, 0.0, 0.0), r'data\.std\[0\] must be > 0, got 0\.0'),
    ('data.std', (1.0, -2.0, 1.0), r'data\.std\[1\] must be > 0'),
    ('data.mean', (1.0, 2.0), r'one value per channel'),
    ('data.crop_scale', (0.9, 0.1), r'crop_scale must be \(min, max\)'),
    ('random_erasing.aspect', (3.0, 0.3), r'aspect must be \(min, max\)'),
    ('optimizer.momentum', 1.0, r'momentum must be in \[0, 1\)'),
    ('schedule.warmup_epochs', -1.0, r'warmup_epochs must be >= 0'),
  ],
)
def test_reported_bad_values_fail_naming_the_field(field, value, message):
  config = smoke()
  _set(config, field, value)
  with pytest.raises(ValueError, match=message):
    validation.check_config(config)


def test_negative_learning_rate_does_not_start_a_run(tmp_path):
  config = smoke()
  config.optimizer.learning_rate = -0.1
  with pytest.raises(ValueError, match='learning_rate'):
    loop.train(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run' / 'checkpoints').exists()


# --- class ids of the host batches ------------------------------------------


def test_labels_outside_the_classes_fail_naming_the_example():
  batch = {
    'label': np.array([0, 3, 10, -1], np.int32),
    'file_name': np.array([b'a.jpg', b'b.jpg', b'c.jpg', b'd.jpg']),
  }
  with pytest.raises(
    ValueError, match=r"label 10 of example 2 of the batch \('c\.jpg'\)"
  ) as error:
    label_check.check_labels(batch, 10)
  assert 'positions [2, 3]' in str(error.value)
  label_check.check_labels(batch | {'label': np.array([0, 9, 1, 2])}, 10)
  with pytest.raises(ValueError, match=r'minority_label 5 of example 1'):
    label_check.check_labels({'minority_label': np.array([0, 5])}, 5)
  with pytest.raises(ValueError, match='integer class ids'):
    label_check.check_labels({'label': np.array([0.0, 1.0])}, 5)


def test_checked_iterator_keeps_the_position():
  config = smoke()
  source = synthetic.create_train_iterator(
    config.data, global_batch_size=16, image_size=8, seed=0
  )
  checked = label_check.CheckedLabels(source, config.data.num_classes)
  next(checked)
  state = checked.get_state()
  want = next(checked)
  checked.set_state(state)
  np.testing.assert_array_equal(next(checked)['label'], want['label'])


def test_run_with_an_out_of_range_label_stops_naming_it(tmp_path, monkeypatch):
  real = synthetic.create_train_iterator

  class Corrupt:
    def __init__(self, inner):
      self.inner = inner

    def __iter__(self):
      return self

    def __next__(self):
      batch = dict(next(self.inner))
      batch['label'] = batch['label'].copy()
      batch['label'][5] = 10  # K = 10
      return batch

    def get_state(self):
      return self.inner.get_state()

    def set_state(self, state):
      self.inner.set_state(state)

  monkeypatch.setattr(
    synthetic,
    'create_train_iterator',
    lambda *a, **k: Corrupt(real(*a, **k)),
  )
  with pytest.raises(ValueError, match=r'label 10 of example 5 of the batch'):
    loop.train(smoke(), str(tmp_path / 'run'))
