"""Machine annotator: label maps for a split from a trained jaxmix CNN.

  (command line: `python -m jaxmix.apps.annotate`)

ReLabel's recipe, with any CNN trained by `jaxmix.apps.train` as the
annotator, or any pretrained classifier whose torchvision / timm weights
`jaxmix.models.load_torch_weights` reads (ResNets, EfficientNets, among them
the official annotator's `tf_efficientnet_l2_ns_475`):

1. A run: its `config.json` rebuilds the model and the latest checkpoint
   gives its parameters (the EMA copy when the run kept one). Imported
   weights (`load_weights`): the named model holding them, with ImageNet's
   channel statistics, at its training resolution (475 for the L2 Noisy
   Student weights) and a 15 x 15 grid by default, as the official maps.
2. Every image of the split is squashed whole to `R x R` (no crop; R is the
   run's `image_size` unless given), as ReLabel's annotator saw it
   (`jaxmix.data.full_images`).
3. The model runs fully convolutionally: its last feature map `[h, w, D]`
   goes through the classifier as a 1x1 convolution, `features @
   head.kernel + head.bias`, giving class logits `[h, w, K]` (the global
   average pooling is dropped, as in ReLabel).
4. The map is resized to `S x S` when `--size` differs from `h`:
   `jax.image.resize(method='linear', antialias=True)` on the logits, i.e.
   bilinear when enlarging and a triangle-filter average (close to
   adaptive average pooling) when shrinking. Logits are linear in the
   features, so resizing logits equals resizing the feature map first.
5. The top `k` classes per cell (`jax.lax.top_k`) are written with
   `jaxmix.data.label_maps.writer.LabelMapWriter`, keyed by file name.

Batches are split over this host's devices (`jit` on a 'data' mesh). The
store is written in chunks; run the same command again after an
interruption and it resumes, skipping the names already written. One
process writes one store: on a multi-host system run it on one host.
"""

import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.evaluate import runs
from jaxmix.io import paths
from jaxmix.train import state as state_lib
from jaxmix.train import steps


def load_run(workdir: str) -> tuple[ml_collections.ConfigDict, Any, Any, int]:
  """The config and model of a trained run, on this host's devices.

  Returns:
    `(config, model_def, (params, batch_stats), step)`; params are the EMA
    copy when the run kept one.
  """
  run = runs.load_run(workdir, mesh=steps.create_mesh(jax.local_devices()))
  return run.config, run.model_def, run.variables, run.step


# The official annotator's input side (`tf_efficientnet_l2_ns_475`) and grid.
L2_NS_SIZE = 475
OFFICIAL_GRID = 15


def load_weights(
  name: str, path: str, *, dataset: str, data_dir: str | None
) -> tuple[ml_collections.ConfigDict, Any, Any, str]:
  """A pretrained classifier as an annotator, like `load_run`'s result.

  Args:
    name: a `jaxmix.models.load_torch_weights` model name.
    path: its torchvision / timm state dict (`.safetensors` or `.pth`).
    dataset: the TFDS dataset to annotate (its classes need not be the
      classifier's: the maps are in the classifier's label space).
    data_dir: its TFDS data_dir.

  Returns:
    `(config, model_def, (params, batch_stats), source)`: `config` holds
    `model.name`, `image_size` (the model's training resolution; 475 for
    the L2) and `data` (ImageNet's mean and std, the dataset's keys and
    class count).
  """
  from jaxmix.configs import default
  from jaxmix.data import tfds_source
  from jaxmix.models import load_torch_weights

  model = load_torch_weights(name, path)
  model_def, params, batch_stats = state_lib.split_model(model)
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict({'name': name})
  config.image_size = (
    L2_NS_SIZE if 'l2' in name else int(getattr(model, 'resolution', 224))
  )
  config.data = default.get_data_config()
  config.data.update(dataset=dataset, data_dir=data_dir)
  label = tfds_source.open_builder(dataset, data_dir).info.features[
    config.data.label_key
  ]
  config.data.num_classes = int(getattr(label, 'num_classes', 0) or 0)
  config.annotator_classes = int(model.head.out_features)
  variables = jax.device_put((params, batch_stats))
  return config, model_def, variables, f'weights {path}'


def label_map_logits(model: nnx.Module, images: jax.Array) -> jax.Array:
  """Fully convolutional class logits of a jaxmix CNN.

  Args:
    model: a model with `features(x) -> [B, h, w, D]` and a linear `head`.
    images: float `[B, H, W, 3]`, normalised.

  Returns:
    float32 `[B, h, w, K]` = `features @ head.kernel + head.bias`.
  """
  if not hasattr(model, 'features') or not hasattr(model, 'head'):
    raise ValueError(
      f'{type(model).__name__} has no `features` and `head`; the annotator '
      'needs a CNN with a linear classifier on pooled features.'
    )
  features = model.features(images).astype(jnp.float32)
  kernel = jnp.asarray(model.head.kernel[...], jnp.float32)
  bias = jnp.asarray(model.head.bias[...], jnp.float32)
  return jnp.einsum('bhwd,dk->bhwk', features, kernel) + bias


