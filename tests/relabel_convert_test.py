"""Tests for the official-release converter, from .pt files to pooled targets.

The .pt files are written byte for byte as `torch.save` writes them
(`torch_file_util`), in the release's layout `<wnid>/<stem>.pt`, each a
`[2, 5, 15, 15]` float tensor: top-5 scores, then class ids, channels first.
"""

import os
import tarfile

import numpy as np
import pytest
from torch_file_util import torch_save_bytes, write_release

import jaxmix
from jaxmix.apps import convert_label_maps as convert_app
from jaxmix.data.label_maps import convert as relabel_convert
from jaxmix.data.label_maps.store import LabelMapStore

S, K, CLASSES = 15, 5, 1000


def _official_map(rng) -> np.ndarray:
  """A [2, 5, 15, 15] map: descending scores, distinct ids per cell."""
  ids = np.argsort(rng.rand(S, S, CLASSES), axis=-1)[..., :K]
  scores = -np.sort(-rng.uniform(-2, 12, (S, S, K)), axis=-1)
  return np.stack([scores.transpose(2, 0, 1), ids.transpose(2, 0, 1)]).astype(
    np.float32
  )


def _release(n_per_class=2, seed=0) -> dict[str, np.ndarray]:
  rng = np.random.RandomState(seed)
  wnids = ['n01440764', 'n01443537', 'n15075141']
  return {
    f'{w}/{w}_{i + 1}': _official_map(rng)
    for w in wnids
    for i in range(n_per_class)
  }


def _check_store(store: LabelMapStore, maps: dict[str, np.ndarray]):
  names = [m.split('/')[1] + '.JPEG' for m in maps]
  scores, indices, found = store.lookup(names)
  assert found.all() and len(store) == len(maps)
  want = np.stack(list(maps.values()))  # [n, 2, k, S, S]
  np.testing.assert_array_equal(
    scores, want[:, 0].transpose(0, 2, 3, 1).astype(np.float16)
  )
  np.testing.assert_array_equal(indices, want[:, 1].transpose(0, 2, 3, 1))


def test_file_name_is_the_tfds_imagenet2012_key():
  # TFDS imagenet2012 keys train images by their name in the synset tar.
  assert (
    relabel_convert.file_name_of('n01440764/n01440764_10026.pt')
    == 'n01440764_10026.JPEG'
  )
  assert relabel_convert.file_name_of('a/b/x_1.pt', '.png') == 'x_1.png'


def test_directory_and_tar_give_the_same_store(tmp_path, capsys):
  maps = _release()
  write_release(str(tmp_path / 'release'), maps)
  # One file in the pre-1.6 format, as an older torch.save writes it.
  legacy = next(iter(maps))
  with open(tmp_path / 'release' / f'{legacy}.pt', 'wb') as f:
    f.write(torch_save_bytes(maps[legacy], legacy=True))
  store = relabel_convert.convert(
    str(tmp_path / 'release'), str(tmp_path / 'from_dir')
  )
  _check_store(store, maps)
  assert store.metadata['source'].startswith('official ReLabel')
  tar_path = tmp_path / 'relabel_imagenet.tar'
  with tarfile.open(tar_path, 'w') as tar:
    tar.add(tmp_path / 'release', arcname='relabel_imagenet')
  store = relabel_convert.convert(
    str(tar_path), str(tmp_path / 'from_tar'), batch_size=1, log_every=0.0
  )
  _check_store(store, maps)
  assert 'of the tar read' in capsys.readouterr().err  # Progress with ETA.
  # 4,500 B of maps per image, plus the name index.
  size = sum(
    os.path.getsize(tmp_path / 'from_tar' / f)
    for f in ('scores.npy', 'indices.npy')
  )
  assert size == 2 * 128 + len(maps) * S * S * K * 4


def _aligned_box(y0, x0, y1, x1):
  return np.array([y0, x0, y1, x1], np.float32) / S


