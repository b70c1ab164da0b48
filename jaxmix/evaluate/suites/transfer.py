"""The transfer suite: a fine-tuned run on its own test split.

'transfer' reads the run's `config.data.eval_split` of `config.data.dataset`
(the recipes of `configs/transfer/` set the test split there) with the run's
eval crop and returns top-1, top-5, the mean per-class top-1 (the average
over the classes present of each class's accuracy, the figure some transfer
tables give for class-balanced test sets) and the count. The result also
records the dataset and the run's `model.init_from` (the pretrained file),
which `jaxmix.evaluate.report` uses to tabulate transfer runs by pretrained
weights and dataset. `--split` evaluates another split (a grid search's
held-out part, say).

Multi-host: every process reads its own slice; all get the same numbers.
"""

import numpy as np

from jaxmix.evaluate.runs import Run
from jaxmix.evaluate.suites import common
from jaxmix.evaluate.suites.common import SuiteArgs


def mean_class_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
  """Mean over the classes in `labels [N]` of the top-1 of `logits [N, K]`
  on that class's examples."""
  labels = np.asarray(labels)
  correct = np.argmax(np.asarray(logits), axis=-1) == labels
  classes = np.unique(labels)
  if not classes.size:
    raise ValueError('mean_class_accuracy needs at least one example.')
  return float(np.mean([correct[labels == c].mean() for c in classes]))


def transfer(run: Run, args: SuiteArgs) -> dict:
  """Top-1, top-5 and mean per-class top-1 on the run's eval split."""
  batches, dataset, split = common.eval_set(run, args)
  found = common.predict(run, batches, keep=('label',))
  metrics = common.top_k_metrics(found['logits'], found['label'])
  metrics['mean_class_top1'] = mean_class_accuracy(
    found['logits'], found['label']
  )
  return {
    'dataset': dataset,
    'split': split,
    'init_from': run.config.model.init_from,
    'metrics': metrics,
  }


SUITES = {'transfer': transfer}
