"""Localisation suites: 'wsol' (CAM on a boxed dataset) and 'digits'.

Both read images with boxes, compute class activation maps of the run's
CNN (`localization.class_activation_map`) and read boxes off them at
`args.cam_threshold` of each map's maximum. Ground-truth boxes are moved
into the frame of the evaluated centre crop first.

Definitions (an image holds objects `(class_j, box_j)`; CUB has one, the
bird; digit_scenes 1-3 digits, `label` the largest one):

- 'top1': the prediction equals `label`.
- 'multilabel_top1': the prediction is the class of one of the objects
  (ReaL-style: any object in the image is a right answer).
- 'top1_loc': the prediction is the class of an object AND the box of the
  predicted class's CAM has IoU >= 0.5 with a box of an object of that
  class. For single-object data this is the ILSVRC top-1 localisation
  accuracy.
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


def _loc_hit(pred_box, pred, boxes, labels, threshold=0.5) -> bool:
  same = boxes[labels == pred]
  if not len(same):
    return False
  return bool(localization.iou(pred_box[None], same).max() >= threshold)


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
  size = run.image_size
  batches = sources.batches(
    name,
    split,
    data_dir=suites_lib.data_dir_for(run, args),
    image_size=size,
    batch_size=suites_lib.batch_size_for(run, args),
    crop_pct=run.config.data.crop_pct,
    extras=extras,
    manual_dir=args.manual_dir,
    limit=args.limit,
  )
  cam_fn = _cam_fn(run)
  sizes = np.unique(
    np.rint(np.asarray(args.occlusion_sizes) * size).astype(np.int32)
  )
  sizes = np.union1d(sizes, [size // 2]).astype(np.int32)
  occlude = jax.jit(
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
  thresholds = localization.CAM_THRESHOLDS
  counts = {'top1': 0, 'multilabel_top1': 0, 'top1_loc': 0, 'count': 0}
  ious, occluded, pictures = [], None, None
  for batch in batches:
    mask = np.asarray(batch['mask'])
    images = suites_lib.to_device(run, batch['image'])
    labels = np.asarray(batch['label'], np.int32)
    pred = np.asarray(run.logits_fn(images)).argmax(-1)
    pred_cams = np.asarray(cam_fn(run.variables, images, pred))
    true_cams = np.asarray(cam_fn(run.variables, images, labels))
    boxes, box_labels = _true_boxes(batch, size)
    pred_boxes = localization.boxes_from_cams(pred_cams, args.cam_threshold)
    if occlusion:
      pixels = np.asarray(batch['image'], np.float32)
      found = jax.device_get(occlude(run.variables, pixels, labels, mask))
      found = Tally(*found)
      occluded = found if occluded is None else occluded.plus(found)
    for i in np.flatnonzero(mask):
      counts['count'] += 1
      counts['top1'] += int(pred[i] == labels[i])
      counts['multilabel_top1'] += int(pred[i] in box_labels[i])
      counts['top1_loc'] += _loc_hit(
        pred_boxes[i], pred[i], boxes[i], box_labels[i]
      )
    keep = np.flatnonzero(mask)
    main = [boxes[i][box_labels[i] == labels[i]] for i in keep]
    ious.append(localization.best_ious(true_cams[keep], main, thresholds))
    if pictures is None:
      n = min(args.num_pictures, len(keep))
      pictures = {
        'images': np.asarray(batch['image'])[keep[:n]],
        'cams': pred_cams[keep[:n]],
        'boxes': pred_boxes[keep[:n]],
        'true_boxes': [boxes[i] for i in keep[:n]],
        'titles': [f'y={labels[i]} p={pred[i]}' for i in keep[:n]],
      }
  if not counts['count']:
    raise ValueError(f'{name} split {split} is empty.')
  box_acc = np.mean(np.concatenate(ious) >= 0.5, axis=0)
  best = int(np.argmax(box_acc))
  total = counts.pop('count')
  found = {k: v / total for k, v in counts.items()}
  found.update(
    max_box_acc=float(box_acc[best]),
    max_box_acc_threshold=float(thresholds[best]),
    count=total,
  )
  result = {
    'dataset': name,
    'split': split,
    'metrics': found,
    '_cams': pictures,
  }
  out = args.out or os.path.join(run.workdir, 'eval')
  suite = 'digits' if occlusion else 'wsol'
  result['pictures'] = [
    plots.plot_cam_grid(
      pictures['images'],
      {run.name: pictures['cams']},
      os.path.join(out, f'{suite}_cams.png'),
      boxes_by_run={run.name: pictures['boxes']},
      true_boxes=pictures['true_boxes'],
      row_titles=pictures['titles'],
    )
  ]
  if occlusion:
    rates = occluded.rates()
    found['occluded_half_top1'] = float(rates[sizes.tolist().index(size // 2)])
    curve = {'size': sizes.tolist(), 'top1': rates.tolist()}
    result['curves'] = {'center': curve}
    result['pictures'].append(
      plots.plot_occlusion_curves(
        sizes.tolist(),
        {run.name: {'center': rates.tolist()}},
        os.path.join(out, 'digits_occlusion.png'),
      )
    )
  return result


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


def combined_cam_grid(results: list[dict], path: str) -> str | None:
  """One CAM grid, a column per run, from 'wsol'/'digits' results.

  Runs whose images differ in shape from the first run's are left out;
  returns None when fewer than two runs remain.
  """
  found = [r for r in results if r.get('_cams') is not None]
  if not found:
    return None
  first = found[0]['_cams']
  same = [
    r for r in found if r['_cams']['images'].shape == first['images'].shape
  ]
  if len(same) < 2:
    return None
  names = [f'{r["run"]} ({r["method"]})' for r in same]
  return plots.plot_cam_grid(
    first['images'],
    {n: r['_cams']['cams'] for n, r in zip(names, same)},
    path,
    boxes_by_run={n: r['_cams']['boxes'] for n, r in zip(names, same)},
    true_boxes=first['true_boxes'],
    row_titles=first['titles'],
  )


def plot_run_cams(
  run_dirs: list[str],
  path: str,
  *,
  dataset: str = 'digit_scenes',
  split: str = 'test',
  data_dir: str | None = None,
  num_images: int = 8,
) -> str:
  """CAMs of several runs side by side on the first images of a split.

  Args:
    run_dirs: run directories (same image size).
    path: the PNG to write.
    dataset: a boxed TFDS dataset: 'digit_scenes[/config]' or
      'caltech_birds2011'.
    split: its split.
    data_dir: TFDS data_dir.
    num_images: rows of the grid.

  Returns:
    `path`.
  """
  import tempfile

  from jaxmix.evaluate import runs as runs_lib

  results = []
  with tempfile.TemporaryDirectory() as scratch:
    args = SuiteArgs(
      data_dir=data_dir,
      split=split,
      dataset=dataset,
      limit=num_images,
      num_pictures=num_images,
      out=scratch,
    )
    for run_dir in run_dirs:
      run = runs_lib.load_run(run_dir)
      result = wsol(run, args)
      result.update(run=run.name, method=run.method)
      results.append(result)
  if len(results) == 1:
    only = results[0]
    names = {f'{only["run"]} ({only["method"]})': only['_cams']}
    return plots.plot_cam_grid(
      only['_cams']['images'],
      {n: c['cams'] for n, c in names.items()},
      path,
      boxes_by_run={n: c['boxes'] for n, c in names.items()},
      true_boxes=only['_cams']['true_boxes'],
      row_titles=only['_cams']['titles'],
    )
  combined = combined_cam_grid(results, path)
  if combined is None:
    raise ValueError(
      f'The runs {run_dirs} evaluate images of different sizes; their CAMs '
      'cannot share a grid.'
    )
  return combined
