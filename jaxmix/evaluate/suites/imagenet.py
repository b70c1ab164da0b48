"""ImageNet-family evaluation suites (see `jaxmix.evaluate.suites.registry`).

Every suite reads prepared TFDS datasets with the trainer's eval crop at
the run's image size (ImageNet-C: already centre-cropped to 224 by TFDS, so
only resized when the run's size differs) and returns fractions in [0, 1]:

- 'imagenet': top-1/top-5 on `imagenet2012` validation.
- 'real': ReaL top-1 on `imagenet2012_real` (empty ReaL sets excluded) and
  the original-label top-1 of all its images (the usual ImageNet top-1).
- 'v2': top-1/top-5 on the three `imagenet_v2` variants, each named.
- 'multilabel': Shankar et al.'s accuracy on `imagenet2012_multilabel`
  (problematic images excluded, unclear labels count as correct) and its
  class-balanced version.
- 'imagenet_a', 'imagenet_r': top-1 with the logits restricted to the 200
  classes of the whole split (`metrics.subset_tally`), also when a slice
  or `--limit` is evaluated.
- 'sketch': top-1/top-5 on `imagenet_sketch`.
- 'imagenet_c': accuracy per corruption and severity on
  `imagenet2012_corrupted`, mean accuracy and mCE (AlexNet-normalised).
"""

import numpy as np
import tensorflow_datasets as tfds

from jaxmix.data import eval_batches, tfds_source
from jaxmix.evaluate import imagenet_c as imagenet_c_lib
from jaxmix.evaluate import metrics as metrics_lib
from jaxmix.evaluate.runs import Run
from jaxmix.evaluate.suites import common
from jaxmix.evaluate.suites.common import SuiteArgs

V2_VARIANTS = ('matched-frequency', 'threshold-0.7', 'topimages')


def _check_classes(run: Run, args: SuiteArgs, name: str, split: str):
  """A ValueError unless the run's classes are the dataset's label space.

  Labels outside the run's classes would otherwise be silently wrong: never
  predicted, and dropped from ReaL / multi-label sets (which then look
  empty and are excluded).
  """
  found = tfds_source.checked_builder(
    name,
    args.split or split,
    data_dir=common.data_dir_for(run, args),
    manual_dir=args.manual_dir,
  )
  common.check_classes(
    run, found, name, ' (ImageNet-1k): evaluate a run trained on ImageNet-1k.'
  )


def _read(
  run: Run,
  args: SuiteArgs,
  name: str,
  split: str,
  extras: dict,
  *,
  crop_pct: float | None = None,
) -> dict[str, np.ndarray]:
  """Logits and `extras` of a split, read with the run's eval crop."""
  _check_classes(run, args, name, split)
  batches = eval_batches.batches(
    name,
    args.split or split,
    data_dir=common.data_dir_for(run, args),
    image_size=run.image_size,
    batch_size=common.batch_size_for(run, args),
    crop_pct=run.config.data.crop_pct if crop_pct is None else crop_pct,
    extras=extras,
    manual_dir=args.manual_dir,
    limit=args.limit,
  )
  return common.predict(run, batches, keep=tuple(extras))


def _label(key: str = 'label'):
  return {'label': lambda ex: ex[key]}


def _top_k_suite(name: str, split: str):
  def suite(run: Run, args: SuiteArgs) -> dict:
    found = _read(run, args, name, split, _label())
    return {
      'dataset': name,
      'split': args.split or split,
      'metrics': common.top_k_metrics(found['logits'], found['label']),
    }

  suite.__doc__ = f'Top-1/top-5 on TFDS {name} {split}.'
  return suite


def real(run: Run, args: SuiteArgs) -> dict:
  """ReaL top-1 (empty ReaL sets excluded) and the original top-1."""
  k = run.num_classes
  hot = eval_batches.multi_hot(k)
  found = _read(
    run,
    args,
    'imagenet2012_real',
    'validation',
    {
      'label': lambda ex: ex['original_label'],
      'real': lambda ex: hot(ex['real_label']),
    },
  )
  tally = metrics_lib.real_tally(found['logits'], found['real'])
  original = common.top_k_metrics(found['logits'], found['label'])
  return {
    'dataset': 'imagenet2012_real',
    'split': args.split or 'validation',
    'metrics': {
      'real_top1': tally.accuracy,
      'real_count': int(tally.total),
      'original_top1': original['top1'],
    },
  }


