"""digit_scenes: an offline TFDS dataset of small multi-digit scene images.

jaxmix's default job must train, evaluate and show the CutMix and ReLabel
claims on a machine with no ImageNet and no internet. This builder prepares,
in seconds and from data that ships inside pip packages, a small dataset with
ImageNet's shape of problems: objects at random positions and scales on
cluttered backgrounds, and one label per image even when the image holds
several objects. The pixels come from `jaxmix.datasets.digit_render` (digit
sizes, colours, backgrounds, placement and the box convention); this module
holds what makes them a dataset.

Design choices:

* Source: `sklearn.datasets.load_digits`, 1797 real 8x8 handwritten digits.
  The source digits are split per class, with a fixed seed, into disjoint
  pools (train 50 %, validation 10 %, test 10 %, annotator 30 %), so no
  source digit appears in two splits. `objects/source_id` records the index.
* Splits: train / validation / test hold 1, 2 or 3 digits of distinct classes
  (probabilities 0.5 / 0.3 / 0.2); a digit that cannot be placed without
  covering more than 15 % of another one's box is dropped. `annotator` holds
  exactly one digit near the centre: the annotator's "extra data".
* Object size is a knob (`DigitScenesConfig.digit_sizes`): 'default' draws
  small digits (7.9 % of the image on average), 'medium' and 'imagenet'
  larger ones, 'imagenet' matched to ILSVRC's box areas (figures at
  `IMAGENET_DIGITS`). Bigger digits leave less room, so their scenes hold
  fewer secondary digits.
* Every config has an `extra` split: scenes drawn from the annotator's pool
  of source digits, the stronger annotator's extra source data (as
  ReLabel's annotator saw far more than ImageNet). Version 1.1.0 added it
  to 'default' and 'small'; their other splits are unchanged.
* `label` is the "main" object, like ImageNet's one label: the digit with the
  largest box area, ties to the first drawn. Other digits are label noise.
* `objects/bbox` is the tight box of the digit's pixels with alpha > 0.5,
  normalised (ymin, xmin, ymax, xmax) with pixel edges: row r spans
  [r / H, (r + 1) / H].
* Images are JPEG (quality 95, 4:4:4 chroma, about 5 KB each), so
  ImageNet-style `decode_and_crop_jpeg` pipelines run unchanged. Randomness
  comes from one `np.random.Generator` per (seed, split, example index), so
  every prepare stores the same examples in the same order, JPEG bytes
  included (for the same numpy, Pillow and libjpeg), and any example can be
  regenerated alone with `generate_example`. The TFRecord files' bytes can
  still differ between processes: protobuf writes each tf.train.Example's
  feature map in a per-process order.
* Cost: about 0.7 ms of one CPU core per example, most of it Python overhead
  of the many small PIL / numpy calls, plus TFDS's writing and the import of
  TensorFlow; the default config (39k images, 184 MB, half of them the
  extra split) takes about 70 CPU seconds, serially.

Prepare with `prepare(data_dir)` or `tfds build digit_scenes --imports
jaxmix.datasets.digit_scenes --data_dir DIR --config default`. Importing the
module registers the builder as 'digit_scenes'; the 'small' config is a tiny
version for tests and smoke runs.
"""

import dataclasses
import functools
import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxmix.datasets import digit_render
from jaxmix.datasets.digit_render import (
  IMAGE_SIZE,
  NUM_CLASSES,
  SEED,
  SMALL_DIGITS,
  DigitSizes,
  Scene,
  SceneObject,
)

SPLITS = ('train', 'validation', 'test', 'annotator')
POOL_FRACTIONS = (0.5, 0.1, 0.1, 0.3)  # Share of source digits, per split.
NUM_OBJECTS_PROBS = (0.5, 0.3, 0.2)  # P(1, 2, 3 digits) in scene splits.
# The annotator's extra source data: scenes like the train split's, drawn
# from the annotator's pool of source digits (none of them in train).
EXTRA_SPLIT = 'extra'
ALL_SPLITS = (*SPLITS, EXTRA_SPLIT)

# The main digit's share of the image, as `projects/digit_study/label_fit.py`
# measures it on 2,000 test scenes (mean; quartiles):
#   default (and small):   7.9 %  (5.3, 10.5)       today's small objects
#   medium:               21 %                      in between
#   imagenet:             44 %   (25, 62)           ImageNet's
# ImageNet's figure, computed from the localisation boxes published with the
# ILSVRC-2012 validation set (Russakovsky et al., IJCV 2015; 50,000 images,
# 80,476 boxes): the largest box of an image covers on average 44.1 % of it;
# median 41.1 %, quartiles 19.4 % and 66.2 %.
MEDIUM_DIGITS = DigitSizes(height=(0.3, 0.7), stretch=(0.9, 1.4))
IMAGENET_DIGITS = DigitSizes(height=(0.4, 1.0), stretch=(1.1, 1.75))


