"""The Backgrounds Challenge (ImageNet-9) of Xiao et al. as a TFDS builder.

Xiao, Engstrom, Ilyas and Madry, "Noise or Signal: The Role of Image
Backgrounds in Object Recognition" (ICLR 2021) measure how much ImageNet
classifiers rely on backgrounds with ImageNet-9 (IN-9): nine coarse classes
of ImageNet whose test images come in versions with the foreground, the
background or both changed. The test data is the archive
`backgrounds_challenge_data.tar.gz` of the 'data' release of
github.com/MadryLab/backgrounds_challenge. jaxmix never downloads it: put the
archive (or the `bg_challenge/` folder it extracts to) in the manual_dir.

Layout of the release (checked on reading): `bg_challenge/<variant>/val/
<class folder>/<file>`, the class folders `00_dog` ... `08_fish`
(`CLASS_FOLDERS`; two contain a space). The label is the folder's position
in sorted order, as a torchvision `ImageFolder` assigns it, which is also
the order of the 'in9' indices of the official ImageNet -> IN-9 map. The
variants (one builder config each, split 'test'):

- original: the images, cleaned by hand;
- only_bg_b: the foreground's box blacked out; only_bg_t: the background
  tiled over the box (the challenge's backgrounds);
- no_fg: the foreground segmented out and blacked; only_fg: the
  foreground alone on black;
- mixed_same, mixed_rand, mixed_next: the foreground pasted on the
  background of another image of the same class, of a random class, or of
  the next class (class c + 1 mod 9).

(The release has no 'no_bg' folder: only_fg is the image without its
background.)

`fg_mask` holds, per original image, its foreground mask (`fg_mask/val/
<class>/<name>.npy`, a 2-D array over the image's pixels); its examples are
the original image `<name>.JPEG` with its mask, for the adversarial
challenge. A pixel is foreground where the array, cast to uint8 as the
official script does, is nonzero (the release's masks are 0/1).

Prepare every config with `tfds build backgrounds_challenge --imports
jaxmix.datasets.backgrounds_challenge --data_dir D --manual_dir M` (one of
them with `--config`).

Features: 'image' (JPEG bytes as released, 224 x 224 in the release),
'label' (the 9 classes), 'file_name' (the file's name in its class folder),
and for `fg_mask` 'mask' (uint8 `[H, W, 1]`, 1 on the foreground).

The official evaluation rules (`in9_eval.py`, `challenge_eval.py`,
`tools/model_utils.py` and `in_to_in9.json` of the repository), implemented
in `jaxmix.evaluate.suites.backgrounds`:

- a 1000-class model's prediction is its ImageNet top-1 class mapped to IN-9
  by `in_to_in9.json` (`IMAGENET_TO_IN9`, kept here as ranges of ImageNet
  indices); 630 ImageNet classes map to no IN-9 class (-1), so a top-1 in
  them is always wrong. A 9-class model's argmax is used as it is.
- accuracy per variant: correct / all images of the variant; BG-Gap =
  accuracy on mixed_same minus accuracy on mixed_rand.
- challenge accuracy: every foreground of `fg_mask` (the original image
  where its mask is 1) is pasted on every only_bg_t background (all nine
  classes, its own included); a foreground counts as correct only if the
  model predicts its class on every one of them. The challenge accuracy is
  the fraction of such foregrounds (the leaderboard's number; the script
  prints its complement, the "vulnerable" fraction).

The images are fed whole, at their own size (no crop, no resize), with the
model's own normalisation.
"""

import io
import re

import numpy as np
import tensorflow_datasets as tfds

