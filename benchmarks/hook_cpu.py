"""What one hook costs the layer itself at N units: PEM parses and CPU.

Run by ``tox -e bench`` after converge.py (or alone: ``python
benchmarks/hook_cpu.py --n 50``). It deploys N units of the example charm
on jujusim's in-process executor, then takes them through a re-key of every
unit, a routine CA rotation and a renewal round, running every hook under
``cProfile``, and reports per hook, the leader's and the followers' apart:

* PEM parses: calls of pem.py's ``_pem_ders``, the one function that reads
  PEM text, against the distinct PEM blocks the hook decoded. The layer
  reads each bag once at hook start and memoizes every parse for the hook,
  so the two are equal: no PEM is parsed twice in a hook (it exits 1 if one
  is);
* the layer's CPU: the time spent in peers.py and pem.py and in what they
  call (unitdata, charms.reactive's flags, the standard library), but not
  in the hook tools they call, which Juju runs as processes of their own
  and Part 3 of converge.py charges as round trips. Measured under
  cProfile, which slows Python code by about a half: an upper bound.

With ``--write`` it puts its table into docs/cost.md, between the
``<!-- hook_cpu.py -->`` and ``<!-- /hook_cpu.py -->`` lines of the part of
that file written by hand (converge.py rewrites the rest).
"""
import argparse
import base64
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / 'tests'), str(REPO)]

from support.build import build_charm  # noqa: E402
from support.jujusim import Model  # noqa: E402

LAYER_DIR = os.path.join('hooks', 'relations', 'tls') + os.sep
PARSE = '_pem_ders'
COST = REPO / 'docs' / 'cost.md'
BEGIN, END = '<!-- hook_cpu.py -->', '<!-- /hook_cpu.py -->'
STEPS = {  # what each step does to a settled model
    're-key': lambda m: m.set_config(**{'key-generation': 1}),
    'CA rotation': lambda m: m.set_config(**{'ca-generation': 1}),
    'renewal': lambda m: (m.advance_clock(days=61), [m.queue(u, 'update-status') for u in m.units]),
}


@contextlib.contextmanager
def decoded_blocks():
    """Yield a list that gets the base64 body of every PEM block pem.py
    decodes while the context is open."""
    bodies, real = [], base64.b64decode

    def counting(data, *args, **kwargs):
        if sys._getframe(1).f_code.co_filename.endswith(os.sep + 'pem.py'):
            bodies.append(data)
        return real(data, *args, **kwargs)
    base64.b64decode = counting
    try:
        yield bodies
    finally:
        base64.b64decode = real


def layer_seconds(stats):
    """Seconds spent in the layer's functions and in what they call, but
    not in charmhelpers' hookenv (hook tools, and the per-hook cache that
    calls back into the layer)."""
    def in_layer(func):
        return LAYER_DIR in func[0]
    total = 0.0
    for func, (_, _, own, _, callers) in stats.stats.items():
        if in_layer(func):
            total += own
        elif not func[0].endswith(os.sep + 'hookenv.py'):
            total += sum(cumulative for caller, (_, _, _, cumulative) in callers.items() if in_layer(caller))
    return total


def profiled(model, unit):
    """Run ``unit``'s next hook under cProfile: (record, parses, distinct
    blocks, layer seconds)."""
    profile = cProfile.Profile(time.process_time)  # CPU, not wall time: other processes do not count
    with decoded_blocks() as bodies:
        profile.enable()
        record = model.run(unit, 0)
        profile.disable()
    stats = pstats.Stats(profile)
    parses = sum(calls for func, (_, calls, _, _, _) in stats.stats.items()
                 if func[2] == PARSE and LAYER_DIR in func[0])
    return record, parses, len(set(bodies)), len(bodies), layer_seconds(stats)


def settle(model, rows, label):
    """Run every queued hook, units in turn, measuring each."""
    while model.pending():
        for unit in sorted({unit for unit, _, _ in model.pending()}, key=lambda u: int(u.split('/')[1])):
            record, parses, distinct, decoded, seconds = profiled(model, unit)
            if record is None:
                continue
            if not record.ok:
                raise SystemExit(f'{unit} {record.hook} failed:\n{record.error}')
            rows.append((label, unit == model.leader, record.hook, parses, distinct, decoded, seconds))


def summary(rows, n):
    lines = [f'Per hook at N = {n}, under cProfile (module docstring of benchmarks/hook_cpu.py).', '',
             '| Run | Unit | Hooks | PEM parses, most in a hook | Distinct PEM blocks decoded, most '
             '| Blocks decoded twice | Layer CPU, median ms | Layer CPU, most ms |',
             '|---|---|---|---|---|---|---|---|']
    for label in ['deploy', *STEPS]:
        for leader in (True, False):
            mine = [r for r in rows if r[0] == label and r[1] == leader]
            if not mine:
                continue
            ms = [r[6] * 1000 for r in mine]
            lines.append(f"| {label} | {'leader' if leader else 'followers'} | {len(mine)} "
                         f'| {max(r[3] for r in mine)} | {max(r[4] for r in mine)} '
                         f'| {sum(r[5] - r[4] for r in mine)} '
                         f'| {statistics.median(ms):.1f} | {max(ms):.1f} |')
    return '\n'.join(lines)


def write(table):
    text = COST.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f'{COST} has no single {BEGIN} ... {END} pair')
    head, rest = text.split(BEGIN)
    COST.write_text(head + BEGIN + '\n' + table + '\n' + END + rest.split(END, 1)[1])


def measure(charm, n, workdir):
    """Deploy ``n`` units of ``charm`` and take them through STEPS; the
    rows of every hook, as settle() makes them."""
    rows = []
    with Model(str(charm), 'tls', executor='inprocess', workdir=workdir) as model:
        model.set_config(**{'tls-dir': str(Path(model.workdir) / 'tls')})
        for _ in range(n):
            model.add_unit()
        settle(model, rows, 'deploy')
        for label, step in STEPS.items():
            step(model)
            settle(model, rows, label)
    return rows


def parsed_twice(rows):
    """PEM blocks decoded again in a hook that decoded them already."""
    return sum(r[5] - r[4] for r in rows) + sum(max(r[3] - r[4], 0) for r in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n', type=int, default=50, help='units (default 50)')
    parser.add_argument('--write', action='store_true', help='write the table into docs/cost.md')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(build_charm(tmp), args.n, tmp)
    table = summary(rows, args.n)
    print(table)
    if parsed_twice(rows):
        raise SystemExit(f'a hook parsed a PEM more than once ({parsed_twice(rows)} times)')
    if args.write:
        write(table)


if __name__ == '__main__':
    main()
