"""Turn benchmarks/results/latest.json into the dated section of docs/benchmarks.md and its chart.

    .venv/bin/python benchmarks/report.py [benchmarks/results/latest.json] [--docs docs/benchmarks.md]

benchmarks/run.py calls write() at the end of a run; running this file again re-renders the last
results without measuring anything. A section is keyed by its date and scope (host counts,
rounds): a later run with the same key replaces it, any other run is added above the older ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

# The Ansible floor of the budget: a playbook of as many ping tasks as the flow's module runs.
FLOOR_TASKS = {'deploy': 4, 'rollback': 3}
FLOW_KEYS = ('ping', 'floor_deploy', 'floor_rollback', 'capstan_deploy', 'cap_deploy', 'capstan_redeploy', 'capstan_rollback',
             'cap_rollback')
LABELS = {
    'ping': '`ansible -m ping` (floor)',
    'floor_deploy': 'playbook of %d ping tasks' % FLOOR_TASKS['deploy'],
    'floor_rollback': 'playbook of %d ping tasks' % FLOOR_TASKS['rollback'],
    'capstan_deploy': 'capstan deploy (git)',
    'cap_deploy': '`cap deploy`',
    'capstan_redeploy': 'capstan redeploy of what is live',
    'capstan_rollback': 'capstan rollback',
    'cap_rollback': '`cap deploy:rollback`',
}
# DESIGN.md "Speed": per-host budget (module runs, task results) with no hooks, health, gate or serial.
BUDGET = {
    'capstan_deploy': (4, 15),
    'capstan_redeploy': (1, None),
    'capstan_rollback': (3, 10),
    'copy_deploy': (5, 15),
}
BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'
SECTION_RE = re.compile(r'^<!-- bench:section (?P<key>.+?) -->$', re.M)


# --- the run ------------------------------------------------------------------------------------


def source_state(repo):
    """The commit ``repo`` is at and whether its tracked files differ from it (run.py records it at the start).

    ``{'commit': 'abc1234', 'dirty': False}``; both None when git cannot tell (not a checkout, no git).
    Untracked files are not counted: only changes to tracked files make the measured code differ
    from the commit.
    """
    def git(*args):
        # --no-optional-locks: reading the state must not rewrite the checkout's index.
        return subprocess.run(['git', '--no-optional-locks'] + list(args), cwd=repo, capture_output=True, text=True,
                              check=True, timeout=60).stdout

    try:
        commit = git('rev-parse', '--short', 'HEAD').strip()
        changes = git('status', '--porcelain', '--untracked-files=no')
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return {'commit': None, 'dirty': None}
    return {'commit': commit, 'dirty': bool(changes.strip())}


def source_text(results):
    """``commit abc1234 (clean)``, ``... (with uncommitted changes)``, or ``commit not recorded`` (older results)."""
    source = results.get('source') or {}
    if not source.get('commit'):
        return 'commit not recorded'
    if source.get('dirty') is None:
        return 'commit %s' % source['commit']
    return 'commit %s (%s)' % (source['commit'], 'with uncommitted changes' if source['dirty'] else 'clean')


# --- figures -------------------------------------------------------------------------------------


def seconds(samples):
    return [sample['seconds'] for sample in samples or []]


def spread(samples):
    """(min, median, max) seconds of a list of samples, or None."""
    values = seconds(samples)
    if not values:
        return None
    return min(values), statistics.median(values), max(values)


def median(samples):
    values = seconds(samples)
    return statistics.median(values) if values else None


def ratio(top, bottom):
    a, b = median(top), median(bottom)
    if a is None or not b:
        return None
    return a / b


def fmt_spread(samples):
    figures = spread(samples)
    if figures is None:
        return 'n/a'
    low, mid, high = figures
    if len(samples) == 1:
        return '%.2f' % mid
    return '**%.2f** (%.2f–%.2f)' % (mid, low, high)


def fmt_ratio(value, target=None):
    if value is None:
        return 'n/a'
    text = '%.2fx' % value
    if target is not None:
        text += ' %s' % ('✓' if value <= target else '✗ (target ≤ %.1fx)' % target)
    return text


def busy(samples):
    values = [sample.get('machine_busy') for sample in samples or [] if sample.get('machine_busy') is not None]
    return statistics.median(values) if values else None


def host_counts(samples, key):
    """(low, high) of a per-host count over every host of every sample."""
    values = [counts[key] for sample in samples or [] for counts in sample.get('per_host', {}).values()]
    if not values:
        return None
    return min(values), max(values)


def fmt_range(pair):
    if pair is None:
        return 'n/a'
    low, high = pair
    return '%d' % low if low == high else '%d–%d' % (low, high)


def module_names(samples):
    """The modules host1 ran in the last sample, in order, short names."""
    for sample in reversed(samples or []):
        per_host = sample.get('per_host', {})
        if per_host:
            first = per_host[sorted(per_host, key=natural)[0]]
            names = [name.rsplit('.', 1)[-1] for name in first.get('modules', [])]
            return ', '.join(names) or 'none'
    return 'n/a'


def natural(text):
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', text)]


def scale_sections(results):
    """[(hosts, section)] of the scale section's host counts, fewest hosts first."""
    found = []
    for name, section in results.get('sections', {}).items():
        if name.startswith('hosts-'):
            found.append((section['hosts'], section))
    return sorted(found, key=lambda item: item[0])


