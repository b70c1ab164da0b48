"""Tests of the label-map picture: a valid PNG, from arrays and from a store."""

import numpy as np
import pytest
from PIL import Image

from jaxmix.apps import view_label_maps
from jaxmix.data.label_maps.writer import LabelMapWriter
from jaxmix.evaluate import label_map_viewer as relabel_viewer

PNG = b'\x89PNG\r\n\x1a\n'


def two_class_map(size=5):
  """Class 1 on the left half, class 2 on the right, class 0 second."""
  indices = np.zeros((size, size, 2), np.int64)
  indices[:, : size // 2, 0], indices[:, size // 2 :, 0] = 1, 2
  scores = np.stack([np.full((size, size), 4.0), np.ones((size, size))], -1)
  return scores, indices


def test_render_writes_a_png(tmp_path):
  scores, indices = two_class_map()
  image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)
  path = tmp_path / 'map.png'
  relabel_viewer.render(
    image,
    scores,
    indices,
    class_names=['zero', 'one', 'two', 'three'],
    crop_box=(0.1, 0.0, 0.9, 0.4),
    title='test',
    path=str(path),
  )
  assert path.read_bytes()[:8] == PNG
  with Image.open(path) as png:
    assert png.width > 2 * png.height > 200


def test_render_rejects_bad_boxes_and_maps(tmp_path):
  scores, indices = two_class_map()
  image = np.zeros((8, 8, 3), np.uint8)
  kwargs = dict(class_names=list('abcd'), path=str(tmp_path / 'x.png'))
  with pytest.raises(ValueError, match='crop_box'):
    relabel_viewer.render(
      image, scores, indices, crop_box=(0.5, 0, 0.2, 1), **kwargs
    )
  with pytest.raises(ValueError, match=r'\[S, S, k\]'):
    relabel_viewer.render(image, scores[0], indices[0], **kwargs)


@pytest.mark.slow
def test_command_line_draws_a_digit_scene(tmp_path, digit_scenes_small):
  import tensorflow_datasets as tfds

  from jaxmix.datasets import digit_scenes

  data_dir = digit_scenes_small
  builder = digit_scenes.prepare(data_dir, 'small')
  (example,) = tfds.as_numpy(builder.as_dataset(split='train').take(1))
  name = example['file_name'].decode()
  scores, indices = two_class_map(4)
  writer = LabelMapWriter(str(tmp_path / 'maps'), size=4, k=2, num_classes=10)
  writer.add([name], scores[None], indices[None])
  writer.finalize()
  out = tmp_path / 'map.png'
  view_label_maps.main(
    [
      f'--store={tmp_path / "maps"}',
      f'--data_dir={data_dir}',
      '--dataset=digit_scenes/small',
      f'--file_name={name}',
      f'--out={out}',
      '--crop=0.2,0.1,0.9,0.6',
    ]
  )
  assert out.read_bytes()[:8] == PNG
  with pytest.raises(ValueError, match='is not in dataset digit_scenes'):
    view_label_maps.main(
      [
        f'--store={tmp_path / "maps"}',
        f'--data_dir={data_dir}',
        '--dataset=digit_scenes/small',
        '--file_name=nope.jpg',
        f'--out={out}',
      ]
    )
