"""digit_render: renders one scene of handwritten digits on clutter.

The pixels behind the `digit_scenes` dataset (`jaxmix.datasets.digit_scenes`
holds the TFDS builder: splits, labels, JPEG encoding). Everything here is
numpy and PIL on data that ships inside pip packages, and every random draw
comes from the `np.random.Generator` passed in, in a fixed order: the
dataset's bytes depend on that order, so reordering draws changes every
prepared image.

* Digits: `sklearn.datasets.load_digits`, 1797 real 8x8 handwritten digits,
  upscaled with bicubic resampling to a height of 19-44 % of the image
  (12-28 px at 64x64; `DigitSizes` sets other ranges), stretched in width
  by 0.8-1.2, rotated by up to 15 degrees (a patch larger than the image is
  scaled down to fit), then sharpened with a smoothstep so the alpha mask has a crisp
  edge. Each digit gets a flat colour with a gentle ramp that differs from the
  background under it, and is alpha-composited in drawing order.
* Backgrounds: a bilinear colour gradient, a tinted crop of a texture or photo
  that ships with scikit-image, 3-8 antialiased random lines, arcs and blobs,
  and Gaussian pixel noise. The background is rendered first and kept, so
  `composite(background, objects)` reproduces the image exactly.
* Placement: digits of distinct classes at random positions; a digit that
  cannot be placed without covering more than 15 % of another one's box is
  dropped. A centred scene holds its digit near the image centre.
* Boxes: the tight box of the digit's pixels with alpha > 0.5, normalised
  (ymin, xmin, ymax, xmax) with pixel edges: row r spans [r / H, (r + 1) / H].
* Cost: the pixel noise comes from a fixed noise bank, cropped at random,
  because drawing fresh normals per image was the slowest step.
"""

import functools
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
NUM_CLASSES = 10
SEED = 2019  # Fixes the noise bank; digit_scenes seeds its examples with it.
ALPHA_THRESHOLD = 0.5
MAX_OVERLAP = 0.15  # Box intersection over the smaller box's area.
_TEXTURES = ('brick', 'grass', 'gravel', 'camera', 'coins', 'moon', 'text')
_PHOTOS = ('coffee', 'astronaut', 'chelsea', 'rocket')


class DigitSizes(NamedTuple):
  """How large digits are drawn: the knob of the objects' image coverage.

  height: (low, high) of the digit's height before rotation, as a fraction
    of the image side, drawn uniformly in whole pixels.
  stretch: (low, high) of the width-over-height stretch, drawn uniformly.
  """

  height: tuple[float, float] = (0.19, 0.44)
  stretch: tuple[float, float] = (0.8, 1.2)


SMALL_DIGITS = DigitSizes()


class SceneObject(NamedTuple):
  """One digit in a scene; arrays are full-image size [H, W] / [H, W, 3]."""

  label: int
  source_id: int
  bbox: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax in [0, 1].
  alpha: np.ndarray  # float32 [H, W] in [0, 1].
  paint: np.ndarray  # float32 [H, W, 3] in [0, 1].


class Scene(NamedTuple):
  """A rendered scene and its parts."""

  image: np.ndarray  # float32 [H, W, 3] in [0, 1].
  background: np.ndarray  # float32 [H, W, 3], the image without digits.
  objects: list[SceneObject]  # In drawing order (later ones on top).


@functools.cache
def digit_images() -> tuple[np.ndarray, np.ndarray]:
  """Returns sklearn's handwritten digits and their labels (read-only).

  Returns:
    images float32 [N, 12, 12] in [0, 1] (the 8x8 digits with a 2-pixel
    empty border, so upscaling fades to zero) and labels int64 [N], N = 1797.
  """
  from sklearn.datasets import load_digits  # Bundled with sklearn, offline.

  data = load_digits()
  images = np.pad(data.images / 16.0, ((0, 0), (2, 2), (2, 2)))
  images = images.astype(np.float32)
  labels = data.target
  images.flags.writeable = labels.flags.writeable = False  # Cached, shared.
  return images, labels


@functools.cache
def _textures() -> tuple[Image.Image, ...]:
  """Grayscale textures and photos that ship with scikit-image."""
  import skimage.data

  out = []
  for name in _TEXTURES + _PHOTOS:
    pic = Image.fromarray(getattr(skimage.data, name)()).convert('L')
    out.append(pic.reduce(2))  # Keeps crops at 64 px textured, not blurred.
  return tuple(out)


@functools.cache
def _noise_bank(size: int) -> np.ndarray:
  """Fixed standard normal noise [4 * size, 4 * size, 3]; crops are cheap."""
  rng = np.random.default_rng([SEED, size])
  return rng.standard_normal((4 * size, 4 * size, 3), dtype=np.float32)


