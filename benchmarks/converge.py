"""What convergence costs: hooks and hook tool calls for N units to get certificates.

Run by ``tox -e bench``. Part 1 deploys N units of the example charm from
nothing and settles, with the subprocess executor (a process per hook, so the
wall time is real) and with the in-process executor (fast, so N goes higher;
the counts must be the same as with processes, and are checked to be). Part 2
measures a re-key, a CA rotation and a leader move on 3 units.

Per run: hooks (total and by kind), hook tool calls by tool, the most calls
made by ONE follower hook (a follower's work must not grow with N), the
certificates the leader had the charm sign (new certificates it published for
other units, plus the ones it delivered to itself; a new leader re-publishing
what it inherited signs nothing), relation writes that only repeated what the
bag held (must be 0), and the floor Juju's fan-out puts under the hook count:

* joining: every unit runs -joined and -changed for every other unit, N(N-1)
  of each. Each CSR and leader write reaches the N-1 peers that joined the
  writer, but Juju coalesces it into a -changed still queued there, so a
  deployment could in the best order need no -changed beyond the joins'.
* a re-key: N new CSRs (the leader's with its answers), each reaching N-1 peers.
* a CA rotation or a leader move: one leader write reaching N-1 peers, and
  leader-settings-changed on the N-1 others (the example keeps its CA in
  leader settings; the layer names the leader there).

Writes docs/cost.md and docs/cost.png (or ``--out``; ``--quick`` writes
nothing unless ``--out`` is given).
"""
import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

from e2e.build import build_charm  # noqa: E402
from jujusim import Model  # noqa: E402

SUBPROCESS_N = (2, 5, 10, 20)
INPROCESS_N = (2, 5, 10, 20, 50)
QUICK_N = (2, 3, 5)
RELATION = 'tls'
CERT_SUFFIX = '_signed_certificate'
KINDS = ('install', 'relation-created', 'leader-elected', 'leader-settings-changed',
         'config-changed', 'start', 'relation-joined', 'relation-changed', 'relation-departed')


def deploy_floor(n):
    """Hooks Juju runs for any charm when n peers deploy (see the module docstring)."""
    return {'install': n, 'relation-created': n, 'leader-elected': 1,
            'leader-settings-changed': n - 1, 'config-changed': n, 'start': n,
            'relation-joined': n * (n - 1), 'relation-changed': n * (n - 1)}


OPERATIONS = {  # name: (what it does to a settled model, its floor, certificates it needs)
    're-key': (lambda m: m.set_config(**{'key-generation': 1}),
               lambda n: {'config-changed': n, 'relation-changed': n * (n - 1)}, lambda n: n),
    'CA rotation': (lambda m: m.set_config(**{'ca-generation': 1}),
                    lambda n: {'config-changed': n, 'leader-settings-changed': n - 1,
                               'relation-changed': n - 1}, lambda n: n),
    'leader move': (lambda m: m.move_leader(m.units[1]),
                    lambda n: {'leader-elected': 1, 'leader-settings-changed': n - 1,
                               'relation-changed': n - 1}, lambda n: 0),
}


class Run:
    """The metrics of one settle; see the module docstring."""

    def __init__(self, label, n, floor, needed_certs, model, before, records, seconds):
        leader = model.leader  # the same during the whole settle in every run here
        self.label, self.n, self.floor, self.needed_certs = label, n, floor, needed_certs
        self.seconds = seconds
        self.hooks = len(records)
        self.kinds = collections.Counter(_kind(r.hook) for r in records)
        self.tools = collections.Counter()
        for r in records:
            self.tools.update(r.calls)
        self.follower_max = max((sum(r.calls.values()) for r in records if r.unit != leader),
                                default=0)
        bags, known = before
        published = {value for r in records if r.unit == leader  # for the other units
                     for key, value in r.relation_written.items()
                     if key.endswith(CERT_SUFFIX) and value and key != leader + CERT_SUFFIX}
        published -= known
        delivered_to_itself = f'interface-tls: certificate for {leader} delivered'
        self.certs = len(published) + sum(message == delivered_to_itself for r in records
                                          if r.unit == leader for _, message in r.logs)
        self.redundant = 0
        for r in records:  # replay the commits, comparing each write with the bag it changed
            bag = bags[r.unit]
            self.redundant += sum(bag.get(key) == value for key, value in r.relation_written.items())
            for key, value in r.relation_written.items():
                if value is None:
                    bag.pop(key, None)
                else:
                    bag[key] = value
        self.signature = [(r.unit, r.hook, r.remote, sorted(r.calls.items()),
                           sorted(r.relation_written)) for r in records]

    @property
    def changed(self):
        return self.kinds['relation-changed']


