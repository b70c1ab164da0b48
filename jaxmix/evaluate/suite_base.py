"""What every evaluation suite shares: options, batching and prediction.

`SuiteArgs` holds the options of the command line; `predict` runs a run's
model over padded batches and keeps the real rows; `eval_set` reads the
run's own eval split (synthetic or TFDS).
"""

import dataclasses
from collections.abc import Callable, Iterator

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.evaluate import metrics as metrics_lib
from jaxmix.evaluate.runs import Run


@dataclasses.dataclass
class SuiteArgs:
  """Options shared by the suites (the command line's flags).

  Attributes:
    data_dir: TFDS data_dir (None: the run's `config.data.data_dir`, else
      TFDS's default).
    manual_dir: where manual downloads live (named in errors).
    split: the split to read (None: each suite's default).
    dataset: a dataset override (wsol: the boxed dataset; ood: the
      out-of-distribution dataset; digits: the digit_scenes config).
    batch_size: rows per batch (rounded up to a multiple of the devices).
    out: where pictures go (None: `RUN/eval`).
    limit: read at most this many examples per dataset (quick checks).
    occlusion_sizes: hole sides as fractions of the image side.
    lambdas: mixing weights of the in-between-class suite.
    epsilons: FGSM steps in pixels (0..255 scale).
    cam_threshold: CAM box threshold (fraction of the map's maximum).
    num_pictures: images in the CAM pictures.
    seed: seed of random choices (partners, CutMix boxes).
  """

  data_dir: str | None = None
  manual_dir: str | None = None
  split: str | None = None
  dataset: str | None = None
  batch_size: int = 128
  out: str | None = None
  limit: int | None = None
  occlusion_sizes: tuple[float, ...] = tuple(i / 8 for i in range(9))
  lambdas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
  epsilons: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
  cam_threshold: float = 0.2
  num_pictures: int = 8
  seed: int = 0


SuiteFn = Callable[[Run, SuiteArgs], dict]


def batch_size_for(run: Run, args: SuiteArgs) -> int:
  """`args.batch_size` rounded up to a multiple of the mesh's devices."""
  devices = run.mesh.devices.size
  return -(-max(args.batch_size, 1) // devices) * devices


def data_dir_for(run: Run, args: SuiteArgs) -> str | None:
  return args.data_dir or run.config.data.get('data_dir')


def to_device(run: Run, array: np.ndarray) -> jax.Array:
  """A host batch, sharded over the run's 'data' axis."""
  return jax.device_put(array, NamedSharding(run.mesh, PartitionSpec('data')))


def predict(
  run: Run, batches: Iterator[dict], keep: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
  """Logits of every real (unpadded) example, with the `keep` fields.

  Returns:
    {'logits': float32 `[N, K]`, **{key: `[N, ...]`}}.
  """
  out = {'logits': [], **{key: [] for key in keep}}
  for batch in batches:
    mask = np.asarray(batch['mask'])
    logits = run.logits_fn(to_device(run, batch['image']))
    out['logits'].append(np.asarray(logits)[mask])
    for key in keep:
      out[key].append(np.asarray(batch[key])[mask])
  if not out['logits']:
    raise ValueError('The evaluated split is empty.')
  return {k: np.concatenate(v) for k, v in out.items()}


def top_k_metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
  """{'top1', 'top5', 'count'} (top-5 is top-K when K < 5)."""
  k = min(5, logits.shape[-1])
  top1 = metrics_lib.top_k_tally(logits, labels, k=1)
  top5 = metrics_lib.top_k_tally(logits, labels, k=k)
  return {
    'top1': top1.accuracy,
    'top5': top5.accuracy,
    'count': int(top1.total),
  }


def eval_set(run: Run, args: SuiteArgs) -> tuple[Iterator[dict], str, str]:
  """Batches of the run's own eval split: (batches, dataset, split).

  Batches have 'image' uint8, 'label' int32 and 'mask'.
  """
  data = run.config.data
  size = batch_size_for(run, args)
  if data.dataset == 'synthetic':
    from jaxmix.data import synthetic

    split = data.eval_split
    iterator = synthetic.create_eval_iterator(
      data, global_batch_size=size, image_size=run.image_size
    )
    return iterator, 'synthetic', split
  from jaxmix.evaluate import sources

  split = args.split or data.eval_split
  iterator = sources.batches(
    data.dataset,
    split,
    data_dir=data_dir_for(run, args),
    image_size=run.image_size,
    batch_size=size,
    crop_pct=data.crop_pct,
    image_key=data.image_key,
    extras={'label': lambda ex: ex[data.label_key]},
    manual_dir=args.manual_dir or data.get('manual_dir'),
    limit=args.limit,
  )
  return iterator, data.dataset, split
