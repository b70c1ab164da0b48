"""A picture of one image's ReLabel label map, like the paper's figure.

  python -m jaxmix.apps.view_label_maps --store STORE --data_dir DIR \\
      --file_name n01440764_10026.JPEG --out map.png \\
      [--dataset imagenet2012] [--split train] [--crop 0.1,0.2,0.8,0.9]

Three panels: the training image squashed to a square (as the annotator saw
it) with a crop box; the label map's top-1 class per cell as a colour map,
with the class names in the legend and each cell's top-1 score printed on
it (when the map has at most 16 x 16 cells); and the ReLabel targets
(`jaxmix.relabel_targets`) of the crop and of the whole image, their top
`k` classes as bars. The image is found by scanning the split for its file
name (for ImageNet's training split that takes minutes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

import jaxmix
from jaxmix.io import paths

WHOLE = (0.0, 0.0, 1.0, 1.0)


def _short(name: str, width: int = 18) -> str:
  return name if len(name) <= width else name[: width - 1] + '…'


def render(
  image: np.ndarray,
  scores: np.ndarray,
  indices: np.ndarray,
  *,
  class_names: Sequence[str],
  crop_box: Sequence[float] = WHOLE,
  title: str = '',
  path: str,
  top: int = 5,
) -> None:
  """Draws the three panels (see the module docstring) into a PNG.

  Args:
    image: uint8 `[H, W, 3]`, the whole training image.
    scores: float `[S, S, k]` its top-k label-map logits.
    indices: int `[S, S, k]` their class ids.
    class_names: the K class names.
    crop_box: `(ymin, xmin, ymax, xmax)` normalised, drawn and pooled.
    title: figure title (e.g. the file name and its label).
    path: where the PNG goes.
    top: number of classes in the target bars.
  """
  scores = np.asarray(scores, np.float32)
  indices = np.asarray(indices, np.int64)
  if scores.ndim != 3 or scores.shape != indices.shape:
    raise ValueError(
      f'scores and indices must both be [S, S, k], got {scores.shape} and '
      f'{indices.shape}.'
    )
  ymin, xmin, ymax, xmax = (float(v) for v in crop_box)
  if not 0 <= ymin < ymax <= 1 or not 0 <= xmin < xmax <= 1:
    raise ValueError(
      f'crop_box must be (ymin, xmin, ymax, xmax) inside [0, 1], got '
      f'{tuple(crop_box)}.'
    )
  num_classes, size = len(class_names), scores.shape[0]
  figure = Figure(figsize=(17, 5.5))
  image_ax, map_ax, bar_ax = figure.subplots(1, 3, gridspec_kw={'wspace': 0.45})
  extent = (0, 1, 1, 0)  # normalised (x, y), y down

  def box(ax, colour):
    ax.add_patch(
      Rectangle(
        (xmin, ymin),
        xmax - xmin,
        ymax - ymin,
        fill=False,
        edgecolor=colour,
        linewidth=2.5,
      )
    )

  image_ax.imshow(image, extent=extent, aspect='auto')
  image_ax.set_title('image (squashed) and crop')
  box(image_ax, 'yellow')

  top1 = indices[..., 0]
  present = sorted(set(top1.ravel().tolist()))
  colours = [colormaps['tab20'](i % 20) for i in range(len(present))]
  position = np.searchsorted(present, top1)  # present is sorted
  map_ax.imshow(
    position,
    cmap=ListedColormap(colours),
    vmin=-0.5,
    vmax=len(present) - 0.5,
    extent=extent,
    aspect='auto',
    interpolation='nearest',
  )
  if size <= 16:
    for row in range(size):
      for col in range(size):
        map_ax.text(
          (col + 0.5) / size,
          (row + 0.5) / size,
          f'{scores[row, col, 0]:.1f}',
          ha='center',
          va='center',
          fontsize=6,
          color='black',
          path_effects=[patheffects.withStroke(linewidth=2, foreground='w')],
        )
  box(map_ax, 'black')
  map_ax.set_title(f'top-1 class per cell ({size}x{size}, top-1 logit)')
  map_ax.legend(
    handles=[
      Patch(color=colour, label=_short(class_names[c]))
      for c, colour in zip(present, colours)
    ],
    loc='upper center',
    bbox_to_anchor=(0.5, -0.02),
    ncol=2,
    fontsize=8,
  )

  pooled = {}
  for name, region in (('crop', (ymin, xmin, ymax, xmax)), ('image', WHOLE)):
    pooled[name] = np.asarray(
      jaxmix.relabel_targets(
        scores[None],
        indices[None],
        np.asarray([region], np.float32),
        num_classes=num_classes,
      )
    )[0]
  shown = np.argsort(-pooled['crop'])[:top]
  rows = np.arange(len(shown))
  bar_ax.barh(rows - 0.2, pooled['crop'][shown], 0.4, label='crop target')
  bar_ax.barh(rows + 0.2, pooled['image'][shown], 0.4, label='whole image')
  bar_ax.set_yticks(rows, [_short(class_names[c]) for c in shown])
  bar_ax.invert_yaxis()
  top_value = max(float(pooled['crop'].max()), float(pooled['image'].max()))
  bar_ax.set_xlim(0, min(1.0, 1.15 * top_value))
  bar_ax.set_title('ReLabel target (softmax of pooled logits)')
  bar_ax.legend(loc='lower right', fontsize=8)
  for ax in (image_ax, map_ax):
    ax.set_box_aspect(1)  # square, as the annotator saw the image
    ax.set_xticks([])
    ax.set_yticks([])
  if title:
    figure.suptitle(title)
  paths.write_figure(figure, path, dpi=100, bbox_inches='tight')


def find_image(data_config, split: str, file_name: str):
  """(uint8 `[H, W, 3]` image, label, class names) of `file_name`."""
  import tensorflow as tf

  from jaxmix.data import crops, tfds_source

  tfds_source.hide_accelerators()
  source = tfds_source.Source(data_config, split, 0, 1, drop_remainder=False)
  want = tf.constant(file_name.encode())
  ds = source.read(shuffle_seed=None).filter(
    lambda ex: tf.equal(ex['file_name'], want)
  )
  for example in ds.take(1):
    image = crops.decode_full(example['image_bytes']).numpy()
    label_feature = source.builder.info.features[data_config.label_key]
    names = getattr(label_feature, 'names', None) or [
      str(c) for c in range(data_config.num_classes)
    ]
    return image, int(example['label']), list(names)
  raise ValueError(
    f'file_name {file_name!r} is not in {source.describe()} (data_dir '
    f'{source.builder.data_dir_root}).'
  )