@functools.cache
def source_digits() -> tuple[np.ndarray, np.ndarray, dict]:
  """Returns sklearn's digits, their labels and the per-split pools.

  Returns:
    images float32 [N, 12, 12] in [0, 1] and labels int64 [N] (both from
    `digit_render.digit_images()`, N = 1797), and pools[split][class] =
    sorted source indices int64 [n] for that split and class.
  """
  images, labels = digit_render.digit_images()
  pools = {split: [] for split in SPLITS}
  edges = np.cumsum((0.0, *POOL_FRACTIONS))
  for c in range(NUM_CLASSES):
    ids = np.flatnonzero(labels == c)
    ids = np.random.default_rng([SEED, c]).permutation(ids)
    cuts = np.round(edges * len(ids)).astype(int)
    for s, split in enumerate(SPLITS):
      pools[split].append(np.sort(ids[cuts[s] : cuts[s + 1]]))
  return images, labels, pools


def main_object(objects: list[SceneObject]) -> int:
  """Index of the main object: largest box area, ties to the first drawn.

  Areas are rounded to 6 decimals, so float noise in the normalised boxes
  cannot break a tie.
  """
  areas = [(o.bbox[2] - o.bbox[0]) * (o.bbox[3] - o.bbox[1]) for o in objects]
  return int(np.argmax(np.round(areas, 6)))


def generate_example(
  split: str,
  index: int,
  *,
  size: int = IMAGE_SIZE,
  sizes: DigitSizes = SMALL_DIGITS,
) -> tuple[dict, Scene]:
  """Regenerates example `index` of `split` exactly as the builder writes it.

  Args:
    split: one of ALL_SPLITS.
    index: the example's index in its split, >= 0.
    size: the image side in pixels (the config's image_size).
    sizes: the digits' size ranges (the config's digit_sizes).

  Returns:
    The TFDS feature dict (JPEG bytes of a [size, size, 3] image, the main
    label, and per object label, BBox and source_id) and the rendered Scene.
  """
  if split not in ALL_SPLITS:
    raise ValueError(f'split must be one of {ALL_SPLITS}, got {split!r}.')
  if index < 0:
    raise ValueError(f'index must be >= 0, got {index}.')
  rng = np.random.default_rng([SEED, ALL_SPLITS.index(split), index])
  if split == 'annotator':
    num = 1
  else:
    num = int(rng.choice(len(NUM_OBJECTS_PROBS), p=NUM_OBJECTS_PROBS)) + 1
  pool = source_digits()[2]['annotator' if split == EXTRA_SPLIT else split]
  scene = digit_render.render_scene(
    rng,
    pool,
    num_objects=num,
    size=size,
    centred=split == 'annotator',
    sizes=sizes,
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
  """Image side, digit sizes and the number of examples of every split."""

  image_size: int = IMAGE_SIZE
  split_sizes: tuple[tuple[str, int], ...] = ()
  digit_sizes: DigitSizes = SMALL_DIGITS


def _coverage_configs(name: str, sizes: DigitSizes, what: str) -> list:
  """A coverage setting's full config and its '_small' one for tests."""
  counts = (5_000, 1_000, 2_000, 5_000, 20_000)
  return [
    DigitScenesConfig(
      name=name,
      description=f'64x64, {what}; 5k train, 1k validation, 2k test, '
      '5k annotator, 20k extra scenes for the annotator.',
      split_sizes=tuple(zip(ALL_SPLITS, counts)),
      digit_sizes=sizes,
    ),
    DigitScenesConfig(
      name=f'{name}_small',
      description=f'64x64, {what}; a tiny version for tests.',
      split_sizes=tuple(zip(ALL_SPLITS, (256, 64, 64, 128, 256))),
      digit_sizes=sizes,
    ),
  ]


class DigitScenes(tfds.core.GeneratorBasedBuilder):
  """Small scenes of 1-3 handwritten digits on clutter, prepared offline."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {  # noqa: RUF012
    '1.0.0': 'Initial release.',
    '1.1.0': "An 'extra' split in 'default' and 'small' too.",
  }
  BUILDER_CONFIGS = [  # noqa: RUF012
    DigitScenesConfig(
      name='default',
      description='64x64; 10k train, 2k validation, 2k test, 5k annotator, '
      '20k extra scenes for the annotator.',
      split_sizes=tuple(zip(ALL_SPLITS, (10_000, 2_000, 2_000, 5_000, 20_000))),
    ),
    DigitScenesConfig(
      name='small',
      description='64x64; a tiny version for tests and smoke runs.',
      split_sizes=tuple(zip(ALL_SPLITS, (256, 64, 64, 128, 256))),
    ),
    *_coverage_configs('medium', MEDIUM_DIGITS, 'medium digits'),
    *_coverage_configs('imagenet', IMAGENET_DIGITS, "ImageNet's coverage"),
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
    sizes = self.builder_config.digit_sizes
    for index in range(count):
      example, _ = generate_example(split, index, size=size, sizes=sizes)
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
