"""The trainer's command line on the offline ImageNet fixture (real TFDS)."""

import json
import os
import subprocess
import sys

import pytest

from tests import imagenet_fixture_util

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_main_trains_cutmix_on_the_imagenet_fixture_and_resumes(tmp_path):
  data_dir, _ = imagenet_fixture_util.prepared_imagenet(str(tmp_path / 'in'))
  workdir = tmp_path / 'run'
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_NUM_CPU_DEVICES': '2'}
  command = [
    sys.executable,
    '-m',
    'jaxmix.apps.train',
    '--config=configs/imagenet/cutmix_resnet50.py:smoke',
    f'--workdir={workdir}',
    '--config.data.dataset=imagenet2012',
    f'--config.data.data_dir={data_dir}',
    '--config.data.num_classes=1000',
    '--config.global_batch_size=4',
    '--config.checkpoint.every_steps=1',
  ]

  def run(epochs):
    return subprocess.run(
      [*command, f'--config.num_epochs={epochs}'],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )

  first = run(1)  # 12 images / batch 4: three CutMix steps, then eval.
  assert first.returncode == 0, first.stderr[-3000:]
  config = json.loads((workdir / 'config.json').read_text())
  assert config['data']['dataset'] == 'imagenet2012'
  assert config['mix']['method'] == 'cutmix'
  rows = [
    json.loads(line)
    for line in (workdir / 'metrics.jsonl').read_text().splitlines()
  ]
  assert max(row['step'] for row in rows) == 3
  evals = [row for row in rows if 'eval/top1' in row]
  assert evals and 0.0 <= evals[-1]['eval/top1'] <= 1.0

  second = run(2)  # Resumes from step 3 and trains the second epoch.
  assert second.returncode == 0, second.stderr[-3000:]
  steps = [
    json.loads(line)['step']
    for line in (workdir / 'metrics.jsonl').read_text().splitlines()
  ]
  assert max(steps) == 6
  assert 'step 1/' not in second.stderr.split('resum', 1)[-1]
