"""Localisation suites: 'wsol' (CAM on a boxed dataset) and 'digits'.

Both read images with boxes, compute class activation maps of the run's
CNN (`localization.class_activation_map`) and read boxes off them at a
threshold, a fraction of each map's maximum. Ground-truth boxes are moved
into the frame of the evaluated centre crop first. Under `jax.distributed`
each process reads its own slice and computes the CAMs and boxes of its
rows; the per-image results are gathered on every process, which then all
compute the same metrics (process 0 draws).

Definitions (an image holds objects `(class_j, box_j)`; CUB has one, the
bird; digit_scenes 1-3 digits, `label` the largest one):

- 'top1': the prediction equals `label`.
- 'multilabel_top1': the prediction is the class of one of the objects
  (ReaL-style: any object in the image is a right answer).
- 'top1_loc': the prediction is the class of an object AND the box of the
  predicted class's CAM has IoU >= 0.5 with a box of an object of that
  class. For single-object data this is the ILSVRC top-1 localisation
  accuracy. Its CAM threshold 'top1_loc_threshold' is `args.cam_threshold`
  when given, else the one that maximises top-1 localisation on the
  dataset's validation split (0.2 when it has none); the result's
  'cam_threshold' says how it was chosen, and 'curves' holds the
  validation accuracy per threshold ('top1_loc_validation').
- 'max_box_acc': MaxBoxAcc (Choe et al. 2020): the CAM of `label` (ground
  truth known), the best CAM threshold, IoU >= 0.5 with a box of `label`'s
  objects; 'max_box_acc_threshold' is that threshold.
- 'digits' adds top-1 under centre occlusion of a square of half the image
  side ('occluded_half_top1') and the whole curve ('curves').

Pictures (PNG in `args.out` or `RUN/eval`): CAM overlays of the first
`args.num_pictures` images with predicted (red) and true (green) boxes, and
for 'digits' the occlusion curve.
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf

from jaxmix.evaluate import localization, plots, robustness, sources
from jaxmix.evaluate import suite_base as suites_lib
from jaxmix.evaluate.metrics import Tally
from jaxmix.evaluate.runs import Run
from jaxmix.evaluate.suite_base import SuiteArgs


def _mean_pixel(run) -> jax.Array:
  """The dataset's mean colour: zero after normalisation, the CutMix
  paper's "filling zeros" in a normalising pipeline."""
  return jnp.asarray(run.config.data.mean, jnp.float32)


def _cam_fn(run: Run):
  @jax.jit
  def cams(variables, images, classes):
    params, batch_stats = variables
    model = run.model_def.merge(params, batch_stats, train=False)
    return localization.class_activation_map(
      model, run.normalize(images), classes
    )

  return cams


def _true_boxes(batch: dict, size: int) -> tuple[list, list]:
  """Per image: pixel boxes `[n, 4]` and their classes `[n]`."""
  boxes = sources.crop_frame_boxes(
    np.asarray(batch['boxes'], np.float64), np.asarray(batch['crop_box'])
  )
  pixels = localization.pixel_boxes(boxes, height=size, width=size)
  out_boxes, out_labels = [], []
  for i, count in enumerate(np.asarray(batch['num_objects'])):
    out_boxes.append(pixels[i, :count])
    out_labels.append(np.asarray(batch['box_labels'])[i, :count])
  return out_boxes, out_labels


def _pred_ious(cams, pred, boxes, box_labels, thresholds) -> np.ndarray:
  """Best IoU of each CAM's box with a box of the predicted class: `[n, T]`.

  0 where the image holds no object of the predicted class.
  """
  out = np.zeros((len(pred), len(thresholds)))
  same = [b[lab == p] for p, b, lab in zip(pred, boxes, box_labels)]
  have = [i for i, b in enumerate(same) if len(b)]
  if have:
    out[have] = localization.best_ious(
      cams[have], [same[i] for i in have], thresholds
    )
  return out


def _batches(run: Run, args: SuiteArgs, name: str, split: str, extras):
  return sources.batches(
    name,
    split,
    data_dir=suites_lib.data_dir_for(run, args),
    image_size=run.image_size,
    batch_size=suites_lib.batch_size_for(run, args),
    crop_pct=run.config.data.crop_pct,
    extras=extras,
    manual_dir=args.manual_dir,
    limit=args.limit,
  )