def make_annotate_fn(
  model_def: state_lib.ModelDef,
  *,
  mean: tuple[float, ...],
  std: tuple[float, ...],
  size: int | None,
  k: int,
  mesh: jax.sharding.Mesh,
):
  """`fn(variables, images) -> (scores, indices)`, jitted on `mesh`.

  `images` uint8 `[B, R, R, 3]` sharded over 'data'; scores float32 and
  indices int32 `[B, S, S, k]` (S = `size`, else the model's map side).
  """

  def annotate(variables, images):
    params, batch_stats = variables
    model = model_def.merge(params, batch_stats, train=False)
    logits = label_map_logits(model, steps.normalize(images, mean, std))
    batch, height, width, classes = logits.shape
    maps = logits
    if size is not None and (height, width) != (size, size):
      maps = jax.image.resize(
        logits, (batch, size, size, classes), method='linear', antialias=True
      )
    return jax.lax.top_k(maps, min(k, classes))

  replicated = NamedSharding(mesh, PartitionSpec())
  data = NamedSharding(mesh, PartitionSpec('data'))
  return jax.jit(annotate, in_shardings=(replicated, data), out_shardings=data)


def annotate(args: Any) -> str:
  """Writes (or resumes) the store `args.out`; returns its path.

  `args`: the flags of `jaxmix.apps.annotate`, as attributes.
  """
  from jaxmix.data import full_images  # TensorFlow
  from jaxmix.data.label_maps.writer import LabelMapWriter

  devices = jax.local_device_count()
  if args.batch_size < 1 or args.batch_size % devices:
    raise ValueError(
      f'--batch_size ({args.batch_size}) must be a positive multiple of the '
      f'{devices} local devices.'
    )
  if args.top_k < 1 or (args.size is not None and args.size < 1):
    raise ValueError(
      f'--top_k and --size must be >= 1, got {args.top_k} and {args.size}.'
    )
  if (args.workdir is None) == (args.weights is None):
    raise ValueError('Give a trained run (--workdir) or --weights, not both.')
  if args.weights is not None:
    if not (args.model and args.dataset):
      raise ValueError('--weights needs --model and --dataset.')
    config, model_def, variables, source = load_weights(
      args.model, args.weights, dataset=args.dataset, data_dir=args.data_dir
    )
    size = OFFICIAL_GRID if args.size is None else args.size
    classes = config.annotator_classes
  else:
    config, model_def, variables, step = load_run(args.workdir)
    source = f'run {paths.resolve(args.workdir)} step {step}'
    size, classes = args.size, config.data.num_classes
  image_size = args.image_size or config.image_size
  data_config = config.data
  data_config.data_dir = args.data_dir or data_config.data_dir
  data_config.dataset = args.dataset or data_config.dataset
  mesh = steps.create_mesh(jax.local_devices())
  reader = full_images.create_full_image_iterator(
    data_config,
    args.split,
    batch_size=args.batch_size,
    image_size=image_size,
    process_index=0,
    process_count=1,
  )
  fn = make_annotate_fn(
    model_def,
    mean=tuple(data_config.mean),
    std=tuple(data_config.std),
    size=size,
    k=args.top_k,
    mesh=mesh,
  )
  sharding = NamedSharding(mesh, PartitionSpec('data'))
  images = jax.ShapeDtypeStruct(
    (args.batch_size, image_size, image_size, 3), jnp.uint8, sharding=sharding
  )
  scores, _ = jax.eval_shape(fn, variables, images)
  size, k = scores.shape[1], scores.shape[-1]
  writer = LabelMapWriter(
    args.out,
    size=size,
    k=k,
    num_classes=classes,
    source=f'jaxmix.evaluate.annotator of {data_config.dataset} split {args.split}',
    annotator=f'{config.model.name} at {image_size}px, {source}',
    resume=True,
  )
  done_before = writer.num_rows
  start, written = time.perf_counter(), 0
  for number, batch in enumerate(reader, start=1):
    new = np.array(
      [
        bool(m) and n not in writer
        for n, m in zip(batch['file_name'], batch['mask'])
      ]
    )
    if new.any():
      scores, indices = fn(variables, jax.device_put(batch['image'], sharding))
      scores, indices = jax.device_get((scores, indices))
      writer.add(list(batch['file_name'][new]), scores[new], indices[new])
      written += int(new.sum())
    if number % args.log_every == 0 or number == reader.num_batches:
      seconds = time.perf_counter() - start
      rate = written / max(seconds, 1e-9)
      left = reader.size - done_before - written
      eta = left / rate if rate else float('inf')
      print(
        f'{done_before + written}/{reader.size} images, {rate:.1f} img/s, '
        f'ETA {eta:.0f} s',
        file=sys.stderr,
        flush=True,
      )
  store = writer.finalize()
  print(
    f'{store.path}: {len(store)} label maps {size}x{size} top-{k}',
    file=sys.stderr,
  )
  return store.path
