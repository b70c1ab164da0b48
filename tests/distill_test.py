"""Knowledge distillation with an online teacher (`config.distill`).

The soft targets are `softmax(t / T)` of the teacher on the very augmented
(CutMix-ed) batch the student sees; `alpha = 0` is the plain step; the
teacher gets no gradient and is never updated; a resumed run equals an
uninterrupted one; a teacher from a torch state dict gives its model's
logits; bad fields fail naming them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from tiny_cnn_util import TinyCnnOnMesh

from jaxmix import models
from jaxmix.configs import default
from jaxmix.evaluate import runs
from jaxmix.train import (
  augment,
  augment_schedule,
  distill,
  loop,
  setup,
  steps,
  trained,
  validation,
)

NUM_CLASSES = 10


def small(config):
  config.image_size = 16
  config.global_batch_size = 32
  config.model.kwargs.width = 4
  config.data.synthetic.train_examples = 64
  config.data.synthetic.eval_examples = 32
  return config


@pytest.fixture(scope='module')
def teacher_dir(tmp_path_factory):
  """A trained jaxmix run (tiny CNN of width 8, one epoch): the teacher."""
  config = small(default.get_config('smoke'))
  config.model.kwargs.width = 8
  config.num_epochs = 1
  config.seed = 3
  workdir = tmp_path_factory.mktemp('teacher') / 'run'
  loop.train(config, str(workdir))
  return str(workdir)


def student_config(teacher_dir, **distill_fields):
  config = small(default.get_config('smoke'))
  config.mix.method = 'cutmix'
  config.mix.draw = 'device'
  config.distill.enabled = True
  config.distill.teacher = teacher_dir
  config.distill.update(distill_fields)
  validation.check_config(config)
  return config


class Student(TinyCnnOnMesh):
  """A tiny CNN student's state on the mesh and one host batch."""

  def __init__(self):
    super().__init__(NUM_CLASSES, small(default.get_config('smoke')).data)
    self.schedule = augment_schedule.Schedule(
      jnp.float32(1.0), jnp.float32(0.0)
    )

  def step(self, config, frozen=None):
    train_step = steps.jit_train_step(
      self.mesh,
      frozen=frozen,
      model_def=self.model_def,
      tx=self.tx,
      learning_rate_fn=optax.constant_schedule(1.0),
      augment_fn=augment.create_augment_fn(config, self.mesh),
      config=setup.step_config(config),
    )
    state, metrics = train_step(self.state(), self.batch, self.schedule)
    return jax.device_get((metrics, state.params, state.batch_stats))


@pytest.fixture(scope='module')
def student():
  return Student()


def test_soft_targets_are_the_teachers_softmax_on_the_augmented_batch(
  student, teacher_dir
):
  temperature = 2.0
  config = student_config(teacher_dir, temperature=temperature, alpha=1.0)
  settings = setup.step_config(config)
  teacher = distill.load_teacher(config, student.mesh)
  augmented = steps.inputs_and_targets(
    jax.random.key(4),
    student.batch,
    student.schedule,
    augment_fn=augment.create_augment_fn(config, student.mesh),
    config=settings,
  )
  loss_fn = distill.create_loss_fn(
    teacher, temperature=temperature, alpha=1.0, step_config=settings
  )(teacher.variables)
  state = student.state()
  model = student.model_def.merge(state.params, state.batch_stats, train=False)
  logits = model(augmented.images)

  # The teacher's logits through the evaluation's own restore and forward.
  reference = runs.load_run(teacher_dir, mesh=student.mesh)
  t = np.asarray(reference.logits_fn(augmented.images))
  want = np.asarray(jax.nn.softmax(t / temperature))
  np.testing.assert_allclose(
    distill.teacher_targets(jnp.asarray(t), temperature), want, rtol=1e-6
  )

  # d loss / d logits = T (softmax(s / T) - targets): the targets used are
  # softmax(t / T) of the teacher on the augmented (CutMix-ed) batch.
  def total(s):
    class Fixed:
      def __call__(self, images):
        return s

    return loss_fn(Fixed(), augmented, None, None)[0].sum()

  grad = jax.grad(total)(logits)
  got_targets = jax.nn.softmax(logits / temperature) - grad / temperature
  np.testing.assert_allclose(got_targets, want, rtol=2e-5, atol=2e-6)
  # The CutMix-ed images are not the unmixed ones: the teacher saw the mix.
  plain = steps.prepare_images(
    jax.random.key(4), student.batch['image'], settings
  )
  t_plain = np.asarray(reference.logits_fn(plain))
  assert not np.allclose(t_plain, t, atol=1e-4)


