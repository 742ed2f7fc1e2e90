"""What convergence costs: hooks and hook tool calls for N units to get certificates.

Run by ``tox -e bench``. It measures wire format 2 (README, "Wire format")
under both answers to a question Juju has not settled, whether the leader
gets ``-relation-changed`` for its own application-bag writes (jujusim's
``self_notify``): "leader not told", the default, and "self-notified".

Part 1 deploys N units of the example charm from nothing and settles. Part 2
takes N = 3, 5 and 10 settled units through a re-key of every unit, a routine
CA rotation, a leader move between live units and a renewal round (the hooks'
clock moved past two thirds of the certificates' lifetime with
``Model.advance_clock``, which both executors honour, then update-status on
every unit, as Juju runs it every few minutes). Counts come from the
in-process executor; the subprocess executor (a process per hook) runs the
smaller cases to give real wall times, and its counts are checked to be the
same. Part 3 replays the deployments of Part 1 as a Juju model runs them,
every unit on its own machine (below).

Per run:

* hooks, total and by kind, with ``-changed`` split into the hooks about a
  unit's bag and app-changed, the hooks about the application bag (in which
  ``$JUJU_REMOTE_UNIT`` is empty);
* the floor Juju's fan-out puts under that count with this wire format:

  - deploying: every unit runs -joined and -changed for every other unit,
    N(N-1) of each, and a unit's CSR reaches the N-1 peers that joined it,
    where it can coalesce with a -changed still queued; the leader's answers
    reach the N-1 other units as app-changed (and the leader itself when
    self-notified) at least once; each unit but the first runs
    leader-settings-changed as it is added. So 2N² + 4N - 1 hooks, one more
    self-notified;
  - a re-key: N config-changed, N new CSRs reaching N-1 peers each, and the
    answers reaching N-1 units (N self-notified) as app-changed;
  - a CA rotation: N config-changed, N-1 leader-settings-changed (the
    example keeps its CA in leader settings); the leader's two app-bag
    writes (``ca_next``, then the new CA with every answer) reach the N-1
    other units at least once (the second coalesces with the first where
    that is still queued), and the leader itself twice when self-notified;
    every unit's ``ca_ack`` reaches its N-1 peers: N² + 2N - 2 hooks, two
    more self-notified;
  - a renewal round: N update-status, and the answers reaching N-1 units (N
    self-notified) as app-changed: 2N - 1 hooks;
  - a leader move: leader-elected. jujusim also queues leader-deposed on the
    old leader, which the built charm has no hook for (so it is skipped), and
    leader-settings-changed only when leader settings change;

* the hooks the same run cost with wire format 1 (``docs/cost.md`` of commit
  39bf793, which had no application bag, so no self-notification either);
* hook tool calls by tool and by whose they are: the layer's (``peers.py`` is
  on the stack when the call is made), the consumer's (the example's
  handlers) and the framework's (charms.reactive and charmhelpers around
  them). charmhelpers caches reads for the hook, so a read counts for whoever
  made it first: what is counted is what each adds;
* the most calls in one follower hook and in one leader hook, and of the
  layer's own calls in one hook: reads (every tool but relation-set,
  leader-set and juju-log) and writes (relation-set, with charmhelpers'
  one-time ``relation-set --help`` probe before the first). Log lines are
  left out: the layer's include charms.reactive's tracer lines for the
  flags it sets;
* certificates issued (distinct new certificates in the application bag)
  against those needed, and writes that only repeated what a bag held.

The wall times above run every hook one after another. In a Juju model each
unit's agent runs that unit's hooks, one at a time, while the other units
run theirs, so how long a deployment takes is set by its longest chain of
hooks. Part 3 replays the deployments of :data:`CONVERGENCE_N` units (the
in-process runs of Part 1, leader not told) that way, as discrete events:
every unit runs its own hooks in their recorded order, and a hook starts
once its unit is free and every hook that caused it (``HookRecord.causes``:
the hooks whose writes queued it) has ended. A hook costs its measured
in-process time plus its hook tool calls times :data:`CALL_LATENCY`, 20 ms.
That figure is an assumption, not a measurement: a hook tool is a process
(``jujuc``, which starts in about a millisecond, juju#11311) asking the unit
agent over a local socket, and the agent answers some calls (a peer's
settings the hook has not read yet, ``status-set``, ``goal-state``) with an
API call to the controller, a network round trip and a database read; 20 ms
stands for a controller on a nearby network, not loaded. The replay is run
at 5 ms (a controller on the same host) and 50 ms (a remote or busy one)
too, to show how much the answer depends on it. What is not counted: the
start of each hook's Python process and the agent's own work between hooks,
the same for every hook, so a longer chain costs more of it. Only what
queued a hook is waited for, not every write it read in the recording: a
hook can start before a peer's earlier write that it saw has ended, where
Juju would have it see that write one hook later, in the -changed the write
queued on the same unit. (In a deployment every CSR is written in
``-relation-created``, which the leader's ``-joined`` for that unit waits
for.) And the hooks are the recording's: where jujusim coalesced writes into
one queued hook because the unit was busy with others, a unit that is idle
sooner on its own machine may run that hook more than once. Per N:

* the serial time (every hook's cost, one after another) and the concurrent
  time (when the last hook ends);
* the critical path: the chain of hooks that ends last, followed back from
  that hook through whatever it waited for (its unit's previous hook, or the
  cause that ended last; the previous hook on a tie), to a hook that waited
  for nothing. It is how many hooks, through how many units, and how many of
  them and what share of its time are the leader's;
* each unit's busy time (its hooks' costs added up), the leader's and the
  busiest follower's: a unit busy for the whole concurrent time is the
  bottleneck;
* the concurrent time again with the leader's hooks not charged for the
  layer's reads beyond a follower's :data:`FOLLOWER_READS` (the N peer bags
  the leader reads in every hook): what those reads cost the deployment.

It checks its claims and exits 1 naming the first that fails (:data:`CLAIMS`
says them in words). It writes docs/cost.md and docs/cost.png, and the tables
of the README's "What it costs" between their markers (``<!-- bench:NAME -->``
and ``<!-- /bench:NAME -->``), the same tables cost.md holds between the same
markers (``tests/test_readme_numbers.py`` checks that they agree). With
``--out`` it writes cost.md and cost.png there and leaves the README alone;
``--quick`` writes nothing unless ``--out`` is given.
"""
import argparse
import collections
import contextlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / 'tests'), str(REPO)]

