"""Tests of `data.repeated_augmentation` against DeiT's RASampler law."""

import math

import numpy as np
import pytest
from imagenet_fixture_util import NUM_TRAIN, data_config, prepared_imagenet

from jaxmix.data import repeated


def deit_rank(perm, repeats, replicas, rank):
  """What DeiT's RASampler yields to `rank` for the epoch's permutation
  (the law of facebookresearch/deit samplers.py, written from its text)."""
  n = len(perm)
  per_rank = math.ceil(n * repeats / replicas)
  total = per_rank * replicas
  sequence = list(np.repeat(perm, repeats))
  sequence += sequence[: total - len(sequence)]
  selected = math.floor(n // 256 * 256 / replicas)
  return np.array(sequence[rank:total:replicas][:selected])


@pytest.mark.parametrize('replicas, repeats', [(4, 3), (8, 3), (2, 2)])
def test_batches_equal_deits_rank_by_rank(replicas, repeats):
  # DeiT's epoch is (n // 256 * 256) // batch steps, jaxmix's n // batch:
  # the same for a global batch that is a multiple of 256 (DeiT's 1024).
  n, per_device = 2000, 256 // replicas
  perm = np.random.default_rng(0).permutation(n)
  ranks = [deit_rank(perm, repeats, replicas, k) for k in range(replicas)]
  steps = len(ranks[0]) // per_device  # DeiT's loader drops the last
  batch = per_device * replicas
  assert steps == n // batch  # the same epoch length as without repeats
  examples, _ = repeated.epoch_sequence(perm, steps * batch, repeats)
  rows = repeated.replica_rows(batch, replicas)
  for s in range(steps):
    block = examples[s * batch : (s + 1) * batch][rows]
    for k in range(replicas):
      want = ranks[k][s * per_device : (s + 1) * per_device]
      got = block[k * per_device : (k + 1) * per_device]
      np.testing.assert_array_equal(got, want, err_msg=f'step {s} rank {k}')


def test_each_example_appears_repeats_times_with_its_copy_numbers():
  order = np.random.default_rng(1).permutation(100)
  examples, copies = repeated.epoch_sequence(order, 64, 3)
  assert len(examples) == 64
  kept = order[: repeated.distinct(64, 3)]  # 22: the epoch's first ones
  counts = {int(e): int(np.sum(examples == e)) for e in kept}
  assert sorted(counts.values()) == [1] + [3] * 21  # the cut: 64 = 21*3 + 1
  assert set(examples) == set(kept)
  for e in kept[:21]:
    np.testing.assert_array_equal(copies[examples == e], [0, 1, 2])
  with pytest.raises(ValueError, match='needs 22 examples'):
    repeated.epoch_sequence(order[:10], 64, 3)


def test_replica_rows_put_consecutive_positions_on_other_replicas():
  rows = repeated.replica_rows(12, 4)
  assert sorted(rows) == list(range(12))
  device = np.empty(12, int)
  device[rows] = np.arange(12) // 3  # the replica holding each position
  np.testing.assert_array_equal(device, np.arange(12) % 4)
  with pytest.raises(ValueError, match='multiple'):
    repeated.replica_rows(10, 4)


@pytest.mark.parametrize('value', [0, -3, 1.5, True])
def test_bad_values_fail_naming_the_field(value):
  with pytest.raises(ValueError, match=r'data\.repeated_augmentation'):
    repeated.check(value)


# --- the tf.data pipeline -------------------------------------------------------


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
  return prepared_imagenet(str(tmp_path_factory.getbasetemp()))


def _train(data_dir, seed=0, replicas=2, **overrides):
  from jaxmix.data import input_pipeline

  overrides.setdefault('repeated_augmentation', 3)
  return input_pipeline.create_train_iterator(
    data_config(data_dir, **overrides),
    global_batch_size=4,
    image_size=40,
    seed=seed,
    process_index=0,
    process_count=1,
    replicas=replicas,
  )


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _sequence(batches, replicas):
  """The batches' positions in the epoch's order (undoing the layout)."""
  rows = repeated.replica_rows(len(batches[0]['label']), replicas)
  out = {}
  for key in batches[0]:
    parts = []
    for batch in batches:
      block = np.empty_like(batch[key])
      block[rows] = batch[key]
      parts.append(block)
    out[key] = np.concatenate(parts)
  return out


def test_pipeline_epoch_shows_a_third_each_three_times(clean):
  it = _train(clean[0], seed=1)
  steps = NUM_TRAIN // 4  # as without repetition
  epoch = _take(it, steps)
  assert it.get_state() == {'epoch': 0, 'batch_in_epoch': 3, 'position': 12}
  seq = _sequence(epoch, 2)
  names = seq['file_name']
  assert len(set(names)) == NUM_TRAIN // 3
  for k in range(NUM_TRAIN // 3):  # each example's copies in a row
    assert len(set(names[3 * k : 3 * k + 3])) == 1
    # Each copy has its own crop (and policy): augmented independently.
    boxes = seq['crop_box'][3 * k : 3 * k + 3]
    assert len({tuple(b) for b in boxes}) > 1
  nxt = _sequence(_take(it, steps), 2)['file_name']
  assert list(nxt) != list(names)  # the next epoch, its own order


def test_pipeline_is_deterministic_and_resumes_mid_epoch(clean):
  kw = dict(auto_augment='rand-m9-mstd0.5-inc1')
  it = _train(clean[0], seed=4, **kw)
  first = _take(it, 1)
  state = it.get_state()
  rest = _take(it, 4)  # into epoch 1
  again = _train(clean[0], seed=4, **kw)
  for a, b in zip(first + rest, _take(again, 5)):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  restored = _train(clean[0], seed=4, **kw)
  restored.set_state(state)
  for a, b in zip(rest, _take(restored, 4)):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_pipeline_refuses_a_batch_that_does_not_split_over_replicas(clean):
  with pytest.raises(ValueError, match='multiple'):
    _train(clean[0], replicas=3)


def test_one_repeat_is_the_plain_pipeline(clean):
  plain = _take(_train(clean[0], repeated_augmentation=1), 3)
  from jaxmix.data import input_pipeline

  before = input_pipeline.create_train_iterator(
    data_config(clean[0]),
    global_batch_size=4,
    image_size=40,
    seed=0,
    process_index=0,
    process_count=1,
  )
  for a, b in zip(plain, _take(before, 3)):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --- the synthetic source: DeiT's law over the global batch ----------------------


def _synthetic(process_index, process_count, replicas=4, repeats=3):
  from jaxmix.configs import default
  from jaxmix.datasets import synthetic

  config = default.get_config('smoke').data
  config.repeated_augmentation = repeats
  return synthetic.create_train_iterator(
    config,
    global_batch_size=16,
    image_size=32,
    seed=7,
    process_index=process_index,
    process_count=process_count,
    replicas=replicas,
  )


def test_synthetic_copies_spread_over_processes_and_devices():
  iterators = [_synthetic(p, 2) for p in range(2)]
  steps = 64 // 16
  names = []
  for _ in range(steps):
    parts = [next(it)['file_name'] for it in iterators]
    batch = np.concatenate(parts)  # the global batch, process by process
    block = np.empty_like(batch)
    block[repeated.replica_rows(16, 4)] = batch
    names.append(block)
    # An example's copies in this step sit on different devices.
    device = np.arange(16) // 4
    for name in set(batch):
      where = device[batch == name]
      assert len(set(where)) == len(where)
  sequence = np.concatenate(names)
  values, counts = np.unique(sequence, return_counts=True)
  assert len(values) == repeated.distinct(64, 3) == 22
  assert sorted(counts) == [1] + [3] * 21


def test_synthetic_resume_mid_epoch_equals_continuing():
  it = _synthetic(0, 1)
  next(it)
  state = it.get_state()
  rest = [next(it)['file_name'] for _ in range(5)]
  restored = _synthetic(0, 1)
  restored.set_state(state)
  for want in rest:
    np.testing.assert_array_equal(next(restored)['file_name'], want)