def test_pooled_targets_match_the_dense_maps(tmp_path):
  """.pt -> converter -> store -> lookup -> pool_label_map == dense pooling.

  For a crop whose edges lie on cell edges, RoIAlign (half-pixel aligned,
  one sample per cell) samples exactly the cell centres inside it, so the
  pooled logit of class c is the mean of the dense map over those cells.
  """
  maps = _release(n_per_class=1, seed=3)
  write_release(str(tmp_path / 'release'), maps)
  store = relabel_convert.convert(
    str(tmp_path / 'release'), str(tmp_path / 'store')
  )
  boxes = [(0, 0, 15, 15), (0, 0, 15, 6), (2, 9, 7, 15), (10, 1, 14, 4)]
  names = [m.split('/')[1] + '.JPEG' for m in maps]
  for (member, tensor), name in zip(maps.items(), names):
    scores, indices, _ = store.lookup([name] * len(boxes))
    crop_boxes = np.stack([_aligned_box(*b) for b in boxes])
    pooled = jaxmix.pool_label_map(
      scores, indices, crop_boxes, num_classes=CLASSES
    )
    dense = np.zeros((CLASSES, S, S), np.float64)  # The official [K, S, S].
    rows, cols = np.meshgrid(np.arange(S), np.arange(S), indexing='ij')
    for k in range(K):
      scores_k = tensor[0, k].astype(np.float16).astype(np.float64)
      dense[tensor[1, k].astype(int), rows, cols] = scores_k
    for box, got in zip(boxes, np.asarray(pooled)):
      y0, x0, y1, x1 = box
      want = dense[:, y0:y1, x0:x1].mean(axis=(1, 2))
      np.testing.assert_allclose(got, want, atol=1e-5, err_msg=member)


def test_left_crop_gets_the_left_class(tmp_path):
  """Class A on the left columns, B on the right; C top rows, D bottom."""
  a, b, c, d = 3, 7, 11, 13
  tensor = np.zeros((2, K, S, S), np.float32)
  tensor[1, 2:] = np.arange(20, 20 + K - 2)[
    :, None, None
  ]  # Score 0 fillers (ids 20-22).
  tensor[0, 0] = 4.0
  tensor[1, 0, :, :8], tensor[1, 0, :, 8:] = a, b
  tensor[0, 1] = 2.0
  tensor[1, 1, :8, :], tensor[1, 1, 8:, :] = c, d
  write_release(str(tmp_path / 'release'), {'n0/n0_1': tensor})
  store = relabel_convert.convert(
    str(tmp_path / 'release'), str(tmp_path / 'store')
  )
  scores, indices, _ = store.lookup(['n0_1.JPEG'] * 2)
  left_top = [0.0, 0.0, 0.4, 0.4]
  right_bottom = [0.6, 0.6, 1.0, 1.0]
  targets = jaxmix.relabel_targets(
    scores, indices, np.array([left_top, right_bottom]), num_classes=32
  )
  top2 = np.argsort(-np.asarray(targets), axis=1)[:, :2]
  assert top2.tolist() == [[a, c], [b, d]]
  # The official box order reflects the crop about the diagonal.
  official = jaxmix.pool_label_map(
    scores[:1],
    indices[:1],
    np.array([[0.0, 0.0, 0.4, 1.0]]),  # Top rows, all columns.
    num_classes=32,
    official_box_order=True,
  )
  assert float(official[0, a]) == pytest.approx(4.0, rel=1e-5)  # Left cols.


@pytest.mark.parametrize(
  'edit, match',
  [
    (lambda t: t.__setitem__((1, 2, 3, 4), 2.5), 'whole numbers'),
    (lambda t: t.__setitem__((1, 0, 0, 0), CLASSES), 'whole numbers'),
    (lambda t: t.__setitem__((1, 0, 0, 0), -1), 'whole numbers'),
    (lambda t: t.__setitem__((0, 1, 14, 0), np.nan), 'finite'),
    (lambda t: t.__setitem__((0, 1, 14, 0), 1e9), 'finite'),
  ],
)
def test_bad_maps_are_errors_naming_the_file(tmp_path, edit, match):
  maps = _release(n_per_class=1)
  edit(maps['n01443537/n01443537_1'])
  write_release(str(tmp_path / 'release'), maps)
  with pytest.raises(
    ValueError, match=rf'n01443537[/\\]n01443537_1\.pt.*{match}'
  ):
    relabel_convert.convert(str(tmp_path / 'release'), str(tmp_path / 'out'))


