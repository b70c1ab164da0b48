"""The input pipeline: tf.data/TFDS train and eval batches for the trainer.

The entry points are one hop away and load TensorFlow on first use only
(so `jaxmix.data.source` and the trainer import without it):

  train = jaxmix.data.create_train_iterator(
      config.data, global_batch_size=256, image_size=224, seed=0)
  batch = next(train)  # 'image' uint8 [b, 224, 224, 3], 'crop_box', ...

Modules, one job each: `source` (the `DataSource` interface and its choice
by dataset name), `tfds_source` (one process's slice of a TFDS split),
`crops` (random crops with their boxes), `photometric` (colour jitter, PCA
lighting), `auto_augment_host` (RandAugment and AutoAugment through PIL),
`preprocess` (the per-example train and eval transforms), `repeated`
(repeated augmentation's law),
`input_pipeline` (batching, shuffling, savable positions), `eval_batches`
(the one evaluation reader, for the trainer and the suites), `full_images`
(whole images for the annotator), `mesh_prefetch` (host batches to global
device arrays). Dataset builders live in `jaxmix.datasets`.
"""

import importlib

_LAZY = {
  'create_train_iterator': 'jaxmix.data.input_pipeline',
  'create_eval_iterator': 'jaxmix.data.eval_batches',
  'steps_per_epoch': 'jaxmix.data.input_pipeline',
  'prefetch_to_mesh': 'jaxmix.data.mesh_prefetch',
}

__all__ = tuple(_LAZY)


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