def _kind(hook):
    return hook[len(RELATION) + 1:] if hook.startswith(RELATION + '-relation-') else hook


def settle(label, n, floor, needed_certs, model):
    """Settle ``model`` and measure it. Taken before: the bags, to replay the
    writes, and every certificate a unit holds, which a new leader re-publishes
    (inherits) rather than issues."""
    bags = {unit: model.bag(unit) for unit in model.units}
    known = {value for unit in model.units
             for value in [model.kv(unit).get('tls.server.certificate')] + [
                 v for k, v in bags[unit].items() if k.endswith(CERT_SUFFIX)]}
    started = time.perf_counter()
    records = model.settle(max_hooks=100000)
    return Run(label, n, floor, needed_certs, model, (bags, known), records,
               time.perf_counter() - started)


def deploy(charm, executor, n, workdir):
    with Model(str(charm), RELATION, executor=executor, workdir=workdir) as model:
        model.set_config(**{'tls-dir': str(Path(model.workdir) / 'tls')})
        for _ in range(n):
            model.add_unit()
        return settle('deploy', n, deploy_floor(n), n, model)


def operations(charm, executor, workdir, n=3):
    runs = []
    with Model(str(charm), RELATION, executor=executor, workdir=workdir) as model:
        model.set_config(**{'tls-dir': str(Path(model.workdir) / 'tls')})
        for _ in range(n):
            model.add_unit()
        model.settle()
        for label, (change, floor, needed) in OPERATIONS.items():
            change(model)
            runs.append(settle(label, n, floor(n), needed(n), model))
    return runs


def check_same(subprocess_runs, inprocess_runs):
    """Assert both executors ran the same hooks with the same tool calls; say so."""
    for sub, inp in zip(subprocess_runs, inprocess_runs):
        if sub.signature != inp.signature:
            first = next(i for i, (a, b) in enumerate(zip(sub.signature, inp.signature)) if a != b)
            sys.exit(f'{sub.label} N={sub.n}: the executors differ at hook {first + 1}: '
                     f'{sub.signature[first]} vs {inp.signature[first]}')
    print('Counts are identical with both executors (same hooks in the same order, same hook '
          'tool calls, same keys written) for: '
          + ', '.join(f'{r.label} N={r.n}' for r in subprocess_runs) + '.\n')


# --- reporting ------------------------------------------------------------

def table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---:|' * len(header)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def main_table(runs, wall):
    """One row per run: hooks, fan-out floor, tool calls, certificates, waste, time."""
    rows = []
    for r in runs:
        floor = sum(r.floor.values())
        seconds = wall.get((r.label, r.n))
        rows.append([
            r.label, r.n, r.hooks, floor, f'{r.hooks / floor:.2f}',
            r.changed, r.floor['relation-changed'],
            f'{r.changed / r.floor["relation-changed"]:.2f}',
            sum(r.tools.values()), r.follower_max, f'{r.certs} / {r.needed_certs}', r.redundant,
            f'{seconds:.1f}' if seconds is not None else '-', f'{r.seconds:.2f}'])
    return table(['run', 'N', 'hooks', 'floor', 'ratio', '-changed', 'floor', 'ratio',
                  'tool calls', 'max calls, 1 follower hook', 'certs issued / needed',
                  'redundant writes', 'wall s, processes', 'wall s, in-process'], rows)


def kinds_table(runs):
    kinds = [k for k in KINDS if any(r.kinds[k] for r in runs)]
    kinds += sorted({k for r in runs for k in r.kinds} - set(kinds))
    return table(['run', 'N'] + kinds, [
        [r.label, r.n] + [f'{r.kinds[k]} ({r.floor[k]})' if k in r.floor else r.kinds[k]
                          for k in kinds] for r in runs])


def tools_table(runs):
    tools = sorted({tool for r in runs for tool in r.tools}, key=lambda t: -runs[-1].tools[t])
    return table(['run', 'N', 'total'] + tools, [
        [r.label, r.n, sum(r.tools.values())] + [r.tools[t] for t in tools] for r in runs])