def latency_section(results):
    for name, section in results.get('sections', {}).items():
        if name.startswith('latency-'):
            return section
    return None


# --- the chart -----------------------------------------------------------------------------------


def chart(results, path):
    """Median seconds (bars: min to max) against host count, capstan and Capistrano; None without data."""
    points = scale_sections(results)
    if not points:
        return None
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    figure, axes = pyplot.subplots(figsize=(8, 5), dpi=100)
    styles = [('capstan_deploy', 'capstan deploy', '#1f77b4', '-', 'o'), ('cap_deploy', 'cap deploy', '#ff7f0e', '-', 's'),
              ('capstan_rollback', 'capstan rollback', '#1f77b4', '--', 'o'), ('cap_rollback', 'cap deploy:rollback', '#ff7f0e', '--', 's'),
              ('floor_deploy', 'playbook of %d ping tasks' % FLOOR_TASKS['deploy'], '#2ca02c', ':', 'x'),
              ('ping', 'ansible -m ping (floor)', '#7f7f7f', ':', '.')]
    for key, label, colour, line, marker in styles:
        xs, mids, lows, highs = [], [], [], []
        for hosts, section in points:
            figures = spread(section['samples'].get(key))
            if figures is None:
                continue
            xs.append(hosts)
            mids.append(figures[1])
            lows.append(figures[1] - figures[0])
            highs.append(figures[2] - figures[1])
        if xs:
            axes.errorbar(xs, mids, yerr=[lows, highs], label=label, color=colour, linestyle=line, marker=marker, capsize=3)
    machine = results.get('machine', {})
    axes.set_xlabel('hosts (ansible forks = %s; Capistrano runs all hosts at once)' % machine.get('forks', '?'))
    axes.set_ylabel('seconds (median of %d; bars: min to max)' % results['args']['rounds'])
    axes.set_title('capstan.release vs Capistrano 3, %d-file git app, %s' % (results['args']['files'], results['started'][:10]))
    axes.set_xticks([point[0] for point in points])
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return path


# --- the Markdown section ------------------------------------------------------------------------


def scope(results):
    args = results['args']
    parts = []
    if 'scale' in args['sections']:
        parts.append('hosts %s' % ','.join(str(count) for count in args['hosts']))
    parts += [name for name in args['sections'] if name != 'scale']
    return '%s; %d round%s' % (' + '.join(parts), args['rounds'], '' if args['rounds'] == 1 else 's')


def section_key(results):
    return '%s %s' % (results['started'][:10], scope(results))


