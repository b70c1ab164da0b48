"""Fine-tuning an ImageNet ResNet-50 on Stanford Cars (Krause et al. 2013).

One of ReLabel's transfer datasets (Yun et al., CVPR 2021); the protocol,
its source and what the paper leaves unstated are in `jaxmix.configs.transfer`
(`configs/transfer/__init__.py`).

Command:
  tfds build cars196 --data_dir $DATA
  python -m jaxmix.apps.train --config configs/transfer/stanford_cars.py \
    --config.data.data_dir=$DATA --config.model.init_from=resnet50.safetensors \
    --workdir $WORKDIR/stanford_cars
  python -m jaxmix.apps.evaluate --workdir $WORKDIR/stanford_cars \
    --suite transfer

`resnet50.safetensors`: an ImageNet run exported with `python -m
jaxmix.apps.export`, or torchvision's weights. A grid point: add `:search`
to the config and `--config.optimizer.learning_rate=... \
--config.optimizer.weight_decay=...`.

Data: TFDS `cars196`: 'train' (8,144 images) for fine-tuning, 'test' (8,041)
for the result; the grid search holds out the last 10 % of 'train'
(jaxmix's choice).

Hardware: one host with 8 accelerators; about 20,000 steps of 256
images. Not yet run with jaxmix.

Expected result: none stated here. ReLabel reports the fine-tuned top-1 of
its ResNet-50s on this dataset; jaxmix has not checked the figure against
the paper, so it is left to the user. `python -m jaxmix.apps.report`
tabulates the runs' 'transfer' top-1 by pretrained file and dataset.
"""

import ml_collections

from jaxmix.configs import transfer

STANFORD_CARS = transfer.Dataset(
  tfds_name='cars196',
  num_classes=196,
  train_split='train',
  eval_split='test',
  search_train='train[:90%]',
  search_eval='train[90%:]',
  train_examples=8_144,
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The recipe; `arg`: None, 'search', 'smoke' or 'search,smoke'."""
  return transfer.get_config(STANFORD_CARS, arg)
