"""What every evaluation suite shares: options, batching and prediction.

`SuiteArgs` holds the options of the command line; `predict` runs a run's
model over padded batches and keeps the real rows; `eval_set` reads the
run's own eval split (synthetic or TFDS).

Multi-host (`jax.distributed`): `predict` feeds every process's own host
batches and collects the rows of all processes on every process
(`jaxmix.evaluate.multihost`), so that every process computes the same
metrics. Only the primary process writes files.
"""

import dataclasses
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from jaxmix.evaluate import metrics as metrics_lib
from jaxmix.evaluate import multihost
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
    cam_threshold: CAM box threshold (fraction of the map's maximum) of
      top-1 localisation; None: the threshold that maximises it on the
      dataset's validation split ('wsol', 'digits'), or
      `DEFAULT_CAM_THRESHOLD` when the dataset has no validation split.
    num_pictures: images in the CAM pictures.
    seed: seed of random choices (the in-between CutMix boxes).
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
  cam_threshold: float | None = None
  num_pictures: int = 8
  seed: int = 0


SuiteFn = Callable[[Run, SuiteArgs], dict]
DEFAULT_CAM_THRESHOLD = 0.2  # the CAM paper's


def batch_size_for(run: Run, args: SuiteArgs, multiple: int = 1) -> int:
  """`args.batch_size` rounded up to a multiple of the mesh's devices (times
  `multiple`: 2 gives every process an even number of rows)."""
  step = run.mesh.devices.size * multiple
  return -(-max(args.batch_size, 1) // step) * step


def check_classes(
  run: Run, found: tfds.core.DatasetBuilder, name: str, hint: str = ''
) -> None:
  """A ValueError unless every class feature of `name` has the run's classes.

  A run with fewer classes never predicts the others, and a class index of
  the dataset would mean another class to the run (its CAM, its logit).

  Args:
    run: the evaluated run (`num_classes`, `name`).
    found: the dataset's builder (`jaxmix.data.tfds_source.checked_builder`).
    name: the TFDS name, for the message.
    hint: appended to the message (e.g. which runs to evaluate).
  """
  sizes = {
    key: feature.num_classes
    for key, feature in found.info.features.items()
    if isinstance(feature, tfds.features.ClassLabel)
  }
  wrong = {k: n for k, n in sizes.items() if n != run.num_classes}
  if wrong:
    raise ValueError(
      f'Run {run.name!r} predicts {run.num_classes} classes, but the class '
      f'features of TFDS {name!r} have {wrong} classes{hint or "."}'
    )


def data_dir_for(run: Run, args: SuiteArgs) -> str | None:
  return args.data_dir or run.config.data.data_dir


def predict(
  run: Run, batches: Iterator[dict], keep: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
  """Logits of every real (unpadded) example, with the `keep` fields.

  Each process feeds its own host batches; every process gets the rows of
  all of them, in the split's order.

  Returns:
    {'logits': float32 `[N, K]`, **{key: `[N, ...]`}} (and 'index' `[N]`
    when the batches carry one).
  """
  parts = []
  for batch in batches:
    logits = run.logits_fn(multihost.to_device(run, batch['image']))
    part = {'logits': multihost.local_rows(run, logits), 'mask': batch['mask']}
    part.update({key: batch[key] for key in keep})
    if 'index' in batch:
      part['index'] = batch['index']
    parts.append(part)
  found = multihost.gather_batches(parts)
  if not len(found['logits']):
    raise ValueError('The evaluated split is empty.')
  return found


def mean_pixel(run: Run) -> jax.Array:
  """The dataset's mean colour, float32 `[3]`: the occlusion fill, zero
  after normalisation (the CutMix paper's "filling zeros")."""
  return jnp.asarray(run.config.data.mean, jnp.float32)


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


def eval_set(
  run: Run, args: SuiteArgs, align: int = 1
) -> tuple[Iterator[dict], str, str]:
  """Batches of the run's own eval split: (batches, dataset, split).

  Batches have 'image' uint8, 'label' int32, 'mask' and 'index' (the
  position in the split, -1 on padding). With `align` > 1 the global batch
  size is a multiple of `align` times the devices, and every process's
  rows start at a multiple of `align` of the split (`eval_batches.batches`).
  """
  data = run.config.data
  size = batch_size_for(run, args, align)
  if data.dataset == 'synthetic':
    from jaxmix.datasets import synthetic

    split = data.eval_split
    iterator = synthetic.create_eval_iterator(
      data, global_batch_size=size, image_size=run.image_size
    )
    return _indexed(iterator, size), 'synthetic', split
  from jaxmix.data import eval_batches

  split = args.split or data.eval_split
  iterator = eval_batches.batches(
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
    align=align,
  )
  return iterator, data.dataset, split


def _indexed(iterator: Iterator[dict], global_size: int) -> Iterator[dict]:
  """Adds 'index' to synthetic eval batches: a global batch is the split's
  next `global_size` examples, process by process in order."""
  local = global_size // jax.process_count()
  start = jax.process_index() * local
  for number, batch in enumerate(iterator):
    index = number * global_size + start + np.arange(local, dtype=np.int32)
    yield {**batch, 'index': np.where(batch['mask'], index, -1)}