def chart_name(results):
    args = results['args']
    return 'hosts-%s-%s-r%d.png' % (results['started'][:10], '-'.join(str(count) for count in args['hosts']), args['rounds'])


def limits_text(results):
    machine = results.get('machine', {})
    forks = machine.get('forks')
    lines = []
    points = scale_sections(results)
    if points and forks and points[-1][0] > forks:
        lines.append('ansible ran %d forks, so at more than %d hosts it works on %d hosts at a time; '
                     'Capistrano (SSHKit\'s parallel runner) starts every host at once.' % (forks, forks, forks))
    elif forks:
        lines.append('ansible ran %d forks (never fewer than the hosts of a run here); Capistrano starts every host at once.' % forks)
    saturated = []
    for hosts, section in points:
        share = busy(section['samples'].get('capstan_deploy'))
        if share is not None:
            saturated.append('%d hosts %d%%' % (hosts, round(100 * share)))
    if saturated:
        lines.append('The whole machine (controller and bed hosts share its %s cores) was busy during a capstan deploy: %s '
                     '(median share of all cores, from /proc/stat). Near 100%% the figures measure the CPU, not the network.'
                     % (machine.get('cpus', '?'), ', '.join(saturated)))
    settles = [entry for section in results.get('sections', {}).values() for entry in section.get('settle', [])]
    if settles:
        limit = results['args'].get('settle_busy', 0.3)
        busy_starts = [entry for entry in settles if entry['busy'] >= limit]
        lines.append('Before each round the run waited for other work on the machine to pass (at most %ss, until it was '
                     'less than %d%% busy over 1 s): %.0f s of waiting in all; %d of %d rounds still started on a busier machine.'
                     % (results['args'].get('settle'), round(100 * limit), sum(entry['waited'] for entry in settles),
                        len(busy_starts), len(settles)))
    return lines


def cpu(samples):
    values = [sample['controller_cpu'] for sample in samples or [] if sample.get('controller_cpu') is not None]
    return statistics.median(values) if values else None


def cpu_table(points):
    keys = ('ping', 'capstan_deploy', 'cap_deploy', 'capstan_redeploy', 'capstan_rollback', 'cap_rollback')
    out = ['### Controller CPU seconds (median; user + system of the command and its children)', '',
           'Less sensitive to other work on the machine than the seconds: what each tool costs the controller.', '',
           '| hosts | ' + ' | '.join(LABELS[key] for key in keys) + ' |', '|---:' * (len(keys) + 1) + '|']
    for hosts, section in points:
        values = [cpu(section['samples'].get(key)) for key in keys]
        out.append('| %d | %s |' % (hosts, ' | '.join('n/a' if value is None else '%.2f' % value for value in values)))
    out.append('')
    return out


def load(values):
    return ' / '.join('%.2f' % value for value in values) if values else 'n/a'


def load_note(section):
    """The 1-minute load average before and after a section, and its wall time."""
    before, after = section.get('loadavg_before'), section.get('loadavg_after')
    if not before:
        return ''
    text = 'load average %.2f before, %s after' % (before[0], '%.2f' % after[0] if after else 'n/a')
    if section.get('wall_seconds'):
        text += ', %.0f s in all' % section['wall_seconds']
    return text


