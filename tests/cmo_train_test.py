"""CMO in the trainer: long tail, minority stream, its resume, the step, a run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from jaxmix.configs import default
from jaxmix.data import long_tail, minority
from jaxmix.train import augment, augment_schedule, samplers, steps, validation

K = 10


def test_long_tail_keeps_the_exponential_counts():
  counts = long_tail.class_counts(500, num_classes=100, imbalance_ratio=100)
  assert counts[0] == 500 and counts[-1] == 5 and counts.sum() == 10_847
  rng = np.random.default_rng(0)
  labels = rng.permutation(np.repeat(np.arange(K), 60) % K)
  labels = np.concatenate([labels, np.zeros(7, np.int64)])  # class 0: 67
  kept = long_tail.kept_indices(
    labels, num_classes=K, imbalance_ratio=10, seed=3
  )
  want = long_tail.class_counts(60, num_classes=K, imbalance_ratio=10)
  np.testing.assert_array_equal(np.bincount(labels[kept], minlength=K), want)
  assert np.all(np.diff(kept) > 0)
  again = long_tail.kept_indices(
    labels, num_classes=K, imbalance_ratio=10, seed=3
  )
  np.testing.assert_array_equal(kept, again)
  with pytest.raises(ValueError, match='Class 9 has no example'):
    long_tail.kept_indices(
      labels % 9, num_classes=K, imbalance_ratio=10, seed=0
    )


def stream(labels, batch_size=50, alpha=1.0, seed=0):
  return minority.MinorityStream(
    labels,
    lambda indices, epoch, first: {
      'image': indices,
      'label': labels[indices],
      'where': np.array([epoch, first]),
    },
    num_classes=K,
    batch_size=batch_size,
    seed=seed,
    alpha=alpha,
  )


@pytest.mark.parametrize('alpha', [1.0, 0.5, 0.0])
def test_stream_class_frequencies_follow_one_over_n_to_the_alpha(alpha):
  counts = long_tail.class_counts(400, num_classes=K, imbalance_ratio=100)
  labels = np.repeat(np.arange(K), counts)
  draws = stream(labels, alpha=alpha)
  seen = np.concatenate([next(draws)['label'] for _ in range(400)])
  # Example weight 1 / n_c^alpha: class share proportional to n_c^(1-alpha).
  share = counts ** (1.0 - alpha) / np.sum(counts ** (1.0 - alpha))
  freq = np.bincount(seen, minlength=K) / seen.size
  # 20,000 draws: 4 binomial standard deviations.
  tol = 4 * np.sqrt(share * (1 - share) / seen.size)
  assert np.all(np.abs(freq - share) <= tol), (freq, share)


def test_stream_resumes_exactly_and_pairs_with_the_main_stream():
  labels = np.arange(130) % K
  first = stream(labels, batch_size=16)
  batches = [next(first) for _ in range(11)]  # 8 per epoch: crosses one
  assert batches[8]['where'].tolist() == [1, 0]
  second = stream(labels, batch_size=16)
  for _ in range(5):
    next(second)
  state = json.loads(json.dumps(second.get_state()))
  resumed = stream(labels, batch_size=16)
  resumed.set_state(state)
  for want in batches[5:]:
    got = next(resumed)
    np.testing.assert_array_equal(got['image'], want['image'])
  # Another seed draws another stream.
  other = next(stream(labels, batch_size=16, seed=1))
  assert not np.array_equal(other['image'], batches[0]['image'])

  from jaxmix.datasets import synthetic

  config = default.get_config('smoke').data

  def paired():
    main = synthetic.create_train_iterator(
      config, global_batch_size=16, image_size=8, seed=0
    )
    return minority.PairedBatches(main, stream(labels, batch_size=16))

  run = paired()
  whole = [next(run) for _ in range(7)]
  run = paired()
  for _ in range(3):
    next(run)
  state = json.loads(json.dumps(run.get_state()))
  assert set(state) == {'epoch', 'batch_in_epoch', 'minority'}
  restarted = paired()
  restarted.set_state(state)
  for want in whole[3:]:
    got = next(restarted)
    for key in ('image', 'minority_image', 'minority_label'):
      np.testing.assert_array_equal(got[key], want[key])
  with pytest.raises(ValueError, match="under 'minority'"):
    paired().set_state({'epoch': 0, 'batch_in_epoch': 1})


def cmo_config(**cmo_fields):
  """The smoke config with CMO: on in epoch 0 of 2 unless told otherwise."""
  config = default.get_config('smoke')
  config.cmo.update(
    **{'enabled': True, 'start_epoch': -1, 'stop_epochs': 1, **cmo_fields}
  )
  return config


def test_minority_weights_are_one_over_n_to_the_alpha():
  classes = np.array([0, 0, 0, 1, 2, 2])
  weights = minority.minority_example_weights(classes, num_classes=4)
  # alpha 1: every present class drawn a third of the time.
  np.testing.assert_allclose(weights, [1 / 9] * 3 + [1 / 3] + [1 / 6] * 2)
  flat = minority.minority_example_weights(classes, num_classes=4, alpha=0.0)
  np.testing.assert_allclose(flat, np.full(6, 1 / 6))
  with pytest.raises(ValueError, match=r'must lie in \[0, 2\)'):
    minority.minority_example_weights([0, 3], num_classes=2)
  with pytest.raises(ValueError, match='integer class ids'):
    minority.minority_example_weights([0.5], num_classes=2)


def test_cmo_is_on_in_the_official_epochs_only():
  config = cmo_config(start_epoch=3, stop_epochs=3, prob=0.5)
  config.num_epochs = 200
  probs = [augment_schedule.cmo_prob_at(config, e) for e in range(200)]
  on = [e for e, p in enumerate(probs) if p > 0]
  assert on == list(range(4, 197)) and set(probs) == {0.0, 0.5}
  assert [augment_schedule.cmo_active(e, num_epochs=9) for e in range(9)] == [
    e in (4, 5) for e in range(9)
  ]
  config.cmo.enabled = False
  assert augment_schedule.schedule_at(config, 100).cmo_prob == 0.0


def test_step_cmo_pastes_minority_boxes_and_is_off_at_prob_zero(monkeypatch):
  calls = []
  real = samplers.SAMPLERS['cmo']

  def counted(*args, **kwargs):
    calls.append(kwargs['batch_size'])
    return real(*args, **kwargs)

  monkeypatch.setitem(samplers.SAMPLERS, 'cmo', counted)
  mesh = steps.create_mesh()
  config = cmo_config()
  config.data.num_classes = K
  fn = augment.create_augment_fn(
    config, mesh, prepare_images=lambda key, x: x / 255.0
  )
  rng = np.random.default_rng(0)
  images = jnp.zeros((16, 8, 8, 3))
  labels = np.arange(16, dtype=np.int32) % 4
  batch = {
    'label': labels,
    'minority_image': np.full((16, 8, 8, 3), 255, np.uint8),
    'minority_label': rng.integers(5, K, 16).astype(np.int32),
  }

  @jax.jit
  def run(key, prob):
    schedule = augment_schedule.Schedule(jnp.float32(1.0), prob)
    out = fn(key, images, batch, schedule)
    return out.images, out.targets

  same_images, same_labels = run(jax.random.key(0), jnp.float32(0.0))
  assert calls == [16 // jax.device_count()]  # one draw per shard
  np.testing.assert_array_equal(same_images, images)
  np.testing.assert_array_equal(same_labels, jaxmix.one_hot(labels, K))
  pasted, mixed = run(jax.random.key(0), jnp.float32(1))
  # The minority label's weight is the pasted (white) share of each image.
  minority_one_hot = jaxmix.one_hot(batch['minority_label'], K)
  share = (mixed * minority_one_hot).sum(-1)
  np.testing.assert_allclose(share, pasted.mean((1, 2, 3)), atol=1e-6)
  assert share.max() > 0  # something was pasted
  # Each device drew its own box: the pasted shares are not all equal.
  assert len(set(np.round(share, 6).tolist())) > 1


@pytest.mark.parametrize(
  'edit, message',
  [
    (lambda c: c.cmo.update(prob=1.5), r'cmo\.prob'),
    (lambda c: c.cmo.update(beta=0.0), r'cmo\.beta'),
    (lambda c: c.mix.update(method='cutmix'), "mix.method='none'"),
    (lambda c: c.relabel.update(enabled=True), r'relabel\.enabled'),
    (
      lambda c: c.data.long_tail.update(imbalance_ratio=0.5),
      'imbalance_ratio',
    ),
  ],
)
def test_invalid_cmo_configs_fail_naming_the_field(edit, message):
  config = cmo_config()
  edit(config)
  with pytest.raises(ValueError, match=message):
    validation.check_config(config)


def test_smoke_cmo_run_trains_and_saves_both_positions(tmp_path):
  from jaxmix.train import loop

  config = cmo_config()
  outcome = loop.train(config, str(tmp_path / 'run'))
  assert outcome.status == 'finished' and outcome.step == 8
  lines = (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()
  losses = [json.loads(x)['train/loss'] for x in lines if 'train/loss' in x]
  assert losses and np.all(np.isfinite(losses))
  states = sorted((tmp_path / 'run' / 'checkpoints').rglob('*'))
  text = ' '.join(
    p.read_text(errors='ignore')
    for p in states
    if p.is_file() and p.stat().st_size < 10_000 and 'data_iter' in str(p)
  )
  assert '"minority"' in text


@pytest.mark.slow
def test_long_tailed_digit_scenes_through_the_tfds_pipeline(
  digit_scenes_small,
):
  import tensorflow_datasets as tfds

  from jaxmix.data import input_pipeline
  from jaxmix.datasets import digit_scenes

  data_dir = digit_scenes_small
  builder = digit_scenes.prepare(data_dir, 'small')
  labels = np.array(
    [ex['label'] for ex in tfds.as_numpy(builder.as_dataset(split='train'))]
  )
  config = default.get_config().data
  config.update(
    dataset='digit_scenes/small',
    data_dir=data_dir,
    num_classes=K,
    augment='cifar',
    shuffle_buffer=64,
  )
  config.long_tail.update(imbalance_ratio=5.0, seed=0)
  want = long_tail.class_counts(
    np.bincount(labels, minlength=K).min(), num_classes=K, imbalance_ratio=5
  )
  size = input_pipeline.num_examples(config, 'train')
  assert size == want.sum()
  train = input_pipeline.create_train_iterator(
    config, global_batch_size=8, image_size=16, seed=0
  )
  steps_per_epoch = size // 8
  seen = np.concatenate([next(train)['label'] for _ in range(steps_per_epoch)])
  # One epoch reads each kept scene once: the long-tailed counts.
  got = np.bincount(seen, minlength=K)
  assert np.all(got <= want) and got.sum() == steps_per_epoch * 8
  assert got.sum() >= want.sum() - 7

  # The minority stream draws the kept scenes, classes uniformly.
  def minority_stream():
    return input_pipeline.create_minority_iterator(
      config, global_batch_size=8, image_size=16, seed=0, alpha=1.0
    )

  stream_ = minority_stream()
  batches = [next(stream_) for _ in range(6)]
  assert batches[0]['image'].shape == (8, 16, 16, 3)
  resumed = minority_stream()
  for _ in range(2):
    next(resumed)
  state = resumed.get_state()
  resumed = minority_stream()
  resumed.set_state(state)
  for want_batch in batches[2:]:
    got_batch = next(resumed)
    np.testing.assert_array_equal(got_batch['image'], want_batch['image'])
    np.testing.assert_array_equal(got_batch['label'], want_batch['label'])


def test_synthetic_data_reads_its_long_tail():
  from jaxmix.datasets import synthetic

  config = default.get_config('smoke').data
  config.synthetic.train_examples = 200
  config.long_tail.imbalance_ratio = 10.0
  labels = (np.arange(200) * 37 + 11) % K  # synthetic's label rule
  want = long_tail.class_counts(20, num_classes=K, imbalance_ratio=10)
  assert synthetic.num_examples(config, 'train') == want.sum()
  train = synthetic.create_train_iterator(
    config, global_batch_size=want.sum(), image_size=8, seed=0
  )
  epoch = next(train)['label']
  np.testing.assert_array_equal(np.bincount(epoch, minlength=K), want)
  assert np.bincount(labels, minlength=K).min() == 20
