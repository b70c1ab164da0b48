"""Tests of projects/digit_study: the offline study, its schedule and tables."""

import copy
import json
import os
import pathlib

import pytest

from jaxmix.apps import digit_runs
from jaxmix.train import run_dir
from projects.digit_study import experiment, experiment_tables, main, study_runs

GOLDEN = pathlib.Path(__file__).parent / 'golden'


def _record(values: dict, seeds=(0, 1, 2), **plan_fields) -> dict:
  """A record as `run_experiment` writes it, with given top-1 per run."""
  plan = experiment.Plan(seeds=seeds, **plan_fields)
  results = {}
  for (coverage, recipe), per_seed in values.items():
    for seed, top1 in zip(seeds, per_seed):
      metrics = dict.fromkeys(digit_runs.COLUMNS, 0.5)
      metrics['digits/top1'] = top1
      results[f'{coverage}/{recipe}/{seed}'] = {
        'metrics': metrics,
        'validation_top1': top1,
        'seconds': 60.0,
      }
  fits = {
    c: {'object_area': a, 'partner_absent': p, 'weight_error': 0.2}
    for c, a, p in (
      ('default', 0.076, 0.39),
      ('medium', 0.21, 0.22),
      ('imagenet', 0.44, 0.09),
    )
  }
  import dataclasses

  return {
    'plan': dataclasses.asdict(plan),
    'results': results,
    'label_fit': fits,
    'schedule': '5,000 training scenes for 8 epochs',
    'machine': 'test machine',
    'jobs': 2,
    'minutes': 1.0,
    'finished': 'now',
  }


def test_tables_give_mean_std_and_paired_intervals(tmp_path):
  values = {}
  for coverage in experiment.COVERAGES:
    values[coverage, 'baseline'] = (0.50, 0.60, 0.70)
    values[coverage, 'cutout'] = (0.52, 0.61, 0.70)  # noisy, ~ +1
    values[coverage, 'mixup'] = (0.50, 0.60, 0.70)  # exactly 0
    values[coverage, 'cutmix'] = (0.52, 0.63, 0.74)  # +2, +3, +4
  record = _record(values, relabel_coverages=())
  table = experiment_tables.recipe_table(record, 'imagenet').splitlines()
  assert table[2].startswith('| baseline | 60.00 ± 10.00 | 50.00 ± 0.00 |')
  assert table[2].endswith('| 60 s |')
  diffs = experiment_tables.difference_table(record, 'imagenet').splitlines()
  # d = (2, 3, 4): mean 3, sd 1, half width t(0.975, 2) / sqrt(3) = 2.4841.
  assert diffs[4].startswith('| cutmix | +3.00 [+0.52, +5.48] * |')
  assert diffs[3].startswith('| mixup | +0.00 [+0.00, +0.00] |')
  cutout = diffs[2].split(' | ')[1]
  assert cutout.startswith('+1.00 [') and not cutout.endswith('*')
  text = experiment_tables.results_markdown(record, str(tmp_path))
  assert '| digit_scenes/imagenet | 44.0 % | 9.0 % | 0.200 |' in text
  assert '## imagenet (44.0 % coverage)' in text
  assert (tmp_path / 'gain_vs_coverage.png').stat().st_size > 10_000
  gains = experiment_tables.gains(record)['top-1']
  assert [round(g[0], 6) for g in gains['cutmix']] == [3.0, 3.0, 3.0]