def render(results, chart_link=None):
    machine = results.get('machine', {})
    args = results['args']
    out = []
    out.append('<!-- bench:section %s -->' % section_key(results))
    out.append('## %s: %s' % (results['started'][:10], scope(results)))
    out.append('')
    out.append('`make bench` started %s, %s, took %.0f min. Machine: %s CPUs, %s MiB, kernel %s, Python %s, %s, %s. '
               'Load average (1/5/15 min) at the start %s, at the end %s.'
               % (results['started'], source_text(results), results.get('wall_seconds', 0) / 60.0, machine.get('cpus'),
                  machine.get('mem_mib'), machine.get('kernel'), machine.get('python'), machine.get('ansible'),
                  machine.get('capistrano'), load(machine.get('loadavg_start')), load(results.get('loadavg_end'))))
    out.append('')
    limits = limits_text(results)
    if limits:
        out.append('What limited it: ' + ' '.join(limits))
        out.append('')
    if results.get('cap_hangs'):
        out.append('Capistrano hung (killed after --cap-timeout, then run once more; the figure is the second run):')
        out.append('')
        for hang in results['cap_hangs']:
            out.append('- %s' % hang['error'])
        out.append('')
    if results.get('errors'):
        out.append('**Not measured** (the run failed there):')
        out.append('')
        for error in results['errors']:
            out.append('- %s: %s' % (error['section'], error['error'].replace('\n', ' ')[:400]))
        out.append('')

    points = scale_sections(results)
    if points:
        out.append('### Seconds against host count (%d-file git app; median, min–max over %d rounds)'
                   % (args['files'], args['rounds']))
        out.append('')
        out.append('| hosts | ping (floor) | capstan deploy | `cap deploy` | deploy capstan/cap | capstan rollback | '
                   '`cap deploy:rollback` | rollback capstan/cap | redeploy of what is live | redeploy/ping | machine |')
        out.append('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
        for hosts, section in points:
            samples = section['samples']
            out.append('| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                hosts, fmt_spread(samples['ping']), fmt_spread(samples['capstan_deploy']), fmt_spread(samples['cap_deploy']),
                fmt_ratio(ratio(samples['capstan_deploy'], samples['cap_deploy'])),
                fmt_spread(samples['capstan_rollback']), fmt_spread(samples['cap_rollback']),
                fmt_ratio(ratio(samples['capstan_rollback'], samples['cap_rollback'])),
                fmt_spread(samples['capstan_redeploy']), fmt_ratio(ratio(samples['capstan_redeploy'], samples['ping'])),
                load_note(section)))
        out.append('')
        out.append('Each round commits a change, then runs ping, both deploys (capstan first in rounds 1, 3, ..., '
                   'Capistrano first in rounds 2, 4, ...), the redeploy, ping again, and both rollbacks. '
                   'The first deploy of each tool (a full clone) is not counted: %s.' % first_deploys(points))
        out.append('')
        if chart_link:
            out.append('![seconds against host count](%s)' % chart_link)
            out.append('')
        out += floor_table(points)
        out += cpu_table(points)
        out += counts_table(points)
    latency = latency_section(results)
    if latency:
        out += latency_table(latency, args)
    prune = results.get('sections', {}).get('prune')
    if prune:
        out += prune_table(prune)
    copy = results.get('sections', {}).get('copy')
    if copy:
        out += copy_table(copy)
    mitogen = results.get('sections', {}).get('mitogen')
    if mitogen:
        out += mitogen_table(mitogen)
    out += targets(results)
    out.append('Raw samples (every command\'s seconds, per-host counts, logs): `benchmarks/results/latest.json` of that run.')
    out.append('')
    return '\n'.join(out)


def first_deploys(points):
    parts = []
    for hosts, section in points:
        first = section.get('first', {})
        if 'capstan_deploy' in first and 'cap_deploy' in first:
            parts.append('%d hosts %.1f s capstan, %.1f s cap' % (hosts, first['capstan_deploy']['seconds'], first['cap_deploy']['seconds']))
    return '; '.join(parts) or 'n/a'