import support.jujusim.tools  # noqa: E402
from support.build import build_charm  # noqa: E402
from support.jujusim import Model  # noqa: E402

from peers import CA_ACK_KEY, CERT_KEY, CSR_KEY  # noqa: E402

SELF_NOTIFY = (False, True)
NOTIFY_NAMES = {False: 'leader not told', True: 'self-notified'}
INPROCESS_N = (2, 3, 5, 10, 20, 50)
SUBPROCESS_N = (2, 5)  # processes are slow: N=10 alone takes about 100 s
QUICK_N = (2, 3, 5)
OPERATIONS_N = (3, 5, 10)
SUBPROCESS_OPERATIONS_N = (3,)
RENEWAL_DAYS = 61  # past two thirds of the example's 90-day certificates
#: Seconds a hook tool call costs in the concurrent replay (module docstring
#: says why), and the other latencies the replay is run at.
CALL_LATENCY = 0.020
OTHER_LATENCIES = (0.005, 0.050)
#: The deployments replayed with every unit on its own machine.
CONVERGENCE_N = (3, 5, 10, 20, 50)
README = REPO / 'README.md'
RELATION = 'tls'
CERT_SUFFIX = CERT_KEY.format('')
LAYER_FILE = os.path.join('hooks', 'relations', 'tls', 'peers.py')
KINDS = ('install', 'relation-created', 'leader-elected', 'leader-settings-changed',
         'config-changed', 'start', 'update-status', 'relation-joined', 'relation-changed',
         'app-changed', 'relation-departed')
WRITES = ('relation-set', 'leader-set')
OWN_KEYS = {CSR_KEY, CA_ACK_KEY}  # what a unit writes in its own bag
WRITE_KINDS = ('write', 'app-write', 'probe')
#: Hooks with wire format 1, from docs/cost.md of commit 39bf793.
WIRE_FORMAT_1 = {('deploy', 2): 14, ('deploy', 5): 69, ('deploy', 10): 239,
                 ('deploy', 20): 879, ('deploy', 50): 5199,
                 ('re-key', 3): 9, ('CA rotation', 3): 7, ('leader move', 3): 7}
#: The layer's reads in one follower hook, at most, whatever N.
FOLLOWER_READS = 4
#: The layer's reads in one leader hook are at most this plus N.
LEADER_READS = 4
CLAIMS = (
    'every hook succeeds and nothing is logged at WARNING or above',
    'the leader issues each needed certificate once, and no write repeats what a bag holds',
    'no run costs fewer hooks than its floor (else the floor is wrong)',
    'with the leader not told, every run costs exactly its floor, kind by kind',
    'with the leader not told, no run costs more hooks than with wire format 1, unless '
    "wire format 2's floor is higher",
    'a leader move writes nothing and runs only leadership hooks',
    "self-notification adds only the leader's own app-changed hooks: every other kind of "
    'hook counts the same',
    f'the layer makes at most {FOLLOWER_READS} reads in a follower hook and writes there only '
    'when the hook changes its CSR or acknowledges a CA (one relation-set, charmhelpers probing relation-set '
    "first), and a follower hook's calls, everyone's, do not grow with N",
    f'the layer makes at most {LEADER_READS} + N reads in a leader hook and writes there at '
    'most one relation-set of the application bag, and of its own bag only when the hook '
    'changes its CSR or acknowledges a CA (after the probe)',
    'with the leader not told, deploying costs 2N² + 4N − 1 hooks, a routine CA rotation '
    'N² + 2N − 2 and a renewal round 2N − 1; self-notified, one more each, two more for a '
    'CA rotation',
    'every hook that caused a hook ran before it, so the replay of Part 3 runs every hook',
    'with every unit on its own machine (Part 3), a deployment takes as long as its '
    "leader's hooks added up: its critical path is the leader's hooks, all of them",
    'both executors run the same hooks with the same calls and writes',
)
#: Hooks a run costs by the formulas of CLAIMS: with the leader not told, as
#: a function of N, and how many more self-notified.
HOOK_FORMULAS = {'deploy': (lambda n: 2 * n * n + 4 * n - 1, 1),
                 'CA rotation': (lambda n: n * n + 2 * n - 2, 2),
                 'renewal': (lambda n: 2 * n - 1, 1)}


class ClaimFailed(Exception):
    """A claim of :data:`CLAIMS` does not hold."""


def deploy_floor(n, notified):
    """Hooks Juju runs for n peers deploying (see the module docstring)."""
    return {'install': n, 'relation-created': n, 'leader-elected': 1,
            'leader-settings-changed': n - 1, 'config-changed': n, 'start': n,
            'relation-joined': n * (n - 1), 'relation-changed': n * (n - 1),
            'app-changed': n - 1 + notified}


def renew(model):
    """Let RENEWAL_DAYS pass for the hooks (the clock the layer and the example
    read, in both executors) and queue update-status on every unit, as Juju
    does every few minutes: the leader renews every certificate then."""
    model.advance_clock(days=RENEWAL_DAYS)
    for unit in model.units:
        model.queue(unit, 'update-status')


