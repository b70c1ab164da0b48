"""The robustness suites on a run's own eval set (occlusion, FGSM, ...).

Each suite is `fn(run, args) -> dict` (see `jaxmix.evaluate.suites.registry`) over
the run's eval split (`jaxmix.evaluate.suites.common.eval_set`), with the pure measures of
`jaxmix.evaluate.robustness` and `jaxmix.evaluate.ood`:

- 'occlusion': top-1 under centre and boundary occlusion vs the hole side.
- 'in_between': top-1 on Mixup-ed / CutMix-ed pairs at fixed lambdas.
- 'fgsm': top-1 under single-step FGSM per epsilon.
- 'ood': max-softmax detection of `args.dataset` against the eval split.

Multi-host: every process tallies its own rows and gets the sums of all
(`multihost.fetch`); only process 0 draws the pictures. The in-between suite
pairs examples by their position in the split, so its numbers too are
those of one process.
"""

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.evaluate import metrics as metrics_lib
from jaxmix.evaluate import multihost, plots, robustness
from jaxmix.evaluate import ood as ood_lib
from jaxmix.evaluate.runs import Run, results_dir
from jaxmix.evaluate.suites.common import (
  SuiteArgs,
  batch_size_for,
  data_dir_for,
  eval_set,
  mean_pixel,
  predict,
)


def _picture(run: Run, args: SuiteArgs, name: str) -> str:
  # plots write through the path layer, which makes the folder (URLs too).
  return os.fspath(results_dir(run.workdir, args.out) / f'{name}.png')


def _summed(fn, run: Run, args: SuiteArgs, align: int = 1):
  """Sums `fn(run.variables, *device batch) -> pytree of counts` over the
  run's eval set (the counts of all processes' rows); with `align` 2 the
  device batch ends with the split 'index' and pairs `(2k, 2k + 1)` are
  consecutive rows of one process (`eval_batches.batches`)."""
  batches, dataset, split = eval_set(run, args, align)
  total = None
  for batch in batches:
    device = multihost.device_batch(run, batch, index=align > 1)
    counts = multihost.fetch(fn(run.variables, *device))
    total = counts if total is None else jax.tree.map(np.add, total, counts)
  if total is None:
    raise ValueError(f'{dataset} split {split} is empty.')
  return total, dataset, split


def occlusion(run: Run, args: SuiteArgs) -> dict:
  """Top-1 under centre and boundary occlusion vs the hole side (+ PNG)."""
  sizes = np.unique(
    np.rint(np.asarray(args.occlusion_sizes) * run.image_size).astype(int)
  )

  @functools.partial(jax.jit, static_argnames='mode')
  def tally(variables, images, labels, mask, *, mode):
    return robustness.occlusion_tally(
      functools.partial(run.apply, variables),
      images,
      labels,
      sizes=sizes,
      mode=mode,
      mask=mask,
      normalize_fn=run.normalize,
      fill_value=mean_pixel(run),
    )

  def fn(*args_):
    return {m: tally(*args_, mode=m) for m in robustness.OCCLUSION_MODES}

  total, dataset, split = _summed(fn, run, args)
  result = {'dataset': dataset, 'split': split, 'metrics': {}, 'curves': {}}
  for mode, counts in total.items():
    rates = metrics_lib.Tally(*counts).rates()
    result['curves'][mode] = {'size': sizes.tolist(), 'top1': rates.tolist()}
    half = int(np.argmin(np.abs(sizes - run.image_size / 2)))
    result['metrics'][f'{mode}_half'] = float(rates[half])
  curves = {m: c['top1'] for m, c in result['curves'].items()}
  result['pictures'] = []
  if multihost.is_primary():
    result['pictures'].append(
      plots.plot_occlusion_curves(
        sizes.tolist(), {run.name: curves}, _picture(run, args, 'occlusion')
      )
    )
  return result


