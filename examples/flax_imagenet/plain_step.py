"""The train step of flax's `examples/imagenet`, in its shape.

A Linen model with BatchNorm, a `TrainState` that carries `batch_stats`,
integer labels, and a step run under `jax.pmap(..., axis_name='batch')`.
`plain_step.py` is the step without mixing, `cutmix_step.py` the same step
with CutMix; the docs ("Using jaxmix in your own Flax training step") show
the difference, and `tests/examples_test.py` runs both on a tiny model.
"""

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
  batch_stats: dict


def cross_entropy_loss(logits, labels, num_classes):
  one_hot = jax.nn.one_hot(labels, num_classes)
  return optax.softmax_cross_entropy(logits, one_hot).mean()


def train_step(state, batch, learning_rate_fn, num_classes=1000):
  """One SGD step on one device's `batch` ('image' [b, H, W, C], 'label' [b])."""

  def loss_fn(params):
    logits, new_model_state = state.apply_fn(
      {'params': params, 'batch_stats': state.batch_stats},
      batch['image'],
      mutable=['batch_stats'],
    )
    loss = cross_entropy_loss(logits, batch['label'], num_classes)
    l2 = sum(jnp.sum(x**2) for x in jax.tree.leaves(params) if x.ndim > 1)
    return loss + 1e-4 * 0.5 * l2, (new_model_state, logits)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (loss, (new_model_state, logits)), grads = grad_fn(state.params)
  grads = jax.lax.pmean(grads, axis_name='batch')
  metrics = {
    'loss': jax.lax.pmean(loss, 'batch'),
    'accuracy': jax.lax.pmean(
      jnp.mean(jnp.argmax(logits, -1) == batch['label']), 'batch'
    ),
    'learning_rate': learning_rate_fn(state.step),
  }
  new_state = state.apply_gradients(
    grads=grads,
    batch_stats=jax.lax.pmean(new_model_state['batch_stats'], 'batch'),
  )
  return new_state, metrics