OPERATIONS = {  # name: (what it does to a settled model, its floor, certificates it needs)
    're-key': (lambda m: m.set_config(**{'key-generation': 1}),
               lambda n, notified: {'config-changed': n, 'relation-changed': n * (n - 1),
                                    'app-changed': n - 1 + notified},
               lambda n: n),
    'CA rotation': (lambda m: m.set_config(**{'ca-generation': 1}),
                    lambda n, notified: {'config-changed': n, 'leader-settings-changed': n - 1,
                                         'relation-changed': n * (n - 1),
                                         'app-changed': n - 1 + 2 * notified},
                    lambda n: n),
    'leader move': (lambda m: m.move_leader(m.units[1]),
                    lambda n, notified: {'leader-elected': 1},
                    lambda n: 0),
    'renewal': (renew,
                lambda n, notified: {'update-status': n, 'app-changed': n - 1 + notified},
                lambda n: n),
}


@contextlib.contextmanager
def attributed_calls(root):
    """Yield a list that gets, for every hook tool call of an in-process hook
    of a charm under ``root``, whose call it is (layer, consumer, framework).

    The in-process executor answers every call through
    ``support.jujusim.tools.HookTools.call`` on the hook's own stack, so the stack
    says who made it; a hook process cannot tell.
    """
    origins = []
    call = support.jujusim.tools.HookTools.call

    def attributing(tools, argv):
        origins.append(_origin(sys._getframe(1), str(root)))
        return call(tools, argv)

    support.jujusim.tools.HookTools.call = attributing
    try:
        yield origins
    finally:
        support.jujusim.tools.HookTools.call = call


def _origin(frame, root):
    """'layer' if peers.py is on the stack, else 'consumer' if a module of the
    charm's reactive/ is, else 'framework'."""
    origin = 'framework'
    while frame is not None:
        name = frame.f_code.co_filename
        if name.endswith(LAYER_FILE):
            return 'layer'
        if name.startswith(root) and f'{os.sep}reactive{os.sep}' in name:
            origin = 'consumer'
        frame = frame.f_back
    return origin


def _call_kind(argv):
    """read, write (a unit bag or leader settings), app-write, probe or log."""
    if argv[:2] == ['relation-set', '--help']:
        return 'probe'
    if argv[0] in WRITES:
        return 'app-write' if '--app' in argv else 'write'
    return 'log' if argv[0] == 'juju-log' else 'read'


class Run:
    """The metrics of one settle; see the module docstring."""

    def __init__(self, label, n, notified, floor, needed_certs, model, before, records,
                 origins, seconds):
        self.label, self.n, self.notified = label, n, notified
        self.floor, self.needed_certs, self.seconds = floor, needed_certs, seconds
        self.records, self.leader = records, model.leader  # the same all along in every run
        self.hooks = len(records)
        self.kinds = collections.Counter(_kind(r) for r in records)
        self.own_app_changed = sum(r.app_change and r.unit == self.leader for r in records)
        self.tools = collections.Counter()
        for r in records:
            self.tools.update(r.calls)
        self.most_calls = {role: max((sum(r.calls.values()) for r in records
                                      if (r.unit == self.leader) == (role == 'leader')), default=0)
                           for role in ('follower', 'leader')}
        self.origins = self.layer = None
        if origins is not None:
            self._attribute(origins)
        bags, app_bag = before
        published = {value for r in records for key, value in r.app_written.items()
                     if key.endswith(CERT_SUFFIX) and value}
        self.certs = len(published - set(app_bag.values()))
        self.redundant = 0
        for r in records:  # replay the commits, comparing each write with the bag it changed
            for bag, written in ((bags[r.unit], r.relation_written), (app_bag, r.app_written)):
                self.redundant += sum(bag.get(key) == value for key, value in written.items())
                for key, value in written.items():
                    if value is None:
                        bag.pop(key, None)
                    else:
                        bag[key] = value
        self.signature = [(r.unit, r.hook, r.remote, r.app_change, r.causes,
                           sorted(r.calls.items()), sorted(r.relation_written),
                           sorted(r.app_written)) for r in records]

    def _attribute(self, origins):
        """Split ``origins`` (one per call, in order) among the records."""
        if len(origins) != sum(len(r.argv) for r in self.records):
            raise RuntimeError(f'{self.label} N={self.n}: calls and records do not line up')
        self.origins = collections.Counter(origins)
        #: per record, the layer's calls by kind (read, write, probe, log)
        self.layer = []
        start = 0
        for r in self.records:
            mine = origins[start:start + len(r.argv)]
            start += len(r.argv)
            self.layer.append(collections.Counter(
                _call_kind(argv) for argv, origin in zip(r.argv, mine) if origin == 'layer'))

    def layer_most(self, role, kinds):
        """The most layer calls of ``kinds`` in one hook of ``role``."""
        return max((sum(c[k] for k in kinds) for r, c in zip(self.records, self.layer)
                    if (r.unit == self.leader) == (role == 'leader')), default=0)

    @property
    def name(self):
        return f'{self.label} N={self.n} ({NOTIFY_NAMES[self.notified]})'


def _kind(record):
    if record.app_change:
        return 'app-changed'
    prefix = RELATION + '-'
    return record.hook[len(prefix):] if record.hook.startswith(prefix + 'relation-') else record.hook


def settle(label, n, notified, floor, needed_certs, model, origins):
    """Settle ``model`` and measure it, from the bags as they were before."""
    before = ({unit: model.bag(unit) for unit in model.units}, model.app_bag())
    if origins is not None:
        del origins[:]
    started = time.perf_counter()
    records = model.settle(max_hooks=100000)
    seconds = time.perf_counter() - started
    return Run(label, n, notified, floor, needed_certs, model, before, records,
               None if origins is None else list(origins), seconds)


