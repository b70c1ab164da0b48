"""Per-image CAM boxes of a boxed dataset, and the CAM threshold choice.

The localisation suites ('wsol', 'digits' in `jaxmix.evaluate.suites.localization`)
read images with boxes, compute class activation maps of the run's CNN
(`localization.class_activation_map`) and read boxes off them at a
threshold, a fraction of each map's maximum. Ground-truth boxes are moved
into the frame of the evaluated centre crop first.

`image_rows` does this for one host batch: CAMs and boxes are computed on
the rows this process fed, and the small per-image results (prediction,
IoUs per threshold) are what `multihost.gather_batches` collects from all
processes. `choose_cam_threshold` picks top-1 localisation's threshold on
the dataset's validation split.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.data import eval_batches, tfds_source
from jaxmix.evaluate import localization, multihost
from jaxmix.evaluate.runs import Run
from jaxmix.evaluate.suites import common as suite_common
from jaxmix.evaluate.suites.common import SuiteArgs


def cam_fn(run: Run):
  """Jitted fn(variables, uint8 images `[B, S, S, 3]`, labels `[B]` | None).

  One device call per batch: the run's logits and prediction (argmax on
  device) and, from the same features, the CAMs of the prediction and, when
  `labels` is given, of the labels. The model's forward pass and
  `features` share their layers, which XLA computes once.

  Returns:
    fn -> {'pred': int32 `[B]`, 'pred_cams': `[B, S, S]`, 'true_cams':
    `[B, S, S]` (only with labels)}.
  """

  @jax.jit
  def cams(variables, images, labels):
    params, batch_stats = variables
    model = run.model_def.merge(params, batch_stats, train=False)
    inputs = run.normalize(images)
    localization.check_cam_model(model)
    features = model.features(inputs).astype(jnp.float32)
    logits = model(inputs)
    pred = jnp.argmax(logits.astype(jnp.float32), axis=-1).astype(jnp.int32)
    size, kernel = images.shape[1:3], model.head.kernel[...]
    out = {
      'pred': pred,
      'pred_cams': localization.maps_from_features(
        features, kernel, pred, size
      ),
    }
    if labels is not None:
      out['true_cams'] = localization.maps_from_features(
        features, kernel, labels, size
      )
    return out

  return cams


def crop_frame_boxes(boxes: np.ndarray, crop_box: np.ndarray) -> np.ndarray:
  """Normalised boxes `[..., n, 4]` of the original image -> crop frame.

  Args:
    boxes: float `[B, n, 4]` (ymin, xmin, ymax, xmax) in the original image.
    crop_box: float `[B, 4]`, the eval crop in the original image.

  Returns:
    float `[B, n, 4]` in the crop, clipped to [0, 1].
  """
  low = np.concatenate([crop_box[:, :2], crop_box[:, :2]], -1)[:, None]
  span = np.concatenate([crop_box[:, 2:] - crop_box[:, :2]] * 2, -1)[:, None]
  span = np.where(span > 0, span, 1.0)  # padded rows have empty crops
  return np.clip((boxes - low) / span, 0.0, 1.0)


def true_boxes(batch: dict, size: int) -> tuple[list, list]:
  """Per image: pixel boxes `[n, 4]` and their classes `[n]`."""
  boxes = crop_frame_boxes(
    np.asarray(batch['boxes'], np.float64), np.asarray(batch['crop_box'])
  )
  pixels = localization.pixel_boxes(boxes, height=size, width=size)
  out_boxes, out_labels = [], []
  for i, count in enumerate(np.asarray(batch['num_objects'])):
    out_boxes.append(pixels[i, :count])
    out_labels.append(np.asarray(batch['box_labels'])[i, :count])
  return out_boxes, out_labels


def pred_ious(cams, pred, boxes, box_labels, thresholds) -> np.ndarray:
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


def boxed_batches(run: Run, args: SuiteArgs, name: str, split: str, extras):
  """This process's padded batches of a boxed split (`eval_batches.batches`)."""
  return eval_batches.batches(
    name,
    split,
    data_dir=suite_common.data_dir_for(run, args),
    image_size=run.image_size,
    batch_size=suite_common.batch_size_for(run, args),
    crop_pct=run.config.data.crop_pct,
    extras=extras,
    manual_dir=args.manual_dir,
    limit=args.limit,
  )


def image_rows(run: Run, cams_of, batch: dict, loc_thresholds, *, gt_known):
  """Per-image results of the rows this process fed: (rows, CAM details).

  Args:
    run: the run.
    cams_of: `cam_fn(run)`.
    batch: a host batch of `boxed_batches` ('image', 'label', 'boxes',
      'box_labels', 'num_objects', 'crop_box', 'index', 'mask').
    loc_thresholds: CAM thresholds `[T]` of top-1 localisation.
    gt_known: also the IoUs of the true class's CAM at every threshold of
      `localization.CAM_THRESHOLDS` ('box_iou', for MaxBoxAcc).

  Returns:
    rows: {'mask', 'index', 'pred', 'label', 'multilabel', 'loc_iou'
      `[b, T]`, ('box_iou')}, for `gather_batches`; details: per real row
      (image, CAM of the prediction, true boxes, title), for pictures.
  """
  to_device, local_rows = multihost.to_device, multihost.local_rows
  labels = np.asarray(batch['label'], np.int32)
  found = cams_of(
    run.variables,
    to_device(run, batch['image']),
    to_device(run, labels) if gt_known else None,
  )
  found = {k: local_rows(run, v) for k, v in found.items()}
  pred, cams = found['pred'], found['pred_cams']
  boxes, box_labels = true_boxes(batch, run.image_size)
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
  rows['loc_iou'][keep] = pred_ious(
    cams[keep], pred[keep], *pick, loc_thresholds
  )
  if gt_known:  # MaxBoxAcc: the true class's CAM at every threshold
    true_cams = found['true_cams']
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
  run: Run, args: SuiteArgs, name: str, extras: dict, split: str, cams_of=None
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
    cams_of: a jitted CAM function to reuse (`cam_fn(run)` by default).

  Returns:
    {'value', 'chosen_on': 'flag' | 'validation' | 'default'}, plus
    'validation_top1_loc' (at the chosen threshold) and 'curve'
    ({'threshold': [T], 'top1_loc': [T]}) when chosen on validation.
  """
  if args.cam_threshold is not None:
    return {'value': float(args.cam_threshold), 'chosen_on': 'flag'}
  data_dir = suite_common.data_dir_for(run, args)
  found = tfds_source.checked_builder(name, split, data_dir=data_dir)
  if 'validation' not in found.info.splits:
    return {'value': suite_common.DEFAULT_CAM_THRESHOLD, 'chosen_on': 'default'}
  thresholds, cams_of = localization.CAM_THRESHOLDS, cams_of or cam_fn(run)
  parts = [
    image_rows(run, cams_of, batch, thresholds, gt_known=False)[0]
    for batch in boxed_batches(run, args, name, 'validation', extras)
  ]
  found = multihost.gather_batches(parts)
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
