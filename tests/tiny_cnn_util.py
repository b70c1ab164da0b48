"""A tiny CNN's initial train state on the 8-device mesh, and one batch.

Shared by the trainer tests that run `train_step` on a model small enough
to compile in seconds.
"""

from __future__ import annotations

import jax
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix import models
from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.datasets import synthetic
from jaxmix.train import state as state_lib
from jaxmix.train import steps


class TinyCnnOnMesh:
  """`tiny_cnn` (width 4) on the mesh with SGD, and one synthetic batch.

  Args:
    num_classes: the model's classes.
    data_config: the synthetic data config the batch is read with (32
      examples of 16 x 16, seed 0).
  """

  def __init__(self, num_classes: int, data_config):
    self.mesh = steps.create_mesh()
    self.tx = optax.sgd(1.0)
    self.model_def, state = state_lib.create_train_state(
      lambda: models.create_model(
        'tiny_cnn', num_classes=num_classes, rngs=nnx.Rngs(0), width=4
      ),
      self.tx,
      mesh=self.mesh,
    )
    self.host_state = jax.device_get(state)
    it = synthetic.create_train_iterator(
      data_config, global_batch_size=32, image_size=16, seed=0
    )
    self.batch = next(prefetch_to_mesh(it, self.mesh))

  def state(self):
    """A fresh replicated copy of the initial state (steps donate it)."""
    return jax.device_put(
      self.host_state, NamedSharding(self.mesh, PartitionSpec())
    )
