"""CPU per image of the official codes' PyTorch train loader, for comparison.

Run by hand in an environment with torch, torchvision and Pillow (never a
jaxmix dependency), on the same JPEGs as `benchmarks/input_pipeline.py`:
the CutMix and ReLabel ImageNet training scripts' loader, a torchvision
`ImageFolder` with RandomResizedCrop(224), RandomHorizontalFlip,
ColorJitter(0.4, 0.4, 0.4), ToTensor, AlexNet PCA lighting (alpha std 0.1)
and Normalize, shuffled, `num_workers` = the cores, batch 128.

Each round builds a fresh DataLoader, warms it up and times `--steps`
batches. The CPU time counted is that of this process and of every worker
process (read from /proc while they are alive), divided by the images;
images/s is the wall-clock rate. `--json` appends each round's figures to a
file, so that rounds can be interleaved with `input_pipeline.py --json`
rounds in one sitting.

  python benchmarks/torch_loader.py --image-folder DIR --make-from DATA_DIR
  python benchmarks/torch_loader.py --image-folder DIR --rounds 5 --steps 12

`--make-from` first writes the train JPEGs of a prepared imagenet2012 TFDS
dataset (the same bytes) as DIR/<label>/<file name>, ImageFolder's layout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

# AlexNet PCA of ImageNet RGB in [0, 1], as in jaxmix's lighting.
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = (
  (-0.5675, 0.7192, 0.4009),
  (-0.5808, -0.0045, -0.8140),
  (-0.5836, -0.6948, 0.4203),
)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_image_folder(data_dir: str, out: str) -> None:
  """The train JPEGs of a prepared imagenet2012 as `out/<label>/<name>`."""
  import tensorflow_datasets as tfds

  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  ds = builder.as_dataset(
    split='train', decoders={'image': tfds.decode.SkipDecoding()}
  )
  for ex in tfds.as_numpy(ds):
    folder = os.path.join(out, f'{int(ex["label"]):04d}')
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(ex['file_name'].decode())
    with open(os.path.join(folder, name), 'wb') as f:
      f.write(ex['image'])


class Lighting:
  """AlexNet PCA lighting on a `[3, H, W]` tensor in [0, 1]."""

  def __init__(self, alpha_std: float):
    import torch

    self.alpha_std = alpha_std
    self.eigval = torch.tensor(EIGVAL)
    self.eigvec = torch.tensor(EIGVEC)

  def __call__(self, image):
    import torch

    alpha = torch.normal(0.0, self.alpha_std, (3,))
    rgb = self.eigvec @ (alpha * self.eigval)
    return image + rgb.view(3, 1, 1)


def loader(args):
  import torch
  from torchvision import datasets, transforms

  transform = transforms.Compose(
    [
      transforms.RandomResizedCrop(args.image_size),
      transforms.RandomHorizontalFlip(),
      transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
      transforms.ToTensor(),
      Lighting(0.1),
      transforms.Normalize(MEAN, STD),
    ]
  )
  dataset = datasets.ImageFolder(args.image_folder, transform)
  sampler = torch.utils.data.RandomSampler(
    dataset, replacement=True, num_samples=10**9
  )
  return torch.utils.data.DataLoader(
    dataset,
    batch_size=args.batch_size,
    sampler=sampler,
    num_workers=args.workers,
    drop_last=True,
  )


def _process_tree_cpu(pid: int) -> float:
  """CPU seconds (user + system) of `pid` and its live descendants."""
  tick = os.sysconf('SC_CLK_TCK')
  total, stack = 0.0, [pid]
  while stack:
    p = stack.pop()
    try:
      with open(f'/proc/{p}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
      total += (int(fields[11]) + int(fields[12])) / tick
      for task in os.listdir(f'/proc/{p}/task'):
        with open(f'/proc/{p}/task/{task}/children') as f:
          stack.extend(int(c) for c in f.read().split())
    except FileNotFoundError:
      continue
  return total


def _time(args) -> tuple[float, float]:
  """(images/s, CPU ms per image) of `--steps` batches of a fresh loader."""
  it = iter(loader(args))
  for _ in range(args.warmup):
    next(it)
  cpu, start = _process_tree_cpu(os.getpid()), time.perf_counter()
  for _ in range(args.steps):
    next(it)
  seconds = time.perf_counter() - start
  cpu = _process_tree_cpu(os.getpid()) - cpu
  del it
  images = args.steps * args.batch_size
  return images / seconds, 1000 * cpu / images


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--image-folder', required=True)
  parser.add_argument('--make-from', help='A prepared imagenet2012 data dir.')
  parser.add_argument('--batch-size', type=int, default=128)
  parser.add_argument('--image-size', type=int, default=224)
  parser.add_argument('--steps', type=int, default=12)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument(
    '--workers', type=int, default=len(os.sched_getaffinity(0))
  )
  parser.add_argument('--json', help='Append each round to this file.')
  args = parser.parse_args()
  if args.make_from:
    make_image_folder(args.make_from, args.image_folder)
    return
  import torch

  torch.set_num_threads(1)
  results = []
  for _ in range(args.rounds):
    rate, cpu = _time(args)
    results.append((rate, cpu))
    if args.json:
      with open(args.json, 'a') as f:
        row = {'row': 'torch loader', 'img_s': rate, 'cpu_ms': cpu}
        f.write(json.dumps(row) + '\n')
  rates = [r for r, _ in results]
  cpus = [c for _, c in results]
  print(
    f'torch {torch.__version__}, {args.workers} workers, load average '
    f'{os.getloadavg()[0]:.1f}: {statistics.median(rates):.0f} img/s '
    f'({min(rates):.0f}-{max(rates):.0f}), '
    f'{statistics.median(cpus):.2f} CPU ms/img '
    f'({min(cpus):.2f}-{max(cpus):.2f})'
  )


if __name__ == '__main__':
  main()
