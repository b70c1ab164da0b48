"""Opening prepared TFDS builders, and one process's slice of a split.

`checked_builder` is the one way a builder is opened (jaxmix's own offline
datasets register theirs through `jaxmix.datasets.BUILDERS`): it checks
that the split is prepared, else says how to prepare it (nothing is
downloaded), and that the features read exist; `builder_for_config` adds
the data config's checks. `Source` reads encoded image bytes,
labels and file names without decoding: `read` through TFDS (one ordered
pass),
`read_epoch` from the TFRecord files with the file order a tensor (train,
every epoch in one tf.data pipeline). When an image cannot be decoded,
`Source.find_corrupt` names the file and the dataset.

Long tail: with `data.long_tail.imbalance_ratio > 1` the train split is
read as its long-tailed subset (`jaxmix.data.long_tail`): the split's labels
and file names (or TFDS ids) are read once in the split's fixed order, the
kept names go into a hash table, and every read filters by it. Single
process only (the kept subset is chosen over the whole split).

Keep list: with `data.keep_list` (`jaxmix.data.keep_list`, label
cleaning) the train split is read as the examples it names, by the same
hash table; every name must be an example of the split. With a long tail
too, the long-tailed subset is chosen among the kept examples. Single
process only, as the long tail (every process must take as many steps).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxmix import datasets
from jaxmix.data import keep_list, long_tail
from jaxmix.data.preprocess import CorruptImageError


def hide_accelerators() -> None:
  """Hides GPUs/TPUs from TF, which must never take memory next to JAX."""
  try:
    tf.config.set_visible_devices([], 'GPU')
    tf.config.set_visible_devices([], 'TPU')
  except (RuntimeError, ValueError):
    pass  # TF already initialised its devices, or has no such type.


def dataset_options() -> tf.data.Options:
  """tf.data options of every jaxmix pipeline: deterministic order.

  The map functions run on a private thread pool of one thread per core
  this process may use, one op at a time each (parallelism comes from the
  parallel map, not from inside an example's ops).
  """
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = len(os.sched_getaffinity(0))
  options.threading.max_intra_op_parallelism = 1
  return options


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


_OPENCV = 'OpenCV (`pip install opencv-python-headless`)'
_IMAGEMAGICK = (
  'the ImageMagick `convert` binary on the PATH as `imagemagick` (TFDS '
  'runs it for the snow and motion_blur corruptions)'
)


def _build_needs(name: str) -> str:
  """What building `name` needs besides jaxmix's dependencies ('' if none)."""
  base, _, config = name.partition('/')
  opencv = base in ('caltech_birds2011', 'imagenet2012_corrupted')
  needs = [_OPENCV] if opencv else []
  if base == 'imagenet2012_corrupted' and config.startswith(
    ('snow', 'motion_blur')
  ):
    needs.append(_IMAGEMAGICK)
  return f' Building it needs {" and ".join(needs)}.' if needs else ''


# What `tfds` imports when it starts, beyond tensorflow-datasets' own needs.
_TFDS_CLI_NEEDS = ('apache_beam', 'mlcroissant')


def not_prepared_message(
  builder: tfds.core.DatasetBuilder,
  name: str,
  split: str,
  manual_dir: str | None = None,
) -> str:
  """Says that `split` of `name` is not prepared, and how to prepare it
  (where manual files go, and what building needs besides jaxmix)."""
  root = builder.data_dir_root
  msg = (
    f"TFDS dataset '{name}' has no prepared split '{split}' in data_dir "
    f'{root} (looked for {builder.data_dir}). '
  )
  base, _, config = name.partition('/')
  instructions = getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
  manual = manual_dir or os.path.join(root, 'downloads', 'manual')
  if instructions:
    msg += (
      f'It needs files downloaded by hand: put them in {manual} '
      f'({" ".join(instructions.split())}). '
    )
  target = name
  if not config and builder.builder_config is not None:
    target = f'{base}/{builder.builder_config.name}'  # not every config
  command = datasets.build_command(
    target, root, manual if instructions else None
  )
  msg += f'Prepare it with `{command}`'
  if base not in datasets.BUILDERS and not instructions:
    msg += ' (this downloads it)'
  msg += '.'
  if not all(map(importlib.util.find_spec, _TFDS_CLI_NEEDS)):
    msg += (
      " TFDS's command line needs apache-beam and mlcroissant: the "
      '`datasets` extra (requirements.txt pins them; docs/install.md).'
    )
  return msg + ' jaxmix never downloads data.' + _build_needs(name)


def checked_builder(
  name: str,
  split: str,
  *,
  data_dir: str | None,
  manual_dir: str | None = None,
  features: tuple[str, ...] = (),
) -> tfds.core.DatasetBuilder:
  """The builder of `name`, whose `split` is prepared and has `features`.

  Args:
    name: TFDS name, with its config ('imagenet2012_corrupted/fog_3').
    split: a split, sliced or joined ('train[:90%]+validation'): every
      split it names must be prepared.
    data_dir: the TFDS data_dir (TFDS's default if None).
    manual_dir: named in the error where the builder needs manual files.
    features: feature keys the caller reads.

  Raises:
    ValueError: the split is not prepared (saying how to prepare it;
      nothing is downloaded), or a feature is missing.
  """
  found = open_builder(name, data_dir)
  parts = [part.split('[')[0].strip() for part in split.split('+')]
  if not found.is_prepared() or any(
    part not in found.info.splits for part in parts
  ):
    raise ValueError(not_prepared_message(found, name, split, manual_dir))
  missing = [f for f in features if f not in found.info.features]
  if missing:
    raise ValueError(
      f'TFDS dataset {name!r} lacks features {missing}; it has '
      f'{sorted(found.info.features.keys())}.'
    )
  return found


def builder_for_config(data_config, split: str) -> tfds.core.DatasetBuilder:
  """`checked_builder` of the data config's dataset, checked against the
  config: an image feature at `data.image_key`, a label at
  `data.label_key` with `data.num_classes` classes."""
  builder = checked_builder(
    data_config.dataset,
    split,
    data_dir=data_config.data_dir,
    manual_dir=data_config.manual_dir,
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


def kept_only(data_config, split: str) -> bool:
  """Whether `split` is read as the examples of `data.keep_list`."""
  return bool(data_config.get('keep_list')) and split == data_config.get(
    'train_split'
  )


def long_tailed(data_config, split: str) -> bool:
  """Whether `split` is read as its long-tailed subset."""
  ratio = data_config.get('long_tail', {}).get('imbalance_ratio', 1.0)
  # Data configs of tools (the label-map viewer) may have no train split.
  return ratio > 1.0 and split == data_config.get('train_split')


def num_examples(data_config, split: str) -> int:
  """Number of examples of `split` (slices like 'train[:10%]' work; the
  long-tailed subset's size when `long_tailed`)."""
  if long_tailed(data_config, split) or kept_only(data_config, split):
    return Source(data_config, split, 0, 1, drop_remainder=True).size
  return builder_for_config(data_config, split).info.splits[split].num_examples


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
    self.builder = builder_for_config(data_config, split)
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
    self._fixed_order = None
    self._kept = None  # the hash table of kept names (keep list, long tail)
    self.labels = None  # int [size], the kept examples' labels (subsets)
    subsets = [
      field
      for field, on in (
        ('data.keep_list', kept_only(data_config, self.split)),
        ('data.long_tail', long_tailed(data_config, self.split)),
      )
      if on
    ]
    if subsets:
      if count > 1:
        raise ValueError(
          f'{" and ".join(subsets)} need a single process (every process '
          f'must take as many steps); this run has {count}.'
        )
      self._select_subset(subsets[0])

  def _select_subset(self, field: str) -> None:
    """Reads the split's names and labels once and keeps the examples of
    the keep list, then of the long tail."""
    names, labels = [], []
    for ex in self.read(shuffle_seed=None).map(
      lambda ex: {'file_name': ex['file_name'], 'label': ex['label']}
    ):
      names.append(ex['file_name'].numpy())
      labels.append(int(ex['label']))
    if len(set(names)) != len(names):
      raise ValueError(
        f'{field} needs unique file names; {self.describe()} repeats '
        f'some in data.file_name_key={self.config.file_name_key!r}.'
      )
    kept = np.arange(len(names))
    if kept_only(self.config, self.split):
      record = keep_list.read(self.config.keep_list)
      keep_list.check_known(
        record['kept'],
        names,
        path=self.config.keep_list,
        where=self.describe(),
      )
      wanted = set(record['kept'])
      kept = np.array(
        [i for i, n in enumerate(names) if n.decode() in wanted], np.int64
      )
    if long_tailed(self.config, self.split):
      lt = self.config.long_tail
      kept = kept[
        long_tail.kept_indices(
          np.asarray(labels, np.int64)[kept],
          num_classes=self.config.num_classes,
          imbalance_ratio=float(lt.imbalance_ratio),
          seed=int(lt.seed),
        )
      ]
    self._kept = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
        tf.constant([names[i] for i in kept], tf.string),
        tf.ones(len(kept), tf.int32),
      ),
      default_value=0,
    )
    self.size = len(kept)
    self.labels = np.asarray(labels, np.int32)[kept]

  def _filtered(self, ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` (selected examples) without the ones the subsets drop."""
    if self._kept is None:
      return ds
    kept = self._kept
    return ds.filter(lambda ex: kept.lookup(ex['file_name']) > 0)

  def read(self, *, shuffle_seed: int | None) -> tf.data.Dataset:
    """Examples {'image_bytes', 'label', 'file_name', 'index'}, undecoded.

    `index` is the position in this process's read order; file names fall
    back to the TFDS example id when the dataset has no file-name feature.
    Files are shuffled with `shuffle_seed` unless it is None.
    """
    ds = self.builder.as_dataset(
      split=self.local_split,
      shuffle_files=shuffle_seed is not None,
      decoders=self._decoders(),
      read_config=tfds.ReadConfig(
        shuffle_seed=shuffle_seed, add_tfds_id=not self.has_file_name
      ),
    )
    ds = self._filtered(ds.map(lambda ex: self._select(ex, ex.get('tfds_id'))))
    return ds.enumerate().map(lambda index, ex: {**ex, 'index': index})

  def _decoders(self) -> dict:
    # Images stay encoded: ours is decoded (cropped) later, other image
    # features (e.g. segmentation masks) are never decoded.
    return {
      key: tfds.decode.SkipDecoding()
      for key, feature in self.builder.info.features.items()
      if isinstance(feature, tfds.features.Image)
    }

  # Plain TF ops and a Python choice: nothing for autograph to convert
  # (a converted copy of this method was once called without `self`).
  @tf.autograph.experimental.do_not_convert
  def _select(self, example: dict, example_id: tf.Tensor | None) -> dict:
    """The pipeline's keys of a parsed example; `example_id` names it when
    the dataset has no file-name feature."""
    cfg = self.config
    return {
      'image_bytes': example[cfg.image_key],
      'label': tf.cast(example[cfg.label_key], tf.int32),
      'file_name': (
        example[cfg.file_name_key] if self.has_file_name else example_id
      ),
    }

  def read_epoch(self, file_seed: tf.Tensor) -> tf.data.Dataset:
    """One epoch of this process's examples, undecoded, files shuffled.

    A graph-side reader of the split's TFRecord files (TFDS's own file
    instructions, parsed with the dataset's features), so that `file_seed`
    may be a tensor and one tf.data pipeline can read every epoch in its own
    file order. Datasets in other file formats are read by TFDS in one
    fixed file order (the epoch's shuffle buffer still reorders them).

    Args:
      file_seed: int64 scalar, the seed of this epoch's file order.

    Returns:
      Examples {'image_bytes', 'label', 'file_name', 'index'}, `index` the
      position in this epoch's read order (as `read`).
    """
    info = self.builder.info
    if info.file_format != tfds.core.FileFormat.TFRECORD:
      if self._fixed_order is None:
        self._fixed_order = self.read(shuffle_seed=0)
      return self._fixed_order
    instructions = info.splits[self.local_split].file_instructions
    files = tf.data.Dataset.from_tensor_slices(
      (
        [i.filename for i in instructions],
        # TFDS's example id: file name and record number in the file.
        [os.path.basename(i.filename) for i in instructions],
        tf.constant([i.skip for i in instructions], tf.int64),
        tf.constant(
          [
            i.take if i.take >= 0 else i.examples_in_shard - i.skip
            for i in instructions
          ],
          tf.int64,
        ),
      )
    ).shuffle(len(instructions), seed=file_seed)
    decoders = self._decoders()

    def records(path, name, skip, take):
      ds = tf.data.TFRecordDataset(path).skip(skip).take(take)
      numbers = tf.data.Dataset.range(skip, skip + take)
      return tf.data.Dataset.zip(ds, numbers.map(lambda n: (name, n)))

    def parse(record, name_and_number):
      name, number = name_and_number
      tfds_id = tf.strings.join([name, tf.strings.as_string(number)], '__')
      example = info.features.deserialize_example(record, decoders=decoders)
      return self._select(example, tfds_id)

    ds = files.interleave(
      records,
      cycle_length=min(16, len(instructions)),
      block_length=16,
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True,
    )
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = self._filtered(ds)
    return ds.enumerate().map(lambda index, ex: {**ex, 'index': index})

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