def _rows(run: Run, cam_fn, batch: dict, loc_thresholds, *, gt_known: bool):
  """Per-image results of the rows this process fed: (rows, CAM details).

  CAMs and boxes are computed on this process's rows only; the small
  per-image results are what `gather_batches` collects from all processes.
  """
  to_device, local_rows = suites_lib.to_device, suites_lib.local_rows
  images = to_device(run, batch['image'])
  pred = local_rows(run, run.logits_fn(images)).argmax(-1).astype(np.int32)
  labels = np.asarray(batch['label'], np.int32)
  cams = local_rows(run, cam_fn(run.variables, images, to_device(run, pred)))
  boxes, box_labels = _true_boxes(batch, run.image_size)
  mask = np.asarray(batch['mask'], bool)
  keep = np.flatnonzero(mask)
  rows = {
    'mask': mask,
    'index': np.asarray(batch['index']),
    'pred': pred,
    'label': labels,
    'multilabel': np.array([p in b for p, b in zip(pred, box_labels)]),
    'loc_iou': np.zeros((len(mask), len(loc_thresholds))),
  }
  pick = [[x[i] for i in keep] for x in (boxes, box_labels)]
  rows['loc_iou'][keep] = _pred_ious(
    cams[keep], pred[keep], *pick, loc_thresholds
  )
  if gt_known:  # MaxBoxAcc: the true class's CAM at every threshold
    true_cams = local_rows(
      run, cam_fn(run.variables, images, to_device(run, labels))
    )
    main = [boxes[i][box_labels[i] == labels[i]] for i in keep]
    thresholds = localization.CAM_THRESHOLDS
    rows['box_iou'] = np.zeros((len(mask), len(thresholds)))
    rows['box_iou'][keep] = localization.best_ious(
      true_cams[keep], main, thresholds
    )
  shown = [
    (batch['image'][i], cams[i], boxes[i], f'y={labels[i]} p={pred[i]}')
    for i in keep
  ]
  return rows, shown


def choose_cam_threshold(
  run: Run, args: SuiteArgs, name: str, extras: dict, split: str, cam_fn=None
) -> dict:
  """The CAM threshold of top-1 localisation, and how it was chosen.

  `args.cam_threshold` when set; otherwise the threshold of
  `localization.CAM_THRESHOLDS` with the best top-1 localisation on the
  dataset's 'validation' split (the lowest of ties), as WSOL protocols
  choose it, or `DEFAULT_CAM_THRESHOLD` without a validation split.

  Args:
    run, args: the run and the suite's options (`args.limit` applies).
    name, extras: the boxed TFDS dataset and its extras (`evaluate_boxes`).
    split: the evaluated split (its builder says whether 'validation'
      exists).
    cam_fn: a jitted CAM function to reuse (`_cam_fn(run)` by default).

  Returns:
    {'value', 'chosen_on': 'flag' | 'validation' | 'default'}, plus
    'validation_top1_loc' (at the chosen threshold) and 'curve'
    ({'threshold': [T], 'top1_loc': [T]}) when chosen on validation.
  """
  if args.cam_threshold is not None:
    return {'value': float(args.cam_threshold), 'chosen_on': 'flag'}
  data_dir = suites_lib.data_dir_for(run, args)
  found = sources.checked_builder(name, split, data_dir=data_dir)
  if 'validation' not in found.info.splits:
    return {'value': suites_lib.DEFAULT_CAM_THRESHOLD, 'chosen_on': 'default'}
  thresholds, cam_fn = localization.CAM_THRESHOLDS, cam_fn or _cam_fn(run)
  parts = [
    _rows(run, cam_fn, batch, thresholds, gt_known=False)[0]
    for batch in _batches(run, args, name, 'validation', extras)
  ]
  found = suites_lib.gather_batches(parts)
  if not len(found['pred']):
    raise ValueError(f'{name} split validation is empty.')
  accuracy = np.mean(found['loc_iou'] >= 0.5, axis=0)
  best = int(np.argmax(accuracy))
  return {
    'value': float(thresholds[best]),
    'chosen_on': 'validation',
    'validation_top1_loc': float(accuracy[best]),
    'curve': {'threshold': thresholds.tolist(), 'top1_loc': accuracy.tolist()},
  }


def _occlusion_fn(run: Run, sizes: np.ndarray):
  """fn(host batch) -> `Tally` of top-1 under centre occlusion per size."""
  tally = jax.jit(
    lambda v, x, y, m: robustness.occlusion_tally(
      functools.partial(run.apply, v),
      x,
      y,
      sizes=sizes,
      mode='center',
      mask=m,
      normalize_fn=run.normalize,
      fill_value=_mean_pixel(run),
    )
  )

  def fn(batch: dict) -> Tally:
    inputs = [
      suites_lib.to_device(run, np.asarray(batch[k], t))
      for k, t in (('image', np.float32), ('label', np.int32), ('mask', bool))
    ]
    return Tally(*suites_lib.fetch(tally(run.variables, *inputs)))

  return fn