NAME = 'backgrounds_challenge'  # the TFDS name
ARCHIVE = 'backgrounds_challenge_data.tar.gz'
RELEASE = 'https://github.com/MadryLab/backgrounds_challenge/releases'
ROOT = 'bg_challenge'  # the archive's top folder
SPLIT = 'test'
CLASS_FOLDERS = (
  '00_dog',
  '01_bird',
  '02_wheeled vehicle',
  '03_reptile',
  '04_carnivore',
  '05_insect',
  '06_musical instrument',
  '07_primate',
  '08_fish',
)
# The WordNet synsets the nine classes gather (in9_classes.txt).
CLASS_SYNSETS = (
  'n02084071',
  'n01503061',
  'n04576211',
  'n01661091',
  'n02075296',
  'n02159955',
  'n03800933',
  'n02469914',
  'n02512053',
)
VARIANTS = (
  'original',
  'only_bg_b',
  'only_bg_t',
  'no_fg',
  'only_fg',
  'mixed_same',
  'mixed_rand',
  'mixed_next',
)
MASKS = 'fg_mask'
NUM_CLASSES = len(CLASS_FOLDERS)
NUM_IMAGENET_CLASSES = 1000

# ImageNet-1k class indices (TFDS/torchvision order: sorted wnids) of every
# IN-9 class, as half-open ranges: `in_to_in9.json` of the official
# repository; the 630 classes of no range map to -1.
# fmt: off
IMAGENET_RANGES: tuple[tuple[tuple[int, int], ...], ...] = (
  ((151, 171), (173, 269)),
  ((7, 25), (87, 101), (127, 147)),
  (
    (407, 409), (428, 429), (436, 437), (444, 445), (468, 469), (511, 512),
    (547, 548), (555, 556), (561, 562), (565, 566), (569, 570), (573, 574),
    (586, 587), (603, 604), (609, 610), (612, 613), (627, 628), (656, 657),
    (661, 662), (665, 666), (670, 672), (675, 676), (690, 691), (705, 706),
    (717, 718), (734, 735), (751, 752), (757, 758), (791, 792), (802, 804),
    (817, 818), (820, 821), (829, 830), (847, 848), (864, 865), (866, 868),
    (870, 871), (880, 881),
  ),
  ((33, 69),),
  ((269, 281), (286, 300), (356, 363), (387, 389)),
  ((300, 327),),
  (
    (401, 403), (420, 421), (432, 433), (486, 487), (494, 495), (513, 514),
    (541, 542), (546, 547), (558, 559), (566, 567), (577, 578), (579, 580),
    (593, 595), (641, 643), (683, 685), (687, 688), (699, 700), (776, 777),
    (822, 823), (875, 876), (881, 882), (889, 890),
  ),
  ((365, 385),),
  ((0, 7), (389, 398)),
)
# fmt: on


def imagenet_to_in9() -> np.ndarray:
  """int32 `[1000]`: the IN-9 class of every ImageNet class, -1 for none."""
  table = np.full(NUM_IMAGENET_CLASSES, -1, np.int32)
  for in9, ranges in enumerate(IMAGENET_RANGES):
    for start, end in ranges:
      if (table[start:end] != -1).any():
        raise ValueError(f'IMAGENET_RANGES[{in9}] overlaps another class.')
      table[start:end] = in9
  return table


IMAGENET_TO_IN9 = imagenet_to_in9()
_IMAGE = re.compile(r'\.(jpe?g|png)$', re.IGNORECASE)