@functools.cache
def _ramp(size: int) -> np.ndarray:
  """A vertical shading ramp [size, 1, 1] from -0.08 to 0.08."""
  return np.linspace(-0.08, 0.08, size, dtype=np.float32)[:, None, None]


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
  """Renders a cluttered background.

  Args:
    rng: the only source of randomness.
    size: the image side in pixels.

  Returns:
    float32 [size, size, 3] in [0, 1].
  """
  # PIL does the uint8 work: a bilinear 2x2 -> size gradient, then a
  # tinted texture crop blended over it.
  corners = rng.integers(13, 243, (2, 2, 3), dtype=np.uint8)
  pic = Image.fromarray(corners).resize((size, size), Image.Resampling.BILINEAR)
  tex = _textures()[rng.integers(len(_TEXTURES) + len(_PHOTOS))]
  side = int(rng.integers(min(size, *tex.size), min(tex.size) + 1))
  x0 = int(rng.integers(tex.size[0] - side + 1))
  y0 = int(rng.integers(tex.size[1] - side + 1))
  crop = tex.resize(
    (size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side)
  )
  tint = rng.uniform(0, 255, (2, 1, 3))  # Black and white map to these.
  lut = tint[0] + (tint[1] - tint[0]) * np.linspace(0, 1, 256)[:, None]
  crop = Image.fromarray(np.round(lut).astype(np.uint8)[np.asarray(crop)])
  pic = Image.blend(pic, crop, float(rng.uniform(0.2, 0.6)))

  # Strokes are drawn at 2x and box-filtered down, to antialias them; the
  # nearest-upscaled background comes back unchanged where nothing is drawn.
  big = 2 * size
  pic = pic.resize((big, big), Image.Resampling.NEAREST)
  draw = ImageDraw.Draw(pic, 'RGBA')  # Blends each translucent shape.
  for _ in range(int(rng.integers(3, 9))):
    fill = (*rng.integers(0, 256, 3).tolist(), int(rng.integers(80, 200)))
    kind, width = rng.integers(3), int(rng.integers(2, 5))
    xy = rng.uniform(-0.1 * big, 1.1 * big, 4)
    if kind == 0:
      draw.line(xy.tolist(), fill=fill, width=width)
    elif kind == 1:
      box = [*np.minimum(xy[:2], xy[2:]), *np.maximum(xy[:2], xy[2:]) + 4]
      start = float(rng.uniform(0, 360))
      end = start + float(rng.uniform(60, 300))
      draw.arc(box, start, end, fill=fill, width=width)
    else:
      centre, radii = xy[:2], rng.uniform(0.03 * big, 0.12 * big, 2)
      draw.ellipse([*(centre - radii), *(centre + radii)], fill=fill)
  img = np.asarray(pic.reduce(2), np.float32) / 255.0
  y0, x0 = rng.integers(3 * size + 1, size=2)
  noise = _noise_bank(size)[y0 : y0 + size, x0 : x0 + size]
  img += noise * np.float32(rng.uniform(0.01, 0.04))
  return np.clip(img, 0.0, 1.0)


def _digit_alpha(
  rng: np.random.Generator,
  digit: np.ndarray,
  height: int,
  stretch: tuple[float, float] = SMALL_DIGITS.stretch,
) -> np.ndarray:
  """Upscaled, stretched, rotated, sharpened digit alpha, cropped to support.

  Args:
    rng: the only source of randomness.
    digit: float32 [12, 12] in [0, 1], one of `digit_images()`.
    height: the height in pixels before rotation.
    stretch: the range of the width-over-height factor.

  Returns:
    float32 [h, w] in [0, 1] with no all-zero border row or column.
  """
  width = height * rng.uniform(*stretch)
  pic = Image.fromarray(digit)  # A 12x12 float ('F') image.
  pic = pic.resize(
    (round(width * 1.5), round(height * 1.5)), Image.Resampling.BICUBIC
  )
  pic = pic.rotate(
    float(rng.uniform(-15, 15)), Image.Resampling.BICUBIC, expand=True
  )
  x = np.clip((np.asarray(pic) - 0.3) / 0.35, 0.0, 1.0)
  alpha = x * x * (3 - 2 * x)  # Smoothstep: a crisp edge, exact zeros.
  rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
  return alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(patch: np.ndarray, size: int) -> np.ndarray:
  """The patch [h, w], scaled down (bilinear) to fit a size x size image."""
  if max(patch.shape) <= size:
    return patch  # Always so for SMALL_DIGITS: their bytes stay pinned.
  scale = size / max(patch.shape)
  shape = [max(1, min(size, round(n * scale))) for n in patch.shape]
  pic = Image.fromarray(patch).resize(shape[::-1], Image.Resampling.BILINEAR)
  return np.clip(np.asarray(pic), 0.0, 1.0)


