"""The official ReLabel label maps into a jaxmix label-map store.

  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \\
      --out /data/relabel_store --workers 8

Reads the release (`relabel_imagenet.tar`, streamed, or its unpacked
directory) without PyTorch and writes a store keyed by the TFDS
`imagenet2012` file names (`jaxmix.data.label_maps.convert`). A killed
conversion resumes where its last chunk ended when run again.
"""

from absl import flags

from jaxmix.io import command_line

FLAGS = flags.FlagValues()
flags.DEFINE_string(
  'src', None, 'The release tar or its directory.', flag_values=FLAGS
)
flags.DEFINE_string('out', None, 'The store directory.', flag_values=FLAGS)
flags.DEFINE_integer('workers', 1, 'Decoding processes.', flag_values=FLAGS)
flags.DEFINE_integer(
  'num_classes', 1000, 'Classes of the maps.', flag_values=FLAGS
)
flags.DEFINE_string(
  'extension', '.JPEG', 'Image file-name suffix in TFDS.', flag_values=FLAGS
)
flags.mark_flags_as_required(['src', 'out'], flag_values=FLAGS)


def main(argv: list[str] | None = None) -> None:
  command_line.parse(FLAGS, argv, __doc__)
  from jaxmix.data.label_maps import convert

  convert.convert(
    FLAGS.src,
    FLAGS.out,
    num_classes=FLAGS.num_classes,
    workers=FLAGS.workers,
    extension=FLAGS.extension,
  )


if __name__ == '__main__':
  main()
