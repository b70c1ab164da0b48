"""Fine-tuning an ImageNet ResNet-50 on DTD (Cimpoi et al. 2014).

One of ReLabel's transfer datasets (Yun et al., CVPR 2021); the protocol,
its source and what the paper leaves unstated are in `jaxmix.configs.transfer`
(`configs/transfer/__init__.py`).

Command:
  tfds build dtd --data_dir $DATA
  python -m jaxmix.apps.train --config configs/transfer/dtd.py \
    --config.data.data_dir=$DATA --config.model.init_from=resnet50.safetensors \
    --workdir $WORKDIR/dtd
  python -m jaxmix.apps.evaluate --workdir $WORKDIR/dtd --suite transfer

`resnet50.safetensors`: an ImageNet run exported with `python -m
jaxmix.apps.export`, or torchvision's weights. A grid point: add `:search`
to the config and `--config.optimizer.learning_rate=... \
--config.optimizer.weight_decay=...`.

Data: TFDS `dtd` (the release's first of ten splits): 'train' + 'validation'
(3,760 images) for fine-tuning, 'test' (1,880) for the result; the grid
search trains on 'train' and evaluates on 'validation'.

Hardware: one host with 8 accelerators; about 20,000 steps of 256
images. Not yet run with jaxmix.

Expected result: none stated here. ReLabel reports the fine-tuned top-1 of
its ResNet-50s on this dataset; jaxmix has not checked the figure against
the paper, so it is left to the user. `python -m jaxmix.apps.report`
tabulates the runs' 'transfer' top-1 by pretrained file and dataset.
"""

import ml_collections

from jaxmix.configs import transfer

DTD = transfer.Dataset(
  tfds_name='dtd',
  num_classes=47,
  train_split='train+validation',
  eval_split='test',
  search_train='train',
  search_eval='validation',
  train_examples=3_760,
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The recipe; `arg`: None, 'search', 'smoke' or 'search,smoke'."""
  return transfer.get_config(DTD, arg)