def evaluate_boxes(
  run: Run,
  args: SuiteArgs,
  name: str,
  split: str,
  extras: dict,
  *,
  occlusion: bool,
) -> dict:
  """The shared loop of 'wsol' and 'digits' (see the module docstring)."""
  size, cam_fn = run.image_size, _cam_fn(run)
  chosen = choose_cam_threshold(run, args, name, extras, split, cam_fn)
  threshold = chosen['value']
  sizes = np.unique(
    np.rint(np.asarray(args.occlusion_sizes) * size).astype(np.int32)
  )
  sizes = np.union1d(sizes, [size // 2]).astype(np.int32)
  occlude = _occlusion_fn(run, sizes)
  parts, occluded, shown = [], None, []
  for batch in _batches(run, args, name, split, extras):
    rows, details = _rows(run, cam_fn, batch, [threshold], gt_known=True)
    parts.append(rows)
    # Process 0's slice starts the split: its first images are pictured.
    shown += details[: args.num_pictures - len(shown)]
    if occlusion:
      found = occlude(batch)
      occluded = found if occluded is None else occluded.plus(found)
  rows = suites_lib.gather_batches(parts)
  if not len(rows['pred']):
    raise ValueError(f'{name} split {split} is empty.')
  box_acc = np.mean(rows['box_iou'] >= 0.5, axis=0)
  best = int(np.argmax(box_acc))
  found = {
    'top1': float(np.mean(rows['pred'] == rows['label'])),
    'multilabel_top1': float(np.mean(rows['multilabel'])),
    'top1_loc': float(np.mean(rows['loc_iou'][:, 0] >= 0.5)),
    'top1_loc_threshold': threshold,
    'max_box_acc': float(box_acc[best]),
    'max_box_acc_threshold': float(localization.CAM_THRESHOLDS[best]),
    'count': len(rows['pred']),
  }
  result = {
    'dataset': name,
    'split': split,
    'metrics': found,
    'cam_threshold': {k: v for k, v in chosen.items() if k != 'curve'},
    'curves': {},
    'pictures': [],
    '_cams': None,
  }
  if 'curve' in chosen:
    result['curves']['top1_loc_validation'] = chosen['curve']
  if occlusion:
    rates = occluded.rates()
    found['occluded_half_top1'] = float(rates[sizes.tolist().index(size // 2)])
    result['curves']['center'] = {
      'size': sizes.tolist(),
      'top1': rates.tolist(),
    }
  if suites_lib.is_primary() and shown:
    _draw(
      run, args, result, shown, threshold, 'digits' if occlusion else 'wsol'
    )
  return result


def _draw(run, args, result, shown, threshold, suite) -> None:
  """Process 0: the CAM grid (and occlusion curve) of a result; sets
  'pictures' and '_cams' (for the grids of several runs)."""
  images, cams, true_boxes, titles = (list(x) for x in zip(*shown))
  cams = np.stack(cams)
  pictures = {
    'images': np.stack(images),
    'cams': cams,
    'boxes': localization.boxes_from_cams(cams, threshold),
    'true_boxes': true_boxes,
    'titles': titles,
  }
  out = args.out or os.path.join(run.workdir, 'eval')
  result['_cams'] = pictures
  result['pictures'].append(
    plots.plot_cam_grid(
      pictures['images'],
      {run.name: cams},
      os.path.join(out, f'{suite}_cams.png'),
      boxes_by_run={run.name: pictures['boxes']},
      true_boxes=true_boxes,
      row_titles=titles,
    )
  )
  if 'center' in result['curves']:
    curve = result['curves']['center']
    result['pictures'].append(
      plots.plot_occlusion_curves(
        curve['size'],
        {run.name: {'center': curve['top1']}},
        os.path.join(out, f'{suite}_occlusion.png'),
      )
    )


def digits(run: Run, args: SuiteArgs) -> dict:
  """The digit_scenes table row (see the module docstring)."""
  name = args.dataset
  if name is None:
    own = run.config.data.dataset
    name = own if own.startswith('digit_scenes') else 'digit_scenes'
  extras = {
    'label': lambda ex: ex['label'],
    'boxes': lambda ex: ex['objects']['bbox'],
    'box_labels': lambda ex: ex['objects']['label'],
    'num_objects': lambda ex: ex['num_objects'],
  }
  return evaluate_boxes(
    run, args, name, args.split or 'test', extras, occlusion=True
  )


def wsol(run: Run, args: SuiteArgs) -> dict:
  """CAM localisation on a boxed dataset: CUB-200-2011 by default."""
  name = args.dataset or 'caltech_birds2011'
  if name.startswith('digit_scenes'):
    return digits(run, args)  # the same protocol, several objects
  extras = {
    'label': lambda ex: ex['label'],
    'boxes': lambda ex: ex['bbox'][None],
    'box_labels': lambda ex: ex['label'][None],
    'num_objects': lambda ex: tf.constant(1, tf.int32),
  }
  return evaluate_boxes(
    run, args, name, args.split or 'test', extras, occlusion=False
  )


SUITES = {'wsol': wsol, 'digits': digits}
