"""Tests of jaxmix.evaluate.cam_anatomy: where a CAM puts its mass."""

import numpy as np
import pytest

from projects.digit_study import cam_anatomy


def test_mass_shares_exact():
  cam = np.zeros((8, 8))
  cam[0:2, 0:2] = 1.0  # 4 units in the own box
  cam[4:6, 4:8] = 0.5  # 4 units on another digit
  cam[7, 0] = 2.0  # 2 units on the background
  own = np.array([[0, 0, 2, 2]])
  others = np.array([[4, 4, 6, 8], [0, 0, 1, 1]])  # overlap with own: own's
  in_box, on_others = cam_anatomy.mass_shares(cam, own, others)
  assert in_box == pytest.approx(0.4) and on_others == pytest.approx(0.4)
  assert cam_anatomy.mass_shares(np.zeros((4, 4)), own, others) == (0.0, 0.0)


def test_image_anatomy_tells_diffuse_from_peaked():
  own = np.array([[8, 8, 24, 24]])  # 16 x 16
  none = np.zeros((0, 4), int)
  exact = np.zeros((32, 32))
  exact[8:24, 8:24] = 1.0
  _, _, ratio, iou = cam_anatomy.image_anatomy(exact, own, none, 0.5)
  assert ratio == pytest.approx(1.0) and iou == pytest.approx(1.0)
  diffuse = np.full((32, 32), 0.6)
  diffuse[8:24, 8:24] = 1.0  # everything above 0.5: a 32 x 32 box
  in_box, _, ratio, iou = cam_anatomy.image_anatomy(diffuse, own, none, 0.5)
  assert ratio == pytest.approx(4.0) and iou == pytest.approx(0.25)
  assert in_box == pytest.approx(256 / (256 + 0.6 * 768))
  peaked = np.zeros((32, 32))
  peaked[12:16, 12:16] = 1.0  # a 4 x 4 part of the digit
  _, _, ratio, iou = cam_anatomy.image_anatomy(peaked, own, none, 0.5)
  assert ratio == pytest.approx(1 / 16) and iou == pytest.approx(1 / 16)


def test_markdown_row():
  row = {
    'run': 'r',
    'threshold': 0.3,
    'mass_in_box': 0.5,
    'mass_on_others': 0.1,
    'box_area_ratio': 1.25,
    'box_iou': 0.4,
  }
  assert cam_anatomy.markdown([row]).splitlines()[2] == (
    '| r | 0.30 | 50.0 % | 10.0 % | 1.25 | 0.400 |'
  )