def new_model(charm, executor, workdir, notified):
    model = Model(str(charm), RELATION, executor=executor, workdir=workdir, self_notify=notified)
    model.set_config(**{'tls-dir': str(Path(model.workdir) / 'tls')})
    return model


def deploy(charm, executor, n, notified, workdir, origins=None):
    with new_model(charm, executor, workdir, notified) as model:
        for _ in range(n):
            model.add_unit()
        return settle('deploy', n, notified, deploy_floor(n, notified), n, model, origins)


def operations(charm, executor, n, notified, workdir, origins=None):
    runs = []
    with new_model(charm, executor, workdir, notified) as model:
        for _ in range(n):
            model.add_unit()
        model.settle()
        for label, (change, floor, needed) in OPERATIONS.items():
            change(model)
            runs.append(settle(label, n, notified, floor(n, notified), needed(n), model, origins))
    return runs


# --- claims -----------------------------------------------------------------

def check_claims(runs, replays):
    """Raise ClaimFailed for the first claim of CLAIMS a run, or a replay of
    Part 3, breaks."""
    told = {(r.label, r.n): r for r in runs if not r.notified}
    for r in runs:
        _claim(0, r, [f'{x.unit} {x.hook}: {message}' for x in r.records
                      for level, message in x.logs if level in ('WARNING', 'ERROR', 'CRITICAL')]
               + [f'{x.unit} {x.hook} failed' for x in r.records if not x.ok])
        _claim(1, r, [] if (r.certs, r.redundant) == (r.needed_certs, 0) else
               [f'{r.certs} certificates issued, {r.needed_certs} needed; '
                f'{r.redundant} redundant writes'])
        _claim(2, r, [f'{kind}: {r.kinds[kind]} < {least}' for kind, least in r.floor.items()
                      if r.kinds[kind] < least])
        floor = sum(r.floor.values())
        if not r.notified:
            _claim(3, r, [f'{kind}: {r.kinds[kind]}, floor {r.floor.get(kind, 0)}'
                          for kind in sorted(set(r.kinds) | set(r.floor))
                          if r.kinds[kind] != r.floor.get(kind, 0)])
            old = WIRE_FORMAT_1.get((r.label, r.n))
            if old is not None and r.hooks > max(old, floor):
                _claim(4, r, [f'{r.hooks} hooks > {old}'])
        if r.label == 'leader move':
            _claim(5, r, [f'{x.unit} {x.hook} wrote' for x in r.records
                          if x.relation_written or x.app_written or x.leader_written]
                   + [f'{kind} ran' for kind in r.kinds
                      if kind not in ('leader-elected', 'leader-settings-changed')]
                   + ([] if r.kinds['leader-settings-changed'] <= r.n - 1 else
                      ['leader-settings-changed more than N-1 times']))
        twin = told.get((r.label, r.n))
        if r.notified and twin is not None:
            others = r.kinds - collections.Counter({'app-changed': r.own_app_changed})
            _claim(6, r, [] if (others, twin.own_app_changed) == (twin.kinds, 0) else
                   [f'{dict(others)} besides the leader\'s app-changed, {dict(twin.kinds)} '
                    'when it is not told'])
        if r.layer is not None:
            _claim(7, r, _layer_in_followers(r))
            _claim(8, r, _layer_in_leader(r))
        if r.label in HOOK_FORMULAS:
            formula, more = HOOK_FORMULAS[r.label]
            expected = formula(r.n) + more * r.notified
            _claim(9, r, [] if r.hooks == expected else [f'{r.hooks} hooks, {expected} by the formula'])
        _claim(10, r, [f'{x.unit} {x.hook} (hook {x.seq}) caused by {x.causes}'
                       for x in r.records if any(cause >= x.seq for cause in x.causes)])
    for notified in SELF_NOTIFY:
        deploys = [r for r in runs if r.label == 'deploy' and r.notified == notified]
        if deploys and deploys[-1].most_calls['follower'] > deploys[0].most_calls['follower']:
            _claim(7, deploys[-1], [f"{deploys[-1].most_calls['follower']} calls in a follower "
                                    f"hook, {deploys[0].most_calls['follower']} at N={deploys[0].n}"])


    for c in replays:
        leaders = [r for r in c.run.records if r.unit == c.run.leader]
        _claim(11, c.run, [] if [step.record for step in c.path] == leaders else
               [f'{len(c.path)} hooks on the critical path, {c.leader_hooks} of them among the '
                f"leader's {len(leaders)}"])


def _layer_in_followers(run):
    broken = []
    for x, mine in zip(run.records, run.layer):
        rekeys = bool(OWN_KEYS & set(x.relation_written))
        if x.unit != run.leader and (mine['read'] > FOLLOWER_READS or mine['write'] > rekeys
                                     or mine['app-write'] or mine['probe'] > mine['write']):
            broken.append(f'{x.unit} {x.hook}: {dict(mine)}, CSR written: {rekeys}')
    return broken


def _layer_in_leader(run):
    broken = []
    for x, mine in zip(run.records, run.layer):
        rekeys = bool(OWN_KEYS & set(x.relation_written))
        if x.unit == run.leader and (mine['read'] > LEADER_READS + run.n or mine['write'] > rekeys
                                     or mine['app-write'] > 1
                                     or mine['probe'] > mine['write'] + mine['app-write']):
            broken.append(f'{x.hook}: {dict(mine)}, CSR written: {rekeys}')
    return broken


def _claim(index, run, broken):
    if broken:
        raise ClaimFailed(f'{run.name}: {CLAIMS[index]}: ' + '; '.join(broken[:5]))


