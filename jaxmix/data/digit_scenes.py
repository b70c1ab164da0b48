"""digit_scenes: an offline TFDS dataset of small multi-digit scene images.

jaxmix's default job must train, evaluate and show the CutMix and ReLabel
claims on a machine with no ImageNet and no internet. This builder prepares,
in seconds and from data that ships inside pip packages, a small dataset with
ImageNet's shape of problems: objects at random positions and scales on
cluttered backgrounds, and one label per image even when the image holds
several objects.

Design choices:

* Source: `sklearn.datasets.load_digits`, 1797 real 8x8 handwritten digits.
  The source digits are split per class, with a fixed seed, into disjoint
  pools (train 50 %, validation 10 %, test 10 %, annotator 30 %), so no
  source digit appears in two splits. `objects/source_id` records the index.
* Digits are upscaled with bicubic resampling to a height of 19-44 % of the
  image (12-28 px at 64x64), stretched in width by 0.8-1.2, rotated by up to
  15 degrees, then sharpened with a smoothstep so the alpha mask has a crisp
  edge. Each digit gets a flat colour with a gentle ramp that differs from the
  background under it, and is alpha-composited in drawing order.
* Backgrounds: a bilinear colour gradient, a tinted crop of a texture or photo
  that ships with scikit-image, 3-8 antialiased random lines, arcs and blobs,
  and Gaussian pixel noise. The background is rendered first and kept, so
  `composite(background, objects)` reproduces the image exactly.
* Splits: train / validation / test hold 1, 2 or 3 digits of distinct classes
  (probabilities 0.5 / 0.3 / 0.2); a digit that cannot be placed without
  covering more than 15 % of another one's box is dropped. `annotator` holds
  exactly one digit near the centre: the annotator's "extra data".
* `label` is the "main" object, like ImageNet's one label: the digit with the
  largest box area, ties to the first drawn. Other digits are label noise.
* `objects/bbox` is the tight box of the digit's pixels with alpha > 0.5,
  normalised (ymin, xmin, ymax, xmax) with pixel edges: row r spans
  [r / H, (r + 1) / H].
* Images are JPEG (quality 95, 4:4:4 chroma, about 5 KB each), so
  ImageNet-style `decode_and_crop_jpeg` pipelines run unchanged. Randomness
  comes from one `np.random.Generator` per (seed, split, example index), so
  prepares are byte-identical (for the same numpy, Pillow and libjpeg) and any
  example can be regenerated alone with `generate_example`.
* Cost: about 0.7 ms of one CPU core per example, most of it Python overhead
  of the many small PIL / numpy calls, plus TFDS's writing and the import of
  TensorFlow; the default config (19k images, 90 MB) takes about 25 CPU
  seconds, serially. The pixel noise comes from a fixed noise bank, cropped
  at random, because drawing fresh normals per image was the slowest step.

Prepare with `prepare(data_dir)` or
`python -m jaxmix.data.digit_scenes --data_dir DIR`. Importing the module
registers the builder as 'digit_scenes'; the 'small' config is a tiny
version for tests and smoke runs.
"""

import argparse
import dataclasses
import functools
import io
import time
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
NUM_CLASSES = 10
SEED = 2019
ALPHA_THRESHOLD = 0.5
SPLITS = ('train', 'validation', 'test', 'annotator')
POOL_FRACTIONS = (0.5, 0.1, 0.1, 0.3)  # Share of source digits, per split.
NUM_OBJECTS_PROBS = (0.5, 0.3, 0.2)  # P(1, 2, 3 digits) in scene splits.
MAX_OVERLAP = 0.15  # Box intersection over the smaller box's area.
_TEXTURES = ('brick', 'grass', 'gravel', 'camera', 'coins', 'moon', 'text')
_PHOTOS = ('coffee', 'astronaut', 'chelsea', 'rocket')


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
def source_digits() -> tuple[np.ndarray, np.ndarray, dict]:
  """Returns sklearn's digits, their labels and the per-split pools.

  Returns:
    images float32 [N, 12, 12] in [0, 1] (the 8x8 digits with a 2-pixel
    empty border, so upscaling fades to zero), labels int64 [N], and
    pools[split][class] = sorted source indices for that split and class.
  """
  from sklearn.datasets import load_digits  # Bundled with sklearn, offline.

  data = load_digits()
  images = np.pad(data.images / 16.0, ((0, 0), (2, 2), (2, 2)))
  images = images.astype(np.float32)
  images.flags.writeable = False  # Cached and shared: keep it intact.
  pools = {split: [] for split in SPLITS}
  edges = np.cumsum((0.0, *POOL_FRACTIONS))
  for c in range(NUM_CLASSES):
    ids = np.flatnonzero(data.target == c)
    ids = np.random.default_rng([SEED, c]).permutation(ids)
    cuts = np.round(edges * len(ids)).astype(int)
    for s, split in enumerate(SPLITS):
      pools[split].append(np.sort(ids[cuts[s] : cuts[s + 1]]))
  return images, data.target, pools


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
  """A cluttered background, float32 [size, size, 3] in [0, 1]."""
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
  rng: np.random.Generator, digit: np.ndarray, height: int
) -> np.ndarray:
  """Upscaled, stretched, rotated, sharpened digit alpha, cropped to support."""
  width = height * rng.uniform(0.8, 1.2)
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


