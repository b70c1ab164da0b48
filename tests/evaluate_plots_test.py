"""Tests of jaxmix.evaluate.plots: every figure is a readable PNG."""

import json

import numpy as np
import pytest
from matplotlib import image as mpimg

from jaxmix.evaluate import plots

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _check_png(path):
  with open(path, 'rb') as f:
    assert f.read(8) == PNG_SIGNATURE
  pixels = mpimg.imread(path)
  assert pixels.ndim == 3 and min(pixels.shape[:2]) > 50
  assert pixels[..., :3].std() > 0.01  # something was drawn
  return pixels


def test_cam_grid_writes_a_png(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(2, 32, 32, 3)).astype(np.uint8)
  yy, xx = np.mgrid[:32, :32]
  blob = np.exp(-((yy - 10) ** 2 + (xx - 22) ** 2) / 40.0)
  cams = {'mixup': np.stack([blob, blob.T]), 'cutmix': np.stack([blob.T, blob])}
  path = plots.plot_cam_grid(
    images,
    cams,
    tmp_path / 'figures' / 'cams.png',
    boxes_by_run={'cutmix': np.array([[5, 15, 16, 30], [15, 5, 30, 16]])},
    true_boxes=[np.array([[4, 16, 16, 28]]), np.zeros((0, 4))],
    row_titles=['goldfish', 'tench'],
  )
  pixels = _check_png(path)
  assert pixels.shape[1] > pixels.shape[0]  # 3 columns, 2 rows
  with pytest.raises(ValueError, match=r"cams_by_run\['bad'\]"):
    plots.plot_cam_grid(images, {'bad': blob}, tmp_path / 'x.png')


def test_occlusion_curves_write_a_png(tmp_path):
  sizes = np.arange(0, 225, 28)
  results = {
    'baseline': {'center': np.linspace(0.76, 0.3, 9), 'boundary': sizes / 300},
    'cutmix': {'center': np.linspace(0.78, 0.4, 9), 'boundary': sizes / 250},
  }
  _check_png(plots.plot_occlusion_curves(sizes, results, tmp_path / 'o.png'))
  with pytest.raises(ValueError, match='shape'):
    plots.plot_curves(
      [0, 1], results, tmp_path / 'bad.png', xlabel='x', ylabel='y'
    )


def test_training_curves_from_metrics_jsonl(tmp_path):
  run = tmp_path / 'run'
  run.mkdir()
  rows = [
    {'step': s, 'time': 1.0 * s, 'train/loss': 3.0 / (s + 1)}
    for s in range(0, 500, 50)
  ]
  rows += [{'step': s, 'eval/top1': s / 1000} for s in (100, 300, 500)]
  (run / 'metrics.jsonl').write_text(
    '\n'.join(json.dumps(r) for r in rows) + '\n\n'
  )
  assert len(plots.load_metrics_jsonl(run / 'metrics.jsonl')) == len(rows)
  _check_png(
    plots.plot_training_curves(str(run / 'metrics.jsonl'), tmp_path / 't.png')
  )
  _check_png(
    plots.plot_training_curves(
      {'a': run / 'metrics.jsonl', 'b': rows[:5]},
      tmp_path / 't2.png',
      keys=['train/loss'],
    )
  )
  (run / 'broken.jsonl').write_text('{"step": 1}\n{oops\n')
  with pytest.raises(ValueError, match=r'broken\.jsonl:2'):
    plots.load_metrics_jsonl(run / 'broken.jsonl')