def counts_table(points):
    hosts, section = next(((h, s) for h, s in points if h == 5), points[-1])
    samples = section['samples']
    out = ['### Work per host (%d-host run, every host of every round)' % hosts, '',
           'Task results: what the play recap counts for the host, ok + failed + skipped + unreachable + rescued '
           '(changed and ignored are part of ok). Module runs: modules executed on the host, counted by '
           '`benchmarks/callback_plugins/capstan_bench.py` at `ActionBase._execute_module`, so a task whose action '
           'runs two modules counts two and controller-only tasks (set_fact, assert, include_*) count none; '
           'remote commands: every command sent over SSH (with pipelining one per module run, plus temp-dir handling).', '',
           '| flow | task results | module runs | remote commands | changed | budget (DESIGN: module runs / task results) | modules run on host1 |',
           '|---|---:|---:|---:|---:|---|---|']
    for key in ('ping', 'capstan_deploy', 'capstan_redeploy', 'capstan_rollback'):
        budget = BUDGET.get(key)
        budget_text = ''
        if budget:
            runs = host_counts(samples[key], 'module_runs')
            tasks = host_counts(samples[key], 'task_results')
            budget_text = '≤ %d %s' % (budget[0], check(runs, budget[0]))
            if budget[1]:
                budget_text += ' / ≤ %d %s' % (budget[1], check(tasks, budget[1]))
        out.append('| %s | %s | %s | %s | %s | %s | %s |' % (
            LABELS[key], fmt_range(host_counts(samples[key], 'task_results')), fmt_range(host_counts(samples[key], 'module_runs')),
            fmt_range(host_counts(samples[key], 'remote_commands')), fmt_range(host_counts(samples[key], 'changed')),
            budget_text, module_names(samples[key])))
    out.append('')
    return out


def floor_table(points):
    """capstan and Capistrano against a playbook of the budget's module runs in ping tasks (same rounds)."""
    if not any(section['samples'].get('floor_deploy') for _hosts, section in points):
        return []
    deploy, rollback = FLOOR_TASKS['deploy'], FLOOR_TASKS['rollback']
    out = ['### The Ansible floor of the budget', '',
           'A playbook of %d `ansible.builtin.ping` tasks (a git deploy\'s module runs per host) and one of %d (a rollback\'s), '
           'timed in the same rounds with cold connections: what any playbook with that many module runs costs on this bed, '
           'whatever its modules do. The bed\'s hosts run their Python on the controller\'s cores, so every module run '
           '(about 0.15 s of CPU for `ping`, mostly `ansible.module_utils.basic` compiled from the payload) is paid there, '
           'while a Capistrano step is a shell command.' % (deploy, rollback), '',
           '| hosts | %d ping tasks | capstan deploy | capstan/floor | floor/`cap deploy` | %d ping tasks | capstan rollback | '
           'capstan/floor | floor/`cap deploy:rollback` |' % (deploy, rollback),
           '|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for hosts, section in points:
        samples = section['samples']
        out.append('| %d | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            hosts, fmt_spread(samples.get('floor_deploy')), fmt_spread(samples['capstan_deploy']),
            fmt_ratio(ratio(samples['capstan_deploy'], samples.get('floor_deploy'))),
            fmt_ratio(ratio(samples.get('floor_deploy'), samples['cap_deploy'])),
            fmt_spread(samples.get('floor_rollback')), fmt_spread(samples['capstan_rollback']),
            fmt_ratio(ratio(samples['capstan_rollback'], samples.get('floor_rollback'))),
            fmt_ratio(ratio(samples.get('floor_rollback'), samples['cap_rollback']))))
    out.append('')
    return out


def check(pair, limit):
    if pair is None:
        return ''
    return '✓' if pair[1] <= limit else '✗'


def latency_table(section, args):
    samples = section['samples']
    out = ['### %d hosts, %d ms added on every host (bed slow)' % (section['hosts'], section['latency_ms']), '',
           'Same rounds as above (%s).' % load_note(section), '',
           '| flow | seconds | capstan/cap | target (DESIGN) |', '|---|---:|---:|---|']
    out.append('| %s | %s | | |' % (LABELS['ping'], fmt_spread(samples['ping'])))
    for key, theirs, name in (('floor_deploy', 'cap_deploy', 'deploy'), ('floor_rollback', 'cap_rollback', 'rollback')):
        if samples.get(key):
            out.append('| %s (the floor of a capstan %s) | %s | %s | |' % (
                LABELS[key], name, fmt_spread(samples[key]), fmt_ratio(ratio(samples[key], samples[theirs]))))
    for ours, theirs, name in (('capstan_deploy', 'cap_deploy', 'deploy'), ('capstan_rollback', 'cap_rollback', 'rollback')):
        value = ratio(samples[ours], samples[theirs])
        out.append('| %s | %s | %s | ≤ 0.7x Capistrano |' % (LABELS[ours], fmt_spread(samples[ours]), fmt_ratio(value, 0.7)))
        out.append('| %s | %s | | |' % (LABELS[theirs], fmt_spread(samples[theirs])))
    redeploy = samples['capstan_redeploy']
    out.append('| %s | %s | %s of ping | |' % (LABELS['capstan_redeploy'], fmt_spread(redeploy), fmt_ratio(ratio(redeploy, samples['ping']))))
    out.append('')
    return out