def test_wrong_shapes_and_garbage_are_errors_naming_the_file(tmp_path):
  release = tmp_path / 'release'
  write_release(str(release), {'n1/n1_1': np.zeros((2, K, S, 14), np.float32)})
  with pytest.raises(ValueError, match=r'n1_1\.pt.*\[2, k, S, S\]'):
    relabel_convert.convert(str(release), str(tmp_path / 'a'))
  write_release(str(release), {'n1/n1_1': np.zeros((K, S, S), np.float32)})
  with pytest.raises(ValueError, match=r'n1_1\.pt.*\[2, k, S, S\]'):
    relabel_convert.convert(str(release), str(tmp_path / 'b'))
  (release / 'n1' / 'n1_1.pt').write_bytes(b'not a torch file')
  with pytest.raises(ValueError, match=r'n1_1\.pt'):
    relabel_convert.convert(str(release), str(tmp_path / 'c'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match=r'holds no \.pt'):
    relabel_convert.convert(str(tmp_path / 'empty'), str(tmp_path / 'd'))
  (tmp_path / 'x.txt').write_text('hi')
  with pytest.raises(ValueError, match='neither a directory nor a tar'):
    relabel_convert.convert(str(tmp_path / 'x.txt'), str(tmp_path / 'e'))


def test_a_failed_conversion_resumes(tmp_path, capsys):
  maps = _release(n_per_class=4)
  release = tmp_path / 'release'
  write_release(str(release), maps)
  bad = release / 'n15075141' / 'n15075141_3.pt'
  good = bad.read_bytes()
  bad.write_bytes(b'torn')
  out = str(tmp_path / 'store')
  with pytest.raises(ValueError, match=r'n15075141_3\.pt'):
    relabel_convert.convert(str(release), out, chunk=2, batch_size=2)
  assert not os.path.exists(os.path.join(out, 'metadata.json'))
  bad.write_bytes(good)
  store = relabel_convert.convert(str(release), out, chunk=2, batch_size=2)
  assert 'resuming' in capsys.readouterr().err
  _check_store(store, maps)
  with pytest.raises(ValueError, match='already complete'):
    relabel_convert.convert(str(release), out)


def test_command_line_with_workers(tmp_path, capsys):
  maps = _release(n_per_class=3)
  write_release(str(tmp_path / 'release'), maps)
  tar_path = tmp_path / 'release.tar'
  with tarfile.open(tar_path, 'w') as tar:
    tar.add(tmp_path / 'release', arcname='.')
  out = str(tmp_path / 'store')
  convert_app.main(['--src', str(tar_path), '--out', out, '--workers', '2'])
  assert 'B per map' in capsys.readouterr().err
  _check_store(LabelMapStore.open(out), maps)


@pytest.mark.slow
def test_maps_join_the_tfds_imagenet2012_train_pipeline(tmp_path_factory):
  """Release named as ImageNet's tars -> store -> every TFDS example found."""
  from imagenet_fixture_util import data_config, prepared_imagenet

  from jaxmix.data import input_pipeline

  data_dir, manifest = prepared_imagenet(str(tmp_path_factory.getbasetemp()))
  rng = np.random.RandomState(5)
  maps = {
    f'{synset}/{os.path.splitext(name)[0]}': _official_map(rng)
    for name, synset in manifest['train']
  }
  root = tmp_path_factory.mktemp('relabel')
  write_release(str(root / 'release'), maps)
  store = relabel_convert.convert(str(root / 'release'), str(root / 'store'))
  seen = []
  for index in range(2):  # Each host joins its own examples.
    batches = input_pipeline.create_train_iterator(
      data_config(data_dir),
      global_batch_size=4,
      image_size=32,
      seed=0,
      process_index=index,
      process_count=2,
    )
    for _ in range(3):
      batch = next(batches)
      scores, indices, found = store.lookup(batch['file_name'])
      assert found.all()
      for name, s, i in zip(batch['file_name'], scores, indices):
        name = name.decode()
        want = maps[f'{name.split("_")[0]}/{name[: -len(".JPEG")]}']
        np.testing.assert_array_equal(
          s, want[0].transpose(1, 2, 0).astype(np.float16)
        )
        np.testing.assert_array_equal(i, want[1].transpose(1, 2, 0))
        seen.append(name)
      targets = jaxmix.relabel_targets(
        scores, indices, batch['crop_box'], num_classes=CLASSES
      )
      np.testing.assert_allclose(np.sum(targets, axis=1), 1.0, rtol=1e-5)
  assert len(set(seen)) == len(manifest['train'])
