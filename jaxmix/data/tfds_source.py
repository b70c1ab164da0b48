"""Reading one process's slice of a TFDS image-classification dataset.

Opens the TFDS builder (jaxmix's own offline datasets register theirs
through `jaxmix.datasets.BUILDERS`), checks that the split is prepared and
that the configured feature keys exist, and reads encoded image bytes,
labels and file names without decoding. When an image cannot be decoded,
`Source.find_corrupt` names the file and the dataset.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable

import tensorflow as tf
import tensorflow_datasets as tfds

from jaxmix import datasets
from jaxmix.data.preprocess import CorruptImageError


def hide_accelerators() -> None:
  """Hides GPUs/TPUs from TF, which must never take memory next to JAX."""
  try:
    tf.config.set_visible_devices([], 'GPU')
    tf.config.set_visible_devices([], 'TPU')
  except (RuntimeError, ValueError):
    pass  # TF already initialised its devices, or has no such type.


def open_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  """The TFDS builder of `name` ('imagenet_v2/topimages', 'digit_scenes')."""
  datasets.import_builder(name)  # jaxmix's own builders, by registry
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    # TFDS's own message lists its whole catalogue (hundreds of lines).
    raise ValueError(unknown_dataset_message(name)) from None


def unknown_dataset_message(name: str) -> str:
  """One line: `name` is not a dataset, with the closest known names."""
  known = {*tfds.list_builders(with_community_datasets=False)}
  known |= set(datasets.BUILDERS) | {'synthetic'}
  base = name.split('/')[0].split(':')[0]
  close = difflib.get_close_matches(base, sorted(known), n=5, cutoff=0.6)
  hint = (
    f'closest names: {", ".join(close)}'
    if close
    else 'see `tfds.list_builders()` for the names'
  )
  return f'TFDS has no dataset {name!r}; {hint}.'


def not_prepared_message(
  builder: tfds.core.DatasetBuilder,
  name: str,
  split: str,
  manual_dir: str | None = None,
) -> str:
  """Says that `split` of `name` is not prepared, and how to prepare it."""
  root = builder.data_dir_root
  msg = (
    f"TFDS dataset '{name}' has no prepared split '{split}' in data_dir "
    f'{root} (looked for {builder.data_dir}). '
  )
  if name.split('/')[0] == 'digit_scenes':
    config = name.split('/')[1] if '/' in name else 'default'
    return msg + (
      'Prepare it offline with `python -m jaxmix.datasets.digit_scenes '
      f'--data_dir {root} --config {config}`.'
    )
  instructions = getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
  if instructions:
    manual = manual_dir or os.path.join(root, 'downloads', 'manual')
    return msg + (
      f'It needs files downloaded by hand: put them in {manual} '
      f'({" ".join(instructions.split())}), then run `tfds build {name} '
      f'--data_dir={root} --manual_dir={manual}`.'
    )
  return msg + (
    f'Prepare it with `tfds build {name} --data_dir={root}` (this downloads '
    'it).'
  )


def _checked_builder(data_config, split: str):
  builder = open_builder(data_config.dataset, data_config.data_dir)
  base_split = split.split('[')[0]
  if not builder.is_prepared() or base_split not in builder.info.splits:
    raise ValueError(
      not_prepared_message(
        builder, data_config.dataset, split, data_config.manual_dir
      )
      + ' Or call jaxmix.data.input_pipeline.prepare(data_config).'
    )
  features = builder.info.features
  for field in ('image_key', 'label_key'):
    key = data_config[field]
    if key not in features:
      raise ValueError(
        f'data.{field}={key!r} is not a feature of {data_config.dataset}; '
        f'features: {sorted(features.keys())}'
      )
  if not isinstance(features[data_config.image_key], tfds.features.Image):
    raise ValueError(
      f'data.image_key={data_config.image_key!r} of {data_config.dataset} '
      f'is a {type(features[data_config.image_key]).__name__}, not an Image.'
    )
  label = features[data_config.label_key]
  classes = getattr(label, 'num_classes', None)
  if classes is not None and classes != data_config.num_classes:
    raise ValueError(
      f'data.num_classes={data_config.num_classes} but {data_config.dataset}'
      f' has {classes} classes.'
    )
  return builder


def prepare(data_config) -> None:
  """Prepares the dataset (`download_and_prepare`, manual_dir if given)."""
  download_config = tfds.download.DownloadConfig(
    manual_dir=data_config.manual_dir
  )
  builder = open_builder(data_config.dataset, data_config.data_dir)
  builder.download_and_prepare(download_config=download_config)


def num_examples(data_config, split: str) -> int:
  """Number of examples of `split` (slices like 'train[:10%]' work)."""
  return _checked_builder(data_config, split).info.splits[split].num_examples


class Source:
  """One process's slice of a prepared split (`size` examples).

  Args:
    data_config: the data config.
    split: TFDS split name, slices allowed ('train[:10%]').
    index: this process's index.
    count: the number of processes.
    drop_remainder: give every process the same number of examples.
  """

  def __init__(self, data_config, split, index, count, *, drop_remainder):
    self.builder = _checked_builder(data_config, split)
    self.config = data_config
    self.split = split
    if count > 1:
      split = tfds.split_for_jax_process(
        split,
        process_index=index,
        process_count=count,
        drop_remainder=drop_remainder,
      )
    self.local_split = split
    self.size = self.builder.info.splits[split].num_examples
    self.has_file_name = data_config.file_name_key in self.builder.info.features

  def read(self, *, shuffle_seed: int | None) -> tf.data.Dataset:
    """Examples {'image_bytes', 'label', 'file_name', 'index'}, undecoded.

    `index` is the position in this process's read order; file names fall
    back to the TFDS example id when the dataset has no file-name feature.
    Files are shuffled with `shuffle_seed` unless it is None.
    """
    cfg = self.config
    ds = self.builder.as_dataset(
      split=self.local_split,
      shuffle_files=shuffle_seed is not None,
      # Images stay encoded: ours is decoded (cropped) later, other image
      # features (e.g. segmentation masks) are never decoded.
      decoders={
        key: tfds.decode.SkipDecoding()
        for key, feature in self.builder.info.features.items()
        if isinstance(feature, tfds.features.Image)
      },
      read_config=tfds.ReadConfig(
        shuffle_seed=shuffle_seed, add_tfds_id=not self.has_file_name
      ),
    )
    name_key = cfg.file_name_key if self.has_file_name else 'tfds_id'

    def select(index, ex):
      return {
        'image_bytes': ex[cfg.image_key],
        'label': tf.cast(ex[cfg.label_key], tf.int32),
        'file_name': ex[name_key],
        'index': index,
      }

    return ds.enumerate().map(select)

  def describe(self) -> str:
    return f'dataset {self.config.dataset} split {self.split}'

  def find_corrupt(
    self, raw: tf.data.Dataset, preprocess: Callable, error: Exception
  ) -> Exception:
    """Decodes `raw` one by one; the first failure names the bad file."""
    for ex in raw.take(4096):
      try:
        preprocess(ex)
      except tf.errors.OpError as e:
        name = ex['file_name'].numpy().decode(errors='replace')
        return CorruptImageError(
          f"cannot decode image '{name}' (example {int(ex['index'])} of "
          f'{self.describe()}, data_dir {self.builder.data_dir_root}): '
          f"{e.message.strip()}. Set data.on_corrupt='skip' to skip it."
        )
    return error
