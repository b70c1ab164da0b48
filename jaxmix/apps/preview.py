"""Draws the augmentations on real photos, like CutMix's "in a nutshell" figure.

  python -m jaxmix.apps.preview --out augment_preview.png \
    --video_out videomix_preview.png

Rows are four photos shipped with scikit-image (no download): a cat, a cup of
coffee, an astronaut and a rocket, centre-cropped and resized to `--size`.
Columns are Original, Cutout, Mixup, CutMix, Random Erasing, saliency-guided
CutMix, CMO and MixToken, each run with the public jaxmix API on
ImageNet-normalised float images and one-hot labels (so a fill of 0 is the
mean colour); the mixed label printed under each image is the label row the
op returned. Mixup and CutMix draw their weights and
boxes with jaxmix's samplers (alpha 1) and pair the photos as (cat, coffee)
and (astronaut, rocket) through their appliers, so every row shows a real
pair; the batch ops draw random partners instead. Saliency CutMix centres
the box on the partner's peak of a cheap contrast saliency (distance from the
image's mean colour, averaged over 16-pixel cells); CMO pastes from the
partner as if it came from the minority stream; MixToken applies its draw
(CutMix's rule on the token grid) with the fixed pairs to the photos cut into
ViT patch tokens (16-pixel patches, a 14 x 14 grid at 224 pixels) and to
their one-hot token labels, and the label under it is the mean of the mixed
token labels.

`--video_out` also draws VideoMix: the cat and the astronaut as clips of
`VIDEO_FRAMES` frames (the photo panning), the cat's clip mixed with the
astronaut's in each of the three modes, one row per mode with the returned
label weights (the kept-voxel fraction) beside it.

Needs matplotlib and scikit-image (`pip install jaxmix[train]`).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

import jaxmix
from jaxmix.io import command_line, paths

# scikit-image loader name -> class name shown in the figure.
PHOTOS = (
  ('chelsea', 'cat'),
  ('coffee', 'coffee'),
  ('astronaut', 'astronaut'),
  ('rocket', 'rocket'),
)
PARTNERS = (1, 0, 3, 2)  # Row i is mixed with row PARTNERS[i].
# A seed whose draws show every op clearly (seed 0 happens to put all four
# Cutout boxes in the same corner).
DEFAULT_SEED = 2
COLUMNS = (
  'Original',
  'Cutout',
  'Mixup',
  'CutMix',
  'Random Erasing',
  'Saliency CutMix',
  'CMO',
  'MixToken',
)
# MixToken's token grid: 14 x 14 (ViT-S/16 at 224 pixels), or the largest
# grid under it whose patches tile a smaller photo exactly.
TOKEN_GRID = 14
# The VideoMix figure: the cat's clip (row 0 of PHOTOS) mixed with the
# astronaut's (row 2), this many frames, each shifted by 1/32 of the width.
VIDEO_FRAMES = 6
VIDEO_PAIR = (0, 2)
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class Figure(NamedTuple):
  """What the picture shows, computed without rendering.

  Attributes:
    images: float32 ``[R, C, H, W, 3]`` display images in [0, 1], one row
      per photo and one column per entry of `COLUMNS`.
    labels: float32 ``[C, R, K]``, the label rows each op returned.
    texts: ``[R][C]`` label strings printed under the images.
    class_names: the K class names.
  """

  images: np.ndarray
  labels: np.ndarray
  texts: list[list[str]]
  class_names: tuple[str, ...]


def load_photos(size: int) -> np.ndarray:
  """The photos of `PHOTOS` as float32 ``[R, size, size, 3]`` in [0, 1]."""
  from skimage import data, transform

  photos = []
  for loader, _ in PHOTOS:
    photo = getattr(data, loader)()
    side = min(photo.shape[:2])
    top = (photo.shape[0] - side) // 2
    left = (photo.shape[1] - side) // 2
    square = photo[top : top + side, left : left + side] / 255.0
    photos.append(transform.resize(square, (size, size), anti_aliasing=True))
  return np.stack(photos).astype(np.float32)


def label_text(weights: np.ndarray, class_names: tuple[str, ...]) -> str:
  """'cat 0.62 / coffee 0.38': classes with weight >= 0.005, largest first."""
  order = np.argsort(-weights, kind='stable')
  return ' / '.join(
    f'{class_names[k]} {weights[k]:.2f}' for k in order if weights[k] >= 0.005
  )


def _contrast_saliency(images: jax.Array, cell: int) -> jax.Array:
  """Distance from each image's mean colour, averaged over cells ``[B, h, w]``."""
  distance = jnp.linalg.norm(
    images - images.mean((1, 2), keepdims=True), axis=-1
  )
  batch, height, width = distance.shape
  rows, cols = max(height // cell, 1), max(width // cell, 1)
  cropped = distance[:, : rows * (height // rows), : cols * (width // cols)]
  return cropped.reshape(batch, rows, height // rows, cols, width // cols).mean(
    (2, 4)
  )


def _check_size(size: int) -> None:
  if not isinstance(size, int) or size < 8:
    raise ValueError(f'`size` must be an int >= 8, got {size!r}.')


def token_grid(size: int) -> int:
  """The side of MixToken's token grid for `size`-pixel photos."""
  return max(g for g in range(1, TOKEN_GRID + 1) if size % g == 0)


def _mixtoken(key, images, labels, partners):
  """MixToken with the figure's fixed partners, back to pixels.

  The draw is `jaxmix.mixtoken`'s (`jaxmix.sample_cutmix` on the token grid)
  with the pairs fixed, applied as `mixtoken` applies it: tokens and token
  labels select, the class labels take the kept-token fraction. Returns the
  mixed images and the mean of the mixed token labels, which equals the
  class labels (tested).
  """
  count, size, _, channels = images.shape
  grid = token_grid(size)
  patch = size // grid

  def to_tokens(x):  # [B, H, W, C] -> [B, h, w, p * p * C]
    x = x.reshape(count, grid, patch, grid, patch, channels)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(count, grid, grid, -1)

  def to_pixels(t):
    t = t.reshape(count, grid, grid, patch, patch, channels)
    return t.transpose(0, 1, 3, 2, 4, 5).reshape(images.shape)

  token_labels = jnp.broadcast_to(
    labels[:, None, None], (count, grid, grid, labels.shape[-1])
  )
  draw = jaxmix.sample_cutmix(key, batch_size=count, height=grid, width=grid)
  draw = dataclasses.replace(draw, partners=partners)
  tokens, _, mixed_token_labels = jaxmix.apply_draw(
    (to_tokens(images), labels, token_labels),
    draw,
    roles=('mask', 'target', 'mask'),
  )
  return to_pixels(tokens), mixed_token_labels.mean((1, 2))


def _blend(images, labels, weight, partners):
  """Mixup's blend with the figure's fixed partners and weights `[B]`."""
  draw = jaxmix.make_draw(
    weight=weight,
    blend=weight,
    partners=partners,
    box=jaxmix.Box(0, 0, 0, 0),
    height=1,
    width=1,
  )
  return jaxmix.apply_draw((images, labels), draw, roles=('image', 'target'))


def _paste(images, labels, box, partners):
  """CutMix's paste of `box` with the figure's fixed partners; the label
  weight is the kept-pixel fraction."""
  _, height, width, _ = images.shape
  kept = 1.0 - jaxmix.box_area(box).astype(jnp.float32) / (height * width)
  draw = jaxmix.make_draw(
    weight=kept, partners=partners, box=box, height=height, width=width
  )
  return jaxmix.apply_draw((images, labels), draw, roles=('mask', 'target'))


def _saliency_cutmix(images, labels, partners, lam):
  """SaliencyMix with the figure's fixed partners: the box on the peak."""
  size = images.shape[1]
  peaks = jaxmix.salient_peaks(
    _contrast_saliency(images, 16), height=size, width=size
  )[partners]
  half = jnp.floor(size * jnp.sqrt(1.0 - lam)).astype(jnp.int32) // 2
  box = jaxmix.Box(
    *(
      jnp.clip(value, 0, size)
      for value in (
        peaks[:, 0] - half,
        peaks[:, 1] - half,
        peaks[:, 0] + half,
        peaks[:, 1] + half,
      )
    )
  )
  return _paste(images, labels, box, partners)


def build_figure(*, seed: int = DEFAULT_SEED, size: int = 224) -> Figure:
  """Runs every op of `COLUMNS` on the photos with a fixed seed.

  Args:
    seed: seed of the PRNG key shared by the ops.
    size: side of the square photos in pixels.

  Returns:
    The `Figure`.
  """
  _check_size(size)
  class_names = tuple(name for _, name in PHOTOS)
  count = len(PHOTOS)
  images = jnp.asarray((load_photos(size) - _MEAN) / _STD)
  labels = jaxmix.one_hot(jnp.arange(count), count)
  partners = jnp.asarray(PARTNERS, jnp.int32)
  keys = jax.random.split(jax.random.key(seed), 5)
  weight = jaxmix.sample_mix_weight(keys[1], alpha=1.0, shape=(count,))
  lam = jaxmix.sample_mix_weight(keys[2], alpha=1.0, shape=(count,))
  box = jaxmix.sample_cutmix_box(keys[3], height=size, width=size, weight=lam)
  outputs = (
    (images, labels),
    (jaxmix.cutout(keys[0], images, size=size // 2), labels),
    _blend(images, labels, weight, partners),
    _paste(images, labels, box, partners),
    (jaxmix.random_erasing(keys[4], images, prob=1.0, fill='pixel'), labels),
    _saliency_cutmix(images, labels, partners, lam),
    jaxmix.cmo(
      jax.random.fold_in(keys[0], 1),
      images,
      labels,
      images[partners],
      labels[partners],
      prob=1.0,
    ),
    _mixtoken(jax.random.fold_in(keys[0], 2), images, labels, partners),
  )
  shown = np.stack([np.asarray(x) for x, _ in outputs], axis=1)
  shown = np.clip(shown * _STD + _MEAN, 0.0, 1.0)
  returned = np.stack([np.asarray(y) for _, y in outputs])
  texts = [
    [label_text(returned[c, r], class_names) for c in range(len(COLUMNS))]
    for r in range(count)
  ]
  return Figure(shown, returned, texts, class_names)


def _image_grid(images: np.ndarray, *, row_height: float):
  """A matplotlib figure of images ``[R, C, H, W, 3]``, one axis each."""
  import matplotlib

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  rows, cols = images.shape[:2]
  fig, axes = plt.subplots(
    rows, cols, figsize=(2.1 * cols, row_height * rows), squeeze=False
  )
  for r in range(rows):
    for c in range(cols):
      axes[r, c].imshow(images[r, c], interpolation='nearest')
      axes[r, c].set_xticks([])
      axes[r, c].set_yticks([])
  return fig, axes


def _save(fig, path: str) -> None:
  """Writes `fig` to a PNG file (a URL works too) and closes it."""
  from matplotlib import pyplot as plt

  fig.tight_layout()
  paths.write_figure(fig, path, dpi=100)
  plt.close(fig)


def render(figure: Figure, path: str) -> None:
  """Draws `figure` as a grid of images with their labels to a PNG file."""
  fig, axes = _image_grid(figure.images, row_height=2.45)
  for r, row in enumerate(axes):
    for c, axis in enumerate(row):
      axis.set_xlabel(figure.texts[r][c], fontsize=8.5)
      if r == 0:
        axis.set_title(COLUMNS[c], fontsize=11, fontweight='bold')
  _save(fig, path)


class VideoFigure(NamedTuple):
  """The VideoMix picture, computed without rendering.

  Attributes:
    frames: float32 ``[M, T, H, W, 3]`` display frames in [0, 1]: the cat's
      clip mixed with the astronaut's, one row per mode of `jaxmix.videomix`.
    originals: float32 ``[2, T, H, W, 3]``, the two clips unmixed.
    labels: float32 ``[M, 2]``, the (cat, astronaut) weights returned.
    modes: the M mode names, in row order.
  """

  frames: np.ndarray
  originals: np.ndarray
  labels: np.ndarray
  modes: tuple[str, ...]


def load_clips(size: int) -> np.ndarray:
  """The `VIDEO_PAIR` photos as panning clips ``[2, T, size, size, 3]``."""
  photos = load_photos(size)[list(VIDEO_PAIR)]
  step = max(size // 32, 1)
  return np.stack(
    [
      np.stack([np.roll(photo, t * step, axis=1) for t in range(VIDEO_FRAMES)])
      for photo in photos
    ]
  )


def build_video_figure(
  *, seed: int = DEFAULT_SEED, size: int = 224
) -> VideoFigure:
  """Mixes the cat's clip with the astronaut's in every VideoMix mode.

  Each mode's region is `jaxmix.sample_videomix`'s draw with a fixed key,
  applied with the pair fixed (cat <- astronaut, astronaut <- cat) by
  `jaxmix.apply_draw`, as `jaxmix.videomix` applies it.
  """
  _check_size(size)
  clips = load_clips(size)
  videos = jnp.asarray((clips - _MEAN) / _STD)
  labels = jaxmix.one_hot(jnp.arange(2), 2)
  modes = ('spatial', 'temporal', 'cuboid')
  rows, weights = [], []
  for index, mode in enumerate(modes):
    draw = jaxmix.sample_videomix(
      jax.random.fold_in(jax.random.key(seed), index),
      batch_size=2,
      num_frames=VIDEO_FRAMES,
      height=size,
      width=size,
      mode=mode,
    )
    draw = dataclasses.replace(draw, partners=jnp.array([1, 0], jnp.int32))
    mixed, mixed_labels = jaxmix.apply_draw(
      (videos, labels), draw, roles=('image', 'target')
    )
    rows.append(np.asarray(mixed[0]))
    weights.append(np.asarray(mixed_labels[0]))
  frames = np.clip(np.stack(rows) * _STD + _MEAN, 0.0, 1.0)
  return VideoFigure(frames, clips, np.stack(weights), modes)


def render_video(figure: VideoFigure, path: str) -> None:
  """Draws `figure` as one row of frames per mode to a PNG file."""
  names = tuple(PHOTOS[r][1] for r in VIDEO_PAIR)
  fig, axes = _image_grid(figure.frames, row_height=2.3)
  for c, axis in enumerate(axes[-1]):
    axis.set_xlabel(f'frame {c}', fontsize=9)
  for r, mode in enumerate(figure.modes):
    axes[r, 0].set_ylabel(
      f'{mode}\n{label_text(figure.labels[r], names)}', fontsize=10
    )
  fig.suptitle('VideoMix', fontsize=12, fontweight='bold')
  _save(fig, path)


FLAGS = flags.FlagValues()
flags.DEFINE_string(
  'out', 'augment_preview.png', 'The PNG to write.', flag_values=FLAGS
)
flags.DEFINE_integer('seed', DEFAULT_SEED, 'Seed.', flag_values=FLAGS)
flags.DEFINE_integer('size', 224, 'Image side.', flag_values=FLAGS)
flags.DEFINE_string(
  'video_out', None, 'Also draw VideoMix to this PNG.', flag_values=FLAGS
)


def main(argv: list[str] | None = None) -> None:
  """Command line: `python -m jaxmix.apps.preview --out augment_preview.png`."""
  command_line.parse(FLAGS, argv, __doc__)
  render(build_figure(seed=FLAGS.seed, size=FLAGS.size), FLAGS.out)
  print(f'wrote {FLAGS.out}')
  if FLAGS.video_out:
    figure = build_video_figure(seed=FLAGS.seed, size=FLAGS.size)
    render_video(figure, FLAGS.video_out)
    print(f'wrote {FLAGS.video_out}')


if __name__ == '__main__':
  main()
