"""FGVC Aircraft (Maji et al. 2013) as a TFDS builder over its manual download.

Maji, Rahtu, Kannala, Blaschko and Vedaldi, "Fine-Grained Visual
Classification of Aircraft" (arXiv:1306.5151): 10,000 photographs of
aircraft, 100 per model variant. jaxmix never downloads it: download
`fgvc-aircraft-2013b.tar.gz` from the dataset's page (`HOMEPAGE`) and put
it, or the `fgvc-aircraft-2013b/` folder it extracts to, in the manual_dir.

Layout of the release (checked on reading): `fgvc-aircraft-2013b/data/`
holds `images/<id>.jpg`, the class lists `variants.txt`, `families.txt`,
`manufacturers.txt` (one name a line) and, per split and level, the list
`images_<level>_<split>.txt` whose lines are `<id> <class name>` (names
may hold spaces and slashes, e.g. 'Falcon 2000', 'F-16A/B').

Configs (the label level): 'variant' (100 classes, the usual benchmark and
the default), 'family' (70) and 'manufacturer' (30). Splits: the release's
'train', 'val' (as 'validation') and 'test' (3,334 / 3,333 / 3,333
images); the release's 'trainval' is TFDS's 'train+validation'. The label
is the class's position in the level's class list, the release's order.

Features: 'image' (the JPEG as released: its bottom 20 rows are the
photographer's copyright banner, kept), 'label', 'file_name' ('<id>.jpg').

Prepare with `tfds build fgvc_aircraft --imports jaxmix.datasets.fgvc_aircraft
--data_dir D --manual_dir M --config variant` (no `--config`: every level).
"""

import tensorflow_datasets as tfds

NAME = 'fgvc_aircraft'  # the TFDS name
ARCHIVE = 'fgvc-aircraft-2013b.tar.gz'
ROOT = 'fgvc-aircraft-2013b'  # the archive's top folder
HOMEPAGE = 'https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/'
LEVELS = {
  'variant': 'variants',
  'family': 'families',
  'manufacturer': 'manufacturers',
}
# TFDS split -> the release's split name in its list files.
SPLITS = {'train': 'train', 'validation': 'val', 'test': 'test'}


class FgvcAircraft(tfds.core.GeneratorBasedBuilder):
  """FGVC Aircraft 2013b at one label level (manual download)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}  # noqa: RUF012
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    f'Download {ARCHIVE} from {HOMEPAGE} and put it, or the {ROOT}/ folder '
    'it extracts to, in the manual_dir, and run `tfds build fgvc_aircraft '
    '--imports jaxmix.datasets.fgvc_aircraft --data_dir D --manual_dir M '
    '--config variant`'
  )
  BUILDER_CONFIGS = [  # noqa: RUF012
    tfds.core.BuilderConfig(name=level, description=f'{level} labels')
    for level in LEVELS
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description='FGVC Aircraft 2013b (Maji et al.), '
      f'{self.builder_config.name} labels.',
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(encoding_format='jpeg'),
          # Names come from the release's class list when it is built.
          'label': tfds.features.ClassLabel(),
          'file_name': tfds.features.Text(),
        }
      ),
      supervised_keys=('image', 'label'),
      homepage=HOMEPAGE,
      citation='Maji, S., Rahtu, E., Kannala, J., Blaschko, M. and Vedaldi, '
      'A. (2013). Fine-Grained Visual Classification of Aircraft. '
      'arXiv:1306.5151.',
    )

  def _split_generators(self, dl_manager):
    data = release_data(dl_manager)
    level = self.builder_config.name
    names = class_names(data, level)
    self.info.features['label'].names = names
    return {
      split: self._generate_examples(data, level, release, names)
      for split, release in SPLITS.items()
    }

  def _generate_examples(self, data, level, release, names):
    index = {n: i for i, n in enumerate(names)}
    for image_id, name in split_list(data, level, release):
      if name not in index:
        raise ValueError(
          f'{data}/images_{level}_{release}.txt: image {image_id} has class '
          f'{name!r}, which {data}/{LEVELS[level]}.txt does not list.'
        )
      path = data / 'images' / f'{image_id}.jpg'
      if not path.exists():
        raise ValueError(
          f'{data}/images_{level}_{release}.txt lists {image_id}, but '
          f'{path} is missing.'
        )
      yield (
        image_id,
        {
          'image': path,
          'label': index[name],
          'file_name': path.name,
        },
      )


def release_data(dl_manager):
  """The release's `data/` folder in the manual_dir (extracting the archive
  when only it is there)."""
  manual = dl_manager.manual_dir

  def found(base):
    return (base / 'images').exists() and (base / 'variants.txt').exists()

  candidates = [manual / ROOT / 'data', manual / 'data', manual]
  for base in candidates:
    if found(base):
      return base
  if (manual / ARCHIVE).exists():
    extracted = dl_manager.extract(manual / ARCHIVE)
    for base in (extracted / ROOT / 'data', extracted / 'data'):
      if found(base):
        return base
  raise ValueError(
    f'manual_dir {manual} has no {ROOT}/data folder (images/, variants.txt) '
    f'and no {ARCHIVE} that holds one. '
    + FgvcAircraft.MANUAL_DOWNLOAD_INSTRUCTIONS
  )


def _lines(path) -> list[str]:
  if not path.exists():
    raise ValueError(f'{path} is missing from the FGVC Aircraft release.')
  return [
    line.strip() for line in path.read_text().splitlines() if line.strip()
  ]


def class_names(data, level: str) -> list[str]:
  """The level's class names in the release's order (unique)."""
  names = _lines(data / f'{LEVELS[level]}.txt')
  if len(set(names)) != len(names):
    raise ValueError(f'{data}/{LEVELS[level]}.txt lists a class twice.')
  return names


def split_list(data, level: str, release: str) -> list[tuple[str, str]]:
  """(image id, class name) of every line of `images_<level>_<release>.txt`."""
  path = data / f'images_{level}_{release}.txt'
  rows = []
  for number, line in enumerate(_lines(path), 1):
    image_id, _, name = line.partition(' ')
    if not name:
      raise ValueError(
        f'{path}:{number}: expected "<id> <class>", got {line!r}.'
      )
    rows.append((image_id, name.strip()))
  return rows
