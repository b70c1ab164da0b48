"""Tests of jaxmix.train.metrics_log's event files, read by TensorBoard."""

import os

from tensorboard.backend.event_processing import event_accumulator

from jaxmix.train import metrics_log


def _loaded(logdir) -> event_accumulator.EventAccumulator:
  """The run as `tensorboard --logdir` loads it."""
  loaded = event_accumulator.EventAccumulator(str(logdir))
  loaded.Reload()
  return loaded


def test_tensorboard_reads_the_scalars(tmp_path):
  writer = metrics_log.EventFileWriter(tmp_path / 'tensorboard')
  assert not (tmp_path / 'tensorboard').exists()  # nothing until a summary
  writer.scalars(7, {'train/loss': 0.25, 'train/top1': 0.5})
  writer.scalars(9, {'train/loss': 0.125})
  writer.close()
  (name,) = os.listdir(tmp_path / 'tensorboard')
  assert name.startswith('events.out.tfevents.')
  loaded = _loaded(tmp_path / 'tensorboard')
  assert sorted(loaded.Tags()['scalars']) == ['train/loss', 'train/top1']
  loss = loaded.Scalars('train/loss')
  assert [(e.step, e.value) for e in loss] == [(7, 0.25), (9, 0.125)]


def test_the_metric_logger_writes_events_and_jsonl_alike(tmp_path):
  logger = metrics_log.MetricLogger(tmp_path)
  logger.write(3, {'loss': 1.5, 'top1': 0.75}, prefix='eval')
  logger.close()
  loaded = _loaded(tmp_path / 'tensorboard')
  assert [(e.step, e.value) for e in loaded.Scalars('eval/top1')] == [(3, 0.75)]
  assert '"eval/loss": 1.5' in (tmp_path / 'metrics.jsonl').read_text()