def test_kd_stands_next_to_relabel_and_cleaning_next_to_the_baseline(
  tmp_path,
):
  values = {
    ('imagenet', 'baseline'): (0.50, 0.60, 0.70),
    ('imagenet', 'relabel'): (0.55, 0.65, 0.75),
    ('imagenet', 'kd'): (0.57, 0.68, 0.79),  # relabel +2, +3, +4
    ('imagenet', 'label_cleaning'): (0.51, 0.60, 0.72),  # +1, 0, +2
  }
  record = _record(
    values,
    coverages=('imagenet',),
    recipes=('baseline',),
    relabel_recipes=('relabel',),
  )
  seconds = {'relabel': (100, 110, 120), 'kd': (130, 150, 170)}
  for recipe, times in seconds.items():
    for seed, t in enumerate(times):
      record['results'][f'imagenet/{recipe}/{seed}']['seconds'] = t
  record['results']['imagenet/keep_list'] = {
    'cleaned': {
      'examples': 5000,
      'kept': 4321,
      'rule': 'label is the prediction',
      'scorer': 'x',
    }
  }
  kd = experiment_tables.comparison_table(
    record, 'imagenet', 'kd', 'relabel'
  ).splitlines()
  assert kd[2].startswith('| relabel | 65.00 ± 10.00 |')
  assert kd[2].endswith('| 110 ± 10 s |')
  assert kd[3].startswith('| kd | 68.00 ± 11.00 |')
  assert kd[3].endswith('| 150 ± 20 s |')
  # Paired: d = (2, 3, 4) points, t(0.975, 2) sd / sqrt(3) = 2.4841; the
  # time: d = (30, 40, 50) s, the means' ratio 150 / 110.
  assert kd[4].startswith('| kd − relabel | +3.00 [+0.52, +5.48] * |')
  assert kd[4].endswith('| +40 s [+15, +65], 1.36x |')
  clean = experiment_tables.comparison_table(
    record, 'imagenet', 'label_cleaning', 'baseline'
  ).splitlines()
  # d = (1, 0, 2): mean 1, sd 1, the interval reaches zero.
  assert clean[4].startswith(
    '| label_cleaning − baseline | +1.00 [-1.48, +3.48] |'
  )
  assert experiment_tables.cleaning_line(record, 'imagenet') == (
    "The annotator kept 4,321 of the students' 5,000 training scenes and "
    'dropped 679 (13.6 %); rule: label is the prediction.\n'
  )
  text = experiment_tables.results_markdown(record, str(tmp_path))
  assert '### imagenet: knowledge distillation against ReLabel' in text
  assert '### imagenet: label cleaning against the baseline' in text
  # Both rows are also in the main tables against the baseline.
  assert '| kd | +8.00 [+5.52, +10.48] * |' in text
  # A missing seed is paired out and counted; a missing list is said.
  del (
    record['results']['imagenet/kd/2'],
    record['results']['imagenet/keep_list'],
  )
  kd = experiment_tables.comparison_table(
    record, 'imagenet', 'kd', 'relabel'
  ).splitlines()
  assert kd[3].endswith('| 140 ± 14 s (n=2) |')
  assert kd[4].startswith('| kd − relabel | +2.50 [-3.85, +8.85] (n=2) |')
  assert kd[4].endswith('| +35 s [-29, +99], 1.33x (n=2) |')
  assert 'not written' in experiment_tables.cleaning_line(record, 'imagenet')


def test_unfinished_seeds_are_counted_and_missing_rows_are_dashes():
  record = _record({('imagenet', 'baseline'): (0.5, 0.6, 0.7)})
  del record['results']['imagenet/baseline/2']
  rows = experiment_tables.recipe_table(record, 'imagenet').splitlines()
  assert rows[2].startswith(
    '| baseline | 55.00 ± 7.07 (n=2) | 50.00 ± 0.00 (n=2)'
  )
  assert rows[3] == '| cutout | - | - | - | - | - | - |'


def test_plan_checks_its_fields():
  with pytest.raises(ValueError, match='Unknown coverages'):
    experiment.Plan(coverages=('huge',))
  with pytest.raises(ValueError, match='must be among the coverages'):
    experiment.Plan(coverages=('medium',), relabel_coverages=('imagenet',))
  with pytest.raises(ValueError, match='baseline'):
    experiment.Plan(recipes=('cutmix',))
  with pytest.raises(ValueError, match='relabel_recipes'):
    experiment.Plan(relabel_recipes=('cutmix',))
  plan = experiment.Plan(smoke=True)
  assert plan.dataset('default') == 'digit_scenes/small'
  assert plan.dataset('imagenet') == 'digit_scenes/imagenet_small'


