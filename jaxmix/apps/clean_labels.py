"""Writes a keep list: the train examples whose label a strong model agrees with.

  python -m jaxmix.apps.clean_labels --workdir RUN --data_dir DIR \\
      --split train --out keep.json [--top_k 1] [--batch_size 256]
  python -m jaxmix.apps.clean_labels --weights tf_efficientnet_l2_ns_475.pth \\
      --model tf_efficientnet_l2_ns_475 --dataset imagenet2012 \\
      --data_dir DIR --split train --out keep.json

Label cleaning as in Beyer et al. (2020); the steps are in
`jaxmix.evaluate.label_cleaning`. Train on the list with
`--config.data.keep_list=keep.json`.
"""

import types

from absl import flags

from jaxmix.evaluate import label_cleaning
from jaxmix.io import command_line

FLAGS = flags.FlagValues()
flags.DEFINE_string('workdir', None, 'A trained jaxmix run.', flag_values=FLAGS)
flags.DEFINE_string(
  'weights',
  None,
  'A torchvision / timm state dict (with --model).',
  flag_values=FLAGS,
)
flags.DEFINE_string(
  'model', None, 'With --weights, e.g. resnet152.', flag_values=FLAGS
)
flags.DEFINE_string('out', None, 'The keep list to write.', flag_values=FLAGS)
flags.DEFINE_string('data_dir', None, 'TFDS data_dir.', flag_values=FLAGS)
flags.DEFINE_string(
  'dataset', None, "TFDS dataset (default: the run's).", flag_values=FLAGS
)
flags.DEFINE_string('split', 'train', 'The split to clean.', flag_values=FLAGS)
flags.DEFINE_integer(
  'top_k', 1, 'Keep when the label is among this many.', flag_values=FLAGS
)
flags.DEFINE_integer('batch_size', 256, 'Images per batch.', flag_values=FLAGS)
flags.DEFINE_integer(
  'image_size', None, "The scorer's input side.", flag_values=FLAGS
)
flags.DEFINE_integer(
  'log_every', 50, 'Progress every this many batches.', flag_values=FLAGS
)
flags.mark_flag_as_required('out', flag_values=FLAGS)
flags.mark_flags_as_mutual_exclusive(
  ['workdir', 'weights'], required=True, flag_values=FLAGS
)


def _parse(argv: list[str] | None) -> types.SimpleNamespace:
  """The parsed flags, as a snapshot of their values."""
  command_line.parse(FLAGS, argv, __doc__)
  return types.SimpleNamespace(**FLAGS.flag_values_dict())


def main(argv: list[str] | None = None) -> None:
  label_cleaning.clean(_parse(argv))


if __name__ == '__main__':
  main()
