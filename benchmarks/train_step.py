"""Train-step images/s: jaxmix's step with and without its augmentation,
the real loop's feeding, and (when installed) timm's ResNet-50 on the same
GPU, all in one run.

  python benchmarks/train_step.py                  # ResNet-50, bf16, 224 px
  python benchmarks/train_step.py --tiny           # seconds, on a CPU
  python benchmarks/train_step.py --peer           # + timm (torch, CUDA)
  python benchmarks/train_step.py --rows relabel,kd,relabel+cutmix,kd+cutmix \
      --teacher tf_efficientnet_l2                 # KD vs ReLabel

jaxmix rows (the trainer's own jitted step, `jaxmix.train.steps`, SGD with
momentum, bfloat16 compute, synthetic data already on the devices):

* `none`: no batch augmentation; `cutmix`, `mixup`: the mix inside the step
  (prob 1); `relabel+cutmix`: ReLabel targets pooled on the device from
  top-5 15x15 label maps, then CutMix. Their cost is printed against `none`.
* `photometric`, `photometric+cutmix`: the `none` and `cutmix` steps with
  the recipes' device photometric augmentation (`data.photometric=
  'device'`: colour jitter 0.4 and PCA lighting 0.1, per example, fused
  with the uint8 -> compute-dtype normalisation; `jaxmix.photometric`), so
  `photometric` against `none` is its cost (target < 1 % of a ResNet-50
  step on a GPU).
* `relabel`, `kd`, `kd+cutmix`: knowledge distillation against ReLabel
  with the same student (`jaxmix.train.distill`): the step with a frozen
  teacher (`--teacher`, randomly initialised; its weights do not change
  the cost) run in eval mode on every augmented crop, against the step
  with ReLabel's pooled label-map targets (`relabel`, `relabel+cutmix`).
  `kd / relabel` is the per-step cost of the online teacher.
* `loop`: the `cutmix` step fed as the trainer feeds it: host numpy
  batches through `prefetch_to_mesh` (background thread, device copies
  ahead of the step), against the same step on a batch already on the
  devices (`cutmix`); `loop+join` adds the ReLabel label-map join on a
  memory-mapped store (`jaxmix.data.label_maps.join`) to the host side.

Rows are timed in interleaved rounds (median of `--rounds`), each round
`--steps` steps after the compiled warm-up, ending in `block_until_ready`.

The peer (`--peer`): timm's `resnet50`, channels-last, bf16 autocast,
`torch.compile`, SGD with momentum, timm's `Mixup` with CutMix (alpha 1,
prob 1) on the GPU, the same batch size; printed as img/s and jaxmix's
ratio to it. It needs `pip install torch timm`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.data.source import BatchIterator


def _config(args):
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )
  from jaxmix.configs import default

  config = default.get_config()
  config.model.name = args.model
  config.model.dtype = args.dtype
  if args.model == 'tiny_cnn':
    config.model.kwargs.width = 8
  config.data.num_classes = args.classes
  config.optimizer.ema_decay = 0.0
  return config


def _steps(args, mesh):
  """{row name: (jitted step, the state it starts from)}."""
  from jaxmix.train import augment, build, steps
  from jaxmix.train import state as state_lib

  config = _config(args)
  tx, _ = build.optimizer(config, steps_per_epoch=1000)
  model_def, state = state_lib.create_train_state(
    build.model_fn(config), tx, mesh=mesh
  )
  settings = steps.StepConfig(
    num_classes=args.classes,
    mean=tuple(config.data.mean),
    std=tuple(config.data.std),
  )

  teacher = None
  if any(row.startswith('kd') for row in args.rows):
    from jaxmix.train import distill

    config.distill.teacher_model = args.teacher
    teacher = distill.random_teacher(config, mesh)

  def jitted(method, relabel=False, photometric=False, kd=False):
    config.mix.method = method
    config.mix.prob = 1.0
    config.mix.cutmix_alpha = config.mix.mixup_alpha = 1.0
    config.relabel.enabled = relabel
    frozen = None
    if kd:
      config.distill.enabled = True
      frozen = distill.frozen_inputs(
        config, mesh, step_config=settings, teacher=teacher
      )
    return steps.jit_train_step(
      mesh,
      frozen=frozen,
      model_def=model_def,
      tx=tx,
      learning_rate_fn=lambda step: 0.1,
      augment_fn=augment.create_augment_fn(config, mesh),
      config=dataclasses.replace(
        settings,
        color_jitter=0.4 if photometric else 0.0,
        pca_lighting=0.1 if photometric else 0.0,
      ),
    )

  out = {
    'none': jitted('none'),
    'cutmix': jitted('cutmix'),
    'mixup': jitted('mixup'),
    'relabel+cutmix': jitted('cutmix', relabel=True),
    'photometric': jitted('none', photometric=True),
    'photometric+cutmix': jitted('cutmix', photometric=True),
    'relabel': jitted('none', relabel=True),
  }
  if teacher is not None:
    out['kd'] = jitted('none', kd=True)
    out['kd+cutmix'] = jitted('cutmix', kd=True)
  return out, state


def _host_batch(args, rng, *, maps: bool) -> dict[str, np.ndarray]:
  b, s = args.batch, args.size
  batch = {
    'image': rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8),
    'label': rng.integers(0, args.classes, b).astype(np.int32),
    'crop_box': np.tile([[0.1, 0.2, 0.8, 0.9]], (b, 1)).astype(np.float32),
    'flip': np.zeros(b, bool),
  }
  if maps:
    batch['label_map_scores'] = rng.normal(size=(b, 15, 15, 5)).astype(
      np.float16
    )
    batch['label_map_indices'] = rng.integers(
      0, args.classes, (b, 15, 15, 5)
    ).astype(np.uint16)
    batch['label_map_found'] = np.ones(b, bool)
  return batch


def _store(path, names, classes, rng):
  from jaxmix.data.label_maps import writer

  store = writer.LabelMapWriter(path, size=15, k=5, num_classes=classes)
  n = len(names)
  store.add(
    names,
    rng.normal(size=(n, 15, 15, 5)).astype(np.float16),
    rng.integers(0, classes, (n, 15, 15, 5)).astype(np.uint16),
  )
  return store.finalize()


class _Repeat(BatchIterator):
  """The same host batch forever, with a fresh copy of the image each time
  (as a real pipeline hands over new memory)."""

  def __init__(self, batch, names=None):
    self._batch, self._names = batch, names
    self._i = 0

  def __next__(self):
    batch = dict(self._batch, image=self._batch['image'].copy())
    if self._names is not None:
      b = len(batch['label'])
      rows = (np.arange(b) + self._i * b) % len(self._names)
      batch['file_name'] = self._names[rows]
      self._i += 1
    return batch


def _time_jax(run, args) -> float:
  """Images/s of `args.steps` steps of `run()`."""
  start = time.perf_counter()
  out = None
  for _ in range(args.steps):
    out = run()
  jax.block_until_ready(out)
  return args.steps * args.batch / (time.perf_counter() - start)


def _jax_rows(args) -> dict[str, float]:
  from jaxmix.data.label_maps import join
  from jaxmix.data.mesh_prefetch import prefetch_to_mesh

  mesh = jax.make_mesh(
    (jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,)
  )
  jitted, state = _steps(args, mesh)
  rng = np.random.default_rng(0)
  host = _host_batch(args, rng, maps=True)
  sharding = jax.sharding.NamedSharding(
    mesh, jax.sharding.PartitionSpec('data')
  )
  on_device = {k: jax.device_put(v, sharding) for k, v in host.items()}
  plain = {k: on_device[k] for k in ('image', 'label', 'crop_box', 'flip')}
  from jaxmix.train import augment_schedule

  prob = augment_schedule.Schedule(jnp.float32(1.0), jnp.float32(0.0))
  states = {name: jax.tree.map(jnp.copy, state) for name in jitted}
  states['loop'] = jax.tree.map(jnp.copy, state)
  states['loop+join'] = jax.tree.map(jnp.copy, state)

  tmp = tempfile.mkdtemp(prefix='train_step_maps_')
  names = np.array([f'img_{i:06d}.JPEG' for i in range(4096)], dtype=object)
  store = _store(os.path.join(tmp, 'store'), names, args.classes, rng)
  host_plain = {k: host[k] for k in ('image', 'label', 'crop_box', 'flip')}
  feeds = {
    'loop': prefetch_to_mesh(_Repeat(host_plain), mesh),
    'loop+join': prefetch_to_mesh(
      join.join_label_maps(
        _Repeat(host_plain, names), join.store_maps_fn(store)
      ),
      mesh,
    ),
  }

  def runner(name):
    if name in feeds:
      step = jitted['relabel+cutmix' if name == 'loop+join' else 'cutmix']
      feed = feeds[name]

      def run():
        states[name], metrics = step(states[name], next(feed), prob)
        return metrics

    else:
      batch = on_device if name.startswith('relabel') else plain

      def run():
        states[name], metrics = jitted[name](states[name], batch, prob)
        return metrics

    return run

  runs = {
    name: runner(name)
    for name in [*jitted, *feeds]
    if name in args.rows or name in ('none', 'cutmix')
  }
  for name, run in runs.items():  # compile
    start = time.perf_counter()
    for _ in range(2):
      jax.block_until_ready(run())
    print(
      f'  {name}: compiled + 2 steps in {time.perf_counter() - start:.1f} s'
    )
  rates = {name: [] for name in runs}
  for _ in range(args.rounds):
    for name, run in runs.items():
      rates[name].append(_time_jax(run, args))
  for feed in feeds.values():
    feed.close()
  return {name: statistics.median(v) for name, v in rates.items()}


def _timm_rate(args) -> float | None:
  """timm ResNet-50 img/s on the GPU, or None (printed why)."""
  try:
    import timm
    import torch
    from timm.data import Mixup
  except ImportError as error:
    print(f'peer skipped: {error}')
    return None
  if not torch.cuda.is_available():
    print('peer skipped: no CUDA device for torch')
    return None
  device = torch.device('cuda')
  torch.backends.cudnn.benchmark = True
  model = timm.create_model(args.model, num_classes=args.classes)
  model = model.to(device, memory_format=torch.channels_last)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
  mixup = Mixup(
    mixup_alpha=0.0,
    cutmix_alpha=1.0,
    prob=1.0,
    mode='batch',
    num_classes=args.classes,
  )
  loss_fn = timm.loss.SoftTargetCrossEntropy()
  b, s = args.batch, args.size
  # uint8 on the GPU, normalised there, as jaxmix's step does.
  images = torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, device=device)
  labels = torch.randint(0, args.classes, (b,), device=device)
  mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

  @torch.compile
  def forward_backward(x, y):
    with torch.autocast('cuda', dtype=torch.bfloat16):
      loss = loss_fn(model(x), y)
    loss.backward()
    return loss

  def step():
    x = ((images.float() / 255 - mean) / std).contiguous(
      memory_format=torch.channels_last
    )
    x, y = mixup(x, labels)
    optimizer.zero_grad(set_to_none=True)
    loss = forward_backward(x, y)
    optimizer.step()
    return loss

  start = time.perf_counter()
  for _ in range(3):
    step()
  torch.cuda.synchronize()
  print(f'  timm: compiled + 3 steps in {time.perf_counter() - start:.1f} s')
  rates = []
  for _ in range(args.rounds):
    start = time.perf_counter()
    for _ in range(args.steps):
      step()
    torch.cuda.synchronize()
    rates.append(args.steps * b / (time.perf_counter() - start))
  return statistics.median(rates)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='resnet50')
  parser.add_argument('--dtype', default='bfloat16')
  parser.add_argument('--batch', type=int, default=256)
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--classes', type=int, default=1000)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument(
    '--rows',
    default='none,cutmix,mixup,relabel+cutmix,photometric,'
    'photometric+cutmix,loop,loop+join',
    help='Comma-separated rows to time (none and cutmix always are).',
  )
  parser.add_argument(
    '--teacher',
    default='resnet152',
    help="The kd rows' teacher (a jaxmix.models name; "
    "'tf_efficientnet_l2' is ReLabel's annotator).",
  )
  parser.add_argument(
    '--tiny',
    action='store_true',
    help='tiny_cnn, batch 8, 32 px, 3 steps: checks the script on a CPU.',
  )
  parser.add_argument(
    '--peer', action='store_true', help="Also time timm's ResNet-50 (torch)."
  )
  args = parser.parse_args()
  args.rows = args.rows.split(',')
  if args.tiny:
    args.model, args.batch, args.size, args.steps = 'tiny_cnn', 8, 32, 3
    args.classes, args.rounds, args.teacher = 10, 1, 'tiny_cnn'

  import jaxmix

  print(
    f'jax {jax.__version__}, jaxmix {jaxmix.__version__}, '
    f'{jax.default_backend()} x{jax.device_count()} '
    f'({jax.devices()[0].device_kind}), host {platform.machine()}, '
    f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}'
  )
  if any(row.startswith('kd') for row in args.rows):
    print(f'kd teacher: {args.teacher}')
  print(
    f'{args.model} {args.dtype}, batch {args.batch} x {args.size} px, '
    f'K = {args.classes}, median of {args.rounds} rounds of {args.steps} '
    'steps'
  )
  rates = _jax_rows(args)
  peer = _timm_rate(args) if args.peer else None
  print('\n| row | img/s | ms/step | vs none | vs cutmix |')
  print('|---|---|---|---|---|')
  for name, rate in rates.items():
    ms = 1000 * args.batch / rate
    print(
      f'| {name} | {rate:.0f} | {ms:.2f} | {rates["none"] / rate:.4f} | '
      f'{rate / rates["cutmix"]:.4f} |'
    )
  if 'kd' in rates and 'relabel' in rates:
    print(f'\nkd / relabel step time: {rates["relabel"] / rates["kd"]:.3f}')
  if 'kd+cutmix' in rates and 'relabel+cutmix' in rates:
    ratio = rates['relabel+cutmix'] / rates['kd+cutmix']
    print(f'kd+cutmix / relabel+cutmix step time: {ratio:.3f}')
  if peer is not None:
    print(
      f'| timm cutmix (torch.compile) | {peer:.0f} | '
      f'{1000 * args.batch / peer:.2f} | | |'
    )
    print(f'\njaxmix cutmix / timm cutmix: {rates["cutmix"] / peer:.3f}')
  print(
    '\n"vs none": step time over the step without augmentation (the cost '
    'of the augmentation); "vs cutmix": img/s over the cutmix step on '
    'on-device data (loop rows: the feeding, target >= 0.95).'
  )


if __name__ == '__main__':
  main()
