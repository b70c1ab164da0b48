"""Draws a ReLabel label map over its image, with a crop and its target.

  python -m jaxmix.apps.view_label_maps --store STORE --file_name NAME \\
      --out map.png [--data_dir DIR --dataset imagenet2012 --split train] \\
      [--crop y0,x0,y1,x1]

The picture is `jaxmix.evaluate.label_map_viewer.render`'s.
"""

import argparse
import sys

import ml_collections

from jaxmix.data.label_maps.store import LabelMapStore
from jaxmix.evaluate import label_map_viewer as viewer


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--store', required=True, help='label-map store')
  parser.add_argument('--file_name', required=True)
  parser.add_argument('--out', required=True, help='PNG to write')
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--dataset', default='imagenet2012')
  parser.add_argument('--split', default='train')
  parser.add_argument('--crop', default='0.1,0.1,0.7,0.7', help='y0,x0,y1,x1')
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)

  crop = tuple(float(v) for v in args.crop.split(','))
  if len(crop) != 4:
    raise ValueError(f'--crop must be y0,x0,y1,x1, got {args.crop!r}.')
  store = LabelMapStore.open(args.store)
  data_config = ml_collections.ConfigDict(
    dict(
      dataset=args.dataset,
      data_dir=args.data_dir,
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
