"""The long_tail suite's class groups, group accuracies and train counts."""

import types

import ml_collections
import numpy as np
import pytest

from jaxmix.configs import default
from jaxmix.data import long_tail
from jaxmix.evaluate.suites import long_tail as suites_long_tail
from jaxmix.evaluate.suites import registry as suite_registry


def test_groups_follow_liu_et_al_bounds():
  counts = np.array([101, 100, 20, 19, 0, 500])
  groups = suites_long_tail.class_groups(counts)
  assert groups['many'].tolist() == [0, 5]
  assert groups['medium'].tolist() == [1, 2]  # 100 and 20 are medium
  assert groups['few'].tolist() == [3, 4]


def test_group_accuracies_are_means_over_classes_not_examples():
  # Class 0 (many): 3 of 4 right; class 1 (medium): 0 of 1; class 2 (few):
  # 1 of 2. Examples would give 4/7; classes give (0.75 + 0 + 0.5) / 3.
  labels = np.array([0, 0, 0, 0, 1, 2, 2])
  predicted = np.array([0, 0, 0, 2, 0, 2, 1])
  logits = np.eye(3)[predicted]
  got = suites_long_tail.group_accuracies(
    logits, labels, np.array([500, 50, 5])
  )
  assert got['class_top1'] == [0.75, 0.0, 0.5]
  assert (got['many_top1'], got['medium_top1'], got['few_top1']) == (
    0.75,
    0.0,
    0.5,
  )
  assert got['mean_class_top1'] == pytest.approx(1.25 / 3)


def test_an_empty_group_is_none_and_a_missing_class_is_skipped():
  labels = np.array([0, 1])
  logits = np.eye(3)[[0, 0]]
  got = suites_long_tail.group_accuracies(
    logits, labels, np.array([500, 400, 300])
  )
  assert got['class_top1'] == [1.0, 0.0, None]
  assert got['many_top1'] == 0.5
  assert got['medium_top1'] is None and got['few_top1'] is None
  with pytest.raises(ValueError, match=r'train_counts must be \[3\]'):
    suites_long_tail.group_accuracies(logits, labels, np.array([1, 2]))


def test_train_counts_are_the_trainers_long_tailed_subset(tmp_path):
  import tensorflow_datasets as tfds

  from jaxmix.datasets import digit_scenes

  data_dir = str(tmp_path / 'tfds')
  builder = digit_scenes.prepare(data_dir, 'small')
  labels = np.array(
    [ex['label'] for ex in tfds.as_numpy(builder.as_dataset(split='train'))]
  )
  config = default.get_config()
  config.data.update(
    dataset='digit_scenes/small', data_dir=data_dir, num_classes=10
  )
  run = types.SimpleNamespace(config=config)
  # No long tail: the whole split's counts.
  whole = suites_long_tail.train_counts(run)
  assert whole.tolist() == np.bincount(labels, minlength=10).tolist()
  config.data.long_tail.update(imbalance_ratio=5.0, seed=0)
  want = long_tail.class_counts(
    int(whole.min()), num_classes=10, imbalance_ratio=5
  )
  assert suites_long_tail.train_counts(run).tolist() == want.tolist()
  # Another data_dir is honoured (and a wrong one fails loudly).
  with pytest.raises(Exception):  # noqa: B017 - TFDS's own not-found error
    suites_long_tail.train_counts(run, str(tmp_path / 'elsewhere'))


def test_synthetic_runs_are_refused_and_the_suite_is_registered():
  config = ml_collections.ConfigDict({'data': {'dataset': 'synthetic'}})
  with pytest.raises(ValueError, match='synthetic'):
    suites_long_tail.train_counts(types.SimpleNamespace(config=config))
  assert suite_registry.SUITES['long_tail'] is suites_long_tail.long_tail