def v2(run: Run, args: SuiteArgs) -> dict:
  """Top-1/top-5 on every ImageNetV2 variant (columns named by variant)."""
  out = {}
  for variant in V2_VARIANTS:
    name = f'imagenet_v2/{variant}'
    found = _read(run, args, name, 'test', _label())
    for key, value in common.top_k_metrics(
      found['logits'], found['label']
    ).items():
      out[f'{variant}_{key}'] = value
  return {
    'dataset': 'imagenet_v2',
    'split': args.split or 'test',
    'metrics': out,
  }


def multilabel(run: Run, args: SuiteArgs) -> dict:
  """Shankar et al. multi-label accuracy (and class-balanced)."""
  hot = eval_batches.multi_hot(run.num_classes)
  found = _read(
    run,
    args,
    'imagenet2012_multilabel',
    'validation',
    {
      'label': lambda ex: ex['original_label'],
      'correct': lambda ex: hot(ex['correct_multi_labels']),
      'unclear': lambda ex: hot(ex['unclear_multi_labels']),
      'problematic': lambda ex: ex['is_problematic'],
    },
  )
  fields = (found['correct'], found['unclear'], found['problematic'])
  tally = metrics_lib.multilabel_tally(found['logits'], *fields)
  per_class = metrics_lib.multilabel_class_tally(
    found['logits'], *fields, found['label']
  )
  return {
    'dataset': 'imagenet2012_multilabel',
    'split': args.split or 'validation',
    'metrics': {
      'multilabel_top1': tally.accuracy,
      'multilabel_class_balanced': metrics_lib.class_balanced_accuracy(
        per_class
      ),
      'count': int(tally.total),
    },
  }


def split_labels(name: str, split: str, data_dir: str | None) -> np.ndarray:
  """All labels of a split, read without decoding a single image."""
  found = tfds_source.checked_builder(name, split, data_dir=data_dir)
  ds = found.as_dataset(
    split=split, decoders={'image': tfds.decode.SkipDecoding()}
  )
  labels = ds.map(lambda ex: ex['label']).batch(4096)
  return np.concatenate(list(tfds.as_numpy(labels)))


def _subset_suite(name: str):
  def suite(run: Run, args: SuiteArgs) -> dict:
    found = _read(run, args, name, 'test', _label())
    # The 200 classes are those of the whole split, also when a slice
    # ('test[:100]') or --limit is evaluated.
    whole = (args.split or 'test').split('[')[0]
    everything = split_labels(name, whole, common.data_dir_for(run, args))
    subset = metrics_lib.subset_from_labels(everything)
    top1 = metrics_lib.subset_tally(found['logits'], found['label'], subset)
    return {
      'dataset': name,
      'split': args.split or 'test',
      'metrics': {'top1': top1.accuracy, 'count': int(top1.total)},
    }

  suite.__doc__ = f'Top-1 on TFDS {name}, logits restricted to 200 classes.'
  return suite


def imagenet_c(run: Run, args: SuiteArgs) -> dict:
  """Accuracy per corruption x severity, mean accuracy and mCE."""
  accuracies = {}
  for corruption in imagenet_c_lib.IMAGENET_C_CORRUPTIONS:
    accuracies[corruption] = []
    for severity in range(1, imagenet_c_lib.NUM_SEVERITIES + 1):
      name = f'imagenet2012_corrupted/{corruption}_{severity}'
      # Already centre-cropped to 224: resize only, never crop again.
      found = _read(run, args, name, 'validation', _label(), crop_pct=1.0)
      top1 = metrics_lib.top_k_tally(found['logits'], found['label'])
      accuracies[corruption].append(top1.accuracy)
  errors = {c: [1.0 - a for a in v] for c, v in accuracies.items()}
  out = {
    'mean_accuracy': imagenet_c_lib.mean_corruption_accuracy(accuracies),
    'mce': imagenet_c_lib.mean_corruption_error(errors),
  }
  for corruption, values in accuracies.items():
    out[f'{corruption}_accuracy'] = float(np.mean(values))
  return {
    'dataset': 'imagenet2012_corrupted',
    'split': args.split or 'validation',
    'metrics': out,
    'curves': {
      c: {'severity': [1, 2, 3, 4, 5], 'top1': v} for c, v in accuracies.items()
    },
  }


SUITES = {
  'imagenet': _top_k_suite('imagenet2012', 'validation'),
  'real': real,
  'v2': v2,
  'multilabel': multilabel,
  'imagenet_a': _subset_suite('imagenet_a'),
  'imagenet_r': _subset_suite('imagenet_r'),
  'sketch': _top_k_suite('imagenet_sketch', 'test'),
  'imagenet_c': imagenet_c,
}