def test_tasks_wait_for_the_checked_annotator():
  plan = experiment.Plan(seeds=(0, 1))
  tasks = experiment.tasks(plan)
  names = [t.name for t in tasks]
  # The annotators first, the largest size's first (the longest chains).
  assert names[:3] == [
    'imagenet/annotator',
    'medium/annotator',
    'default/annotator',
  ]
  # 3 annotators, their label maps and keep lists; 4 recipes, 3 ReLabel
  # recipes, KD and label cleaning at 3 sizes; 2 seeds each.
  assert len(names) == len(set(names)) == 3 + 3 + 3 + (4 + 3 + 2) * 3 * 2
  for coverage in experiment.COVERAGES:
    labels = tasks[names.index(f'{coverage}/label_maps')]
    assert labels.needs == (
      f'{coverage}/annotator',
      f'{coverage}/baseline/0',
      f'{coverage}/baseline/1',
    )
  for task in tasks:
    if task.recipe.startswith('relabel') or task.recipe == 'kd':
      maps = f'{task.coverage}/label_maps'
      assert task.needs == (maps,)
      assert names.index(task.name) > names.index(maps)
  for coverage in experiment.COVERAGES:
    # The keep list waits for the checked annotator, its students for it.
    keep = tasks[names.index(f'{coverage}/keep_list')]
    assert (keep.kind, keep.needs) == ('clean', (f'{coverage}/label_maps',))
    for seed in (0, 1):
      cleaned = tasks[names.index(f'{coverage}/label_cleaning/{seed}')]
      assert cleaned.needs == (f'{coverage}/keep_list',)
      assert names.index(cleaned.name) > names.index(keep.name)
  # At the largest size the comparison follows ReLabel at once: ReLabel,
  # KD, the keep list, label cleaning.
  at = names.index('imagenet/relabel/0')
  assert names[at : at + 7] == [
    'imagenet/relabel/0',
    'imagenet/relabel/1',
    'imagenet/kd/0',
    'imagenet/kd/1',
    'imagenet/keep_list',
    'imagenet/label_cleaning/0',
    'imagenet/label_cleaning/1',
  ]
  # Left out, they leave no task behind.
  bare = experiment.tasks(
    experiment.Plan(seeds=(0,), annotator_recipes=('kd',))
  )
  assert not [t for t in bare if 'keep_list' in t.name or 'clean' in t.name]
  with pytest.raises(ValueError, match='annotator_recipes'):
    experiment.Plan(annotator_recipes=('cutmix',))


def _metrics(run_dir, top1):
  os.makedirs(run_dir)
  with open(os.path.join(run_dir, 'metrics.jsonl'), 'w') as f:
    f.write(json.dumps({'step': 1, 'time': 0.0, 'train/loss': 1.0}) + '\n')
    f.write(json.dumps({'step': 9, 'time': 1.0, 'eval/top1': top1}) + '\n')


def test_a_weak_annotator_skips_relabel_and_says_why(tmp_path, monkeypatch):
  workdir = str(tmp_path)
  plan = experiment.Plan(
    coverages=('imagenet',),
    recipes=('baseline',),
    relabel_recipes=('relabel',),
    seeds=(0, 1),
  )
  _metrics(os.path.join(workdir, 'runs/imagenet/annotator'), 0.70)
  _metrics(os.path.join(workdir, 'runs/imagenet/baseline_seed0'), 0.60)
  _metrics(os.path.join(workdir, 'runs/imagenet/baseline_seed1'), 0.66)
  with pytest.raises(experiment.AnnotatorTooWeak, match=r'70.0 %.*66.0 %'):
    experiment.check_annotator(plan, workdir, 'imagenet')
  strong = experiment.Plan(**{**plan.__dict__, 'annotator_margin': 0.03})
  assert (
    experiment.check_annotator(strong, workdir, 'imagenet')['baseline_best']
    == 0.66
  )

  ran = []

  def fake_run_task(plan, workdir, task):
    ran.append(task.name)
    if task.kind == 'annotate':
      experiment.check_annotator(plan, workdir, task.coverage)
    return {'metrics': {}}

  monkeypatch.setattr(experiment, 'run_task', fake_run_task)
  done = experiment.run_all(plan, workdir, jobs=1)
  assert ran == [
    'imagenet/annotator',
    'imagenet/baseline/0',
    'imagenet/baseline/1',
    'imagenet/label_maps',
  ]
  assert 'not written' in done['imagenet/label_maps']['error']
  assert (
    done['imagenet/relabel/0']
    == done['imagenet/relabel/1']
    == done['imagenet/kd/0']
    == done['imagenet/keep_list']
    == done['imagenet/label_cleaning/1']
    == {'skipped': True}
  )