class BackgroundsChallenge(tfds.core.GeneratorBasedBuilder):
  """ImageNet-9 test variants and foreground masks (manual download)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}  # noqa: RUF012
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    f'Download {ARCHIVE} from the "data" release of {RELEASE} and put it, '
    f'or the {ROOT}/ folder it extracts to, in the manual_dir; `tfds build '
    'backgrounds_challenge --imports jaxmix.datasets.backgrounds_challenge '
    '--data_dir D --manual_dir M` prepares every variant'
  )
  BUILDER_CONFIGS = [  # noqa: RUF012
    *(tfds.core.BuilderConfig(name=v, description=v) for v in VARIANTS),
    tfds.core.BuilderConfig(
      name=MASKS, description='original images with foreground masks'
    ),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
      'image': tfds.features.Image(encoding_format='jpeg'),
      'label': tfds.features.ClassLabel(names=CLASS_FOLDERS),
      'file_name': tfds.features.Text(),
    }
    if self.builder_config.name == MASKS:
      features['mask'] = tfds.features.Image(
        shape=(None, None, 1), encoding_format='png'
      )
    return tfds.core.DatasetInfo(
      builder=self,
      description='ImageNet-9 of the Backgrounds Challenge (Xiao et al.), '
      f'variant {self.builder_config.name}.',
      features=tfds.features.FeaturesDict(features),
      supervised_keys=('image', 'label'),
      # The official order (sorted folders, sorted files): `--limit N`
      # takes the first N images as the official loaders list them.
      disable_shuffling=True,
      homepage='https://github.com/MadryLab/backgrounds_challenge',
      citation='Xiao, K., Engstrom, L., Ilyas, A. and Madry, A. (2021). '
      'Noise or Signal: The Role of Image Backgrounds in Object '
      'Recognition. ICLR.',
    )

  def _split_generators(self, dl_manager):
    name = self.builder_config.name
    needs = ('original', MASKS) if name == MASKS else (name,)
    root = release_root(dl_manager, needs)
    return {SPLIT: self._generate_examples(root)}

  def _generate_examples(self, root):
    name = self.builder_config.name
    if name == MASKS:
      yield from _mask_examples(root)
      return
    for label, folder in enumerate(class_folders(root / name / 'val')):
      for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if _IMAGE.search(path.name):
          yield (
            f'{CLASS_FOLDERS[label]}/{path.name}',
            {'image': path, 'label': label, 'file_name': path.name},
          )


def release_root(dl_manager, needs: tuple[str, ...]):
  """The folder of the variant folders in the manual_dir.

  Args:
    dl_manager: the builder's download manager (its manual_dir; it
      extracts the archive when only the archive is there).
    needs: variant folders that must be there ('original', 'fg_mask').

  Returns:
    The path holding `<variant>/val` for every variant of `needs`.
  """
  manual = dl_manager.manual_dir

  def found(base):
    return all((base / n / 'val').exists() for n in needs)

  for base in (manual / ROOT, manual):
    if found(base):
      return base
  if (manual / ARCHIVE).exists():
    extracted = dl_manager.extract(manual / ARCHIVE)
    for base in (extracted / ROOT, extracted):
      if found(base):
        return base
  raise ValueError(
    f'manual_dir {manual} has no {ROOT}/<variant>/val folders for {needs} '
    f'and no {ARCHIVE} that holds them. '
    + BackgroundsChallenge.MANUAL_DOWNLOAD_INSTRUCTIONS
  )


def class_folders(val):
  """The nine class folders of a variant's `val`, in label order.

  Raises ValueError naming the folder when they are not `CLASS_FOLDERS`:
  labels come from the sorted folder names, so another set of folders
  would shift them.
  """
  names = sorted(p.name for p in val.iterdir() if p.is_dir())
  if tuple(names) != CLASS_FOLDERS:
    raise ValueError(
      f'{val} must hold the class folders {list(CLASS_FOLDERS)}, found {names}.'
    )
  return [val / n for n in names]


def mask_pixels(array: np.ndarray, path) -> np.ndarray:
  """uint8 `[H, W, 1]`, 1 on the foreground, of a released mask `[H, W]`."""
  array = np.asarray(array)
  if array.ndim != 2:
    raise ValueError(f'{path}: a mask must be [H, W], got {array.shape}.')
  # The official script casts to uint8 before using the mask.
  return (array.astype(np.uint8) != 0).astype(np.uint8)[..., None]


def _mask_examples(root):
  folders = class_folders(root / MASKS / 'val')
  class_folders(root / 'original' / 'val')  # checks the same nine
  for label, folder in enumerate(folders):
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
      if not path.name.endswith('.npy'):
        continue
      stem = path.name[: -len('.npy')]
      image = root / 'original' / 'val' / folder.name / f'{stem}.JPEG'
      if not image.exists():
        raise ValueError(f'{path} has no original image {image}.')
      mask = mask_pixels(np.load(io.BytesIO(path.read_bytes())), path)
      yield (
        f'{CLASS_FOLDERS[label]}/{image.name}',
        {
          'image': image,
          'label': label,
          'file_name': image.name,
          'mask': mask,
        },
      )