def prune_table(section):
    samples = section['samples']
    out = ['### Prune with %d releases present (%d hosts)' % (section['releases'], section['hosts']), '',
           'Before each timed deploy every host\'s tree is filled to %d releases (made by shell on the host: '
           'directories named by valid UTC times of 2020, each with REVISION, REVISION_TIME and one file, with their '
           '`Branch ... deployed as release ...` lines in revisions.log, so both tools count them as releases that went '
           'live). The deploy prunes them to the newest 5 (%s).' % (section['releases'], load_note(section)), '',
           '| flow | seconds | capstan/cap | releases left on host1 |', '|---|---:|---:|---:|']
    after = section.get('after', {})
    value = ratio(samples['capstan_deploy'], samples['cap_deploy'])
    out.append('| capstan deploy (git) | %s | %s | %s |' % (fmt_spread(samples['capstan_deploy']), fmt_ratio(value), after.get('capstan', 'n/a')))
    out.append('| `cap deploy` | %s | | %s |' % (fmt_spread(samples['cap_deploy']), after.get('cap', 'n/a')))
    out.append('')
    return out


def copy_table(section):
    out = ['### Copy strategy: a one-file change in a %d-file app (%d host)' % (section['files'], section['hosts']), '']
    rounds = section.get('rounds') or []
    if not rounds:
        out += ['n/a', '']
        return out
    app = section['app_bytes']
    last = rounds[-1]
    reported = last.get('reported') or {}
    sent_bytes = reported.get('sent_bytes')
    sent = reported.get('sent')
    out += ['The app: %d files, %d bytes. The second and later deploys change one file (public/VERSION); '
            'figures of the last round (all rounds: benchmarks/results/latest.json; %s).' % (section['app_files'], app, load_note(section)), '',
            '| figure | value | share of the app |', '|---|---:|---:|']
    out.append('| time of the deploy | %s s | |' % fmt_spread(section['samples']['capstan_deploy']))
    out.append('| files sent (release_content `sent`) | %s | %s |' % (
        'n/a' if sent is None else sent, 'n/a' if sent is None else '%.2f%% of %d files' % (100.0 * sent / section['app_files'],
                                                                                            section['app_files'])))
    out.append('| bytes sent (release_content `sent_bytes`, before compression) | %s | %s |' % (
        'n/a' if sent_bytes is None else sent_bytes, 'n/a' if sent_bytes is None else '%.3f%%' % (100.0 * sent_bytes / app)))
    share = 100.0 * last['added_disk'] / last['release_disk']
    out.append('| disk used by the new release beside the previous one (`du -s -B1 old new`: hard-linked files count once) | '
               '%d | %.2f%% of the release alone (%d) |' % (last['added_disk'], share, last['release_disk']))
    out.append('| the same in apparent size (`du --apparent-size`; tmpfs gives directories a size) | %d | %.2f%% of the release alone (%d) |' % (
        last['added_apparent'], 100.0 * last['added_apparent'] / last['release_apparent'], last['release_apparent']))
    tasks = host_counts(section['samples']['capstan_deploy'], 'task_results')
    runs = host_counts(section['samples']['capstan_deploy'], 'module_runs')
    out.append('| task results / module runs per host | %s / %s | budget ≤ 15 / ≤ 5 |' % (fmt_range(tasks), fmt_range(runs)))
    out.append('')
    out.append('What remains on disk per release is directories (not hard-linkable), the changed file, '
               'REVISION/REVISION_TIME and the linked_files/linked_dirs symlinks.')
    out.append('')
    return out