def test_student_schedule_is_shared():
  plan = experiment.Plan()
  for recipe in experiment.RECIPES:
    task = experiment.Task('x', 'train', 'medium', recipe, 2)
    config = experiment.task_config(plan, '/w', task)
    assert config.data.dataset == 'digit_scenes/medium'
    assert config.data.train_split == 'train[:5000]' and config.seed == 2
    assert config.num_epochs == experiment.STUDENT_EPOCHS
    assert config.relabel.enabled == recipe.startswith('relabel')
    # KD: the same size's annotator as online teacher, at the settings
    # of the talk's comparison (its predictions alone, T = 1).
    assert config.distill.enabled == (recipe == 'kd')
    if recipe == 'kd':
      assert config.distill.teacher == '/w/runs/medium/annotator'
      assert (config.distill.temperature, config.distill.alpha) == (1.0, 1.0)
      assert not config.relabel.enabled and config.mix.method == 'none'
    want = '/w/keep_lists/medium.json' if recipe == 'label_cleaning' else None
    assert config.data.keep_list == want
  # Label cleaning is the baseline recipe on the keep list, KD the
  # baseline with the teacher: nothing else differs.
  task = experiment.Task('x', 'train', 'medium', 'baseline', 2)
  baseline = experiment.task_config(plan, '/w', task).to_dict()
  for recipe, changed in (
    ('label_cleaning', {'data': {'keep_list': '/w/keep_lists/medium.json'}}),
    (
      'kd',
      {'distill': {'enabled': True, 'teacher': '/w/runs/medium/annotator'}},
    ),
  ):
    task = experiment.Task('x', 'train', 'medium', recipe, 2)
    config = experiment.task_config(plan, '/w', task).to_dict()
    want = copy.deepcopy(baseline)
    for section, fields in changed.items():
      want[section].update(fields)
    assert config == want, recipe
  assert experiment.student_split(plan) == 'train[:5000]'
  for coverage in experiment.COVERAGES:
    annotator = experiment.task_config(
      plan, '/w', experiment.Task('a', 'train', coverage, 'strong_annotator', 0)
    )
    assert annotator.data.dataset == f'digit_scenes/{coverage}'
    assert annotator.data.train_split == 'train+extra'
    assert annotator.model.kwargs.width == 24


@pytest.mark.slow
def test_experiment_smoke_end_to_end_and_resume(tmp_path):
  """Annotator, its check, label maps, keep list, students (ReLabel, KD,
  label cleaning), tables; then a resume."""
  workdir = str(tmp_path)
  plan = experiment.Plan(
    coverages=('imagenet',),
    recipes=('baseline',),
    relabel_recipes=('relabel',),
    seeds=(0,),
    annotator_margin=-1.0,
    smoke=True,
  )
  path = experiment.run_experiment(plan, workdir, jobs=1)
  assert path == os.path.join(workdir, 'results.md')
  with open(os.path.join(workdir, 'results.json')) as f:
    record = json.load(f)
  results = record['results']
  assert set(results) == {
    'imagenet/annotator',
    'imagenet/baseline/0',
    'imagenet/label_maps',
    'imagenet/relabel/0',
    'imagenet/kd/0',
    'imagenet/keep_list',
    'imagenet/label_cleaning/0',
  }
  students = ('baseline', 'relabel', 'kd', 'label_cleaning')
  for name in (f'imagenet/{s}/0' for s in students):
    metrics = results[name]['metrics']
    assert all(0.0 <= metrics[c] <= 1.0 for c in digit_runs.COLUMNS), name
  assert os.path.exists(
    os.path.join(workdir, 'label_maps', 'imagenet', 'metadata.json')
  )
  run = os.path.join(workdir, 'runs', 'imagenet', 'relabel_seed0')
  with open(os.path.join(run, 'config.json')) as f:
    assert json.load(f)['relabel']['store_dir'].endswith('label_maps/imagenet')
  with open(os.path.join(run, 'metrics.jsonl')) as f:
    logged = f.read()
  # KD's teacher is the annotator run; label cleaning reads its keep list,
  # written by clean_labels from the annotator's scores of the students'
  # scenes, and trains on the kept ones only.
  kd_run = os.path.join(workdir, 'runs', 'imagenet', 'kd_seed0')
  with open(os.path.join(kd_run, 'config.json')) as f:
    distill = json.load(f)['distill']
  assert distill['enabled']
  assert distill['teacher'] == os.path.join(
    workdir, 'runs', 'imagenet', 'annotator'
  )
  cleaned = results['imagenet/keep_list']['cleaned']
  keep = os.path.join(workdir, 'keep_lists', 'imagenet.json')
  with open(keep) as f:
    kept = json.load(f)
  assert kept['split'] == experiment.student_split(plan)
  assert kept['dataset'] == 'digit_scenes/imagenet_small'
  assert (cleaned['examples'], cleaned['kept']) == (
    kept['num_examples'],
    kept['num_kept'],
  )
  assert 0 < cleaned['kept'] <= cleaned['examples']
  clean_run = os.path.join(workdir, 'runs', 'imagenet', 'label_cleaning_seed0')
  with open(os.path.join(clean_run, 'config.json')) as f:
    assert json.load(f)['data']['keep_list'] == keep
  from jaxmix.data import tfds_source

  task = experiment.Task('', 'train', 'imagenet', 'label_cleaning', 0)
  data_config = experiment.task_config(plan, workdir, task).data
  assert (
    tfds_source.num_examples(data_config, data_config.train_split)
    == cleaned['kept']
  )
  experiment.run_experiment(plan, workdir, jobs=1)  # reopened, not retrained
  experiment.run_experiment(plan, workdir, tables_only=True)
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f)['results'] == results  # the same, read from disk
  with open(os.path.join(run, 'metrics.jsonl')) as f:
    assert f.read() == logged
  with open(path) as f:
    text = f.read()
  assert '| relabel |' in text and 'the annotator' in text
  assert '| kd − relabel |' in text and '| label_cleaning − baseline |' in text
  from projects.digit_study import cam_anatomy

  found = cam_anatomy.anatomy(
    run, 'digit_scenes/imagenet_small', data_dir=os.path.join(workdir, 'data')
  )
  assert found['count'] == 64 and 0.0 <= found['mass_in_box'] <= 1.0
  assert found['threshold'] == cam_anatomy.run_threshold(run)
  assert 0.0 <= found['box_iou'] <= 1.0 and found['box_area_ratio'] > 0