def test_alpha_zero_is_the_plain_step(student, teacher_dir):
  config = student_config(teacher_dir, alpha=0.0, temperature=4.0)
  settings = setup.step_config(config)
  frozen = distill.frozen_inputs(config, student.mesh, step_config=settings)
  kd = student.step(config, frozen)
  config.distill.enabled = False
  plain = student.step(config)
  np.testing.assert_allclose(kd[0]['loss'], plain[0]['loss'], rtol=1e-6)
  for got, want in zip(jax.tree.leaves(kd[1:]), jax.tree.leaves(plain[1:])):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_the_teacher_gets_no_gradient_and_stays_as_it_was(student, teacher_dir):
  config = student_config(teacher_dir, alpha=0.5, temperature=2.0)
  settings = setup.step_config(config)
  teacher = distill.load_teacher(config, student.mesh)
  before = jax.device_get(teacher.variables)
  augmented = steps.inputs_and_targets(
    jax.random.key(1),
    student.batch,
    student.schedule,
    augment_fn=augment.create_augment_fn(config, student.mesh),
    config=settings,
  )
  bind = distill.create_loss_fn(
    teacher, temperature=2.0, alpha=0.5, step_config=settings
  )
  state = student.state()

  def loss(variables):
    model = student.model_def.merge(state.params, state.batch_stats, train=True)
    return bind(variables)(model, augmented, None, None)[0].mean()

  grads = jax.grad(loss)(teacher.variables)
  assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads))
  frozen = distill.frozen_inputs(
    config, student.mesh, step_config=settings, teacher=teacher
  )
  metrics, params, _ = student.step(config, frozen)
  assert metrics['finite'] == 1.0
  # The student learned; the teacher (parameters and BatchNorm averages)
  # is bit for bit what was restored.
  start = jax.tree.leaves(student.host_state.params)
  assert any(
    not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params), start)
  )
  after = jax.device_get(teacher.variables)
  for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before)):
    np.testing.assert_array_equal(a, b)
  assert not any('teacher' in str(p) for p in jax.tree.leaves(params))


def test_a_resumed_run_equals_the_uninterrupted_one(teacher_dir, tmp_path):
  def run(workdir, epochs):
    config = student_config(teacher_dir, alpha=0.7, temperature=3.0)
    config.num_epochs = epochs
    config.data.synthetic.train_examples = 64  # 2 steps an epoch
    config.global_batch_size = 32
    outcome = loop.train(config, str(workdir))
    return outcome

  run(tmp_path / 'whole', 2)
  run(tmp_path / 'parts', 1)
  run(tmp_path / 'parts', 2)  # resumes at the end of epoch 1
  mesh = steps.create_mesh()
  whole = trained.restore_variables(tmp_path / 'whole', mesh=mesh)
  parts = trained.restore_variables(tmp_path / 'parts', mesh=mesh)
  assert whole[3] == parts[3] == 4
  for a, b in zip(
    jax.tree.leaves(jax.device_get(whole[2])),
    jax.tree.leaves(jax.device_get(parts[2])),
  ):
    np.testing.assert_array_equal(a, b)


def test_a_state_dict_teacher_gives_its_models_logits(tmp_path):
  path = tmp_path / 'teacher.safetensors'
  model = models.create_model(
    'resnet18', num_classes=NUM_CLASSES, rngs=nnx.Rngs(5)
  )
  models.save_torch_weights(model, path)
  config = small(default.get_config('smoke'))
  config.distill.enabled = True
  config.distill.teacher = str(path)
  config.distill.teacher_model = 'resnet18'
  validation.check_config(config)
  mesh = steps.create_mesh()
  teacher = distill.load_teacher(config, mesh)
  assert teacher.num_classes == NUM_CLASSES and 'resnet18' in teacher.source
  x = jax.random.normal(jax.random.key(0), (8, 16, 16, 3))
  model.eval()
  got = teacher.logits(
    teacher.variables,
    x,
    student_mean=default.IMAGENET_MEAN,
    student_std=default.IMAGENET_STD,
  )
  np.testing.assert_allclose(got, model(x), rtol=1e-5, atol=1e-5)
  # A student normalised otherwise: the teacher sees its own statistics.
  mean, std = (127.5,) * 3, (64.0,) * 3
  pixels = x * jnp.asarray(default.IMAGENET_STD) + jnp.asarray(
    default.IMAGENET_MEAN
  )
  other = teacher.logits(
    teacher.variables,
    (pixels - 127.5) / 64.0,
    student_mean=mean,
    student_std=std,
  )
  np.testing.assert_allclose(other, model(x), rtol=1e-4, atol=1e-4)


