"""Draws a ReLabel label map over its image, with a crop and its target.

  python -m jaxmix.apps.view_label_maps --store STORE --file_name NAME \\
      --out map.png [--data_dir DIR --dataset imagenet2012 --split train] \\
      [--crop y0,x0,y1,x1]

The picture is `jaxmix.evaluate.label_map_viewer.render`'s.
"""

import sys

import ml_collections
from absl import flags

from jaxmix.data.label_maps.store import LabelMapStore
from jaxmix.evaluate import label_map_viewer as viewer
from jaxmix.io import command_line

FLAGS = flags.FlagValues()
flags.DEFINE_string('store', None, 'The label-map store.', flag_values=FLAGS)
flags.DEFINE_string('file_name', None, 'The image.', flag_values=FLAGS)
flags.DEFINE_string('out', None, 'The PNG to write.', flag_values=FLAGS)
flags.DEFINE_string('data_dir', None, 'TFDS data_dir.', flag_values=FLAGS)
flags.DEFINE_string(
  'dataset', 'imagenet2012', 'TFDS dataset.', flag_values=FLAGS
)
flags.DEFINE_string('split', 'train', 'Its split.', flag_values=FLAGS)
flags.DEFINE_string(
  'crop', '0.1,0.1,0.7,0.7', 'The crop: y0,x0,y1,x1.', flag_values=FLAGS
)
flags.mark_flags_as_required(['store', 'file_name', 'out'], flag_values=FLAGS)


def main(argv: list[str] | None = None) -> None:
  command_line.parse(FLAGS, argv, __doc__)
  args = FLAGS

  crop = tuple(float(v) for v in args.crop.split(','))
  if len(crop) != 4:
    raise ValueError(f'--crop must be y0,x0,y1,x1, got {args.crop!r}.')
  store = LabelMapStore.open(args.store)
  data_config = ml_collections.ConfigDict(
    dict(
      dataset=args.dataset,
      data_dir=args.data_dir,
      manual_dir=None,
      image_key='image',
      label_key='label',
      file_name_key='file_name',
      num_classes=store.num_classes,
    )
  )
  image, label, names = viewer.find_image(
    data_config, args.split, args.file_name
  )
  scores, indices, _ = store.lookup([args.file_name])
  viewer.render(
    image,
    scores[0],
    indices[0],
    class_names=names,
    crop_box=crop,
    title=f'{args.file_name} (label: {names[label]})',
    path=args.out,
  )
  print(f'wrote {args.out}', file=sys.stderr)


if __name__ == '__main__':
  main()