def check_same(subprocess_runs, inprocess_runs):
    """Raise ClaimFailed unless both executors ran the same hooks; say so."""
    twins = {(r.label, r.n, r.notified): r for r in inprocess_runs}
    for sub in subprocess_runs:
        inp = twins[sub.label, sub.n, sub.notified]
        if sub.signature != inp.signature:
            first = next((i for i, pair in enumerate(zip(sub.signature, inp.signature))
                          if pair[0] != pair[1]), min(len(sub.signature), len(inp.signature)))
            _claim(len(CLAIMS) - 1, sub, [f'hook {first + 1} differs'])
    return ('Counts are identical with both executors (same hooks in the same order, same '
            'hook tool calls, same keys written) for: '
            + ', '.join(r.name for r in subprocess_runs) + '.')


# --- every unit on its own machine ------------------------------------------

#: One hook of a replay: its record, when it starts and ends (seconds from
#: the start of the run), and the step it waited for (None: nothing).
Step = collections.namedtuple('Step', 'record start end after')


def replay(records, cost):
    """Run ``records`` as a Juju model would, each unit on its own machine: a
    unit runs its hooks one at a time in their recorded order, and a hook
    starts once its unit is free and every hook that caused it has ended (a
    cause from before the run ended before it began). ``cost(record)`` is a
    hook's duration. Records come in seq order, so what a hook waits for is
    already placed."""
    steps, last = {}, {}
    for r in records:
        before = [steps[seq] for seq in (last.get(r.unit),) + r.causes if seq in steps]
        after = max(before, key=lambda step: step.end, default=None)  # a tie: the unit's own
        start = 0.0 if after is None else after.end
        steps[r.seq] = Step(r, start, start + cost(r), after)
        last[r.unit] = r.seq
    return list(steps.values())


def call_cost(latency):
    """A hook's cost in the replay: its in-process time and its calls at ``latency``."""
    return lambda record: record.seconds + latency * sum(record.calls.values())


def critical_path(steps):
    """The chain of steps that ends last, first to last: from the last to end,
    back through what each waited for, to one that waited for nothing. Each
    starts as the one before ends, so its costs add up to the run's time."""
    step, path = max(steps, key=lambda step: step.end), []
    while step is not None:
        path.append(step)
        step = step.after
    return path[::-1]


class Convergence:
    """A deploy run replayed with every unit on its own machine (module docstring)."""

    def __init__(self, run):
        self.run = run
        cost = call_cost(CALL_LATENCY)
        self.serial = sum(cost(r) for r in run.records)
        steps = replay(run.records, cost)
        self.seconds = max(step.end for step in steps)
        self.at = {latency: max(step.end for step in replay(run.records, call_cost(latency)))
                   for latency in OTHER_LATENCIES}
        self.path = critical_path(steps)
        self.leader_hooks = sum(step.record.unit == run.leader for step in self.path)
        self.leader_share = sum(step.end - step.start for step in self.path
                                if step.record.unit == run.leader) / self.seconds
        busy = collections.Counter()
        for r in run.records:
            busy[r.unit] += cost(r)
        self.leader_busy = busy.pop(run.leader)
        self.follower_busy = max(busy.values())
        self._reads = {r.seq: mine['read'] for r, mine in zip(run.records, run.layer)}
        self.without_reads = max(step.end for step in replay(run.records, self._without_reads))

    def _without_reads(self, record):
        """A hook's cost with a leader hook's layer reads beyond a follower's not charged."""
        extra = max(0, self._reads[record.seq] - FOLLOWER_READS) if record.unit == self.run.leader else 0
        return call_cost(CALL_LATENCY)(record) - CALL_LATENCY * extra

    def segments(self):
        """The critical path as runs of consecutive hooks on one unit:
        (unit, hooks by kind, seconds)."""
        segments = []
        for unit, steps in itertools.groupby(self.path, lambda step: step.record.unit):
            steps = list(steps)
            segments.append((unit, collections.Counter(_kind(step.record) for step in steps),
                             steps[-1].end - steps[0].start))
        return segments


# --- reporting ------------------------------------------------------------

def table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---:|' * len(header)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def hooks_table(runs, wall):
    """One row per run: hooks against the floor and wire format 1, certificates, waste, time."""
    rows = []
    for r in runs:
        floor = sum(r.floor.values())
        old = WIRE_FORMAT_1.get((r.label, r.n))
        seconds = wall.get((r.label, r.n, r.notified))
        rows.append([
            r.label, NOTIFY_NAMES[r.notified], r.n, r.hooks, floor, f'{r.hooks / floor:.2f}',
            '-' if old is None else old,
            r.kinds['relation-changed'], r.floor.get('relation-changed', 0),
            r.kinds['app-changed'], r.floor.get('app-changed', 0),
            f'{r.certs} / {r.needed_certs}', r.redundant,
            f'{seconds:.1f}' if seconds is not None else '-', f'{r.seconds:.2f}'])
    return table(['run', 'leader', 'N', 'hooks', 'floor', 'ratio', 'wire format 1',
                  '-changed, unit bags', 'floor', 'app-changed', 'floor',
                  'certs issued / needed', 'redundant writes', 'wall s, processes',
                  'wall s, in-process'], rows)


def calls_table(runs):
    """One row per run: tool calls by whose, and the most in one hook."""
    rows = []
    for r in runs:
        rows.append([
            r.label, NOTIFY_NAMES[r.notified], r.n, sum(r.tools.values()),
            r.origins['layer'], r.origins['consumer'], r.origins['framework'],
            r.most_calls['follower'], r.most_calls['leader'],
            f"{r.layer_most('follower', ('read',))} ≤ {FOLLOWER_READS}",
            r.layer_most('follower', WRITE_KINDS),
            f"{r.layer_most('leader', ('read',))} ≤ {LEADER_READS + r.n}",
            r.layer_most('leader', WRITE_KINDS),
            r.layer_most('leader', ('read',) + WRITE_KINDS)])
    return table(['run', 'leader', 'N', 'tool calls', "layer's", "consumer's", "framework's",
                  'most calls in one follower hook', 'most calls in one leader hook',
                  'layer, one follower hook: reads', 'writes',
                  'layer, one leader hook: reads', 'writes', 'reads + writes'], rows)