def _tight_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
  """Half-open pixel box (top, left, bottom, right) of alpha > threshold."""
  rows = np.flatnonzero((alpha > ALPHA_THRESHOLD).any(1))
  cols = np.flatnonzero((alpha > ALPHA_THRESHOLD).any(0))
  return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _overlap(a: tuple, b: tuple) -> float:
  """Intersection of two pixel boxes over the smaller one's area."""
  h = min(a[2], b[2]) - max(a[0], b[0])
  w = min(a[3], b[3]) - max(a[1], b[1])
  area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
  return max(h, 0) * max(w, 0) / area


def composite(background: np.ndarray, objects: list[SceneObject]) -> np.ndarray:
  """Alpha-composites objects over background [H, W, 3] in drawing order."""
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
) -> Scene:
  """Renders up to num_objects digits of distinct classes on clutter.

  Args:
    rng: the only source of randomness.
    pool: per class, the source digit indices this split may use.
    num_objects: digits to try to place (1 to 10); overlapping ones drop.
    size: the image side in pixels.
    centred: place one digit near the centre (the annotator split).

  Returns:
    The Scene; `composite(scene.background, scene.objects)` is its image.
  """
  if not 1 <= num_objects <= NUM_CLASSES:
    raise ValueError(f'num_objects must be in [1, 10], got {num_objects}.')
  if size < 16:
    raise ValueError(f'size must be >= 16 pixels, got {size}.')
  if len(pool) != NUM_CLASSES:
    raise ValueError(f'pool must list 10 classes, got {len(pool)}.')
  classes = [c for c in range(NUM_CLASSES) if len(pool[c])]
  if len(classes) < num_objects:
    raise ValueError(f'pool has {len(classes)} classes, need {num_objects}.')
  images = source_digits()[0]
  background = render_background(rng, size)
  objects, boxes = [], []
  for c in rng.choice(classes, num_objects, replace=False):
    source_id = int(rng.choice(pool[c]))
    height = int(rng.integers(round(0.19 * size), round(0.44 * size) + 1))
    patch = _digit_alpha(rng, images[source_id], height)
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


def main_object(objects: list[SceneObject]) -> int:
  """Index of the main object: largest box area, ties to the first drawn."""
  areas = [(o.bbox[2] - o.bbox[0]) * (o.bbox[3] - o.bbox[1]) for o in objects]
  return int(np.argmax(np.round(areas, 6)))


def generate_example(
  split: str, index: int, *, size: int = IMAGE_SIZE
) -> tuple[dict, Scene]:
  """Regenerates example `index` of `split` exactly as the builder writes it.

  Returns:
    The TFDS feature dict (JPEG bytes as the image) and the rendered Scene.
  """
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')
  if index < 0:
    raise ValueError(f'index must be >= 0, got {index}.')
  rng = np.random.default_rng([SEED, SPLITS.index(split), index])
  if split == 'annotator':
    num = 1
  else:
    num = int(rng.choice(len(NUM_OBJECTS_PROBS), p=NUM_OBJECTS_PROBS)) + 1
  pool = source_digits()[2][split]
  scene = render_scene(
    rng, pool, num_objects=num, size=size, centred=split == 'annotator'
  )
  pixels = np.round(np.clip(scene.image, 0, 1) * 255).astype(np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'JPEG', quality=95, subsampling=0)
  objects = scene.objects
  example = {
    'image': buffer.getvalue(),
    'label': objects[main_object(objects)].label,
    'file_name': f'{split}_{index:06d}.jpg',
    'num_objects': len(objects),
    'objects': {
      'label': [o.label for o in objects],
      'bbox': [tfds.features.BBox(*o.bbox) for o in objects],
      'source_id': [o.source_id for o in objects],
    },
  }
  return example, scene


