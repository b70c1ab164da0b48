"""Tests of jaxmix.evaluate.label_fit (CutMix label weight vs objects)."""

import jax
import numpy as np
import pytest

from projects.digit_study import label_fit


def centred_boxes(share: float, count: int = 2000) -> np.ndarray:
  side = np.sqrt(share)
  box = [0.5 - side / 2, 0.5 - side / 2, 0.5 + side / 2, 0.5 + side / 2]
  return np.tile(box, (count, 1))


def test_pasted_object_fractions_exact():
  objects = np.array(
    [
      [0.0, 0.0, 0.5, 0.5],  # half of it inside the paste box below
      [0.2, 0.2, 0.4, 0.4],  # entirely inside
      [0.6, 0.6, 0.8, 0.9],  # entirely outside
      [0.0, 0.0, 1.0, 1.0],  # the whole image: the paste box's area
    ]
  )
  paste = np.array(
    [
      [0.0, 0.25, 0.5, 1.0],
      [0.1, 0.1, 0.5, 0.5],
      [0.0, 0.0, 0.5, 0.5],
      [0.25, 0.25, 0.75, 0.5],
    ]
  )
  np.testing.assert_allclose(
    label_fit.pasted_object_fractions(objects, paste),
    [0.5, 1.0, 0.0, 0.125],
  )


def test_bad_boxes_are_named():
  with pytest.raises(ValueError, match='object_boxes'):
    label_fit.pasted_object_fractions(np.zeros((3,)), np.zeros((3,)))
  with pytest.raises(ValueError, match='paste_boxes'):
    label_fit.pasted_object_fractions(np.zeros((2, 4)), np.zeros((3, 4)))
  with pytest.raises(ValueError, match='Object box 1 has no area'):
    label_fit.pasted_object_fractions(
      np.array([[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.7]]), np.zeros((2, 4))
    )
  with pytest.raises(ValueError, match='N >= 2'):
    label_fit.cutmix_label_fit(jax.random.key(0), np.zeros((1, 4)))


def test_paste_boxes_follow_the_official_rule():
  paste = label_fit.sample_paste_boxes(jax.random.key(0), count=20_000)
  assert paste.min() >= 0 and paste.max() <= 1
  area = (paste[:, 2] - paste[:, 0]) * (paste[:, 3] - paste[:, 1])
  # Clipping at the border: the mean pasted share is ~0.32, not 0.5
  # (jaxmix's mixing tests pin 0.68 for the kept share at 224 x 224).
  assert abs(area.mean() - 0.32) < 0.01


def test_whole_image_objects_make_area_labels_exact():
  fit = label_fit.cutmix_label_fit(jax.random.key(1), centred_boxes(1.0))
  assert fit['weight_error'] < 1e-12
  assert fit['partner_absent'] == 0.0
  assert fit['own_erased'] == 0.0
  assert abs(fit['partner_object_pasted'] - fit['partner_weight']) < 1e-12


def test_smaller_objects_make_area_labels_worse():
  fits = [
    label_fit.cutmix_label_fit(jax.random.key(2), centred_boxes(share))
    for share in (0.8, 0.5, 0.25, 0.075)
  ]
  errors = [fit['weight_error'] for fit in fits]
  absent = [fit['partner_absent'] for fit in fits]
  assert errors == sorted(errors) and errors[-1] > 5 * errors[0]
  assert absent == sorted(absent) and absent[-1] > 0.15
  # The label weight itself does not depend on the objects.
  assert len({round(fit['partner_weight'], 12) for fit in fits}) == 1


def test_absent_partner_weight_is_the_mean_over_those_mixes():
  # Objects in the top-left corner: a paste box away from it holds none.
  boxes = np.tile([0.0, 0.0, 0.05, 0.05], (4000, 1))
  fit = label_fit.cutmix_label_fit(jax.random.key(3), boxes)
  assert fit['partner_absent'] > 0.5
  assert 0 < fit['partner_absent_weight'] < 1
  assert fit['own_erased'] < fit['partner_absent']


def test_main_object_boxes():
  examples = [
    {
      'label': 3,
      'objects': {
        'label': np.array([3, 5, 3]),
        'bbox': np.array(
          [
            [0.0, 0.0, 0.2, 0.2],
            [0.0, 0.0, 0.9, 0.9],  # larger, but another class
            [0.5, 0.5, 0.9, 0.8],
          ]
        ),
      },
    },
    {'label': 1, 'bbox': np.array([0.1, 0.2, 0.3, 0.4])},
  ]
  np.testing.assert_allclose(
    label_fit.main_object_boxes(examples),
    [[0.5, 0.5, 0.9, 0.8], [0.1, 0.2, 0.3, 0.4]],
  )
  with pytest.raises(ValueError, match='Example 0 has no object of its'):
    label_fit.main_object_boxes([{**examples[0], 'label': 7}])
  with pytest.raises(ValueError, match='neither objects/bbox nor bbox'):
    label_fit.main_object_boxes([{'label': 1}])


def test_cli_on_digit_scenes(tmp_path):
  from jaxmix.datasets import digit_scenes

  data_dir = str(tmp_path / 'data')
  digit_scenes.prepare(data_dir, 'small')
  fit = label_fit.main(
    [
      '--data_dir',
      data_dir,
      '--dataset',
      'digit_scenes/small',
      '--split',
      'test',
    ]
  )
  assert fit['dataset'] == 'digit_scenes/small' and fit['count'] > 10
  # Digits are small: area labels are far from the objects pasted.
  assert fit['object_area'] < 0.2 and fit['weight_error'] > 0.1