def kinds_table(runs):
    kinds = [k for k in KINDS if any(r.kinds[k] for r in runs)]
    kinds += sorted({k for r in runs for k in r.kinds} - set(kinds))
    return table(['run', 'leader', 'N'] + kinds, [
        [r.label, NOTIFY_NAMES[r.notified], r.n]
        + [f'{r.kinds[k]} ({r.floor[k]})' if k in r.floor else r.kinds[k] for k in kinds]
        for r in runs])


def tools_table(runs):
    tools = sorted({tool for r in runs for tool in r.tools}, key=lambda t: -runs[-1].tools[t])
    return table(['run', 'leader', 'N', 'total'] + tools, [
        [r.label, NOTIFY_NAMES[r.notified], r.n, sum(r.tools.values())]
        + [r.tools[t] for t in tools] for r in runs])


def readme_deploy_table(runs):
    """The README's deploy table: a row per N with the leader not told, the
    self-notified run's hooks beside it."""
    notified = {r.n: r for r in runs if r.notified}
    rows = []
    for r in runs:
        if r.notified:
            continue
        calls, layer = sum(r.tools.values()), r.origins['layer']
        rows.append([r.n, r.hooks, sum(r.floor.values()), notified[r.n].hooks,
                     WIRE_FORMAT_1.get(('deploy', r.n), '-'), calls, f'{calls / r.n ** 2:.1f}',
                     layer, f'{layer / r.n ** 2:.1f}', r.most_calls['follower'],
                     r.most_calls['leader'], f'{r.certs} / {r.needed_certs}', r.redundant,
                     f'{r.seconds:.2f}'])
    return table(['N', 'hooks', 'floor', 'self-notified', 'wire format 1', 'tool calls',
                  'tool calls / N²', "the layer's", "the layer's / N²",
                  'most calls in one follower hook', 'most calls in one leader hook',
                  'certificates signed / needed', 'writes that changed nothing',
                  'wall s, in-process'], rows)


def readme_operations_table(runs):
    """The README's table of operations: a row per operation and N with the
    leader not told, the self-notified run's hooks in brackets."""
    notified = {(r.label, r.n): r for r in runs if r.notified}
    told = sorted((r for r in runs if not r.notified),
                  key=lambda r: (list(OPERATIONS).index(r.label), r.n))
    return table(['operation', 'N', 'hooks', 'floor', 'wire format 1', 'tool calls',
                  'most calls in one follower hook', 'certificates signed / needed',
                  'writes that changed nothing'], [
        [r.label, r.n, f'{r.hooks} ({notified[r.label, r.n].hooks})', sum(r.floor.values()),
         WIRE_FORMAT_1.get((r.label, r.n), '-'), sum(r.tools.values()),
         r.most_calls['follower'] or '-', f'{r.certs} / {r.needed_certs}', r.redundant]
        for r in told])


def _ms(latency):
    return f'{latency * 1000:g} ms'


def convergence_table(replays):
    """One row per deployment replayed with every unit on its own machine."""
    return table(
        ['N', 'hooks', f'serial s, {_ms(CALL_LATENCY)} a call', f'concurrent s, {_ms(CALL_LATENCY)}']
        + [f'concurrent s, {_ms(latency)}' for latency in OTHER_LATENCIES]
        + ['critical path: hooks', 'units', "the leader's hooks", "the leader's share of its time",
           'leader busy s', 'busiest follower busy s',
           "concurrent s, the leader's reads beyond a follower's not charged"],
        [[c.run.n, c.run.hooks, f'{c.serial:.1f}', f'{c.seconds:.1f}']
         + [f'{c.at[latency]:.1f}' for latency in OTHER_LATENCIES]
         + [len(c.path), len({step.record.unit for step in c.path}), c.leader_hooks,
            f'{c.leader_share:.0%}', f'{c.leader_busy:.1f}', f'{c.follower_busy:.1f}',
            f'{c.without_reads:.1f}'] for c in replays])


def critical_paths(replays):
    """A line per deployment: its critical path, unit by unit."""
    return '\n'.join(
        f'- N={c.run.n}: ' + ', then '.join(
            f'{unit}, {sum(kinds.values())} hooks ('
            + ', '.join(f'{count} {kind}' for kind, count in kinds.items()) + f'), {seconds:.1f} s'
            for unit, kinds, seconds in c.segments())
        for c in replays)


def bottleneck(replays):
    """Sentences on how much longer the leader is busy than anyone else, and
    on what its reads of every peer's bag cost."""
    return (
        "The leader's busy time against the busiest follower's: "
        + ', '.join(f'{c.leader_busy / c.follower_busy:.1f}× at N={c.run.n}' for c in replays)
        + ". Not charging the leader's hooks for the layer's reads beyond a follower's "
        f'{FOLLOWER_READS} (the bags of the N peers, read in every hook) takes the concurrent time '
        + ', '.join(f'from {c.seconds:.1f} to {c.without_reads:.1f} s at N={c.run.n} '
                    f'(−{1 - c.without_reads / c.seconds:.0%})' for c in replays) + '.')


def readme_tables(inp, inp_ops, replays):
    """The README's tables by marker name, which cost.md holds too."""
    return {'deploy': readme_deploy_table(inp), 'operations': readme_operations_table(inp_ops),
            'convergence': convergence_table(replays)}


def markers(name):
    """The lines before and after README table ``name``."""
    return f'<!-- bench:{name} -->', f'<!-- /bench:{name} -->'


