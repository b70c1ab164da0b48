"""A `gs://` workdir end to end, offline: train, preempt, resume, evaluate.

`gs://` is served by a fake filesystem registered with the path layer
(`etils.epath`'s fsspec backend): a local folder stands in for the bucket,
and orbax takes its GCS code paths (commit files instead of renames). orbax
writes the arrays with TensorStore, which the test points at the same
folder, and never asks the bucket API. Any file written with plain `open`
or `os` instead would land in `./gs:/...` of the working directory, which
the test checks stays empty.
"""

import json
import os
import signal

import fsspec
import pytest
from etils.epath import backend as epath_backend
from etils.epath import gpath as epath_gpath
from fsspec.implementations.local import LocalFileSystem
from orbax.checkpoint._src.path import gcs_utils
from orbax.checkpoint._src.serialization import tensorstore_utils

from jaxmix.datasets import synthetic
from jaxmix.evaluate import runs, suite_registry
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
  assert not (local / 'lock').exists()
  assert len(run.metrics_history()) == len(rows)
