"""Tests of jaxmix.evaluate.runs: one restore path, one results folder."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmix.evaluate import runs
from jaxmix.train import checkpoints


def _state(offset):
  return {'w': jnp.arange(4096, dtype=jnp.float32) + offset}


def _saved(directory, steps):
  ckpt = checkpoints.Checkpointer(str(directory), every_steps=1, keep=3)
  for step in steps:
    ckpt.save(step, _state(step), {'step': step})
  ckpt.close()


def test_read_only_restore_falls_back_and_moves_nothing(tmp_path):
  directory = tmp_path / 'checkpoints'
  _saved(directory, (1, 2))
  shutil.rmtree(directory / '2' / 'state')  # the newest step goes bad
  abstract = jax.eval_shape(lambda: _state(0))
  step, state = runs._restore(directory, abstract, None)
  assert step == 1
  np.testing.assert_array_equal(state['w'], _state(1)['w'])
  # Read-only: the failed step stays where a trainer would look for it.
  assert sorted(os.listdir(directory)) == ['1', '2']
  assert not os.path.exists(f'{directory}_rejected')
  step, state = runs._restore(directory, abstract, 1)
  assert step == 1
  with pytest.raises(ValueError, match=r'step=7 has no checkpoint.*\[1, 2\]'):
    runs._restore(directory, abstract, 7)
  with pytest.raises(checkpoints.CheckpointError, match='step 2'):
    runs._restore(directory, abstract, 2)


def test_a_missing_or_empty_checkpoint_directory_is_named(tmp_path):
  abstract = jax.eval_shape(lambda: _state(0))
  with pytest.raises(FileNotFoundError, match='No checkpoint directory'):
    runs._restore(tmp_path / 'none', abstract, None)
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='No checkpoint in'):
    runs._restore(tmp_path / 'empty', abstract, None)


def test_results_dir_is_run_eval_unless_out_is_given(tmp_path):
  assert runs.results_dir(tmp_path) == tmp_path / 'eval'
  assert runs.results_dir(tmp_path, tmp_path / 'x') == tmp_path / 'x'
  assert str(runs.results_dir('gs://b/run')) == 'gs://b/run/eval'