def marked(name, text):
    """``text`` between the markers of README table ``name``."""
    begin, end = markers(name)
    return f'{begin}\n{text}\n{end}'


def write_readme(path, tables):
    """Put each of ``tables`` between its markers in the README at ``path``,
    so that its figures are this run's; fail if a table's markers are not
    there once each, in order, rather than leave a table unwritten."""
    text = path.read_text()
    for name, body in tables.items():
        begin, end = markers(name)
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise RuntimeError(f'{path} needs the markers {begin} and {end} once each, in order')
        head, rest = text.split(begin + '\n')
        tail = rest.split('\n' + end)[1]
        text = head + marked(name, body) + tail
    path.write_text(text)


def growth(runs, operations):
    """Sentences on the deploy cost against N, and against wire format 1."""
    old = {n: hooks for (label, n), hooks in WIRE_FORMAT_1.items() if label == 'deploy'}
    off = [f'{hooks} at N={n}' for n, hooks in old.items() if hooks != 2 * n * n + 4 * n - 1]
    sentences = ['Wire format 1 cost 2N² + 4N − 1 hooks to deploy'
                 + (f' except {", ".join(off)}.' if off else '.')]
    for notified in SELF_NOTIFY:
        mine = [r for r in runs if r.notified == notified]
        formula = '2N² + 4N' + ('' if notified else ' − 1')
        above = ', '.join(f'{r.hooks - sum(r.floor.values())} at N={r.n}' for r in mine)
        shape = (f'exactly its floor, {formula} hooks' if all(
            r.hooks == sum(r.floor.values()) for r in mine) else
            f'its floor, {formula} hooks, plus {above}')
        versus = ', '.join(f'{r.hooks - old[r.n]:+d} at N={r.n}' for r in mine if r.n in old)
        big = mine[-1]
        sentences.append(
            f'{NOTIFY_NAMES[notified].capitalize()}, deploying costs {shape} ({versus} against '
            f'wire format 1), and ≈ {sum(big.tools.values()) / big.n ** 2:.1f}·N² hook tool '
            f"calls at N={big.n}, {big.origins['layer'] / big.n ** 2:.1f}·N² of them the layer's.")
    higher = [f'{r.label} N={r.n} ({sum(r.floor.values())} against {WIRE_FORMAT_1[r.label, r.n]})'
              for r in runs + operations if not r.notified
              and sum(r.floor.values()) > WIRE_FORMAT_1.get((r.label, r.n), float('inf'))]
    if higher:
        sentences.append(
            "Wire format 2's floor is above what wire format 1 cost for " + ', '.join(higher)
            + ": an app-changed cannot coalesce with a -changed about a unit, as wire format "
            "1's answers in the leader's own bag did.")
    return ' '.join(sentences)


