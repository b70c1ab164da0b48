"""Tiny real-format source files for the TFDS builders of the eval suites.

The real TFDS builders (`imagenet2012_real`, `imagenet_v2`, `imagenet_a`,
`caltech_birds2011`, ...) run on files written here, in the layouts of the
official releases; `prepare` feeds the files they would download through a
patched `tfds.download.DownloadManager` (as TFDS's own builder tests do), so
nothing downloads. Archives are still extracted by TFDS itself.

Images are solid colours that encode a class (`class_colour`); a
`PlantedRun` reads the colour back and predicts that class, so every suite's
numbers can be worked out by hand from the planted predictions and labels.
"""

import contextlib
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from unittest import mock

import jax
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxmix.configs import default
from jaxmix.datasets import imagenet_fixture
from jaxmix.evaluate import runs
from jaxmix.train import steps

NUM_CLASSES = 1000
_STEP = 25  # colour levels 12, 37, ..., 237: 10 per channel, 1000 classes


def class_colour(label: int) -> tuple[int, int, int]:
  """The RGB colour that encodes class `label` (three decimal digits)."""
  digits = (label // 100, label // 10 % 10, label % 10)
  return tuple(12 + _STEP * d for d in digits)


def decode_classes(images: np.ndarray) -> np.ndarray:
  """Classes `[B]` encoded by the mean colour of uint8 `[B, H, W, 3]`."""
  mean = np.asarray(images, np.float64).mean(axis=(1, 2))
  digits = np.clip(np.rint((mean - 12) / _STEP), 0, 9).astype(np.int64)
  return digits @ np.array([100, 10, 1])


def planted_logits(pred: np.ndarray, num_classes: int) -> np.ndarray:
  """Logits `[B, K]`: 5 at `pred`, then 4, 3, 2, 1 at the next classes.

  The top-5 are `pred, pred + 1, ..., pred + 4` (mod K), every other logit
  is 0.
  """
  logits = np.zeros((len(pred), num_classes), np.float32)
  for j in range(5):
    logits[np.arange(len(pred)), (pred + j) % num_classes] = 5 - j
  return logits


def _solid(label: int, height: int, width: int) -> np.ndarray:
  colour = np.asarray(class_colour(label), np.uint8)
  return np.broadcast_to(colour, (height, width, 3)).copy()


def solid_jpeg(label: int, height: int = 24, width: int = 32) -> bytes:
  """A JPEG of the colour of `label` (decodes within 2 levels of it)."""
  return imagenet_fixture.encode_jpeg(_solid(label, height, width), 95)


def solid_png(label: int, height: int = 24, width: int = 32) -> bytes:
  """A PNG of the colour of `label`."""
  buffer = io.BytesIO()
  Image.fromarray(_solid(label, height, width)).save(buffer, format='PNG')
  return buffer.getvalue()


class PlantedRun(runs.Run):
  """A `Run` whose logits are `planted_logits` of the images' colours."""

  def logits_fn(self, images) -> jax.Array:
    logits = planted_logits(
      decode_classes(np.asarray(images)), self.num_classes
    )
    # Sharded like the images, as the jitted model's logits are.
    return jax.device_put(logits, getattr(images, 'sharding', None))


def planted_run(workdir: str, image_size: int = 32) -> PlantedRun:
  """A 1000-class `PlantedRun` with the trainer's eval crop (0.875)."""
  # A full config, as a recorded run's is after `run_dir.upgrade`.
  config = default.get_config()
  config.image_size = image_size
  config.data.update(num_classes=NUM_CLASSES, crop_pct=0.875, data_dir=None)
  return PlantedRun(
    workdir=workdir,
    name='planted',
    config=config,
    step=0,
    use_ema=False,
    model_def=None,
    variables=None,
    mesh=steps.create_mesh(),
  )


def imagenet_names() -> list[str]:
  """The 1000 ImageNet wnids in TFDS label order."""
  from tensorflow_datasets.datasets.imagenet2012 import imagenet_common

  names_file = imagenet_common.label_names_file()
  return tfds.features.ClassLabel(names_file=names_file).names


def validation_labels(count: int) -> list[int]:
  """Labels of ILSVRC2012_val_00000001..count (TFDS's label file)."""
  position = {w: i for i, w in enumerate(imagenet_names())}
  return [position[w] for w in imagenet_fixture._validation_synsets()[:count]]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def write_tar(path: str, files: Mapping[str, bytes]) -> str:
  """A tar (gzipped when `path` ends in .gz or .tgz) of name -> bytes."""
  mode = 'w:gz' if path.endswith(('.gz', '.tgz')) else 'w'
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tarfile.open(path, mode) as tar:
    for name, data in files.items():
      _add(tar, name, data)
  return path


def write_zip(path: str, files: Mapping[str, bytes]) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with zipfile.ZipFile(path, 'w') as archive:
    for name, data in files.items():
      archive.writestr(name, data)
  return path


def write_val_tar(manual_dir: str, predictions: Sequence[int]) -> str:
  """ILSVRC2012_img_val.tar: image i has the colour of `predictions[i]`."""
  files = {
    f'ILSVRC2012_val_{i + 1:08d}.JPEG': solid_jpeg(p, 36, 48)
    for i, p in enumerate(predictions)
  }
  return write_tar(os.path.join(manual_dir, 'ILSVRC2012_img_val.tar'), files)


def _resolve(files: Mapping[str, str], urls):
  if isinstance(urls, dict):
    return {k: _resolve(files, v) for k, v in urls.items()}
  if isinstance(urls, (list, tuple)):
    return [_resolve(files, u) for u in urls]
  url = getattr(urls, 'url', urls)
  if url not in files:
    raise ValueError(f'A builder tried to download {url!r} (not faked).')
  return tfds.core.Path(files[url])


@contextlib.contextmanager
def fake_downloads(files: Mapping[str, str]) -> Iterator[None]:
  """Serves `url -> local file` to `download`/`download_and_extract`.

  Any other URL raises; archives are extracted by TFDS's own extractor.
  """
  manager = tfds.download.DownloadManager

  def download(self, urls):
    return _resolve(files, urls)

  def download_and_extract(self, urls):
    return self.extract(_resolve(files, urls))

  with (
    mock.patch.object(manager, 'download', download),
    mock.patch.object(manager, 'download_and_extract', download_and_extract),
  ):
    yield


class _Cv2StandIn:
  """The two OpenCV calls the builders make, for a machine without cv2."""

  IMREAD_UNCHANGED = -1

  @staticmethod
  def setRNGSeed(seed: int) -> None:
    del seed  # only seeds OpenCV's own noise, unused by these corruptions

  @staticmethod
  def imdecode(buffer: np.ndarray, flags: int = -1) -> np.ndarray:
    image = Image.open(io.BytesIO(buffer.tobytes()))
    return np.asarray(image.convert('L') if flags == 0 else image)


def prepare(
  name: str,
  data_dir: str,
  *,
  manual_dir: str | None = None,
  downloads: Mapping[str, str] | None = None,
) -> tfds.core.DatasetBuilder:
  """Runs the real TFDS builder `name` offline on local files."""
  with (
    fake_downloads(downloads or {}),
    mock.patch.object(tfds.core.lazy_imports, 'cv2', _Cv2StandIn),
  ):
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, try_download_gcs=False
      )
    )
  return builder


