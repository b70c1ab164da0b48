"""What ReLabel costs in a train step, measured against the same step without.

  python benchmarks/relabel.py [--model resnet50 --batch 32 --size 224]

Times, in one run and interleaved, (1) the jitted train step on one-hot
targets, (2) the same step on ReLabel targets pooled from top-5 15x15 label
maps on the device, (3) the pooling alone, and (4) the host-side label-map
lookup of a batch in a memory-mapped store of `--store_rows` maps, so the
ratios in the printed table are comparable on a noisy machine. The model,
batch, optimiser and CutMix are the same in (1) and (2).
"""

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import jaxmix
from jaxmix import models
from jaxmix.data.label_maps import store as label_maps
from jaxmix.data.label_maps import writer as label_map_writer
from jaxmix.train import augment, augment_schedule, optimizers, state, steps
from jaxmix.train import relabel as train_targets


def _config(args) -> ml_collections.ConfigDict:
  # The recipes live in the repository's `configs/`, beside this folder.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )
  from jaxmix.configs import default

  config = default.get_config()
  config.data.num_classes = args.classes
  config.mix.method = 'cutmix'
  config.mix.cutmix_alpha = 1.0
  return config


def _median_ms(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _store(path: str, rows: int, classes: int, rng) -> label_maps.LabelMapStore:
  writer = label_map_writer.LabelMapWriter(
    path, size=15, k=5, num_classes=classes, chunk=8192
  )
  for start in range(0, rows, 8192):
    count = min(8192, rows - start)
    names = [f'img_{i:08d}.JPEG' for i in range(start, start + count)]
    writer.add(
      names,
      rng.normal(size=(count, 15, 15, 5)).astype(np.float16),
      rng.integers(0, classes, (count, 15, 15, 5)).astype(np.uint16),
    )
  return writer.finalize()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='resnet50')
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--classes', type=int, default=1000)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--store_rows', type=int, default=100_000)
  args = parser.parse_args()

  config = _config(args)
  mesh = steps.create_mesh()
  tx = optimizers.create_optimizer(config.optimizer, 0.1)
  model_def, train_state = state.create_train_state(
    lambda: models.create_model(
      args.model, num_classes=args.classes, rngs=nnx.Rngs(0)
    ),
    tx,
    mesh=mesh,
  )
  step_config = steps.StepConfig(
    num_classes=args.classes,
    label_smoothing=0.0,
    mean=tuple(config.data.mean),
    std=tuple(config.data.std),
    seed=0,
    ema_decay=0.0,
  )
  settings = train_targets.RelabelSettings.from_config(config)
  targets_fn = train_targets.create_targets_fn(settings, mesh)
  common = dict(
    model_def=model_def,
    tx=tx,
    learning_rate_fn=lambda step: 0.1,
    config=step_config,
  )
  plain_step = steps.jit_train_step(
    mesh, **common, augment_fn=augment.create_augment_fn(config, mesh)
  )
  relabel_config = copy.deepcopy(config)
  relabel_config.relabel.enabled = True
  relabel_train_step = steps.jit_train_step(
    mesh, **common, augment_fn=augment.create_augment_fn(relabel_config, mesh)
  )

  rng = np.random.default_rng(0)
  b, s = args.batch, args.size
  batch = {
    'image': rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8),
    'label': rng.integers(0, args.classes, b).astype(np.int32),
    'crop_box': np.tile([[0.1, 0.2, 0.8, 0.9]], (b, 1)).astype(np.float32),
    'flip': np.zeros(b, bool),
    'label_map_scores': rng.normal(size=(b, 15, 15, 5)).astype(np.float16),
    'label_map_indices': rng.integers(0, args.classes, (b, 15, 15, 5)).astype(
      np.uint16
    ),
    'label_map_found': np.ones(b, bool),
  }
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  plain_batch = {k: batch[k] for k in ('image', 'label', 'crop_box', 'flip')}
  pooling = jax.jit(targets_fn)
  prob = augment_schedule.Schedule(jnp.float32(1.0), jnp.float32(0.0))

  # Donated states: each call consumes the previous state.
  holder = {
    'plain': train_state,
    'relabel': jax.tree.map(jnp.copy, train_state),
  }

  def run_plain():
    holder['plain'], metrics = plain_step(holder['plain'], plain_batch, prob)
    return metrics

  def run_relabel():
    holder['relabel'], metrics = relabel_train_step(
      holder['relabel'], batch, prob
    )
    return metrics

  with tempfile.TemporaryDirectory() as tmp:
    store = _store(
      os.path.join(tmp, 'store'), args.store_rows, args.classes, rng
    )
    names = np.array(
      [f'img_{i:08d}.JPEG' for i in rng.integers(0, args.store_rows, b)],
      dtype=object,
    )
    lookup = lambda: store.lookup(names)[0]  # noqa: E731
    for fn in (run_plain, run_relabel, lambda: pooling(batch)[0], lookup):
      jax.block_until_ready(fn())  # compile / warm the page cache
    rows = {'one-hot step': [], 'ReLabel step': [], 'pooling': [], 'lookup': []}
    for _ in range(args.repeats):  # interleaved rounds
      rows['one-hot step'].append(_median_ms(run_plain, 1))
      rows['ReLabel step'].append(_median_ms(run_relabel, 1))
      rows['pooling'].append(_median_ms(lambda: pooling(batch)[0], 3))
      rows['lookup'].append(_median_ms(lookup, 3))

  med = {name: statistics.median(v) for name, v in rows.items()}
  base = med['one-hot step']
  print(
    f'jax {jax.__version__}, jaxmix {jaxmix.__version__}, '
    f'{jax.default_backend()} x{jax.device_count()} '
    f'({jax.devices()[0].device_kind}), host {platform.machine()}, '
    f'{os.cpu_count()} CPUs'
  )
  print(
    f'{args.model}, batch {b} x {s}x{s}, K = {args.classes}, CutMix on, '
    f'median of {args.repeats} interleaved rounds\n'
  )
  print('| what | ms | / one-hot step |')
  print('|---|---|---|')
  for name, value in med.items():
    print(f'| {name} | {value:.2f} | {value / base:.4f} |')
  print(
    f'\nimages/s ratio (ReLabel / one-hot, device step): '
    f'{base / med["ReLabel step"]:.3f}'
  )


if __name__ == '__main__':
  main()