def _tight_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
  """Half-open pixel box (top, left, bottom, right) of alpha [h, w] > 0.5."""
  rows = np.flatnonzero((alpha > ALPHA_THRESHOLD).any(1))
  cols = np.flatnonzero((alpha > ALPHA_THRESHOLD).any(0))
  return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _overlap(a: tuple, b: tuple) -> float:
  """Intersection of two (top, left, bottom, right) boxes over the smaller."""
  h = min(a[2], b[2]) - max(a[0], b[0])
  w = min(a[3], b[3]) - max(a[1], b[1])
  area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
  return max(h, 0) * max(w, 0) / area


def composite(background: np.ndarray, objects: list[SceneObject]) -> np.ndarray:
  """Alpha-composites objects over a background, in drawing order.

  Args:
    background: [H, W, 3] in [0, 1]; left unchanged.
    objects: full-image SceneObjects, later ones drawn on top.

  Returns:
    float32 [H, W, 3], a new array.
  """
  img = background.astype(np.float32)  # A copy.
  for obj in objects:
    img += obj.alpha[..., None] * (obj.paint - img)
  return img


def render_scene(
  rng: np.random.Generator,
  pool: list[np.ndarray],
  *,
  num_objects: int,
  size: int = IMAGE_SIZE,
  centred: bool = False,
  sizes: DigitSizes = SMALL_DIGITS,
) -> Scene:
  """Renders up to num_objects digits of distinct classes on clutter.

  Args:
    rng: the only source of randomness.
    pool: 10 arrays; pool[c] holds indices into `digit_images()` of class c
      that this scene may use (an empty one excludes the class).
    num_objects: digits to try to place (1 to 10); overlapping ones drop.
    size: the image side in pixels, >= 16.
    centred: place one digit near the centre (the annotator split).
    sizes: the digits' height and stretch ranges.

  Returns:
    The Scene: image and background float32 [size, size, 3] and 1 to
    num_objects objects; `composite(scene.background, scene.objects)` is
    its image.
  """
  if not 1 <= num_objects <= NUM_CLASSES:
    raise ValueError(f'num_objects must be in [1, 10], got {num_objects}.')
  if size < 16:
    raise ValueError(f'size must be >= 16 pixels, got {size}.')
  if len(pool) != NUM_CLASSES:
    raise ValueError(f'pool must list 10 classes, got {len(pool)}.')
  for name, (low, high) in zip(sizes._fields, sizes):
    if not 0 < low <= high <= (1 if name == 'height' else 4):
      raise ValueError(
        f'sizes.{name} must be 0 < low <= high, got {(low, high)}.'
      )
  classes = [c for c in range(NUM_CLASSES) if len(pool[c])]
  if len(classes) < num_objects:
    raise ValueError(f'pool has {len(classes)} classes, need {num_objects}.')
  images = digit_images()[0]
  background = render_background(rng, size)
  objects, boxes = [], []
  for c in rng.choice(classes, num_objects, replace=False):
    source_id = int(rng.choice(pool[c]))
    low, high = (round(f * size) for f in sizes.height)
    height = int(rng.integers(low, high + 1))
    patch = _fit(
      _digit_alpha(rng, images[source_id], height, sizes.stretch), size
    )
    (ph, pw), inner = patch.shape, _tight_box(patch)
    for _ in range(20):  # Rejection sampling of a position that fits.
      if centred:
        yx = (size - np.array([ph, pw])) / 2 + rng.uniform(-1, 1, 2) * size / 8
        top, left = np.clip(np.round(yx), 0, [size - ph, size - pw]).astype(int)
      else:
        top, left = rng.integers(0, [size - ph + 1, size - pw + 1])
      box = (inner[0] + top, inner[1] + left, inner[2] + top, inner[3] + left)
      if all(_overlap(box, b) <= MAX_OVERLAP for b in boxes):
        break
    else:
      continue
    alpha = np.zeros((size, size), np.float32)
    alpha[top : top + ph, left : left + pw] = patch
    under = background[box[0] : box[2], box[1] : box[3]].mean((0, 1))
    for _ in range(16):  # A colour that stands out from what lies under it.
      colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
      if np.linalg.norm(colour - under) >= 0.5:
        break
    ramp = _ramp(size) if rng.integers(2) else _ramp(size).transpose(1, 0, 2)
    paint = np.clip(colour + ramp, 0.0, 1.0)  # A gentle shading ramp.
    paint = np.broadcast_to(paint, (size, size, 3))  # A read-only view.
    bbox = tuple(float(v) / size for v in box)
    objects.append(SceneObject(int(c), source_id, bbox, alpha, paint))
    boxes.append(box)
  return Scene(composite(background, objects), background, objects)