def mitogen_table(section):
    out = ['### mitogen (%s hosts)' % section['hosts'], '']
    version = section.get('version')
    if not version:
        out += ['Not measured: %s' % '; '.join(section.get('failures') or ['no mitogen']), '']
        return out
    out += ['mitogen %s from PyPI (pinned in benchmarks/requirements-mitogen.txt), installed by `make bench` with '
            '`pip install --target benchmarks/output/mitogen-%s` and enabled only for these runs with '
            '`ANSIBLE_STRATEGY_PLUGINS=<that>/ansible_mitogen/plugins/strategy ANSIBLE_STRATEGY=mitogen_linear`. '
            'It is not a requirement of the collection. Linear and mitogen runs alternate within each round, '
            'each on a tree of its own (%s).' % (version, version, load_note(section)), '']
    samples = section.get('samples', {})
    out += ['| flow | linear (ansible-core) | mitogen_linear | mitogen/linear | module runs linear / mitogen |',
            '|---|---:|---:|---:|---|']
    for key in ('ping', 'capstan_deploy', 'capstan_redeploy', 'capstan_rollback'):
        plain, fast = samples.get('linear_' + key), samples.get('mitogen_' + key)
        runs = (fmt_range(host_counts(plain, 'module_runs')), fmt_range(host_counts(fast, 'module_runs')))
        out.append('| %s | %s | %s | %s | %s / %s |' % ((LABELS[key], fmt_spread(plain), fmt_spread(fast), fmt_ratio(ratio(fast, plain))) + runs))
    out.append('')
    if section.get('failures'):
        out.append('Failures with mitogen %s:' % version)
        out.append('')
        for failure in section['failures']:
            out.append('- %s' % failure.replace('\n', ' ')[:600])
        out.append('')
    return out


def targets(results):
    """DESIGN.md "Speed" targets against what this run measured, each beside the same ratio of the
    Ansible floor (a playbook of ping tasks, one per module run of the budget, same rounds)."""
    rows = []
    points = dict(scale_sections(results))
    five = points.get(5)
    if five:
        samples = five['samples']
        rows.append(('deploy ≤ 1.3x Capistrano (5 hosts)', ratio(samples['capstan_deploy'], samples['cap_deploy']), 1.3,
                     ratio(samples.get('floor_deploy'), samples['cap_deploy'])))
        rows.append(('rollback ≤ 1.5x Capistrano (5 hosts)', ratio(samples['capstan_rollback'], samples['cap_rollback']), 1.5,
                     ratio(samples.get('floor_rollback'), samples['cap_rollback'])))
        rows.append(('redeploy of what is live ≤ 1.3x ping (5 hosts)', ratio(samples['capstan_redeploy'], samples['ping']), 1.3,
                     None))
    latency = latency_section(results)
    if latency:
        samples = latency['samples']
        rows.append(('deploy ≤ 0.7x Capistrano at %d ms' % latency['latency_ms'],
                     ratio(samples['capstan_deploy'], samples['cap_deploy']), 0.7,
                     ratio(samples.get('floor_deploy'), samples['cap_deploy'])))
        rows.append(('rollback ≤ 0.7x Capistrano at %d ms' % latency['latency_ms'],
                     ratio(samples['capstan_rollback'], samples['cap_rollback']), 0.7,
                     ratio(samples.get('floor_rollback'), samples['cap_rollback'])))
    twenty = points.get(20)
    if twenty:
        samples = twenty['samples']
        rows.append(('deploy ≤ 4x ping (20 hosts)', ratio(samples['capstan_deploy'], samples['ping']), 4.0,
                     ratio(samples.get('floor_deploy'), samples['ping'])))
        rows.append(('rollback ≤ 3x ping (20 hosts)', ratio(samples['capstan_rollback'], samples['ping']), 3.0,
                     ratio(samples.get('floor_rollback'), samples['ping'])))
    if not rows:
        return []
    out = ['### DESIGN.md targets', '',
           'Beside each: the same ratio for the Ansible floor, a playbook of %d ping tasks for a deploy and %d for a '
           'rollback (the redeploy has one module run, as ping). A target the floor misses cannot be met by any playbook '
           'with the budget\'s module runs on this bed; "What stands in the way" above says why and what was tried.'
           % (FLOOR_TASKS['deploy'], FLOOR_TASKS['rollback']), '',
           '| target | measured | met | the floor\'s ratio | the floor meets it |', '|---|---:|---|---:|---|']
    for label, value, limit, floor in rows:
        out.append('| %s | %s | %s | %s | %s |' % (
            label, fmt_ratio(value), 'n/a' if value is None else ('yes' if value <= limit else 'no'),
            '' if floor is None else fmt_ratio(floor), '' if floor is None else ('yes' if floor <= limit else 'no')))
    out.append('')
    return out


