"""Writes a split's ReLabel label maps with a trained run or pretrained weights.

  python -m jaxmix.apps.annotate --workdir RUN --data_dir DIR --split train \\
      --out STORE [--size S] [--top_k 5] [--batch_size 256] [--image_size R]
  python -m jaxmix.apps.annotate --weights tf_efficientnet_l2_ns_475.pth \\
      --model tf_efficientnet_l2_ns_475 --dataset imagenet2012 \\
      --data_dir DIR --split train --out STORE

The recipe and its steps are in `jaxmix.evaluate.annotator`. Run the same
command again after an interruption and it resumes.
"""

import types

from absl import flags

from jaxmix.evaluate import annotator
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
  'model', None, 'With --weights, e.g. tf_efficientnet_l2.', flag_values=FLAGS
)
flags.DEFINE_string(
  'out', None, 'The label-map store to write.', flag_values=FLAGS
)
flags.DEFINE_string('data_dir', None, 'TFDS data_dir.', flag_values=FLAGS)
flags.DEFINE_string(
  'dataset', None, "TFDS dataset (default: the run's).", flag_values=FLAGS
)
flags.DEFINE_string('split', 'train', 'Its split.', flag_values=FLAGS)
flags.DEFINE_integer(
  'size', None, 'S; default h (15 for --weights).', flag_values=FLAGS
)
flags.DEFINE_integer('top_k', 5, 'Classes kept per cell.', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 256, 'Images per batch.', flag_values=FLAGS)
flags.DEFINE_integer('image_size', None, 'R.', flag_values=FLAGS)
flags.DEFINE_integer(
  'log_every', 20, 'Progress every this many batches.', flag_values=FLAGS
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
  annotator.annotate(_parse(argv))


if __name__ == '__main__':
  main()
