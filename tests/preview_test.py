"""Tests of jaxmix.apps.preview: the figure's data and the PNG it writes."""

import re

import numpy as np
import pytest

pytest.importorskip('matplotlib')
pytest.importorskip('skimage')

from jaxmix.apps import preview

SIZE = 32


@pytest.fixture(scope='module')
def figure():
  return preview.build_figure(seed=2, size=SIZE)


def _parse(text):
  """'cat 0.62 / coffee 0.38' -> {'cat': 0.62, 'coffee': 0.38}."""
  pairs = [
    re.fullmatch(r'(\w+) (\d\.\d\d)', part) for part in text.split(' / ')
  ]
  assert all(pairs), text
  return {m.group(1): float(m.group(2)) for m in pairs}


def test_figure_shapes_and_range(figure):
  rows, cols = len(preview.PHOTOS), len(preview.COLUMNS)
  assert figure.images.shape == (rows, cols, SIZE, SIZE, 3)
  assert figure.labels.shape == (cols, rows, rows)
  assert figure.images.min() >= 0.0 and figure.images.max() <= 1.0
  np.testing.assert_allclose(figure.labels.sum(-1), 1.0, atol=1e-6)


def test_original_column_is_photos_and_one_hot(figure):
  original = preview.COLUMNS.index('Original')
  photos = preview.load_photos(SIZE)
  np.testing.assert_allclose(figure.images[:, original], photos, atol=1e-5)
  for r, name in enumerate(figure.class_names):
    assert figure.texts[r][original] == f'{name} 1.00'


def test_label_text_orders_and_drops_zero():
  names = ('cat', 'coffee', 'dog')
  text = preview.label_text(np.array([0.375, 0.625, 0.0]), names)
  assert text == 'coffee 0.62 / cat 0.38'


@pytest.mark.parametrize('column', ['Mixup', 'CutMix'])
def test_texts_are_the_returned_labels(figure, column):
  c = preview.COLUMNS.index(column)
  for r, own in enumerate(figure.class_names):
    partner = figure.class_names[preview.PARTNERS[r]]
    shown = _parse(figure.texts[r][c])
    assert set(shown) == {own, partner}
    returned = figure.labels[c, r]
    for k, name in enumerate(figure.class_names):
      if name in shown:
        assert shown[name] == pytest.approx(returned[k], abs=0.005)
      else:
        assert returned[k] == 0.0


def test_cutmix_weight_is_the_kept_pixel_fraction(figure):
  # The own-label weight equals the share of pixels still from the own photo.
  c = preview.COLUMNS.index('CutMix')
  original = figure.images[:, 0]
  for r in range(len(preview.PHOTOS)):
    kept = np.all(figure.images[r, c] == original[r], axis=-1).mean()
    from_partner = np.all(
      figure.images[r, c] == original[preview.PARTNERS[r]], axis=-1
    )
    assert kept + from_partner.mean() == pytest.approx(1.0, abs=0.02)
    assert figure.labels[c, r, r] == pytest.approx(kept, abs=0.02)


def test_occlusions_keep_labels(figure):
  for column in ('Cutout', 'Random Erasing'):
    c = preview.COLUMNS.index(column)
    np.testing.assert_array_equal(figure.labels[c], np.eye(len(preview.PHOTOS)))
    assert (figure.images[:, c] != figure.images[:, 0]).any()


def test_main_writes_png(tmp_path):
  from matplotlib import image

  out = tmp_path / 'preview.png'
  preview.main(['--out', str(out), '--size', str(SIZE)])
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  pixels = image.imread(out)
  height, width = pixels.shape[:2]
  assert pixels.shape[2] in (3, 4)
  assert 600 <= height <= 1500 and 800 <= width <= 1500
  assert pixels[..., :3].std() > 0.05  # Not a blank canvas.


def test_bad_size_is_rejected():
  with pytest.raises(ValueError, match='size'):
    preview.build_figure(size=4)