# --- docs/benchmarks.md --------------------------------------------------------------------------


def insert_section(text, key, section):
    """Put ``section`` between the bench markers: in place of the one with the same key, else first."""
    if BEGIN not in text or END not in text:
        text = text.rstrip('\n') + '\n\n' + BEGIN + '\n' + END + '\n'
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    chunks = []
    marks = list(SECTION_RE.finditer(body))
    for index, mark in enumerate(marks):
        stop = marks[index + 1].start() if index + 1 < len(marks) else len(body)
        chunks.append((mark.group('key'), body[mark.start():stop].strip('\n')))
    kept = [chunk for chunk_key, chunk in chunks if chunk_key != key]
    return head + BEGIN + '\n' + '\n\n'.join([section.strip('\n')] + kept) + '\n' + END + tail


def write(results, docs):
    """Render the chart and the section into ``docs``; returns the paths written."""
    written = []
    image_dir = os.path.join(os.path.dirname(docs), 'benchmarks')
    image = None
    try:
        image = chart(results, os.path.join(image_dir, chart_name(results)))
    except ImportError as error:
        results.setdefault('errors', []).append({'section': 'chart', 'error': 'matplotlib missing (make bench installs it): %s' % error})
    if image:
        written.append(image)
    link = os.path.relpath(image, os.path.dirname(docs)) if image else None
    section = render(results, link)
    with open(docs) as handle:
        text = handle.read()
    with open(docs + '.tmp', 'w') as handle:
        handle.write(insert_section(text, section_key(results), section))
    os.replace(docs + '.tmp', docs)
    written.append(docs)
    return written


def summary_text(results):
    """A few lines for the terminal."""
    lines = []
    for hosts, section in scale_sections(results):
        samples = section['samples']
        lines.append('%2d hosts: ping %s | deploy %s vs cap %s (%s) | rollback %s vs cap %s (%s) | redeploy %s (%s of ping)' % (
            hosts, fmt_spread(samples['ping']), fmt_spread(samples['capstan_deploy']), fmt_spread(samples['cap_deploy']),
            fmt_ratio(ratio(samples['capstan_deploy'], samples['cap_deploy'])), fmt_spread(samples['capstan_rollback']),
            fmt_spread(samples['cap_rollback']), fmt_ratio(ratio(samples['capstan_rollback'], samples['cap_rollback'])),
            fmt_spread(samples['capstan_redeploy']), fmt_ratio(ratio(samples['capstan_redeploy'], samples['ping']))))
    for error in results.get('errors', []):
        lines.append('error in %s: %s' % (error['section'], error['error'][:300]))
    return '\n'.join(lines).replace('**', '')


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('results', nargs='?', default=os.path.join(here, 'results', 'latest.json'))
    parser.add_argument('--docs', default=os.path.join(os.path.dirname(here), 'docs', 'benchmarks.md'))
    args = parser.parse_args()
    with open(args.results) as handle:
        results = json.load(handle)
    for path in write(results, args.docs):
        print(path)
    print(summary_text(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