def growth(runs):
    """One sentence on how the deploy cost grows with N."""
    big = runs[-1]
    a = big.hooks / big.n ** 2
    calls = big.tools and sum(big.tools.values()) / big.n ** 2
    return (f'Deploying N units costs hooks ≈ {a:.2f}·N² (floor 2·N² + 3·N) and hook tool '
            f'calls ≈ {calls:.1f}·N² (at N={big.n}), while one follower hook never makes more '
            f'than k = {max(r.follower_max for r in runs)} calls, whatever N; no write repeats '
            'what a bag holds.')


def plot(runs, path):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot, ticker

    ns = [r.n for r in runs]
    figure, (hooks, calls) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    hooks.plot(ns, [r.hooks for r in runs], 'o-', label='hooks, observed')
    hooks.plot(ns, [sum(r.floor.values()) for r in runs], 's--', label='hooks, fan-out floor')
    hooks.plot(ns, [r.changed for r in runs], 'o-', label='-relation-changed, observed')
    hooks.plot(ns, [r.floor['relation-changed'] for r in runs], 's--',
               label='-relation-changed, floor N(N-1)')
    hooks.set_title('Hooks to deploy N units and settle')
    calls.plot(ns, [sum(r.tools.values()) for r in runs], 'o-', label='hook tool calls, all hooks')
    calls.plot(ns, [r.follower_max for r in runs], 'o-', label='most calls in one follower hook')
    calls.set_title('Hook tool calls')
    for axes in (hooks, calls):
        axes.set_xscale('log')
        axes.set_yscale('log')
        axes.xaxis.set_major_locator(ticker.FixedLocator(ns))
        axes.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axes.xaxis.set_minor_locator(ticker.NullLocator())
        axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f'{value:g}'))
        axes.yaxis.set_minor_formatter(ticker.NullFormatter())
        axes.set_xlabel('units (N)')
        axes.grid(True, which='both', alpha=0.3)
        axes.legend(fontsize=9)
    hooks.set_ylabel('hooks run')
    calls.set_ylabel('calls')
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help=f'N in {QUICK_N} only')
    parser.add_argument('--max-n', type=int, help='largest N to run')
    parser.add_argument('--out', type=Path, help='where to write cost.md and cost.png '
                        '(default: docs/, or nowhere with --quick)')
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else REPO / 'docs')
    limit = args.max_n or float('inf')
    sub_ns = [n for n in (QUICK_N[:2] if args.quick else SUBPROCESS_N) if n <= limit]
    inp_ns = [n for n in (QUICK_N if args.quick else INPROCESS_N) if n <= limit]
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix='tls-bench-') as tmp:
        charm = build_charm(tmp)
        sub, inp = [], []
        for n in sub_ns:
            print(f'deploy N={n}, subprocess executor ...', flush=True)
            sub.append(deploy(charm, 'subprocess', n, tmp))
        for n in inp_ns:
            print(f'deploy N={n}, in-process executor ...', flush=True)
            inp.append(deploy(charm, 'inprocess', n, tmp))
        print('re-key, CA rotation, leader move on 3 units, both executors ...\n', flush=True)
        sub_ops = operations(charm, 'subprocess', tmp)
        inp_ops = operations(charm, 'inprocess', tmp)
    check_same(sub + sub_ops, inp[:len(sub)] + inp_ops)

    wall = {(r.label, r.n): r.seconds for r in sub + sub_ops}
    sentence = growth(inp)
    report = '\n\n'.join([
        '# What convergence costs',
        'Generated by `tox -e bench` (benchmarks/converge.py); its docstring explains every '
        'column. Counts come from the in-process executor and are identical with the '
        'subprocess executor, which gives the real wall time (one process per hook).',
        '## Part 1: deploy N units from nothing and settle',
        main_table(inp, wall),
        'Hooks by kind, observed (fan-out floor):',
        kinds_table(inp),
        'Hook tool calls by tool:',
        tools_table(inp),
        '## Part 2: operations on 3 settled units',
        main_table(inp_ops, wall),
        kinds_table(inp_ops),
        tools_table(inp_ops),
        sentence,
    ]) + '\n'
    print(report)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / 'cost.md').write_text(report)
        plot(inp, out / 'cost.png')
        print(f'wrote {out / "cost.md"} and {out / "cost.png"}')
    print(f'benchmark wall time {time.perf_counter() - started:.0f} s')


if __name__ == '__main__':
    main()