def in_between(run: Run, args: SuiteArgs) -> dict:
  """Accuracy on Mixup-ed / CutMix-ed eval images at fixed lambdas.

  Examples `2k` and `2k + 1` of the eval split are mixed with each other
  (both ways); pairs of one class, and the last example of an odd split,
  are left out. The CutMix boxes of a pair are drawn from
  `fold_in(key(args.seed), k)`, so the numbers do not depend on the batch
  size or the process count.
  """
  weights = np.asarray(args.lambdas, np.float32)

  def pair_tally(variables, images, labels, mask, pair, *, method):
    """Counts of one pair: images `[2, S, S, 3]`, its split index `pair`."""
    key = jax.random.fold_in(jax.random.key(args.seed), pair)
    return robustness.in_between_tally(
      functools.partial(run.apply, variables),
      images,
      labels,
      jnp.array([1, 0]),
      weights=weights,
      method=method,
      key=key,
      mask=mask,
      normalize_fn=run.normalize,
    )

  @functools.partial(jax.jit, static_argnames='method')
  def tally(variables, images, labels, mask, index, *, method):
    # Rows (2j, 2j + 1) of a batch are examples (2k, 2k + 1) or padding.
    pairs = lambda x: x.reshape(-1, 2, *x.shape[1:])  # noqa: E731
    counts = jax.vmap(functools.partial(pair_tally, variables, method=method))(
      pairs(images), pairs(labels), pairs(mask), jnp.maximum(index[::2], 0) // 2
    )
    return jax.tree.map(lambda c: c.sum(0), counts)

  def fn(variables, *batch):
    return {
      m: tally(variables, *batch, method=m)
      for m in robustness.IN_BETWEEN_METHODS
    }

  total, dataset, split = _summed(fn, run, args, align=2)
  result = {'dataset': dataset, 'split': split, 'metrics': {}, 'curves': {}}
  for method, by_rule in total.items():
    curve = {'lambda': weights.tolist()}
    for rule, counts in by_rule.items():
      curve[rule] = metrics_lib.Tally(*counts).rates().tolist()
    result['curves'][method] = curve
    result['metrics'][f'{method}_either_mean'] = float(
      np.nanmean(curve['either'])
    )
  result['pictures'] = []
  if multihost.is_primary():
    result['pictures'].append(
      plots.plot_curves(
        weights.tolist(),
        {run.name: {m: c['either'] for m, c in result['curves'].items()}},
        _picture(run, args, 'in_between'),
        xlabel='lambda (share of the image itself)',
        ylabel='top-1 (either class)',
      )
    )
  return result


def fgsm(run: Run, args: SuiteArgs) -> dict:
  """Top-1 under single-step FGSM in pixel space, per epsilon."""
  epsilons = np.asarray(args.epsilons, np.float32)

  @jax.jit
  def tally(variables, images, labels, mask):
    return robustness.fgsm_tally(
      functools.partial(run.apply, variables),
      images,
      labels,
      epsilons=epsilons,
      mask=mask,
      normalize_fn=run.normalize,
    )

  total, dataset, split = _summed(tally, run, args)
  rates = metrics_lib.Tally(*total).rates()
  pictures = []
  if multihost.is_primary():
    pictures.append(
      plots.plot_curves(
        epsilons.tolist(),
        {run.name: {'fgsm': rates.tolist()}},
        _picture(run, args, 'fgsm'),
        xlabel='epsilon (pixels, 0..255)',
        ylabel='top-1 accuracy',
      )
    )
  return {
    'pictures': pictures,
    'dataset': dataset,
    'split': split,
    'metrics': {f'eps_{e:g}': float(r) for e, r in zip(epsilons, rates)},
    'curves': {'fgsm': {'epsilon': epsilons.tolist(), 'top1': rates.tolist()}},
  }


def ood(run: Run, args: SuiteArgs) -> dict:
  """Max-softmax OOD detection: the run's eval set vs `args.dataset`.

  In-distribution: the run's own eval split; out-of-distribution:
  `args.dataset`, split `args.split` ('test' by default). Metrics
  (`jaxmix.evaluate.ood.ood_metrics`): TNR at TPR 95 %, AUROC, detection
  accuracy.
  """
  if not args.dataset:
    raise ValueError(
      "The 'ood' suite needs --dataset, the out-of-distribution TFDS "
      "dataset (e.g. 'lsun' or 'imagenet_resized/32x32')."
    )
  from jaxmix.data import eval_batches

  # --split names the OOD split; the run's own eval split is in-distribution.
  batches, dataset, split = eval_set(run, dataclasses.replace(args, split=None))
  inside = predict(run, batches)['logits']
  outside = predict(
    run,
    eval_batches.batches(
      args.dataset,
      args.split or 'test',
      data_dir=data_dir_for(run, args),
      image_size=run.image_size,
      batch_size=batch_size_for(run, args),
      crop_pct=run.config.data.crop_pct,
      manual_dir=args.manual_dir,
      limit=args.limit,
    ),
  )['logits']
  scores = [
    np.asarray(ood_lib.max_softmax_scores(x)) for x in (inside, outside)
  ]
  found = ood_lib.ood_metrics(*scores)
  return {
    'dataset': dataset,
    'split': split,
    'ood_dataset': args.dataset,
    'ood_split': args.split or 'test',
    'metrics': {k: float(v) for k, v in found.items()},
  }


SUITES = {
  'occlusion': occlusion,
  'in_between': in_between,
  'fgsm': fgsm,
  'ood': ood,
}
