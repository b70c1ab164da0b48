"""Label cleaning: the training examples whose label a strong model agrees with.

  (command line: `python -m jaxmix.apps.clean_labels`)

Beyer et al. ("Are we done with ImageNet?", 2020) clean ImageNet's training
set by dropping the images whose original label a strong classifier
disagrees with; ReLabel's table compares that (78.1 % top-1 for ResNet-50)
with its own re-labelled targets. Here:

1. The scorer is a trained jaxmix run (its recorded model, the EMA
   parameters when it kept them) or torchvision / timm weights read by
   `jaxmix.models.load_torch_weights` (`jaxmix.evaluate.annotator`'s two
   loaders), in eval mode.
2. Every example of the split is scored on the trainer's evaluation view
   (`jaxmix.data.eval_batches`: the centre `crop_pct` of the short side,
   resized to the scorer's image size), in the split's order.
3. `keep_mask`: an example is kept when its label is among the scorer's
   `top_k` classes (`top_k=1`: the label is the scorer's prediction, the
   rule as we read the paper; its exact criterion is not restated here).
4. The kept names are written atomically as a keep list
   (`jaxmix.data.keep_list`, with its digest and the scorer named), which
   `config.data.keep_list` trains on.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.data import eval_batches, keep_list
from jaxmix.evaluate import annotator
from jaxmix.io import paths
from jaxmix.train import accuracy, steps


def keep_mask(
  logits: jax.Array, labels: jax.Array, *, top_k: int = 1
) -> jax.Array:
  """bool `[B]`: whether each label is among the `top_k` classes of `logits`.

  Args:
    logits: float `[B, K]`, the scorer's.
    labels: int `[B]`, the dataset's labels.
    top_k: how many of the scorer's classes count as agreeing, >= 1.
  """
  if top_k < 1:
    raise ValueError(f'top_k must be >= 1, got {top_k}.')
  (agrees,) = accuracy.top_k_correct(logits, labels, (top_k,))
  return agrees


def _scorer(args: Any):
  """(config, model_def, variables, description) of the flags' scorer."""
  if (args.workdir is None) == (args.weights is None):
    raise ValueError('Give a trained run (--workdir) or --weights, not both.')
  if args.weights is not None:
    if not (args.model and args.dataset):
      raise ValueError('--weights needs --model and --dataset.')
    config, model_def, variables, source = annotator.load_weights(
      args.model, args.weights, dataset=args.dataset, data_dir=args.data_dir
    )
    classes = config.annotator_classes
    if config.data.num_classes and classes != config.data.num_classes:
      raise ValueError(
        f'--model {args.model} predicts {classes} classes, '
        f'{args.dataset} has {config.data.num_classes}: a scorer must share '
        'the label space.'
      )
    return config, model_def, variables, source
  config, model_def, variables, step = annotator.load_run(args.workdir)
  source = f'run {paths.resolve(args.workdir)} step {step}'
  return config, model_def, variables, source


def clean(args: Any) -> dict[str, Any]:
  """Scores `args.split` and writes the keep list `args.out`.

  Args:
    args: the flags of `jaxmix.apps.clean_labels`, as attributes.

  Returns:
    The written record (`jaxmix.data.keep_list.write`).
  """
  devices = jax.local_device_count()
  if args.batch_size < 1 or args.batch_size % devices:
    raise ValueError(
      f'--batch_size ({args.batch_size}) must be a positive multiple of the '
      f'{devices} local devices.'
    )
  config, model_def, variables, source = _scorer(args)
  data = config.data
  dataset = args.dataset or data.dataset
  data_dir = args.data_dir or data.data_dir
  image_size = args.image_size or int(config.image_size)
  mesh = steps.create_mesh(jax.local_devices())
  sharding = NamedSharding(mesh, PartitionSpec('data'))
  mean, std = tuple(data.mean), tuple(data.std)
  top_k = args.top_k

  @jax.jit
  def score(variables, images, labels):
    params, batch_stats = variables
    model = model_def.merge(params, batch_stats, train=False)
    logits = model(steps.normalize(images, mean, std))
    return keep_mask(logits.astype(jnp.float32), labels, top_k=top_k)

  file_key, label_key = data.file_name_key, data.label_key
  reader = eval_batches.batches(
    dataset,
    args.split,
    data_dir=data_dir,
    image_size=image_size,
    batch_size=args.batch_size,
    crop_pct=float(data.get('crop_pct', 0.875)),
    image_key=data.image_key,
    extras={
      'file_name': lambda ex: ex[file_key],
      'label': lambda ex: tf.cast(ex[label_key], tf.int32),
    },
    process_index=0,
    process_count=1,
  )
  kept, seen, start = [], 0, time.perf_counter()
  for number, batch in enumerate(reader, start=1):
    mask = batch['mask']
    agrees = np.asarray(
      score(
        variables,
        jax.device_put(batch['image'], sharding),
        jax.device_put(batch['label'], sharding),
      )
    )
    kept += list(batch['file_name'][mask & agrees])
    seen += int(mask.sum())
    if number % args.log_every == 0:
      rate = seen / max(time.perf_counter() - start, 1e-9)
      print(
        f'{seen} images scored, {len(kept)} kept, {rate:.1f} img/s',
        file=sys.stderr,
        flush=True,
      )
  if not seen:
    raise ValueError(f'{dataset} split {args.split} has no examples.')
  rule = (
    'label is the prediction'
    if top_k == 1
    else f'label among the top {top_k} predictions'
  )
  record = keep_list.write(
    args.out,
    kept,
    dataset=dataset,
    split=args.split,
    scorer=f'{config.model.name} at {image_size}px, {source}',
    rule=rule,
    num_examples=seen,
  )
  print(
    f'{args.out}: kept {record["num_kept"]} of {seen} examples '
    f'({100 * record["num_kept"] / seen:.2f} %), {rule}',
    file=sys.stderr,
  )
  return record
