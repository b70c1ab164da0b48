"""How well CutMix's area-weighted label describes the objects it pastes.

CutMix labels the partner by the pasted box's share of the image, which
assumes class evidence is spread evenly over the image: fair when the object
fills most of it (ImageNet, CIFAR), poor when objects are small. This module
measures the gap on a dataset's true object boxes, without a model:

  python -m projects.digit_study.label_fit --data_dir DATA \
      --dataset digit_scenes \
      --split test

For each image and a random partner it samples the official CutMix box
(`jaxmix._src.boxes.sample_cutmix_box`, lambda ~ Beta(alpha, alpha)) and compares
the label weight the partner gets (the pasted pixel fraction) with the part
of the partner's main object that lands inside the box, and with an
object-based weight: the partner's visible object fraction over the sum of
both objects' visible fractions (what a localised label such as ReLabel's
pooled map would give, were the objects equally salient).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import mixing
from jaxmix.evaluate import localization
from jaxmix.io import command_line

GRID = 224  # CutMix boxes are sampled on this pixel grid.


def pasted_object_fractions(
  object_boxes: np.ndarray, paste_boxes: np.ndarray
) -> np.ndarray:
  """Fraction of each object box's area inside the pasted box.

  Args:
    object_boxes: float `[N, 4]` (ymin, xmin, ymax, xmax) in [0, 1], each
      with a positive area.
    paste_boxes: float `[N, 4]`, same layout.

  Returns:
    float64 `[N]` in [0, 1].
  """
  object_boxes = np.asarray(object_boxes, np.float64)
  paste_boxes = np.asarray(paste_boxes, np.float64)
  if object_boxes.ndim != 2 or object_boxes.shape[-1] != 4:
    raise ValueError(
      f'`object_boxes` must be [N, 4], got shape {object_boxes.shape}.'
    )
  if paste_boxes.shape != object_boxes.shape:
    raise ValueError(
      f'`paste_boxes` must have the shape of `object_boxes` '
      f'{object_boxes.shape}, got {paste_boxes.shape}.'
    )
  area = localization.box_areas(object_boxes)
  if np.any(~(area > 0)):
    raise ValueError(
      f'Object box {int(np.argmin(area))} has no area: '
      f'{object_boxes[int(np.argmin(area))].tolist()}.'
    )
  return localization.box_intersections(object_boxes, paste_boxes) / area


def sample_paste_boxes(
  key: jax.Array, *, count: int, alpha: float = 1.0
) -> np.ndarray:
  """`count` official CutMix boxes, normalised float64 `[count, 4]`."""
  weight_key, box_key = jax.random.split(key)
  weight = mixing.sample_mix_weight(weight_key, alpha=alpha, shape=(count,))
  box = boxes_lib.sample_cutmix_box(
    box_key, height=GRID, width=GRID, weight=weight
  )
  stacked = jnp.stack([box.top, box.left, box.bottom, box.right], axis=-1)
  return np.asarray(stacked, np.float64) / GRID


def cutmix_label_fit(
  key: jax.Array, object_boxes: np.ndarray, *, alpha: float = 1.0
) -> dict:
  """Gap between CutMix's label weights and the objects actually mixed.

  Args:
    key: a PRNG key (partners and boxes).
    object_boxes: float `[N, 4]`, each image's main-object box, normalised.
    alpha: CutMix's Beta concentration.

  Returns:
    Means over the N mixed images:
    'object_area' (object box share of the image), 'partner_weight' (label
    weight of the partner = pasted pixel fraction), 'partner_object_pasted'
    (share of the partner's object inside the pasted box),
    'weight_error' (|partner weight - object-based weight|, see the module
    docstring), 'partner_absent' (fraction of mixes that label the partner
    with none of its object pasted) and 'partner_absent_weight' (the mean
    label weight those mixes give it), 'own_erased' (own object entirely
    covered) and 'own_erased_weight' (the label weight it keeps then).
  """
  object_boxes = np.asarray(object_boxes, np.float64)
  count = object_boxes.shape[0] if object_boxes.ndim == 2 else 0
  if count < 2:
    raise ValueError(
      f'`object_boxes` must be [N, 4] with N >= 2, got {object_boxes.shape}.'
    )
  partner_key, box_key = jax.random.split(key)
  partners = np.asarray(mixing.sample_partners(partner_key, batch_size=count))
  paste = sample_paste_boxes(box_key, count=count, alpha=alpha)
  partner_weight = localization.box_areas(paste)
  pasted = pasted_object_fractions(object_boxes[partners], paste)
  kept = 1.0 - pasted_object_fractions(object_boxes, paste)
  seen = pasted + kept
  # Nothing of either object visible: objects give no evidence, keep area.
  object_weight = np.where(seen > 0, pasted / np.maximum(seen, 1e-12), 0.0)
  object_weight = np.where(seen > 0, object_weight, partner_weight)
  mixed = partner_weight > 0
  absent = mixed & (pasted == 0)
  erased = kept == 0
  return {
    'count': count,
    'object_area': float(localization.box_areas(object_boxes).mean()),
    'partner_weight': float(partner_weight.mean()),
    'partner_object_pasted': float(pasted.mean()),
    'weight_error': float(np.abs(partner_weight - object_weight).mean()),
    'partner_absent': float(absent.mean()),
    'partner_absent_weight': float(partner_weight[absent].mean())
    if absent.any()
    else 0.0,
    'own_erased': float(erased.mean()),
    'own_erased_weight': float((1.0 - partner_weight[erased]).mean())
    if erased.any()
    else 0.0,
  }


def main_object_boxes(dataset) -> np.ndarray:
  """Each example's main-object box `[N, 4]` from a TFDS numpy iterable.

  Examples carry `objects/{bbox, label}` (the largest box of the example's
  `label` is its main object, as in digit_scenes) or a single `bbox`
  (caltech_birds2011).
  """
  found = []
  for index, example in enumerate(dataset):
    if 'objects' in example:
      objects = example['objects']
      boxes = np.asarray(objects['bbox'], np.float64).reshape(-1, 4)
      mine = boxes[np.asarray(objects['label']) == example['label']]
      if not len(mine):
        raise ValueError(f'Example {index} has no object of its label.')
      found.append(mine[np.argmax(localization.box_areas(mine))])
    elif 'bbox' in example:
      found.append(np.asarray(example['bbox'], np.float64))
    else:
      raise ValueError(
        f'Example {index} has neither objects/bbox nor bbox: {sorted(example)}.'
      )
  return np.stack(found)


def dataset_label_fit(
  name: str,
  split: str,
  *,
  data_dir: str | None = None,
  alpha: float = 1.0,
  seed: int = 0,
) -> dict:
  """`cutmix_label_fit` over the main objects of a prepared TFDS split.

  Returns:
    {'dataset', 'split', **cutmix_label_fit(...)}.
  """
  import tensorflow_datasets as tfds

  from jaxmix.data import tfds_source

  builder = tfds_source.checked_builder(name, split, data_dir=data_dir)
  examples = builder.as_dataset(
    split=split, decoders={'image': tfds.decode.SkipDecoding()}
  )
  fit = cutmix_label_fit(
    jax.random.key(seed),
    main_object_boxes(tfds.as_numpy(examples)),
    alpha=alpha,
  )
  return {'dataset': name, 'split': split, **fit}


FLAGS = flags.FlagValues()
flags.DEFINE_string(
  'dataset', 'digit_scenes', 'Boxed TFDS dataset.', flag_values=FLAGS
)
flags.DEFINE_string('split', 'test', 'Its split.', flag_values=FLAGS)
flags.DEFINE_string('data_dir', None, 'TFDS data_dir.', flag_values=FLAGS)
flags.DEFINE_float(
  'alpha', 1.0, "CutMix's Beta(alpha, alpha).", flag_values=FLAGS
)
flags.DEFINE_integer('seed', 0, 'Seed of the boxes.', flag_values=FLAGS)


def main(argv: list[str] | None = None) -> dict:
  command_line.parse(FLAGS, argv, __doc__)
  result = dataset_label_fit(
    FLAGS.dataset,
    FLAGS.split,
    data_dir=FLAGS.data_dir,
    alpha=FLAGS.alpha,
    seed=FLAGS.seed,
  )
  print(json.dumps(result, indent=2))
  return result


if __name__ == '__main__':
  main()
