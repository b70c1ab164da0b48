"""Speed of the jaxmix augmentation ops against the machine's memory bandwidth.

Each public op is jit-compiled on one `[B, H, W, 3]` batch (float32 and
bfloat16 images, one-hot float32 labels) and timed per call: the median of
`--repeats` calls after `--warmup` calls, each ending in
`jax.block_until_ready`. All rows are timed in turn within each round, so
load from elsewhere on a shared machine hits them alike. References measured
in the same run:

* `numpy copyto`: `np.copyto` of the image bytes into a preallocated host
  array, the host's memory-copy bandwidth (on a GPU, read `xla` instead);
* `xla elementwise`: a jitted `images * scale + offset` (traced scalars, so
  XLA cannot drop it), the roofline of one elementwise pass on this backend,
  output allocation included, exactly as the ops pay it;
* `xla gather x[perm]`: the partner gather alone, a random permutation of
  the batch.

Bytes counted (the least the op must move, reported as GB/s = bytes / time):
images in + images out for every image op (a fused out-of-place pass; the
partner read is not counted, it hits the same array), plus labels in + out
for the mixing ops (Cutout and Random Erasing return the labels untouched);
for `videomix` (the batch viewed as `B / 8` clips of 8 frames, cuboid
mode) the clips in + out and one label row per clip in + out; for
`relabel_targets` the top-k maps in (scores, int32 indices), the crop
boxes in and the `[B, K]` float32 targets out; for `token_label_targets`
the same maps and the flips in and the `[B, H / 16, W / 16, K]` float32
token targets out; for `mixtoken` (the images viewed as 16-pixel patch
tokens) the tokens, labels and dense float32 token labels in + out. `copy`
and `xla` are the op's GB/s over the two references' GB/s.

With `--donate` the inputs are also donated (`donate_argnums`), as a train
step that consumes its batch does; XLA can then write in place.

  python benchmarks/augment.py --batch 128 --size 224 --repeats 10
  python benchmarks/augment.py --ops mixup cutmix --dtypes float32 --donate

On a CPU, `--host-devices N` splits the host into N XLA devices for the
`per_shard_cutmix` row (the default uses the devices JAX finds), and
preloading tcmalloc (`LD_PRELOAD=libtcmalloc_minimal.so.4`) keeps XLA's
output buffers mapped between calls, as a GPU's allocator does; with glibc's
malloc the page faults of every fresh output dominate. Results and how to
read them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

OPS = (
  'mixup',
  'cutmix',
  'cutmix_per_example',
  'mixup_or_cutmix',
  'mixup_or_cutmix_pair',
  'cutout',
  'random_erasing',
  'random_erasing_pixel',
  'relabel_targets',
  'per_shard_cutmix',
  'apply_draw_cutmix',
  'saliency_cutmix',
  'cmo',
  'videomix',
  'mixtoken',
  'token_label_targets',
)
# Ops timed on their own inputs (label maps, token grids), not on the
# image batch's `(key, images, labels)`.
_OWN_INPUT_OPS = ('relabel_targets', 'mixtoken', 'token_label_targets')

# The `videomix` row views the image batch as clips of this many frames,
# `[B // T, T, H, W, 3]` (the same bytes), with `B // T` labels.
VIDEO_FRAMES = 8
# The token rows use a ViT's 16-pixel patches: a 14 x 14 grid at 224 pixels.
PATCH = 16


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--num-classes', type=int, default=1000)
  parser.add_argument('--repeats', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument(
    '--dtypes', nargs='+', default=['float32', 'bfloat16'], metavar='DTYPE'
  )
  parser.add_argument('--ops', nargs='+', default=list(OPS), choices=OPS)
  parser.add_argument(
    '--donate', action='store_true', help='also time with donated inputs'
  )
  parser.add_argument('--host-devices', type=int, default=0)
  return parser.parse_args()


class Case(NamedTuple):
  """One timed row: `call(*prepare(i))` is timed, `prepare(i)` is not."""

  name: str
  dtype: str
  donated: bool
  moved: int  # bytes the op must read and write at minimum
  prepare: Callable[[int], tuple]
  call: Callable[..., Any]


def _time_round_robin(
  cases, *, repeats: int, warmup: int
) -> list[tuple[float, float]]:
  """Median wall and process-CPU seconds per case, cases timed in turn.

  Interleaving makes the ratios fair on a shared machine: a burst of load
  from elsewhere slows every case of a round alike. CPU time (all threads of
  this process, page faults included) does not count waiting for the cores.
  """
  times = [[] for _ in cases]
  for index in range(warmup + repeats):
    for case, case_times in zip(cases, times):
      args = case.prepare(index)
      wall, cpu = time.perf_counter(), time.process_time()
      case.call(*args)
      wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
      del args
      if index >= warmup:
        case_times.append((wall, cpu))
  return [
    (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
    for t in times
  ]


def _as_videomix(jaxmix, key, images, labels):
  """`jaxmix.videomix` on `images` viewed as clips of `VIDEO_FRAMES`."""
  batch, height, width, channels = images.shape
  clips = batch // VIDEO_FRAMES
  videos = images[: clips * VIDEO_FRAMES].reshape(
    clips, VIDEO_FRAMES, height, width, channels
  )
  mixed, mixed_labels = jaxmix.videomix(
    key, videos, labels[:clips], mode='cuboid'
  )
  return mixed.reshape(-1, height, width, channels), mixed_labels


def _op_table(jax, jnp, jaxmix, *, size: int):
  """The mesh of all local devices and the image ops by name.

  Each op is `(fn(key, images, labels) -> outputs, is_mixing)`.
  """
  mesh = jax.make_mesh((len(jax.local_devices()),), ('data',))
  sharded_cutmix = jaxmix.per_shard(jaxmix.cutmix, mesh)
  return (
    mesh,
    {
      'mixup': (lambda k, x, y: jaxmix.mixup(k, x, y, alpha=1.0), True),
      'cutmix': (lambda k, x, y: jaxmix.cutmix(k, x, y, alpha=1.0), True),
      'cutmix_per_example': (
        lambda k, x, y: jaxmix.cutmix(k, x, y, alpha=1.0, per_example=True),
        True,
      ),
      'mixup_or_cutmix': (
        lambda k, x, y: jaxmix.mixup_or_cutmix(
          k, x, y, mixup_alpha=0.8, cutmix_alpha=1.0
        ),
        True,
      ),
      # timm's 'pair' mode: one draw per mirrored pair (i, B - 1 - i).
      'mixup_or_cutmix_pair': (
        lambda k, x, y: jaxmix.mixup_or_cutmix(
          k, x, y, mixup_alpha=0.8, cutmix_alpha=1.0, pairs=True
        ),
        True,
      ),
      # The occlusions take images only; the labels pass through.
      'cutout': (
        lambda k, x, y: (jaxmix.cutout(k, x, size=size // 2), y),
        False,
      ),
      'random_erasing': (
        lambda k, x, y: (jaxmix.random_erasing(k, x, prob=1.0), y),
        False,
      ),
      # DeiT's setting: prob 0.25, per-pixel N(0, 1) fill.
      'random_erasing_pixel': (
        lambda k, x, y: (
          jaxmix.random_erasing(k, x, prob=0.25, fill='pixel'),
          y,
        ),
        False,
      ),
      'per_shard_cutmix': (
        lambda k, x, y: sharded_cutmix(k, x, y, alpha=1.0),
        True,
      ),
      # CutMix through the draw API: images as 'image' (the fused blend
      # pass), labels as 'target'; the cost of generality over `cutmix`.
      'apply_draw_cutmix': (
        lambda k, x, y: jaxmix.apply_draw(
          (x, y),
          jaxmix.sample_cutmix(
            k, batch_size=x.shape[0], height=x.shape[1], width=x.shape[2]
          ),
          roles=('image', 'target'),
        ),
        True,
      ),
      # A 14 x 14 saliency (a ViT-S/16 grid's worth) from the images.
      'saliency_cutmix': (
        lambda k, x, y: jaxmix.saliency_cutmix(
          k,
          x,
          y,
          saliency=jnp.abs(x[:, ::16, ::16]).mean(-1).astype(jnp.float32),
        ),
        True,
      ),
      # The minority stream stands in as the reversed batch.
      'cmo': (
        lambda k, x, y: jaxmix.cmo(k, x, y, x[::-1], y[::-1], prob=1.0),
        True,
      ),
      # VideoMix's default cuboid mode on the batch viewed as 8-frame clips.
      'videomix': (
        lambda k, x, y: _as_videomix(jaxmix, k, x, y),
        True,
      ),
    },
  )


def _cases(args, jax, jnp, np, jaxmix) -> list[Case]:
  """The reference and op rows for every dtype of `args.dtypes`."""
  from jax.sharding import NamedSharding, PartitionSpec

  mesh, ops = _op_table(jax, jnp, jaxmix, size=args.size)
  batch_sharding = NamedSharding(mesh, PartitionSpec('data'))
  keys = jax.random.split(jax.random.key(0), args.warmup + args.repeats)
  modes = (False, True) if args.donate else (False,)

  def timed(fn):
    return lambda *a: jax.block_until_ready(fn(*a))

  cases = []
  for dtype_name in args.dtypes:
    dtype = jnp.dtype(dtype_name)
    shape = (args.batch, args.size, args.size, 3)
    images = jax.random.normal(jax.random.key(1), shape, dtype)
    labels = jaxmix.one_hot(
      jnp.arange(args.batch) % args.num_classes, args.num_classes
    )
    image_bytes = images.nbytes

    # References: NumPy copy, one XLA elementwise pass, the partner gather.
    host = np.asarray(images)
    target = np.empty_like(host)
    cases.append(
      Case(
        'numpy copyto', dtype_name, False, 2 * image_bytes,
        lambda i, a=(target, host): a, np.copyto,
      )
    )  # fmt: skip
    scale, offset = jnp.asarray(1.0, dtype), jnp.asarray(0.0, dtype)
    for donated in modes:
      fn = jax.jit(
        lambda x, s, o: x * s + o, donate_argnums=(0,) if donated else ()
      )
      cases.append(
        Case(
          'xla elementwise', dtype_name, donated, 2 * image_bytes,
          lambda i, d=donated, x=images, s=scale, o=offset: (
            x.copy() if d else x, s, o
          ),
          timed(fn),
        )
      )  # fmt: skip
    gather = jax.jit(lambda k, x: x[jax.random.permutation(k, x.shape[0])])
    cases.append(
      Case(
        'xla gather x[perm]', dtype_name, False, 2 * image_bytes,
        lambda i, x=images: (keys[i], x), timed(gather),
      )
    )  # fmt: skip

    for name in args.ops:
      if name in _OWN_INPUT_OPS:
        continue
      op, is_mixing = ops[name]
      label_bytes = labels.nbytes
      if name == 'videomix':  # One label row per clip.
        label_bytes = label_bytes // VIDEO_FRAMES
      moved = 2 * image_bytes + (2 * label_bytes if is_mixing else 0)
      x, y = images, labels
      if name == 'per_shard_cutmix':
        x = jax.device_put(images, batch_sharding)
        y = jax.device_put(labels, batch_sharding)
      for donated in modes:
        fn = jax.jit(op, donate_argnums=(1, 2) if donated else ())
        cases.append(
          Case(
            name, dtype_name, donated, moved,
            lambda i, d=donated, x=x, y=y: (
              (keys[i], x.copy(), y.copy()) if d else (keys[i], x, y)
            ),
            timed(fn),
          )
        )  # fmt: skip

    if any(name in args.ops for name in _OWN_INPUT_OPS):
      cases += _map_and_token_cases(
        args, jax, jnp, jaxmix, images, labels, timed=timed
      )
  return cases


def _map_and_token_cases(args, jax, jnp, jaxmix, images, labels, *, timed):
  """The rows of `_OWN_INPUT_OPS` for the dtype of `images`.

  `relabel_targets` and `token_label_targets` read top-5 label maps at
  15 x 15 (the official ReLabel release's form; the scores in the row's
  dtype); `mixtoken` mixes the image bytes viewed as patch tokens
  `[B, H / 16, W / 16, 16 * 16 * 3]` and dense float32 token labels
  `[B, H / 16, W / 16, K]`, as LV-ViT's token labeling does.
  """
  batch, size, num_classes = args.batch, args.size, args.num_classes
  dtype_name = str(images.dtype)
  grid = (size // PATCH, size // PATCH)
  shape = (batch, 15, 15, 5)
  key_s, key_i, key_b, key_f = jax.random.split(jax.random.key(2), 4)
  scores = jax.random.normal(key_s, shape, images.dtype)
  indices = jax.random.randint(key_i, shape, 0, num_classes)
  corner = jax.random.uniform(key_b, (batch, 2), maxval=0.5)
  boxes = jnp.concatenate([corner, corner + 0.5], axis=1)
  flips = jax.random.bernoulli(key_f, 0.5, (batch,))
  map_bytes = scores.nbytes + indices.nbytes + boxes.nbytes
  cases = []
  if 'relabel_targets' in args.ops:
    fn = jax.jit(
      lambda s, i, b: jaxmix.relabel_targets(s, i, b, num_classes=num_classes)
    )
    cases.append(
      Case(
        'relabel_targets', dtype_name, False,
        map_bytes + batch * num_classes * 4,
        lambda i, a=(scores, indices, boxes): a, timed(fn),
      )
    )  # fmt: skip
  if size % PATCH:
    print(f'note: --size {size} is not a multiple of {PATCH}: no token rows')
    return cases
  if 'token_label_targets' in args.ops:
    fn = jax.jit(
      lambda s, i, b, f: jaxmix.token_label_targets(
        s, i, b, f, grid=grid, height=size, width=size,
        num_classes=num_classes,
      )
    )  # fmt: skip
    cases.append(
      Case(
        'token_label_targets', dtype_name, False,
        map_bytes + flips.nbytes + batch * grid[0] * grid[1] * num_classes * 4,
        lambda i, a=(scores, indices, boxes, flips): a, timed(fn),
      )
    )  # fmt: skip
  if 'mixtoken' in args.ops:
    tokens = images.reshape(batch, *grid, PATCH * PATCH * images.shape[-1])
    token_labels = jnp.array(  # materialised, as a loaded batch would be
      jnp.broadcast_to(labels[:, None, None], (batch, *grid, num_classes))
    )
    keys = jax.random.split(jax.random.key(3), args.warmup + args.repeats)
    fn = jax.jit(lambda k, t, y, ty: jaxmix.mixtoken(k, t, y, ty))
    cases.append(
      Case(
        'mixtoken', dtype_name, False,
        2 * (tokens.nbytes + labels.nbytes + token_labels.nbytes),
        lambda i, a=(tokens, labels, token_labels): (keys[i], *a), timed(fn),
      )
    )  # fmt: skip
  return cases


def main() -> None:
  args = _parse_args()
  if args.host_devices:
    os.environ['XLA_FLAGS'] = (
      os.environ.get('XLA_FLAGS', '')
      + f' --xla_force_host_platform_device_count={args.host_devices}'
    )
  import jax
  import jax.numpy as jnp
  import numpy as np

  import jaxmix

  devices = jax.local_devices()
  print(f'jax {jax.__version__}, jaxmix {jaxmix.__version__}')
  print(
    f'backend {jax.default_backend()}, {len(devices)} local device(s): '
    f'{devices[0].device_kind}; host {platform.machine()}, '
    f'{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, '
    f'LD_PRELOAD={os.environ.get("LD_PRELOAD", "")!r}'
  )
  if jax.default_backend() == 'cpu' and 'malloc' not in os.environ.get(
    'LD_PRELOAD', ''
  ):
    print(
      'note: with glibc malloc every fresh XLA output buffer is page-faulted '
      'in on each call; preload tcmalloc to measure the ops themselves (see '
      'docs/benchmarks.md)'
    )
  print(
    f'batch [{args.batch}, {args.size}, {args.size}, 3], K = '
    f'{args.num_classes}, median of {args.repeats} calls after '
    f'{args.warmup} warm-up calls, all rows timed in turn\n'
  )
  cases = _cases(args, jax, jnp, np, jaxmix)
  timings = _time_round_robin(cases, repeats=args.repeats, warmup=args.warmup)
  header = (
    f'| {"op":20s} | {"dtype":8s} | {"donated":7s} | {"ms":>8s} | '
    f'{"cpu ms":>8s} | {"GB/s":>6s} | {"copy":>5s} | {"xla":>5s} |'
  )
  print(header)
  print('|' + '|'.join('-' * len(c) for c in header.split('|')[1:-1]) + '|')
  rates = [case.moved / wall / 1e9 for case, (wall, _) in zip(cases, timings)]
  reference = {}
  for case, rate in zip(cases, rates):
    if case.name in ('numpy copyto', 'xla elementwise') and not case.donated:
      reference[case.name, case.dtype] = rate
  for case, (wall, cpu), rate in zip(cases, timings, rates):
    copy_rate = reference['numpy copyto', case.dtype]
    xla_rate = reference['xla elementwise', case.dtype]
    print(
      f'| {case.name:20s} | {case.dtype:8s} | '
      f'{"yes" if case.donated else "no":7s} | {wall * 1e3:8.2f} | '
      f'{cpu * 1e3:8.2f} | {rate:6.1f} | {rate / copy_rate:5.2f} | '
      f'{rate / xla_rate:5.2f} |'
    )


if __name__ == '__main__':
  main()
