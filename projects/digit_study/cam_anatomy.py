"""Why a run's CAM boxes miss: where its class activation maps put their mass.

CAM top-1 localisation counts a box right at IoU >= 0.5, so a run can lose
it in two opposite ways: maps too diffuse (the box, read at the threshold,
grows past the object) or too peaked (the box shrinks to a part of it).
These measurements tell the two apart, on a boxed dataset's images with the
true class's CAM (GT-known, `localization.class_activation_map`'s maps,
min-max normalised per image):

- `mass_in_box`: the share of the map's mass inside the union of the true
  boxes of the class;
- `mass_on_others`: the share on boxes of other objects in the image;
- `box_area_ratio`: the area of the CAM box (largest region above the
  threshold) over the true box's, geometric mean over images (1: the right
  size; > 1 too big);
- `box_iou`: the mean IoU of that box with the true box.

  python -m projects.digit_study.cam_anatomy RUN [RUN ...] \\
      --dataset digit_scenes/imagenet \\
      --data_dir DIR [--threshold T]

The threshold defaults to each run's own, chosen on the validation split by
the 'digits' suite (`RUN/eval/digits.json`), so the numbers explain that
suite's top-1 localisation.
"""

import json
import os

import numpy as np
from absl import flags

from jaxmix.evaluate import cam_boxes, localization, multihost
from jaxmix.evaluate.suites.common import DEFAULT_CAM_THRESHOLD, SuiteArgs
from jaxmix.io import command_line

COLUMNS = ('mass_in_box', 'mass_on_others', 'box_area_ratio', 'box_iou')


def mass_shares(cam: np.ndarray, own: np.ndarray, others: np.ndarray):
  """Shares of a CAM's mass on `own` and on `others` (pixel boxes [k, 4]).

  Args:
    cam: float `[H, W]`, >= 0.
    own, others: int `[k, 4]` (top, left, bottom, right), half-open.

  Returns:
    (share inside the union of `own`, share inside the union of `others`
    but not of `own`); 0 for an all-zero map.
  """
  total = float(cam.sum())
  if total <= 0:
    return 0.0, 0.0
  inside = np.zeros(cam.shape, bool)
  for top, left, bottom, right in own:
    inside[top:bottom, left:right] = True
  elsewhere = np.zeros(cam.shape, bool)
  for top, left, bottom, right in others:
    elsewhere[top:bottom, left:right] = True
  elsewhere &= ~inside
  return float(cam[inside].sum() / total), float(cam[elsewhere].sum() / total)


def image_anatomy(cam: np.ndarray, own: np.ndarray, others, threshold: float):
  """The four measurements of one image (see the module docstring)."""
  in_box, on_others = mass_shares(cam, own, others)
  box = localization.boxes_from_cams(cam[None], threshold)[0]
  ious = localization.iou(box[None], own)[0]
  best = int(np.argmax(ious))
  ratio = localization.box_areas(box[None])[0] / max(
    localization.box_areas(own[best][None])[0], 1
  )
  return in_box, on_others, max(float(ratio), 1e-6), float(ious[best])


def run_threshold(run_dir: str) -> float:
  """The CAM threshold the 'digits' suite chose for the run."""
  path = os.path.join(run_dir, 'eval', 'digits.json')
  if not os.path.exists(path):
    return DEFAULT_CAM_THRESHOLD
  with open(path) as f:
    return float(json.load(f)['metrics']['top1_loc_threshold'])


def anatomy(
  run_dir: str,
  dataset: str,
  *,
  data_dir: str | None = None,
  split: str = 'test',
  threshold: float | None = None,
  limit: int | None = None,
) -> dict:
  """The measurements of one run, means over the split's images."""
  from jaxmix.evaluate import runs
  from jaxmix.evaluate.suites.localization import DIGIT_EXTRAS

  run = runs.load_run(run_dir)
  threshold = run_threshold(run_dir) if threshold is None else threshold
  args = SuiteArgs(data_dir=data_dir, dataset=dataset, limit=limit)
  cams_of = cam_boxes.cam_fn(run)
  rows = []
  for batch in cam_boxes.boxed_batches(run, args, dataset, split, DIGIT_EXTRAS):
    labels = np.asarray(batch['label'], np.int32)
    found = cams_of(
      run.variables,
      multihost.to_device(run, batch['image']),
      multihost.to_device(run, labels),
    )
    cams = np.asarray(multihost.local_rows(run, found['true_cams']))
    boxes, box_labels = cam_boxes.true_boxes(batch, run.image_size)
    for i in np.flatnonzero(np.asarray(batch['mask'], bool)):
      own = boxes[i][box_labels[i] == labels[i]]
      if len(own):
        others = boxes[i][box_labels[i] != labels[i]]
        rows.append(image_anatomy(cams[i], own, others, threshold))
  if not rows:
    raise ValueError(f'{dataset} {split}: no image with a box of its label.')
  rows = np.asarray(rows)
  return {
    'run': run_dir,
    'threshold': threshold,
    'count': len(rows),
    'mass_in_box': float(rows[:, 0].mean()),
    'mass_on_others': float(rows[:, 1].mean()),
    'box_area_ratio': float(np.exp(np.log(rows[:, 2]).mean())),
    'box_iou': float(rows[:, 3].mean()),
  }


def markdown(found: list[dict]) -> str:
  """One row per run."""
  lines = [
    '| run | threshold | CAM mass in the box | on other digits | '
    'CAM box / true box (area) | IoU |',
    '|---|---:|---:|---:|---:|---:|',
  ]
  for row in found:
    lines.append(
      f'| {row["run"]} | {row["threshold"]:.2f} | '
      f'{100 * row["mass_in_box"]:.1f} % | {100 * row["mass_on_others"]:.1f} % | '
      f'{row["box_area_ratio"]:.2f} | {row["box_iou"]:.3f} |'
    )
  return '\n'.join(lines) + '\n'


FLAGS = flags.FlagValues()
flags.DEFINE_string('dataset', None, 'Boxed TFDS dataset.', flag_values=FLAGS)
flags.DEFINE_string('data_dir', None, 'TFDS data_dir.', flag_values=FLAGS)
flags.DEFINE_string('split', 'test', 'Its split.', flag_values=FLAGS)
flags.DEFINE_float(
  'threshold', None, "CAM threshold (default: each run's).", flag_values=FLAGS
)
flags.DEFINE_integer(
  'limit', None, 'At most this many images.', flag_values=FLAGS
)
flags.DEFINE_string('out', None, 'Also write JSON here.', flag_values=FLAGS)
flags.mark_flag_as_required('dataset', flag_values=FLAGS)


def main(argv: list[str] | None = None) -> list[dict]:
  runs = command_line.parse(FLAGS, argv, __doc__, positional=True)
  if not runs:
    raise SystemExit('FATAL Give at least one run directory.')
  found = [
    anatomy(
      run,
      FLAGS.dataset,
      data_dir=FLAGS.data_dir,
      split=FLAGS.split,
      threshold=FLAGS.threshold,
      limit=FLAGS.limit,
    )
    for run in runs
  ]
  print(markdown(found))
  if FLAGS.out:
    with open(FLAGS.out, 'w') as f:
      json.dump(found, f, indent=1)
  return found


if __name__ == '__main__':
  main()