def test_flags_build_the_plan():
  with pytest.raises(SystemExit):
    main.main([])  # --workdir is required
  main.command_line.parse(
    main.FLAGS,
    [
      '--workdir=w',
      '--recipes=baseline,cutmix',
      '--coverages=default,imagenet',
      '--seeds=0,1',
      '--smoke',
    ],
    main.__doc__,
  )
  plan = main.plan_from_flags()
  assert plan.recipes == ('baseline', 'cutmix')
  assert plan.coverages == ('default', 'imagenet')
  assert plan.relabel_coverages == ('default', 'imagenet')
  assert plan.seeds == (0, 1) and plan.smoke and not plan.long
  main.command_line.parse(
    main.FLAGS, ['--workdir=w', '--relabel_coverages=none'], main.__doc__
  )
  plan = main.plan_from_flags()
  assert plan.relabel_coverages == () and plan.seeds == (0, 1, 2)
  assert plan.annotator_recipes == experiment.ANNOTATOR_RECIPES
  main.command_line.parse(
    main.FLAGS,
    [
      '--workdir=w',
      '--relabel_recipes=relabel',
      '--annotator_recipes=kd,label_cleaning',
    ],
    main.__doc__,
  )
  plan = main.plan_from_flags()
  assert plan.relabel_recipes == ('relabel',)
  assert plan.annotator_recipes == ('kd', 'label_cleaning')
  main.command_line.parse(
    main.FLAGS, ['--workdir=w', '--annotator_recipes=none'], main.__doc__
  )
  assert main.plan_from_flags().annotator_recipes == ()


def test_long_schedule_changes_only_the_regime():
  for name in experiment.RECIPES:
    short = digit_runs.load_recipe(name, smoke=False).to_dict()
    config = digit_runs.load_recipe(name, smoke=False)
    study_runs.long_schedule(config, smoke=False)
    long = config.to_dict()
    assert long['data'].pop('train_split') == 'train[:3000]'
    assert long['model']['kwargs'].pop('width') == 32
    assert (long.pop('num_epochs'), short.pop('num_epochs')) == (60, 12)
    long.pop('eval_every_epochs'), short.pop('eval_every_epochs')
    short['data'].pop('train_split'), short['model']['kwargs'].pop('width')
    assert long == short
  small = digit_runs.load_recipe('cutmix', smoke=True)
  study_runs.long_schedule(small, smoke=True)
  assert small.data.train_split == 'train[:30%]'


def test_long_schedule_is_the_old_load_recipe_long():
  """The same configs as before the study left the package (golden).

  The golden configs are records: fields added to the schema since read
  as `run_dir.upgrade` fills them (their off defaults).
  """
  golden = json.loads((GOLDEN / 'digit_study_long_recipes.json').read_text())
  for key, want in golden.items():
    name, smoke = key.split('/')
    config = digit_runs.load_recipe(name, smoke=smoke == 'True')
    study_runs.long_schedule(config, smoke=smoke == 'True')
    assert json.loads(config.to_json()) == run_dir.upgrade(json.loads(want)), (
      key
    )
