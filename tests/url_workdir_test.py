"""A `gs://` workdir end to end, offline: train, preempt, resume, evaluate;
the pictures (CAM grids, curves, label maps, the augmentation preview) and
the report over runs on the bucket.

`gs://` is served by a fake filesystem registered with the path layer
(`etils.epath`'s fsspec backend): a local folder stands in for the bucket,
and orbax takes its GCS code paths (commit files instead of renames). orbax
writes the arrays with TensorStore, which the test points at the same
folder, and never asks the bucket API. Any file written with plain `open`
or `os` instead would land in `./gs:/...` of the working directory, which
the test checks stays empty.
"""

import io
import json
import os
import signal

import fsspec
import numpy as np
import pytest
from etils.epath import backend as epath_backend
from etils.epath import gpath as epath_gpath
from fsspec.implementations.local import LocalFileSystem
from orbax.checkpoint._src.path import gcs_utils
from orbax.checkpoint._src.serialization import tensorstore_utils
from PIL import Image

from jaxmix.apps import preview
from jaxmix.apps import report as report_app
from jaxmix.datasets import synthetic
from jaxmix.evaluate import label_map_viewer as viewer
from jaxmix.evaluate import plots, report, runs
from jaxmix.evaluate.suites import registry as suite_registry
from jaxmix.io import paths
from jaxmix.train import loop
from tests.run_record_test import tiny_config


class FakeGCS(LocalFileSystem):
  """`gs://bucket/path` -> `<root>/bucket/path` on the local disk."""

  protocol = ('gs', 'gcs')
  root = ''

  @classmethod
  def _strip_protocol(cls, path):
    path = os.fspath(path)
    for prefix in ('gs://', 'gcs://'):
      if path.startswith(prefix):
        return os.path.join(cls.root, path[len(prefix) :]).rstrip('/')
    return super()._strip_protocol(path)

  def _bucket_path(self, path):
    """A local path back as GCS names it (`bucket/path`, no scheme)."""
    return (
      os.path.relpath(path, self.root) if path.startswith(self.root) else path
    )

  def glob(self, path, **kwargs):
    return [self._bucket_path(p) for p in super().glob(path, **kwargs)]


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
  """Serves gs:// from `tmp_path/bucket_root`; the cwd is `tmp_path/cwd`."""
  root = tmp_path / 'bucket_root'
  root.mkdir()
  monkeypatch.setattr(FakeGCS, 'root', str(root))
  # epath's fsspec backend for gs:// (its choice of TF's is cached).
  monkeypatch.setattr(epath_gpath, '_is_tf_installed', lambda: False)
  fsspec.register_implementation('gcs', FakeGCS, clobber=True)
  fsspec.register_implementation('gs', FakeGCS, clobber=True)
  epath_backend.fsspec_backend._get_filesystem.cache_clear()

  # TensorStore opens the arrays by path: the bucket's folder, as a file.
  monkeypatch.setattr(
    tensorstore_utils,
    '_normalize_path',
    lambda path: os.path.normpath(FakeGCS._strip_protocol(path)),
  )
  # A bucket without hierarchical namespace (orbax would ask the GCS API).
  monkeypatch.setattr(
    gcs_utils, 'is_hierarchical_namespace_enabled', lambda path: False
  )
  cwd = tmp_path / 'cwd'
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  yield root
  epath_backend.fsspec_backend._get_filesystem.cache_clear()
  assert os.listdir(cwd) == []  # nothing went to ./gs:/...


@pytest.mark.slow
def test_train_preempt_resume_evaluate_on_a_gs_workdir(fake_gcs, monkeypatch):
  workdir = 'gs://bucket/run'
  real_next = synthetic.SyntheticTrainIterator.__next__
  calls = []

  def next_then_sigterm(self):
    calls.append(1)
    if len(calls) == 3:
      os.kill(os.getpid(), signal.SIGTERM)
    return real_next(self)

  with monkeypatch.context() as patch:
    patch.setattr(
      synthetic.SyntheticTrainIterator, '__next__', next_then_sigterm
    )
    first = loop.train(tiny_config(num_epochs=2), workdir)
  assert first.status == 'preempted'
  second = loop.train(tiny_config(num_epochs=2), workdir)
  assert (second.status, second.step) == ('finished', 8)

  run = runs.load_run(workdir)
  assert run.step == 8 and run.workdir == workdir and run.name == 'run'
  monkeypatch.setitem(
    suite_registry.SUITES, 'fake', lambda run, args: {'metrics': {'x': 1.0}}
  )
  result = suite_registry.evaluate_run(run, 'fake')
  assert result['json'] == 'gs://bucket/run/eval/fake.json'

  local = fake_gcs / 'bucket' / 'run'
  assert json.loads((local / 'config.json').read_text())['num_epochs'] == 2
  assert json.loads((local / 'eval' / 'fake.json').read_text())['metrics']
  rows = [
    json.loads(x) for x in (local / 'metrics.jsonl').read_text().splitlines()
  ]
  assert max(r['step'] for r in rows) == 8
  assert os.listdir(local / 'tensorboard')
  assert '8' in os.listdir(local / 'checkpoints')
  assert not (local / 'owner.json').exists()
  assert len(run.metrics_history()) == len(rows)