def write_cub(root: str, images: Sequence[dict]) -> dict[str, str]:
  """CUB_200_2011.tgz and segmentations.tgz in the official layout.

  Args:
    root: where the two archives go.
    images: dicts with 'path' ('001.Black_footed_Albatross/X_1.jpg'),
      'size' (height, width), 'box' (x, y, width, height) in pixels and
      'train' (bool).

  Returns:
    {url: archive} for `prepare`.
  """
  rng = np.random.default_rng(0)
  base, lines = 'CUB_200_2011', {k: [] for k in ('images', 'split', 'boxes')}
  files, masks, classes = {}, {}, {}
  for i, image in enumerate(images, start=1):
    height, width = image['size']
    folder = image['path'].split('/')[0]
    classes[int(folder.split('.')[0])] = folder
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    files[f'{base}/images/{image["path"]}'] = imagenet_fixture.encode_jpeg(
      pixels
    )
    x, y, w, h = image['box']
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + h, x : x + w] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format='PNG')
    png = image['path'].replace('.jpg', '.png')
    masks[f'segmentations/{png}'] = buffer.getvalue()
    lines['images'].append(f'{i} {image["path"]}')
    lines['split'].append(f'{i} {int(image["train"])}')
    lines['boxes'].append(f'{i} {float(x)} {float(y)} {float(w)} {float(h)}')
  texts = {
    'images.txt': lines['images'],
    'train_test_split.txt': lines['split'],
    'bounding_boxes.txt': lines['boxes'],
    'image_class_labels.txt': [
      f'{i} {int(m["path"][:3])}' for i, m in enumerate(images, start=1)
    ],
    'classes.txt': [f'{k} {v}' for k, v in sorted(classes.items())],
  }
  for name, rows in texts.items():
    files[f'{base}/{name}'] = ('\n'.join(rows) + '\n').encode()
  info = tfds.builder('caltech_birds2011', data_dir=root)._caltech_birds_info
  return {
    info.images_url: write_tar(os.path.join(root, f'{base}.tgz'), files),
    info.segmentations_url: write_tar(
      os.path.join(root, 'segmentations.tgz'), masks
    ),
  }
