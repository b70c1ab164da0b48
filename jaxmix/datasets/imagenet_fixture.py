"""A tiny, real-format ImageNet (ILSVRC2012) made from scikit-image photos.

Writes the two archives that the TFDS `imagenet2012` builder reads from its
manual directory, in the real layout:

* `ILSVRC2012_img_train.tar`: a tar of per-synset tars `nXXXXXXXX.tar`, each
  holding JPEGs named `nXXXXXXXX_<k>.JPEG`;
* `ILSVRC2012_img_val.tar`: flat `ILSVRC2012_val_000000NN.JPEG` files.

The builder takes validation labels from its own `validation_labels.txt`,
matched line by line to the sorted validation file names, so the i-th
validation image here gets line i of that file; nothing else is needed. The
training synsets are the first distinct synsets of that file, so that the
validation images belong to training classes where possible.

Images are random crops of the photos shipped inside `skimage.data` (no
download), resized to random ImageNet-like sizes and aspect ratios; some are
grayscale JPEGs, as in ImageNet. Write a benchmark set with `build(DIR,
num_classes=10, images_per_class=100)`, then prepare it with `prepare` or
`tfds build imagenet2012 --data_dir DATA --manual_dir DIR`.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence

import numpy as np

# Photos in skimage.data that load offline; grayscale ones stay grayscale.
_PHOTOS = (
  'astronaut',
  'chelsea',
  'coffee',
  'rocket',
  'hubble_deep_field',
  'immunohistochemistry',
  'camera',
  'coins',
  'retina',
  'brick',
)


def _validation_synsets() -> list[str]:
  """The synset of each validation image, in sorted file-name order."""
  from tensorflow_datasets.datasets.imagenet2012 import imagenet_common

  path = os.path.join(
    os.path.dirname(imagenet_common.__file__), 'validation_labels.txt'
  )
  with open(path) as f:
    return f.read().split()


def _load_photos() -> list[np.ndarray]:
  import skimage.data

  return [np.asarray(getattr(skimage.data, name)()) for name in _PHOTOS]


def random_photo(
  rng: np.random.Generator, photo: np.ndarray, min_side: int, max_side: int
) -> np.ndarray:
  """A random crop of `photo` resized to a random ImageNet-like shape.

  Args:
    rng: numpy generator.
    photo: uint8 `[H, W]` or `[H, W, 3]`.
    min_side: smallest output side.
    max_side: largest output side.

  Returns:
    uint8 `[h, w]` or `[h, w, 3]`, with h != w in general.
  """
  from PIL import Image

  h, w = photo.shape[:2]
  scale = rng.uniform(0.4, 1.0)
  ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
  ch = min(h, round(np.sqrt(h * w * scale / ratio)))
  cw = min(w, round(np.sqrt(h * w * scale * ratio)))
  top = int(rng.integers(0, h - ch + 1))
  left = int(rng.integers(0, w - cw + 1))
  crop = photo[top : top + ch, left : left + cw]
  out_h = int(rng.integers(min_side, max_side + 1))
  out_w = int(np.clip(out_h * rng.uniform(0.75, 1.5), min_side, 2 * max_side))
  resized = Image.fromarray(crop).resize((out_w, out_h), Image.BILINEAR)
  return np.asarray(resized)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
  """JPEG bytes of a uint8 `[h, w]` or `[h, w, 3]` array."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='JPEG', quality=quality)
  return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  info.mtime = 0
  tar.addfile(info, io.BytesIO(data))


def build(
  out_dir: str,
  *,
  num_classes: int = 3,
  images_per_class: int = 4,
  num_validation: int = 6,
  min_side: int = 48,
  max_side: int = 96,
  corrupt: Sequence[str] = (),
  seed: int = 0,
) -> dict[str, list[tuple[str, str]]]:
  """Writes the train and validation tars into `out_dir`.

  Args:
    out_dir: the manual directory (created if missing).
    num_classes: number of training synsets.
    images_per_class: JPEGs per training synset.
    num_validation: validation JPEGs (labels from TFDS' own label file).
    min_side: smallest image side in pixels.
    max_side: largest image height in pixels (widths up to 2x).
    corrupt: file names (e.g. `'n01751748_1.JPEG'`) whose JPEG is truncated
      to a header, to test error handling.
    seed: seed of the image sampling.

  Returns:
    {'train': [(file_name, synset)], 'validation': [(file_name, synset)]}.
  """
  for arg, value in (
    ('num_classes', num_classes),
    ('images_per_class', images_per_class),
  ):
    if value < 1:
      raise ValueError(f'{arg} must be >= 1, got {value}.')
  if not 8 <= min_side <= max_side:
    raise ValueError(
      f'need 8 <= min_side <= max_side, got {min_side}, {max_side}'
    )
  val_synsets = _validation_synsets()
  synsets = list(dict.fromkeys(val_synsets))[:num_classes]
  photos = _load_photos()
  rng = np.random.default_rng(seed)
  corrupt = set(corrupt)
  manifest: dict[str, list[tuple[str, str]]] = {'train': [], 'validation': []}

  def jpeg(name: str, class_index: int) -> bytes:
    photo = photos[class_index % len(photos)]
    data = encode_jpeg(random_photo(rng, photo, min_side, max_side))
    return data[:200] if name in corrupt else data

  os.makedirs(out_dir, exist_ok=True)
  train_path = os.path.join(out_dir, 'ILSVRC2012_img_train.tar')
  with tarfile.open(train_path, 'w') as outer:
    for c, synset in enumerate(synsets):
      inner_bytes = io.BytesIO()
      with tarfile.open(fileobj=inner_bytes, mode='w') as inner:
        for k in range(images_per_class):
          name = f'{synset}_{k + 1}.JPEG'
          _add_bytes(inner, name, jpeg(name, c))
          manifest['train'].append((name, synset))
      _add_bytes(outer, f'{synset}.tar', inner_bytes.getvalue())
  val_path = os.path.join(out_dir, 'ILSVRC2012_img_val.tar')
  with tarfile.open(val_path, 'w') as tar:
    for i in range(num_validation):
      name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
      synset = val_synsets[i]
      c = synsets.index(synset) if synset in synsets else i
      _add_bytes(tar, name, jpeg(name, c))
      manifest['validation'].append((name, synset))
  return manifest


def prepare(manual_dir: str, data_dir: str):
  """Runs the real TFDS `imagenet2012` builder on `manual_dir`.

  Args:
    manual_dir: a directory written by `build`.
    data_dir: the TFDS data directory to prepare the dataset in.

  Returns:
    The prepared `tfds.core.DatasetBuilder`.
  """
  import tensorflow_datasets as tfds

  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
  )
  return builder