def test_bad_teachers_fail_naming_the_field(teacher_dir, tmp_path):
  mesh = steps.create_mesh()
  config = small(default.get_config('smoke'))
  config.distill.enabled = True
  config.data.dataset = 'imagenet2012'
  validation.check_config(config)  # the teacher may come at start
  with pytest.raises(ValueError, match=r'needs config\.distill\.teacher:'):
    distill.load_teacher(config, mesh)
  config.data.dataset = 'synthetic'  # a random teacher, of a known model
  config.distill.teacher_model = 'no_such_net'
  with pytest.raises(ValueError, match=r'config\.distill\.teacher_model'):
    validation.check_config(config)
  config = small(default.get_config('smoke'))
  config.distill.alpha = 1.5
  with pytest.raises(ValueError, match=r'config\.distill\.alpha'):
    validation.check_config(config)
  config.distill.alpha = 0.5
  config.distill.temperature = 0.0
  with pytest.raises(ValueError, match=r'config\.distill\.temperature'):
    validation.check_config(config)
  config = student_config(teacher_dir)
  config.mix.method = 'manifold_mixup'
  with pytest.raises(ValueError, match=r'config\.distill\.enabled.*manifold'):
    validation.check_config(config)

  def loading(**fields):
    config = small(default.get_config('smoke'))
    config.distill.enabled = True
    config.distill.update(fields)
    validation.check_config(config)
    return lambda: distill.load_teacher(config, mesh)

  with pytest.raises(ValueError, match=r'config\.distill\.teacher=.*not exist'):
    loading(teacher=str(tmp_path / 'nowhere'))()
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match=r'without config\.json'):
    loading(teacher=str(tmp_path / 'empty'))()
  (tmp_path / 'w.safetensors').write_bytes(b'')
  with pytest.raises(ValueError, match=r'config\.distill\.teacher_model'):
    loading(teacher=str(tmp_path / 'w.safetensors'))()
  with pytest.raises(ValueError, match=r"teacher_model='resnet50'.*'tiny_cnn'"):
    loading(teacher=teacher_dir, teacher_model='resnet50')()
  with pytest.raises(
    ValueError, match=r'predicts 10 classes.*num_classes is 7'
  ):
    config = small(default.get_config('smoke'))
    config.data.num_classes = 7
    config.distill.enabled = True
    config.distill.teacher = teacher_dir
    distill.load_teacher(config, mesh)


def test_the_recipe_is_the_comparison_and_its_smoke_distils(tmp_path):
  from jaxmix.train import recipes

  full = recipes.load('imagenet/kd_resnet50.py')
  relabel = recipes.load('imagenet/relabel_resnet50.py')
  assert full.distill.enabled and not full.relabel.enabled
  assert full.distill.teacher_model == 'tf_efficientnet_l2_ns_475'
  assert (full.distill.temperature, full.distill.alpha) == (1.0, 1.0)
  # The same student recipe as ReLabel's, the targets aside.
  for field in ('model', 'optimizer', 'schedule', 'mix'):
    assert full[field].to_dict() == relabel[field].to_dict(), field
  assert full.num_epochs == relabel.num_epochs
  smoke = recipes.load('imagenet/kd_resnet50.py:smoke')
  assert smoke.distill.teacher is None  # a random tiny teacher
  smoke.num_epochs = 1
  run = setup.build_run(smoke, str(tmp_path / 'run'))
  try:
    state = run.state
    for _ in range(2):
      state, metrics = run.train_step(
        state,
        next(run.device_batches),
        augment_schedule.schedule_at(smoke, 0),
      )
      assert metrics['finite'] == 1.0
  finally:
    run.device_batches.close()
    run.close()
