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


@pytest.mark.parametrize('column', ['Mixup', 'CutMix', 'MixToken'])
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


def _from_partner(figure, column, row):
  """Bool ``[H, W]``: pixels of `column` equal to the partner's, not own's."""
  original = figure.images[:, 0]
  shown = figure.images[row, column]
  own = np.all(shown == original[row], axis=-1)
  partner = np.all(shown == original[preview.PARTNERS[row]], axis=-1)
  assert (own | partner).all()  # Selection only: every pixel from one photo.
  return partner & ~own


def test_mixtoken_pastes_whole_tokens_and_weights_by_token_count(figure):
  c = preview.COLUMNS.index('MixToken')
  grid = preview.token_grid(SIZE)
  patch = SIZE // grid
  assert grid * patch == SIZE and grid > 1
  pasted_any = False
  for r in range(len(preview.PHOTOS)):
    from_partner = _from_partner(figure, c, r)
    # Each token's share of pixels from the partner, [h, w].
    share = from_partner.reshape(grid, patch, grid, patch).mean((1, 3))
    tokens = share > 0.5
    # The box is token-aligned: no partner pixel outside a taken token
    # (inside one, pixels equal in both photos count as own).
    outside = ~np.repeat(np.repeat(tokens, patch, 0), patch, 1)
    assert not (from_partner & outside).any()
    pasted_any |= bool(tokens.any())
    # The own label weight is exactly the kept share of the grid's tokens.
    assert figure.labels[c, r, r] == pytest.approx(
      1.0 - tokens.mean(), abs=1e-6
    )
  assert pasted_any


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
  assert 600 <= height <= 1500 and 800 <= width <= 1800
  assert pixels[..., :3].std() > 0.05  # Not a blank canvas.


def test_bad_size_is_rejected():
  with pytest.raises(ValueError, match='size'):
    preview.build_figure(size=4)
  with pytest.raises(ValueError, match='size'):
    preview.build_video_figure(size=4)


@pytest.fixture(scope='module')
def video():
  return preview.build_video_figure(seed=2, size=SIZE)


def _video_partner_voxels(video, mode):
  """Bool ``[T, H, W]``: voxels of the mixed cat clip from the astronaut's."""
  m = video.modes.index(mode)
  own, partner = video.originals
  mixed = video.frames[m]
  is_own = np.all(np.abs(mixed - own) < 1e-5, axis=-1)
  is_partner = np.all(np.abs(mixed - partner) < 1e-5, axis=-1)
  assert (is_own | is_partner).all()  # VideoMix only selects voxels.
  return is_partner & ~is_own


def test_video_figure_shapes(video):
  assert video.modes == ('spatial', 'temporal', 'cuboid')
  assert video.frames.shape == (3, preview.VIDEO_FRAMES, SIZE, SIZE, 3)
  assert video.originals.shape == (2, preview.VIDEO_FRAMES, SIZE, SIZE, 3)
  np.testing.assert_allclose(video.labels.sum(-1), 1.0, atol=1e-6)
  # The clips pan: consecutive frames differ.
  assert (video.originals[:, 1] != video.originals[:, 0]).any()


def test_video_spatial_mode_pastes_one_box_through_all_frames(video):
  pasted = _video_partner_voxels(video, 'spatial')
  rows, cols = np.nonzero(pasted.any(0))
  assert rows.size
  box = np.zeros((SIZE, SIZE), bool)
  box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
  # Every frame takes the partner inside one box (up to pixels equal in
  # both clips) and nothing outside it.
  assert not (pasted & ~box).any()
  assert all(frame[box].mean() > 0.95 for frame in pasted)


def test_video_temporal_mode_pastes_whole_frames(video):
  pasted = _video_partner_voxels(video, 'temporal')
  shares = pasted.reshape(preview.VIDEO_FRAMES, -1).mean(-1)
  whole = shares > 0.95
  assert whole.any() and not whole.all()
  np.testing.assert_array_equal(shares[~whole], 0.0)


@pytest.mark.parametrize('mode', ['spatial', 'temporal', 'cuboid'])
def test_video_weight_is_the_kept_voxel_fraction(video, mode):
  pasted = _video_partner_voxels(video, mode)
  kept = video.labels[video.modes.index(mode), 0]
  assert kept == pytest.approx(1.0 - pasted.mean(), abs=0.02)


def test_main_writes_video_png(tmp_path):
  out, video_out = tmp_path / 'preview.png', tmp_path / 'videomix.png'
  preview.main(
    ['--out', str(out), '--size', str(SIZE), '--video_out', str(video_out)]
  )
  assert video_out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
