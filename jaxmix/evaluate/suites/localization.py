"""Localisation suites: 'wsol' (CAM on a boxed dataset) and 'digits'.

Both read images with boxes, compute class activation maps of the run's
CNN and read boxes off them at a threshold, a fraction of each map's
maximum (`jaxmix.evaluate.cam_boxes`); the run must predict the dataset's
classes (a ValueError otherwise). Under `jax.distributed`
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
import numpy as np
import tensorflow as tf

from jaxmix.data import tfds_source
from jaxmix.evaluate import (
  cam_boxes,
  localization,
  multihost,
  plots,
  robustness,
)
from jaxmix.evaluate.cam_boxes import choose_cam_threshold
from jaxmix.evaluate.metrics import Tally
from jaxmix.evaluate.runs import Run, results_dir
from jaxmix.evaluate.suites import common
from jaxmix.evaluate.suites.common import SuiteArgs


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
      fill_value=common.mean_pixel(run),
    )
  )

  def fn(batch: dict) -> Tally:
    inputs = multihost.device_batch(run, batch)
    return Tally(*multihost.fetch(tally(run.variables, *inputs)))

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
  """The shared loop of 'wsol' and 'digits' (see the module docstring).

  Raises:
    ValueError: the dataset is not prepared, or its class features do not
      have the run's number of classes (labels the run lacks would never
      be predicted, and their CAMs would be another class's).
  """
  found = tfds_source.checked_builder(
    name,
    split,
    data_dir=common.data_dir_for(run, args),
    manual_dir=args.manual_dir,
  )
  common.check_classes(run, found, name)
  size, cams_of = run.image_size, cam_boxes.cam_fn(run)
  chosen = choose_cam_threshold(run, args, name, extras, split, cams_of)
  threshold = chosen['value']
  sizes = np.unique(
    np.rint(np.asarray(args.occlusion_sizes) * size).astype(np.int32)
  )
  sizes = np.union1d(sizes, [size // 2]).astype(np.int32)
  occlude = _occlusion_fn(run, sizes)
  parts, occluded, shown = [], None, []
  for batch in cam_boxes.boxed_batches(run, args, name, split, extras):
    rows, details = cam_boxes.image_rows(
      run, cams_of, batch, [threshold], gt_known=True
    )
    parts.append(rows)
    # Process 0's slice starts the split: its first images are pictured.
    shown += details[: args.num_pictures - len(shown)]
    if occlusion:
      found = occlude(batch)
      occluded = found if occluded is None else occluded.plus(found)
  rows = multihost.gather_batches(parts)
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
  if multihost.is_primary() and shown:
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
  out = os.fspath(results_dir(run.workdir, args.out))
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


# digit_scenes' features as `evaluate_boxes` reads them (several objects).
DIGIT_EXTRAS = {
  'label': lambda ex: ex['label'],
  'boxes': lambda ex: ex['objects']['bbox'],
  'box_labels': lambda ex: ex['objects']['label'],
  'num_objects': lambda ex: ex['num_objects'],
}


def digits(run: Run, args: SuiteArgs) -> dict:
  """The digit_scenes table row (see the module docstring)."""
  name = args.dataset
  if name is None:
    own = run.config.data.dataset
    name = own if own.startswith('digit_scenes') else 'digit_scenes'
  return evaluate_boxes(
    run, args, name, args.split or 'test', DIGIT_EXTRAS, occlusion=True
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
