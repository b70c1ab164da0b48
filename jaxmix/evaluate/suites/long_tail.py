"""The long-tail suite: a run trained on a long-tailed split, by class group.

'long_tail' reads the run's balanced `config.data.eval_split` with its eval
crop and returns top-1, top-5, the mean per-class top-1 and the top-1 of
the three groups long-tailed papers report (Liu et al., "Large-Scale
Long-Tailed Recognition in an Open World", CVPR 2019; the groups of CMO's
tables): 'many' (classes with more than 100 training examples), 'medium'
(20 to 100) and 'few' (under 20), each the mean over its classes of the
class's top-1; the per-class top-1 and training counts are written beside
the metrics ('class_top1', 'train_counts'). The training
counts are those of the run's own training subset (`data.long_tail`, the
same seeded choice the trainer made); a run without a long tail counts its
whole train split. A group without classes is reported as None.

The subset is read on every process (it is chosen over the whole split, as
in training); the predictions are those of `common.predict`.
"""

import numpy as np

from jaxmix.data import tfds_source
from jaxmix.evaluate.runs import Run
from jaxmix.evaluate.suites import common
from jaxmix.evaluate.suites.common import SuiteArgs
from jaxmix.evaluate.suites.transfer import mean_class_accuracy

# Training examples per class bounding the groups (Liu et al. 2019).
MANY_ABOVE = 100
FEW_BELOW = 20


def class_groups(train_counts: np.ndarray) -> dict[str, np.ndarray]:
  """The classes of each group, from int `[K]` training counts.

  Examples:
    >>> {k: v.tolist() for k, v in class_groups(np.array([500, 100, 19])).items()}
    {'many': [0], 'medium': [1], 'few': [2]}
  """
  counts = np.asarray(train_counts)
  return {
    'many': np.flatnonzero(counts > MANY_ABOVE),
    'medium': np.flatnonzero((counts >= FEW_BELOW) & (counts <= MANY_ABOVE)),
    'few': np.flatnonzero(counts < FEW_BELOW),
  }


def group_accuracies(
  logits: np.ndarray, labels: np.ndarray, train_counts: np.ndarray
) -> dict:
  """Per-class and per-group top-1.

  Args:
    logits: float `[N, K]` on a (balanced) evaluation set.
    labels: int `[N]`.
    train_counts: int `[K]`, each class's training examples.

  Returns:
    {'class_top1': [K] (None for a class without evaluation examples),
     'many_top1' / 'medium_top1' / 'few_top1': the mean of the group's
     classes' top-1 (None for an empty group), 'mean_class_top1'}.
  """
  labels = np.asarray(labels)
  num_classes = np.asarray(logits).shape[-1]
  if np.asarray(train_counts).shape != (num_classes,):
    raise ValueError(
      f'train_counts must be [{num_classes}] (one per class), got '
      f'{np.asarray(train_counts).shape}.'
    )
  correct = np.argmax(np.asarray(logits), axis=-1) == labels
  per_class = [
    float(correct[labels == c].mean()) if np.any(labels == c) else None
    for c in range(num_classes)
  ]
  result = {'class_top1': per_class}
  for name, classes in class_groups(train_counts).items():
    values = [per_class[c] for c in classes if per_class[c] is not None]
    result[f'{name}_top1'] = float(np.mean(values)) if values else None
  result['mean_class_top1'] = mean_class_accuracy(logits, labels)
  return result


def train_counts(run: Run, data_dir: str | None = None) -> np.ndarray:
  """int `[K]`: the run's training examples of each class (its TFDS train
  split read from `data_dir`, default the run's)."""
  data = run.config.data.copy_and_resolve_references()
  if data.dataset == 'synthetic':
    raise ValueError(
      "The long_tail suite reads the run's TFDS train split; this run "
      'trained on synthetic data.'
    )
  if data_dir:
    data.data_dir = data_dir
  source = tfds_source.Source(
    data, data.train_split, 0, 1, drop_remainder=False
  )
  labels = source.labels
  if labels is None:  # no long tail: the whole split
    labels = np.asarray(
      [int(ex['label']) for ex in source.read(shuffle_seed=None)], np.int64
    )
  return np.bincount(labels, minlength=data.num_classes)


def long_tail(run: Run, args: SuiteArgs) -> dict:
  """Top-1 overall and by many / medium / few-shot class group."""
  batches, dataset, split = common.eval_set(run, args)
  found = common.predict(run, batches, keep=('label',))
  metrics = common.top_k_metrics(found['logits'], found['label'])
  counts = train_counts(run, common.data_dir_for(run, args))
  groups = group_accuracies(found['logits'], found['label'], counts)
  per_class = groups.pop('class_top1')
  metrics.update(groups)
  # The per-class lists sit beside the metrics (the report's tables take
  # one number per metric).
  return {
    'dataset': dataset,
    'split': split,
    'metrics': metrics,
    'class_top1': per_class,
    'train_counts': counts.tolist(),
  }


SUITES = {'long_tail': long_tail}
