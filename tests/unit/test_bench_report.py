"""benchmarks/report.py: the docs section and its key, from canned results (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location('bench_report', os.path.join(REPO, 'benchmarks', 'report.py'))
report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(report)


def sample(seconds, modules=1, tasks=1, changed=0):
    per_host = {'host1': {'task_results': tasks, 'module_runs': modules, 'modules': ['capstan.release.release_info'] * modules,
                          'remote_commands': modules, 'changed': changed, 'skipped': 0, 'transfers': 0}}
    return {'seconds': seconds, 'machine_busy': 0.5, 'per_host': per_host}


def results(hosts=(1, 5), rounds=2, sections=('scale',)):
    scale = {}
    for count in hosts:
        scale['hosts-%d' % count] = {'hosts': count, 'loadavg_before': [0.5, 0.4, 0.3], 'loadavg_after': [0.9, 0.5, 0.3],
                                     'samples': dict((key, [sample(1.0 + i, 2, 9) for i in range(rounds)]) for key in report.FLOW_KEYS)}
    return {'started': '2026-12-01T10:00:00Z', 'wall_seconds': 60,
            'args': {'hosts': list(hosts), 'rounds': rounds, 'files': 1000, 'sections': list(sections)},
            'machine': {'cpus': 2, 'forks': 20, 'loadavg_start': [0.1, 0.1, 0.1]}, 'loadavg_end': [1, 1, 1],
            'sections': scale, 'errors': []}


def test_spread_is_min_median_max():
    assert report.spread([sample(3), sample(1), sample(2)]) == (1, 2, 3)
    assert report.spread([]) is None
    assert report.fmt_spread([sample(3), sample(1), sample(2)]) == '**2.00** (1.00–3.00)'


def test_render_has_every_host_count_and_the_work_per_host():
    text = report.render(results(), 'benchmarks/x.png')
    assert '| 1 | **1.50** (1.00–2.00) |' in text
    assert '| 5 | **1.50** (1.00–2.00) |' in text
    assert '![seconds against host count](benchmarks/x.png)' in text
    assert '| capstan deploy (git) | 9 | 2 | 2 | 0 | ≤ 4 ✓ / ≤ 15 ✓ |' in text
    assert 'deploy ≤ 1.3x Capistrano (5 hosts) | 1.00x | yes' in text


def test_a_run_with_the_same_key_replaces_its_section_and_others_are_added_on_top():
    doc = '# Benchmarks\n\nintro\n\n%s\n%s\n\n## Earlier\n' % (report.BEGIN, report.END)
    first = results()
    doc = report.insert_section(doc, report.section_key(first), report.render(first))
    again = results()
    again['sections']['hosts-1']['samples']['ping'] = [sample(7.0)]
    doc = report.insert_section(doc, report.section_key(again), report.render(again))
    assert doc.count('<!-- bench:section ') == 1
    assert '| 1 | 7.00 |' in doc
    other = results(hosts=(20,), rounds=1)
    doc = report.insert_section(doc, report.section_key(other), report.render(other))
    assert doc.count('<!-- bench:section ') == 2
    assert doc.index('hosts 20; 1 round') < doc.index('hosts 1,5; 2 rounds')
    assert doc.startswith('# Benchmarks\n\nintro\n') and doc.endswith('## Earlier\n')


def test_failed_sections_are_reported_not_hidden():
    broken = results()
    broken['errors'] = [{'section': 'hosts-50', 'error': 'hosts-50-capstan-deploy failed (rc 2)'}]
    assert '- hosts-50: hosts-50-capstan-deploy failed (rc 2)' in report.render(broken)


def test_the_floor_of_the_budget_is_shown_beside_both_tools():
    canned = results(hosts=(5,), rounds=1)
    samples = canned['sections']['hosts-5']['samples']
    samples.update(floor_deploy=[sample(3.0, 4, 4)], floor_rollback=[sample(2.5, 3, 3)], capstan_deploy=[sample(6.0)],
                   cap_deploy=[sample(2.0)], capstan_rollback=[sample(5.0)], cap_rollback=[sample(1.25)])
    text = report.render(canned)
    assert '| 5 | 3.00 | 6.00 | 2.00x | 1.50x | 2.50 | 5.00 | 2.00x | 2.00x |' in text
    # Each target beside the same ratio for the floor: the floor misses both here, so no playbook meets them.
    assert '| deploy ≤ 1.3x Capistrano (5 hosts) | 3.00x | no | 1.50x | no |' in text
    assert '| rollback ≤ 1.5x Capistrano (5 hosts) | 4.00x | no | 2.00x | no |' in text
    assert '| redeploy of what is live ≤ 1.3x ping (5 hosts) | 1.00x | yes |  |  |' in text


def test_results_without_the_floor_render_without_its_table():
    canned = results(hosts=(5,), rounds=1)
    for key in ('floor_deploy', 'floor_rollback'):
        del canned['sections']['hosts-5']['samples'][key]
    text = report.render(canned)
    assert 'The Ansible floor of the budget' not in text and '| 5 |' in text
    assert '| deploy ≤ 1.3x Capistrano (5 hosts) | 1.00x | yes |  |  |' in text


def first_line(text):
    """The section's first line of prose (after its key and its heading)."""
    return [line for line in text.splitlines() if line and not line.startswith(('<!--', '#'))][0]


def test_the_first_line_names_the_commit_measured_and_whether_the_tree_was_clean():
    clean = results()
    clean['source'] = {'commit': 'abc1234', 'dirty': False}
    assert first_line(report.render(clean)).startswith('`make bench` started 2026-12-01T10:00:00Z, commit abc1234 (clean), took 1 min.')
    dirty = results()
    dirty['source'] = {'commit': 'abc1234', 'dirty': True}
    assert first_line(report.render(dirty)).startswith(
        '`make bench` started 2026-12-01T10:00:00Z, commit abc1234 (with uncommitted changes), took 1 min.')


def test_results_from_before_the_commit_was_recorded_say_so():
    assert first_line(report.render(results())).startswith('`make bench` started 2026-12-01T10:00:00Z, commit not recorded, took')
    unknown = results()
    unknown['source'] = {'commit': None, 'dirty': None}
    assert ', commit not recorded, ' in first_line(report.render(unknown))


def git(cwd, *args):
    return subprocess.run(['git', '-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', *args], cwd=str(cwd),
                          capture_output=True, text=True, check=True).stdout.strip()


def test_source_state_reads_the_commit_and_only_tracked_changes(tmp_path):
    git(tmp_path, 'init', '-q')
    (tmp_path / 'tracked').write_text('one\n')
    git(tmp_path, 'add', 'tracked')
    git(tmp_path, 'commit', '-q', '-m', 'one')
    head = git(tmp_path, 'rev-parse', '--short', 'HEAD')
    assert report.source_state(str(tmp_path)) == {'commit': head, 'dirty': False}
    (tmp_path / 'untracked').write_text('not ours\n')
    assert report.source_state(str(tmp_path)) == {'commit': head, 'dirty': False}
    (tmp_path / 'tracked').write_text('two\n')
    assert report.source_state(str(tmp_path)) == {'commit': head, 'dirty': True}


def test_source_state_outside_a_checkout_is_not_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv('GIT_CEILING_DIRECTORIES', str(tmp_path.parent))
    assert report.source_state(str(tmp_path)) == {'commit': None, 'dirty': None}