def plot(runs, replays, path):
    """Hooks against N (log-log); the most calls in one hook against N,
    everyone's and the layer's reads with their bounds, self-notified runs
    as crosses on the same lines; and how long a deployment takes, serial
    and with every unit on its own machine (Part 3)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot, ticker

    figure, (hooks, calls, times) = pyplot.subplots(1, 3, figsize=(16.5, 4.5))
    told = [r for r in runs if not r.notified]
    notified = [r for r in runs if r.notified]
    ns = [r.n for r in told]
    old = sorted((n, count) for (label, n), count in WIRE_FORMAT_1.items() if label == 'deploy')
    hooks.plot([n for n, _ in old], [count for _, count in old], 's--', color='grey',
               label='wire format 1')
    hooks.plot(ns, [sum(r.floor.values()) for r in told], ':', color='black',
               label='fan-out floor, leader not told')
    hooks.plot(ns, [r.hooks for r in told], 'o-', label='wire format 2, leader not told')
    hooks.plot([r.n for r in notified], [r.hooks for r in notified], 'x', markersize=9,
               label='wire format 2, self-notified')
    hooks.set_yscale('log')
    hooks.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f'{value:g}'))
    hooks.set_ylabel('hooks run')
    hooks.set_title('Hooks to deploy N units and settle')
    series = [
        ('most calls in one leader hook', lambda r: r.most_calls['leader']),
        ("layer's reads in one leader hook", lambda r: r.layer_most('leader', ('read',))),
        ('most calls in one follower hook', lambda r: r.most_calls['follower']),
        ("layer's reads in one follower hook", lambda r: r.layer_most('follower', ('read',))),
    ]
    for label, value in series:
        line, = calls.plot(ns, [value(r) for r in told], 'o-', label=label)
        calls.plot([r.n for r in notified], [value(r) for r in notified], 'x', markersize=9,
                   color=line.get_color())
    calls.plot(ns, [LEADER_READS + n for n in ns], '--', color='grey',
               label=f'bounds: {LEADER_READS} + N and {FOLLOWER_READS} reads')
    calls.plot(ns, [FOLLOWER_READS for _ in ns], '--', color='grey')
    calls.set_ylim(bottom=0)
    calls.set_ylabel('calls')
    calls.set_title('Hook tool calls in one hook (x: self-notified)')
    _plot_times(times, replays)
    for axes in (hooks, calls, times):
        axes.set_xscale('log')
        axes.xaxis.set_major_locator(ticker.FixedLocator(sorted({r.n for r in runs})))
        axes.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axes.xaxis.set_minor_locator(ticker.NullLocator())
        axes.set_xlabel('units (N)')
        axes.grid(True, which='both', alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _plot_times(axes, replays):
    """Seconds to deploy against N: serial, concurrent at each latency, and
    the leader's and the busiest follower's busy time."""
    from matplotlib import ticker

    ns = [c.run.n for c in replays]
    axes.plot(ns, [c.serial for c in replays], 's--', color='grey',
              label=f'serial, {_ms(CALL_LATENCY)} a call')
    for latency in sorted(OTHER_LATENCIES + (CALL_LATENCY,)):
        axes.plot(ns, [c.seconds if latency == CALL_LATENCY else c.at[latency] for c in replays],
                  'o-', linewidth=2.5 if latency == CALL_LATENCY else 1,
                  label=f'concurrent, {_ms(latency)} a call')
    axes.plot(ns, [c.follower_busy for c in replays], ':', color='black',
              label=f'busiest follower busy, {_ms(CALL_LATENCY)}')
    axes.plot(ns, [c.without_reads for c in replays], 'x-.', markersize=8,
              label=f"concurrent, {_ms(CALL_LATENCY)}, leader's reads\nbeyond a follower's not charged")
    axes.set_yscale('log')
    axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f'{value:g}'))
    axes.set_ylabel('seconds')
    axes.set_title('Time to deploy N units, each on its own machine')


def report(inp, inp_ops, wall, same, replays, tables):
    """docs/cost.md, with the README's ``tables`` between their markers."""
    return '\n\n'.join([
        '# What convergence costs',
        'Generated by `tox -e bench` (benchmarks/converge.py); its docstring explains every '
        'column and floor. "leader not told" is Juju\'s documented behaviour, "self-notified" '
        'the leader also getting `-relation-changed` for its own application-bag writes '
        '(juju#20178). Counts come from the in-process executor. ' + same,
        growth(inp, inp_ops),
        'Claims the benchmark checks (it fails if one does not hold):\n\n'
        + '\n'.join(f'- {claim}' for claim in CLAIMS),
        '## Part 1: deploy N units from nothing and settle',
        "The README's table (leader not told; the self-notified run's hooks beside):",
        marked('deploy', tables['deploy']),
        'Every run:',
        hooks_table(inp, wall),
        "Hook tool calls, by whose and most in one hook (the layer's writes: relation-set, "
        "with charmhelpers' one-time `relation-set --help` probe):",
        calls_table(inp),
        'Hooks by kind, observed (floor):',
        kinds_table(inp),
        'Hook tool calls by tool:',
        tools_table(inp),
        '## Part 2: operations on N settled units',
        "The README's table (leader not told; self-notified in brackets):",
        marked('operations', tables['operations']),
        'Every run:',
        hooks_table(inp_ops, wall),
        calls_table(inp_ops),
        kinds_table(inp_ops),
        tools_table(inp_ops),
        '## Part 3: how long a deployment takes, every unit on its own machine',
        'The deployments of Part 1 (leader not told) replayed as a Juju model runs them: each '
        'unit runs its own hooks in their recorded order, a hook starts once its unit is free '
        'and the hooks whose writes queued it have ended, and costs its in-process time plus '
        f'{_ms(CALL_LATENCY)} for each hook tool call (the docstring says why; the replay at '
        + ' and '.join(_ms(latency) for latency in OTHER_LATENCIES) + ' shows how much that '
        'matters). Serial: the same costs one after another. Busy: a unit\'s hooks\' costs added up.',
        marked('convergence', tables['convergence']),
        f'The critical paths ({_ms(CALL_LATENCY)} a call), unit by unit:\n\n'
        + critical_paths(replays),
        bottleneck(replays),
    ]) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help=f'N in {QUICK_N} only')
    parser.add_argument('--max-n', type=int, help='largest N to run')
    parser.add_argument('--out', type=Path, help='where to write cost.md and cost.png '
                        "(default: docs/ and the README's tables, or nowhere with --quick)")
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else REPO / 'docs')
    limit = args.max_n or float('inf')
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix='tls-bench-') as tmp:
        charm = build_charm(tmp)
        sub, inp, sub_ops, inp_ops = [], [], [], []
        for notified in SELF_NOTIFY:
            name = NOTIFY_NAMES[notified]
            for n in (QUICK_N[:2] if args.quick else SUBPROCESS_N):
                if n <= limit:
                    print(f'deploy N={n}, {name}, subprocess executor ...', flush=True)
                    sub.append(deploy(charm, 'subprocess', n, notified, tmp))
            for n in SUBPROCESS_OPERATIONS_N:
                print(f'operations on {n} units, {name}, subprocess executor ...', flush=True)
                sub_ops += operations(charm, 'subprocess', n, notified, tmp)
            with attributed_calls(tmp) as origins:
                for n in (QUICK_N if args.quick else INPROCESS_N):
                    if n <= limit:
                        print(f'deploy N={n}, {name}, in-process executor ...', flush=True)
                        inp.append(deploy(charm, 'inprocess', n, notified, tmp, origins))
                for n in (SUBPROCESS_OPERATIONS_N if args.quick else OPERATIONS_N):
                    print(f'operations on {n} units, {name}, in-process executor ...', flush=True)
                    inp_ops += operations(charm, 'inprocess', n, notified, tmp, origins)

    wall = {(r.label, r.n, r.notified): r.seconds for r in sub + sub_ops}
    replays = [Convergence(r) for r in inp if not r.notified and r.n in CONVERGENCE_N]
    try:
        same = check_same(sub + sub_ops, inp + inp_ops)
        tables = readme_tables(inp, inp_ops, replays)
        text = report(inp, inp_ops, wall, same, replays, tables)
        print(text)
        check_claims(inp + inp_ops, replays)
    except ClaimFailed as failure:
        sys.exit(f'CLAIM FAILED: {failure}')
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / 'cost.md').write_text(text)
        plot(inp, replays, out / 'cost.png')
        print(f'wrote {out / "cost.md"} and {out / "cost.png"}')
    if args.out is None and not args.quick:
        write_readme(README, tables)
        print(f'wrote the tables of {README}')
    print(f'benchmark wall time {time.perf_counter() - started:.0f} s')


if __name__ == '__main__':
    main()
