"""Figures of an evaluation: CAM grids, robustness curves, training curves.

PNG files drawn with matplotlib's object API (`matplotlib.figure.Figure`,
Agg canvas), so no display and no pyplot global state are involved.

- `plot_cam_grid`: the same images, one column of CAM overlays per run (the
  CutMix paper's CAM comparison of Mixup, Cutout and CutMix models).
- `plot_curves` / `plot_occlusion_curves`: accuracy vs hole size, mixing
  weight or epsilon, one panel per setting, one line per run.
- `plot_training_curves`: metrics logged to a run's `metrics.jsonl` (one JSON
  object per line with a 'step' key) against the step.
"""

import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jaxmix.io import paths

_SKIPPED_KEYS = ('step', 'time')


def _save(figure: Figure, path: str | os.PathLike) -> str:
  # Through the path layer: a run directory may be a URL (gs://...).
  return paths.write_figure(figure, path, dpi=100, bbox_inches='tight')


def _draw_box(axis, box, color: str) -> None:
  top, left, bottom, right = (float(v) for v in box)
  axis.add_patch(
    Rectangle(
      (left - 0.5, top - 0.5),
      right - left,
      bottom - top,
      fill=False,
      edgecolor=color,
      linewidth=2,
    )
  )


def plot_cam_grid(
  images: np.ndarray,
  cams_by_run: Mapping[str, np.ndarray],
  path: str | os.PathLike,
  *,
  boxes_by_run: Mapping[str, np.ndarray] | None = None,
  true_boxes: Sequence[np.ndarray] | None = None,
  row_titles: Sequence[str] | None = None,
  alpha: float = 0.5,
) -> str:
  """CAM heat maps of several runs side by side for the same images.

  Row i shows image i, then its CAM overlay for every run (columns in the
  order of `cams_by_run`), with the run's predicted box in red and the
  ground-truth boxes in green when given.

  Args:
    images: `[N, H, W, 3]` pixels, uint8 or float in [0, 255].
    cams_by_run: run name -> `[N, H, W]` maps in [0, 1].
    path: the PNG to write.
    boxes_by_run: run name -> int `[N, 4]` `(top, left, bottom, right)`.
    true_boxes: N arrays `[n_i, 4]` of ground-truth boxes.
    row_titles: N labels (e.g. class names) written left of each row.
    alpha: opacity of the heat map.

  Returns:
    `path`.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'`images` must be [N, H, W, 3], got {images.shape}.')
  if not cams_by_run:
    raise ValueError('`cams_by_run` is empty.')
  n = images.shape[0]
  for run, cams in cams_by_run.items():
    if np.shape(cams) != images.shape[:3]:
      raise ValueError(
        f'`cams_by_run[{run!r}]` must be [N, H, W] = {images.shape[:3]}, got '
        f'{np.shape(cams)}.'
      )
  pixels = np.clip(images.astype(np.float32), 0, 255).astype(np.uint8)
  columns = 1 + len(cams_by_run)
  figure = Figure(figsize=(2.2 * columns, 2.2 * n))
  axes = figure.subplots(n, columns, squeeze=False)
  for i in range(n):
    axes[i, 0].imshow(pixels[i])
    if row_titles is not None:
      axes[i, 0].set_ylabel(str(row_titles[i]))
    for j, (run, cams) in enumerate(cams_by_run.items(), start=1):
      axis = axes[i, j]
      axis.imshow(pixels[i])
      axis.imshow(np.asarray(cams[i]), cmap='jet', alpha=alpha, vmin=0, vmax=1)
      if boxes_by_run is not None and run in boxes_by_run:
        _draw_box(axis, boxes_by_run[run][i], 'red')
      if true_boxes is not None:
        for box in np.asarray(true_boxes[i]).reshape(-1, 4):
          _draw_box(axis, box, 'lime')
      if i == 0:
        axis.set_title(run)
  axes[0, 0].set_title('image')
  for axis in axes.ravel():
    axis.set_xticks([])
    axis.set_yticks([])
  return _save(figure, path)


def plot_curves(
  x: Sequence[float],
  results: Mapping[str, Mapping[str, Sequence[float]]],
  path: str | os.PathLike,
  *,
  xlabel: str,
  ylabel: str,
) -> str:
  """One panel per setting, one line per run: `results[run][panel]` vs `x`.

  E.g. occlusion: `{'cutmix': {'center': acc, 'boundary': acc}, ...}` over
  hole sizes; in-between class: panels 'mixup' / 'cutmix' over λ.

  Returns:
    `path`.
  """
  x = np.asarray(x, np.float64)
  if not results:
    raise ValueError('`results` is empty.')
  panels = list(dict.fromkeys(p for run in results.values() for p in run))
  for run, curves in results.items():
    for panel, values in curves.items():
      if np.shape(values) != x.shape:
        raise ValueError(
          f'`results[{run!r}][{panel!r}]` has shape {np.shape(values)}, but '
          f'`x` has {x.shape}.'
        )
  figure = Figure(figsize=(4.5 * len(panels), 3.5))
  axes = figure.subplots(1, len(panels), squeeze=False)[0]
  for axis, panel in zip(axes, panels):
    for run, curves in results.items():
      if panel in curves:
        axis.plot(x, np.asarray(curves[panel]), marker='.', label=run)
    axis.set_title(panel)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
  return _save(figure, path)


def plot_occlusion_curves(
  sizes: Sequence[int],
  results: Mapping[str, Mapping[str, Sequence[float]]],
  path: str | os.PathLike,
  *,
  ylabel: str = 'top-1 accuracy',
) -> str:
  """Accuracy vs hole size: `results[run]['center' | 'boundary']`."""
  return plot_curves(
    sizes, results, path, xlabel='hole size (pixels)', ylabel=ylabel
  )


def load_metrics_jsonl(path: str | os.PathLike) -> list[dict]:
  """The rows of a `metrics.jsonl` file; blank lines are skipped."""
  rows = []
  for number, line in enumerate(paths.read_text(path).splitlines(), start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}:{number}: not valid JSON ({e}).') from e
    if not isinstance(row, dict) or 'step' not in row:
      raise ValueError(f"{path}:{number}: expected an object with 'step'.")
    rows.append(row)
  return rows


def plot_training_curves(
  runs: str | os.PathLike | Mapping[str, str | os.PathLike | Sequence[dict]],
  path: str | os.PathLike,
  *,
  keys: Sequence[str] | None = None,
) -> str:
  """Metrics against the step, one panel per key, one line per run.

  Args:
    runs: a `metrics.jsonl` path, or run name -> such a path or its rows.
    path: the PNG to write.
    keys: the metrics to draw; default every numeric key except 'step' and
      'time', in order of appearance.

  Returns:
    `path`.
  """
  if isinstance(runs, str | os.PathLike):
    runs = {os.path.basename(os.path.dirname(os.fspath(runs))) or 'run': runs}
  rows_by_run = {
    name: load_metrics_jsonl(rows)
    if isinstance(rows, str | os.PathLike)
    else list(rows)
    for name, rows in runs.items()
  }
  if keys is None:
    keys = list(
      dict.fromkeys(
        k
        for rows in rows_by_run.values()
        for row in rows
        for k, v in row.items()
        if k not in _SKIPPED_KEYS
        and isinstance(v, int | float)
        and not isinstance(v, bool)
      )
    )
  if not keys:
    raise ValueError('No metric to plot: `runs` hold no numeric keys.')
  columns = min(3, len(keys))
  grid_rows = math.ceil(len(keys) / columns)
  figure = Figure(figsize=(4.5 * columns, 3.2 * grid_rows))
  axes = figure.subplots(grid_rows, columns, squeeze=False).ravel()
  for axis, key in zip(axes, keys):
    for name, rows in rows_by_run.items():
      points = [(r['step'], r[key]) for r in rows if key in r]
      if points:
        steps, values = zip(*points)
        axis.plot(steps, values, label=name)
    axis.set_title(key)
    axis.set_xlabel('step')
    axis.grid(alpha=0.3)
    if len(rows_by_run) > 1:
      axis.legend()
  for axis in axes[len(keys) :]:
    axis.set_visible(False)
  return _save(figure, path)


def plot_gains(
  x: Sequence[float],
  gains: Mapping[str, Mapping[str, Sequence[tuple[float, float, float]]]],
  path: str | os.PathLike,
  *,
  xlabel: str,
  ylabel: str = 'gain over the baseline (points)',
) -> str:
  """Differences with intervals: `gains[panel][method]` = (mean, low, high)
  per x, one panel per metric, a dashed line at zero.

  Returns:
    `path`.
  """
  x = np.asarray(x, np.float64)
  if not gains:
    raise ValueError('`gains` is empty.')
  figure = Figure(figsize=(4.5 * len(gains), 3.6))
  axes = figure.subplots(1, len(gains), squeeze=False)[0]
  for axis, (panel, methods) in zip(axes, gains.items()):
    for method, points in methods.items():
      points = np.asarray(points, np.float64).reshape(-1, 3)
      if len(points) != len(x):
        raise ValueError(
          f'`gains[{panel!r}][{method!r}]` has {len(points)} points, `x` {len(x)}.'
        )
      mean, low, high = points.T
      axis.errorbar(
        x,
        mean,
        yerr=[mean - low, high - mean],
        marker='o',
        capsize=3,
        label=method,
      )
    axis.axhline(0.0, color='grey', linestyle='--', linewidth=1)
    axis.set_title(panel)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
  return _save(figure, path)