@dataclasses.dataclass
class DigitScenesConfig(tfds.core.BuilderConfig):
  """Image side in pixels and the number of examples of every split."""

  image_size: int = IMAGE_SIZE
  split_sizes: tuple[tuple[str, int], ...] = ()


# Run as a script, this file is `__main__`; the CLI then imports the module by
# its real name, which registers the builder once, where TFDS expects it.
class DigitScenes(
  tfds.core.GeneratorBasedBuilder, skip_registration=__name__ == '__main__'
):
  """Small scenes of 1-3 handwritten digits on clutter, prepared offline."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}  # noqa: RUF012
  BUILDER_CONFIGS = [  # noqa: RUF012
    DigitScenesConfig(
      name='default',
      description='64x64; 10k train, 2k validation, 2k test, 5k annotator.',
      split_sizes=tuple(zip(SPLITS, (10_000, 2_000, 2_000, 5_000))),
    ),
    DigitScenesConfig(
      name='small',
      description='64x64; a tiny version for tests and smoke runs.',
      split_sizes=tuple(zip(SPLITS, (256, 64, 64, 128))),
    ),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    names = [str(c) for c in range(NUM_CLASSES)]
    # DatasetInfo directly: dataset_info_from_configs would take a README.md
    # that happens to sit in this package as the dataset's description.
    return tfds.core.DatasetInfo(
      builder=self,
      description='Scenes of 1-3 real handwritten digits (scikit-learn) '
      'on cluttered backgrounds; label is the largest digit.',
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(
            shape=(size, size, 3), encoding_format='jpeg'
          ),
          'label': tfds.features.ClassLabel(names=names),
          'file_name': tfds.features.Text(),
          'num_objects': tfds.features.Scalar(dtype=np.int32),
          'objects': tfds.features.Sequence(
            {
              'label': tfds.features.ClassLabel(names=names),
              'bbox': tfds.features.BBoxFeature(),
              'source_id': tfds.features.Scalar(dtype=np.int32),
            }
          ),
        }
      ),
      supervised_keys=('image', 'label'),
      homepage='https://archive.ics.uci.edu/dataset/80',
      citation='Alpaydin, E. and Kaynak, C. (1998). Optical Recognition of '
      'Handwritten Digits. UCI Machine Learning Repository.',
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything comes from installed packages.
    return {
      split: self._generate_examples(split, count)
      for split, count in self.builder_config.split_sizes
    }

  def _generate_examples(self, split: str, count: int):
    size = self.builder_config.image_size
    for index in range(count):
      example, _ = generate_example(split, index, size=size)
      yield example['file_name'], example


def prepare(
  data_dir: str, config: str | DigitScenesConfig = 'default'
) -> DigitScenes:
  """Prepares digit_scenes/<config> under data_dir (no-op if already there).

  Args:
    data_dir: the TFDS data_dir to write to.
    config: 'default', 'small', or a DigitScenesConfig of your own.

  Returns:
    The prepared builder; read it with `builder.as_dataset(split=...)`.
  """
  builder = DigitScenes(config=config, data_dir=data_dir)
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(try_download_gcs=False)
  )
  return builder


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data_dir', required=True, help='TFDS data_dir.')
  parser.add_argument('--config', default='default', help='default | small')
  args = parser.parse_args(argv)
  start = time.perf_counter()
  builder = prepare(args.data_dir, args.config)
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  seconds = time.perf_counter() - start
  print(f'{builder.data_dir}: {splits} in {seconds:.1f} s')


if __name__ == '__main__':
  from jaxmix.data import digit_scenes

  digit_scenes.main()