def png_size(local_file) -> tuple[int, int]:
  """(width, height) of the PNG the bucket holds at `local_file`."""
  data = local_file.read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n', local_file
  with Image.open(io.BytesIO(data)) as image:
    return image.size


def cam_result(run: str, method: str, seed: int) -> dict:
  """A 'wsol' result as the suite returns it, with its '_cams' (2 images)."""
  rng = np.random.default_rng(seed)
  return {
    'run': run,
    'method': method,
    '_cams': {
      'images': rng.integers(0, 256, (2, 16, 16, 3), np.uint8),
      'cams': rng.random((2, 16, 16)),
      'boxes': np.array([[2, 2, 10, 10], [0, 4, 8, 16]]),
      'true_boxes': [np.array([[1, 1, 9, 9]]), np.array([[0, 0, 8, 8]])],
      'titles': ['one', 'two'],
    },
  }


def test_pictures_are_written_to_a_gs_run_directory(fake_gcs):
  run = 'gs://bucket/run'
  local = fake_gcs / 'bucket' / 'run'

  # One run's CAM grid (suites_localization's picture) and the grid of two.
  single = cam_result('a', 'cutmix', 0)['_cams']
  path = plots.plot_cam_grid(
    single['images'], {'a': single['cams']}, f'{run}/eval/wsol_cams.png'
  )
  assert path == f'{run}/eval/wsol_cams.png'
  width_one, height = png_size(local / 'eval' / 'wsol_cams.png')
  results = [cam_result('a', 'cutmix', 0), cam_result('b', 'mixup', 1)]
  path = report.combined_cam_grid(results, f'{run}/report/cams.png')
  assert path == f'{run}/report/cams.png'
  width_two, height_two = png_size(local / 'report' / 'cams.png')
  assert width_two > width_one and height_two == pytest.approx(height, abs=20)

  # Training curves read from and drawn into the bucket.
  paths.write_text(
    f'{run}/metrics.jsonl',
    '\n'.join(json.dumps({'step': s, 'loss': 1.0 / s}) for s in (1, 2, 3)),
  )
  curves = plots.plot_training_curves(
    f'{run}/metrics.jsonl', f'{run}/pictures/curves.png'
  )
  assert curves == f'{run}/pictures/curves.png'
  png_size(local / 'pictures' / 'curves.png')

  # The label-map picture (view_label_maps) and the augmentation preview.
  indices = np.zeros((3, 3, 2), np.int64)
  indices[..., 0] = 1
  viewer.render(
    np.zeros((12, 12, 3), np.uint8),
    np.ones((3, 3, 2), np.float32),
    indices,
    class_names=['zero', 'one'],
    path=f'{run}/pictures/label_map.png',
  )
  png_size(local / 'pictures' / 'label_map.png')
  columns = len(preview.COLUMNS)
  figure = preview.Figure(
    images=np.full((1, columns, 8, 8, 3), 0.5, np.float32),
    labels=np.zeros((columns, 1, 2), np.float32),
    texts=[['x'] * columns],
    class_names=['p', 'q'],
  )
  preview.render(figure, f'{run}/pictures/augment_preview.png')
  png_size(local / 'pictures' / 'augment_preview.png')


def test_report_reads_and_writes_gs_runs(fake_gcs, capsys):
  for name, top1 in (('base', 0.5), ('mix', 0.625)):
    paths.write_text(
      f'gs://bucket/{name}/config.json',
      json.dumps({'mix': {'method': 'cutmix' if name == 'mix' else 'none'}}),
    )
    paths.write_text(
      f'gs://bucket/{name}/eval/imagenet.json',
      json.dumps({'step': 7, 'metrics': {'top1': top1}}),
    )
    paths.write_text(
      f'gs://bucket/{name}/metrics.jsonl', json.dumps({'step': 1, 'loss': 2.0})
    )
  row = report.row_for_run('gs://bucket/mix')
  assert row == {
    'run': 'mix',
    'method': 'cutmix',
    'step': 7,
    'imagenet/top1': 0.625,
  }
  status = report_app.main(
    [
      'gs://bucket/base',
      'gs://bucket/mix',
      '--out',
      'gs://bucket/table.md',
      '--curves',
      'gs://bucket/curves.png',
    ]
  )
  assert status == 0
  table = (fake_gcs / 'bucket' / 'table.md').read_text()
  assert table in capsys.readouterr().out
  assert '| base | baseline | 7 | 50.00 |' in table
  assert '| mix | cutmix | 7 | 62.50 |' in table
  png_size(fake_gcs / 'bucket' / 'curves.png')
