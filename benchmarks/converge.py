"""What convergence costs: hooks, hook tool calls and controller round trips
for N units to get certificates.

Run by ``tox -e bench``. It measures wire format 2 (docs/design.md, "Wire format")
under Juju's rules as jujusim models them from Juju's source: the leader is
told of its own application-bag writes (jujusim's ``self_notify``, set here
explicitly, so that ``$JUJUSIM_SELF_NOTIFY`` cannot change what is
measured), and a unit reads its peers' settings through its agent's settings
cache (``HookRecord.fetched``).

"Leader not told", the rule of Juju's old hook documentation that this
benchmark used to measure beside self-notification, is no longer run. No
Juju behaves so (``state/relationunit.go``, ``CounterpartApplications``, and
``worker/uniter/relation/resolver.go``, 2.9 to 3.6); running it doubled the
benchmark's time; and it no longer differs from Juju's rule by the leader's
own app-changed hooks alone: with the settings cache the hooks run in other
orders (a CA rotation at N = 3 costs 13 hooks not told, 17 told). What
self-notification costs is measured directly instead: the leader's own
app-changed hooks are counted apart, and checked to write nothing and queue
no hook. jujusim keeps ``self_notify=False`` for tests that want it.

Part 1 deploys N units of the example charm from nothing and settles. Part 2
takes N = 3, 5 and 10 settled units through a re-key of every unit, a routine
CA rotation, a leader move between live units and a renewal round (the hooks'
clock moved past two thirds of the certificates' lifetime with
``Model.advance_clock``, which both executors honour, then update-status on
every unit, as Juju runs it every few minutes). Counts come from the
in-process executor; the subprocess executor (a process per hook) runs the
smaller cases to give real wall times, and its counts are checked to be the
same. Part 3 replays the deployments of Part 1 as a Juju model runs them,
every unit on its own machine, charging each hook the controller round trips
its tool calls need (below).

Per run:

* hooks, total and by kind, with ``-changed`` split into the hooks about a
  unit's bag and app-changed, the hooks about the application bag (in which
  ``$JUJU_REMOTE_UNIT`` is empty), and the leader's own app-changed hooks
  apart;
* the floor Juju's fan-out puts under that count with this wire format:

  - deploying: every unit runs -joined and -changed for every other unit,
    N(N-1) of each, and a unit's CSR reaches the N-1 peers that joined it,
    where it can coalesce with a -changed still queued; the leader's answers
    reach every unit, the leader included, as app-changed at least once;
    each unit but the first runs leader-settings-changed as it is added. So
    2N² + 4N hooks;
  - a re-key: N config-changed, N new CSRs reaching N-1 peers each, and the
    answers reaching the N units as app-changed: N² + N;
  - a CA rotation: N config-changed, N-1 leader-settings-changed (the
    example keeps its CA in leader settings); the leader's two app-bag
    writes (``ca_next``, then the new CA with every answer) reach the N-1
    other units at least once (the second can coalesce with the first where
    that is still queued), and the leader itself twice; every unit's
    ``ca_ack`` reaches its N-1 peers: N² + 2N;
  - a renewal round: N update-status, and the answers reaching the N units
    as app-changed: 2N;
  - a leader move: leader-elected on the new leader and
    leader-settings-changed on the deposed one, which the example charm has
    a hook for (Juju has no leader-deposed hook:
    ``worker/uniter/operation/leader.go``); other units run
    leader-settings-changed only when leader settings change;

* what the runs cost above the floor: app-changed hooks, in a re-key (N
  more) and a CA rotation (2N - 1 more), and in a CA rotation the
  -changed hooks of each unit's second ``ca_ack`` (that it holds a
  certificate from the new CA), N² - 2N - 1 more: N(N-1), less the N + 1
  that coalesce, in the recorded order, with a -changed still queued about
  the same unit. The leader writes the application bag twice in a re-key,
  and three times in a CA rotation (the third drops the old CA once every
  unit has acknowledged holding a new certificate), and each write
  reaches every unit: in a re-key it answers
  its own new CSR in its config-changed and the others' in its -changed
  about each peer, the only hook in which it sees that peer's new CSR (the
  agent serves the copy it cached before); in a CA rotation it publishes
  ``ca_next`` in its config-changed and the new CA with every answer in the
  -changed that brings the last ``ca_ack``. In the recorded order every
  unit has run the first write's app-changed by the time of the second, so
  they do not coalesce. In all: deploying costs 2N² + 4N hooks, a re-key
  N² + 2N, a CA rotation 2N² + 2N - 2, a renewal round 2N and a leader move 2
  (:data:`HOOK_FORMULAS`);
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
* the controller round trips those calls need, by what they fetch or send
  (the rule below), in all and the most in one leader hook and in one
  follower hook;
* certificates issued (distinct new certificates in the application bag)
  against those needed, and writes that only repeated what a bag held.

The wall times above run every hook one after another. In a Juju model each
unit's agent runs that unit's hooks, one at a time, while the other units
run theirs, so how long a deployment takes is set by its longest chain of
hooks. Part 3 replays the deployments of :data:`CONVERGENCE_N` units (the
in-process runs of Part 1) that way, as discrete events: every unit runs its
own hooks in their recorded order, and a hook starts once its unit is free
and every hook that caused it (``HookRecord.causes``: the hooks whose writes
queued it) has ended. A hook costs its measured in-process time plus
:data:`CALL_LATENCY`, 20 ms, for each controller round trip its hook tool
calls need. A tool is a process (``jujuc``, which starts in about a
millisecond, juju#11311) asking the unit agent over a local socket; what the
agent answers from what it holds costs nothing beyond the hook's measured
time, and what it must ask the controller for is an API call, a network
round trip and a database read. The rule, from Juju's source (juju/juju, the
uniter in ``worker/uniter/``, under ``internal/`` in recent releases; the
2.8-era and 3.x versions read agree on everything used here), is
:func:`round_trips`:

* no round trip: ``relation-ids`` and ``relation-list``, answered from the
  hook context's relations and their members (``runner/jujuc/relation-ids.go``,
  ``relation-list.go``; ``runner/context/relation.go``, ``UnitNames``);
  ``is-leader``, answered by the agent's leadership tracker, which holds a
  lease it renews on its own timer (``runner/context/leader.go``,
  ``ensureLeader``; ``worker/leadership/tracker.go``: claims are answered
  "without generating additional calls" to the controller); ``juju-log``,
  written to the agent's own log, which reaches the controller in the
  background (``runner/jujuc/juju-log.go``); ``relation-set`` and
  ``relation-set --app``, staged in the hook context (``runner/jujuc/relation-set.go``),
  and ``relation-set --help``;
* a remote unit's settings: a round trip only where the agent had to fetch
  them, as ``HookRecord.fetched`` says. A member's settings stay cached
  across hooks until a -joined or -changed about it, anyone else's for the
  hook (``runner/context/cache.go``, ``RelationCache``;
  ``runner/context/contextfactory.go``, ``HookContext``);
* one round trip the first time in a hook, then kept for the hook: the
  unit's own settings (``relation-get`` of itself, or ``relation-set``,
  which reads them before it writes: ``runner/context/relation.go``,
  ``Settings``), the application bag (``relation-get --app`` or
  ``relation-set --app``: ``relation.go``, ``ApplicationSettings``, or for a
  non-leader ``cache.go``, ``ApplicationSettings``, emptied at every hook),
  the application's config (``config-get``: ``runner/context/context.go``,
  ``ConfigSettings``), leader settings (``leader-get``: ``leader.go``,
  ``LeaderSettings``, read again after a ``leader-set``) and
  ``unit-get public-address`` (``context.go``, ``PublicAddress``, in 3.6;
  2.9 reads it with the context);
* one round trip every call: ``leader-set`` (``leader.go``,
  ``WriteLeaderSettings``), ``status-set`` (``context.go``,
  ``SetUnitStatus``, ``SetApplicationStatus``), ``goal-state``
  (``context.go``, ``GoalState``) and ``unit-get private-address``
  (``runner/jujuc/unit-get.go`` asks ``NetworkInfo``);
* the commit: after the hook exits 0, one ``CommitHookChanges`` call if
  there is anything to send (``context.go``, ``doFlush``; the builder's
  ``changeCount`` in ``api/agent/uniter``). There is whenever the hook read
  or wrote its own settings (``relation.go``, ``FinalSettings``, sends a
  unit's settings whenever the hook loaded them, and Juju's own address keys
  keep them from being empty), wrote the application bag, or is
  config-changed (``UpdateNetworkInfo``).

A tool the rule does not name fails the benchmark. 20 ms stands for a
controller on a nearby network, not loaded; the replay is run at 5 ms (a
controller on the same host) and 50 ms (a remote or busy one) too, to show
how much the answer depends on it. What is not counted: the start of each
hook's Python process, and what the agent does for every hook alike, before
and after it: building the hook context is about six more API calls
(``contextfactory.go``, ``updateContext``: API addresses, SLA level, cloud
API version, model config, opened ports, private address), and the agent
records each operation's state; so a longer chain costs more of that (the
report says how much). Only what queued a hook is waited for, not every
write it read in the recording: a hook can start before a peer's earlier
write that it saw has ended, where Juju would have it see that write one
hook later, in the -changed the write queued on the same unit. (In a
deployment every CSR is written in ``-relation-created``, which the leader's
``-joined`` for that unit waits for.) And the hooks are the recording's:
where jujusim coalesced writes into one queued hook because the unit was
busy with others, a unit that is idle sooner on its own machine may run that
hook more than once. Per N:

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
* the leader's busy time and the concurrent time again without the
  settings cache, every read of a remote unit's settings a round trip: what
  the cache saves.

It checks its claims and exits 1 naming the first that fails (:data:`CLAIMS`
says them in words). It writes docs/cost.png, and docs/cost.md below the
line :data:`GENERATED`, keeping the hand-written text above it. The summary
tables in cost.md stand between markers (``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``), the only place they are kept;
``tests/test_readme_numbers.py`` checks that each is there once and agrees
with the detailed tables of the same runs. With ``--out`` it writes cost.md
(what it generates, after that line) and cost.png there; ``--quick`` writes
nothing unless ``--out`` is given.
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

#: Juju's rule: the leader gets -relation-changed for its own application-bag
#: writes (module docstring).
SELF_NOTIFY = True
INPROCESS_N = (2, 3, 5, 10, 20, 50)
SUBPROCESS_N = (2, 5)  # processes are slow: N=10 alone takes about 100 s
QUICK_N = (2, 3, 5)
OPERATIONS_N = (3, 5, 10)
SUBPROCESS_OPERATIONS_N = (3,)
RENEWAL_DAYS = 61  # past two thirds of the example's 90-day certificates
#: Seconds a controller round trip costs in the concurrent replay (module
#: docstring says why), and the other latencies the replay is run at.
CALL_LATENCY = 0.020
OTHER_LATENCIES = (0.005, 0.050)
#: API calls the agent makes to build every hook's context, not charged
#: (module docstring): contextfactory.go, updateContext.
CONTEXT_CALLS = 6
#: The deployments replayed with every unit on its own machine.
CONVERGENCE_N = (3, 5, 10, 20, 50)
#: The line of docs/cost.md after which the benchmark writes; the text above
#: it is written by hand, and kept.
GENERATED = ('<!-- Written by tox -e bench (benchmarks/converge.py) from here on: '
             'edit only the text above. -->')
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
#: Hooks a run costs, as a function of N, and the formula in words.
HOOK_FORMULAS = {'deploy': (lambda n: 2 * n * n + 4 * n, '2N² + 4N'),
                 're-key': (lambda n: n * n + 2 * n, 'N² + 2N'),
                 'CA rotation': (lambda n: 2 * n * n + 2 * n - 2, '2N² + 2N − 2'),
                 'renewal': (lambda n: 2 * n, '2N'),
                 'leader move': (lambda n: 2, '2')}
#: Hooks beyond the floor, by kind, that a run costs (module docstring): the
#: leader's two application-bag writes each reach every unit.
ABOVE_FLOOR = {'re-key': lambda n: {'app-changed': n},
               'CA rotation': lambda n: {'app-changed': 2 * n - 1, 'relation-changed': n * n - 2 * n - 1}}
#: What the benchmark checks, by name, in words; it fails naming the first
#: that does not hold.
CLAIMS = {
    'ok': 'every hook succeeds and nothing is logged at WARNING or above',
    'certs': 'the leader issues each needed certificate once, and no write repeats what a '
             'bag holds',
    'floor': 'no run costs fewer hooks than its floor (else the floor is wrong)',
    'exact': 'every run costs exactly its floor, kind by kind, but for the app-changed of a '
             're-key (N more) and of a CA rotation (2N − 1 more), where each of the leader\'s '
             'application-bag writes reaches every unit, and the relation-changed of a CA '
             'rotation (N² − 2N − 1 more), the units\' second ca_ack, that they hold a '
             'certificate from the new CA',
    'formulas': 'deploying costs ' + HOOK_FORMULAS['deploy'][1] + ' hooks, a re-key '
                + HOOK_FORMULAS['re-key'][1] + ', a routine CA rotation '
                + HOOK_FORMULAS['CA rotation'][1] + ', a renewal round '
                + HOOK_FORMULAS['renewal'][1] + ' and a leader move '
                + HOOK_FORMULAS['leader move'][1],
    'leader move': 'a leader move writes nothing and runs only leadership hooks: '
                   'leader-elected on the new leader, leader-settings-changed on the '
                   'deposed one',
    'self-notified': "the leader's own app-changed hooks write nothing and queue no hook: "
                     'being told of its own writes costs the leader one hook per '
                     'application-bag change, and nothing more',
    'follower': f'the layer makes at most {FOLLOWER_READS} reads in a follower hook and '
                'writes there only when the hook changes its CSR or acknowledges a CA (one '
                'relation-set, charmhelpers probing relation-set first), and a follower '
                "hook's calls, everyone's, do not grow with N",
    'leader': f'the layer makes at most {LEADER_READS} + N reads in a leader hook and writes '
              'there at most one relation-set of the application bag, and of its own bag '
              'only when the hook changes its CSR or acknowledges a CA (after the probe)',
    'rule': 'the call-cost rule of Part 3 names every hook tool call the runs make, and the '
            'agent fetches a remote unit\'s settings at most once per read',
    'round trips': 'the most round trips in one hook, a leader\'s or a follower\'s, do not grow '
                   'with N: the agent fetches the settings of the unit a hook is about, and '
                   'serves the other peers\' from its cache',
    'causes': 'every hook that caused a hook ran before it, so the replay of Part 3 runs '
              'every hook',
    'critical path': 'with every unit on its own machine (Part 3), a deployment takes as long '
                     "as its leader's hooks added up: its critical path is the leader's "
                     'hooks, all of them',
    'executors': 'both executors run the same hooks with the same calls and writes',
}


class ClaimFailed(Exception):
    """A claim of :data:`CLAIMS` does not hold."""


def deploy_floor(n):
    """Hooks Juju runs for n peers deploying (see the module docstring)."""
    return {'install': n, 'relation-created': n, 'leader-elected': 1,
            'leader-settings-changed': n - 1, 'config-changed': n, 'start': n,
            'relation-joined': n * (n - 1), 'relation-changed': n * (n - 1),
            'app-changed': n}


def renew(model):
    """Let RENEWAL_DAYS pass for the hooks (the clock the layer and the example
    read, in both executors) and queue update-status on every unit, as Juju
    does every few minutes: the leader renews every certificate then."""
    model.advance_clock(days=RENEWAL_DAYS)
    for unit in model.units:
        model.queue(unit, 'update-status')


OPERATIONS = {  # name: (what it does to a settled model, its floor, certificates it needs)
    're-key': (lambda m: m.set_config(**{'key-generation': 1}),
               lambda n: {'config-changed': n, 'relation-changed': n * (n - 1),
                          'app-changed': n},
               lambda n: n),
    'CA rotation': (lambda m: m.set_config(**{'ca-generation': 1}),
                    lambda n: {'config-changed': n, 'leader-settings-changed': n - 1,
                               'relation-changed': n * (n - 1), 'app-changed': n + 1},
                    lambda n: n),
    'leader move': (lambda m: m.move_leader(m.units[1]),
                    lambda n: {'leader-elected': 1, 'leader-settings-changed': 1},
                    lambda n: 0),
    'renewal': (renew,
                lambda n: {'update-status': n, 'app-changed': n},
                lambda n: n),
}


# --- what a hook's tool calls cost -----------------------------------------

#: Tools the unit agent answers from what it holds (module docstring).
NO_ROUND_TRIP = frozenset({'relation-ids', 'relation-list', 'is-leader', 'juju-log'})
#: Tools that cost a round trip every call.
EVERY_CALL = frozenset({'leader-set', 'status-set', 'goal-state'})


def round_trips(record, cache=True):
    """The controller round trips the hook tool calls of ``record`` need, by
    what they fetch or send, as Juju's unit agent makes them (the rule in the
    module docstring). With ``cache`` false, every read of a remote unit's
    settings is a round trip, as if the agent kept no settings cache.
    Raise ClaimFailed for a tool the rule does not name."""
    trips = collections.Counter()
    loaded, written = set(), set()  # what the hook context holds; what it will send
    remote_reads = 0
    for argv in record.argv:
        tool, args = argv[0], argv[1:]
        if tool in NO_ROUND_TRIP or argv[:2] == ['relation-set', '--help']:
            continue
        if tool in EVERY_CALL:
            trips[tool] += 1
            if tool == 'leader-set':  # the next leader-get reads them again
                loaded.discard('leader settings')
            continue
        if tool == 'relation-get':
            once = _settings_read(record, args)
            if once is None:
                remote_reads += 1
                continue
        elif tool == 'relation-set':
            once = 'application settings' if '--app' in args else 'own settings'
            written.add(once)
        elif tool == 'config-get':
            once = 'config'
        elif tool == 'leader-get':
            once = 'leader settings'
        elif tool == 'unit-get' and args[-1:] == ['private-address']:
            trips['unit-get private-address'] += 1
            continue
        elif tool == 'unit-get' and args[-1:] == ['public-address']:
            once = 'public address'
        else:
            raise ClaimFailed(f'{CLAIMS["rule"]}: {record.unit} {record.hook} called {argv}')
        if once not in loaded:
            loaded.add(once)
            trips[once] += 1
    if len(record.fetched or ()) > remote_reads:
        raise ClaimFailed(f'{CLAIMS["rule"]}: {record.unit} {record.hook} fetched '
                          f'{record.fetched} in {remote_reads} reads')
    trips['remote settings'] = len(record.fetched or ()) if cache else remote_reads
    if record.ok and ('own settings' in loaded or 'application settings' in written
                      or record.hook == 'config-changed'):
        trips['commit'] += 1
    return +trips


def _settings_read(record, args):
    """What a ``relation-get`` with ``args`` reads: 'own settings',
    'application settings', or None for a remote unit's settings."""
    args = [arg for arg in args if arg != '--format=json']
    app = '--app' in args
    args = [arg for arg in args if arg != '--app']
    if args[:1] == ['-r']:
        args = args[2:]
    name = args[1] if len(args) > 1 else record.remote
    if app or name is None:  # without a unit, Juju reads $JUJU_REMOTE_APP's bag
        return 'application settings'
    return 'own settings' if name == record.unit else None


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

    def __init__(self, label, n, floor, needed_certs, model, before, records, origins, seconds):
        self.label, self.n = label, n
        self.floor, self.needed_certs, self.seconds = floor, needed_certs, seconds
        self.records, self.leader = records, model.leader  # the same all along in every run
        self.hooks = len(records)
        self.kinds = collections.Counter(_kind(r) for r in records)
        self.own_app_changed = sum(r.app_change and r.unit == self.leader for r in records)
        self.tools = collections.Counter()
        for r in records:
            self.tools.update(r.calls)
        self.most_calls = self._most(lambda r: sum(r.calls.values()))
        #: per record seq, the round trips of its calls (with the settings
        #: cache, and without it), and their sum over the run by what for
        self.trips = {r.seq: round_trips(r) for r in records}
        self.trips_uncached = {r.seq: round_trips(r, cache=False) for r in records}
        self.round_trips = sum(self.trips.values(), collections.Counter())
        self.most_trips = self._most(lambda r: sum(self.trips[r.seq].values()))
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
                           sorted(r.app_written), r.fetched) for r in records]

    def _most(self, count):
        """The most of ``count(record)`` in one follower hook and in one leader hook."""
        return {role: max((count(r) for r in self.records
                           if (r.unit == self.leader) == (role == 'leader')), default=0)
                for role in ('follower', 'leader')}

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
        return f'{self.label} N={self.n}'


def _kind(record):
    if record.app_change:
        return 'app-changed'
    prefix = RELATION + '-'
    return record.hook[len(prefix):] if record.hook.startswith(prefix + 'relation-') else record.hook


def settle(label, n, floor, needed_certs, model, origins):
    """Settle ``model`` and measure it, from the bags as they were before."""
    before = ({unit: model.bag(unit) for unit in model.units}, model.app_bag())
    if origins is not None:
        del origins[:]
    started = time.perf_counter()
    records = model.settle(max_hooks=100000)
    seconds = time.perf_counter() - started
    return Run(label, n, floor, needed_certs, model, before, records,
               None if origins is None else list(origins), seconds)


def new_model(charm, executor, workdir):
    model = Model(str(charm), RELATION, executor=executor, workdir=workdir,
                  self_notify=SELF_NOTIFY)
    model.set_config(**{'tls-dir': str(Path(model.workdir) / 'tls')})
    return model


def deploy(charm, executor, n, workdir, origins=None):
    with new_model(charm, executor, workdir) as model:
        for _ in range(n):
            model.add_unit()
        return settle('deploy', n, deploy_floor(n), n, model, origins)


def operations(charm, executor, n, workdir, origins=None):
    runs = []
    with new_model(charm, executor, workdir) as model:
        for _ in range(n):
            model.add_unit()
        model.settle()
        for label, (change, floor, needed) in OPERATIONS.items():
            change(model)
            runs.append(settle(label, n, floor(n), needed(n), model, origins))
    return runs


# --- claims -----------------------------------------------------------------

def check_claims(runs, replays):
    """Raise ClaimFailed for the first claim of CLAIMS a run, or a replay of
    Part 3, breaks."""
    for r in runs:
        _claim('ok', r, [f'{x.unit} {x.hook}: {message}' for x in r.records
                         for level, message in x.logs if level in ('WARNING', 'ERROR', 'CRITICAL')]
               + [f'{x.unit} {x.hook} failed' for x in r.records if not x.ok])
        _claim('certs', r, [] if (r.certs, r.redundant) == (r.needed_certs, 0) else
               [f'{r.certs} certificates issued, {r.needed_certs} needed; '
                f'{r.redundant} redundant writes'])
        _claim('floor', r, [f'{kind}: {r.kinds[kind]} < {least}' for kind, least in r.floor.items()
                            if r.kinds[kind] < least])
        expected = collections.Counter(r.floor)
        expected.update(ABOVE_FLOOR.get(r.label, lambda n: {})(r.n))
        _claim('exact', r, [f'{kind}: {r.kinds[kind]}, expected {expected[kind]}'
                            for kind in sorted(set(r.kinds) | set(expected))
                            if r.kinds[kind] != expected[kind]])
        formula, words = HOOK_FORMULAS[r.label]
        _claim('formulas', r, [] if r.hooks == formula(r.n) else
               [f'{r.hooks} hooks, {formula(r.n)} by {words}'])
        if r.label == 'leader move':
            _claim('leader move', r, [f'{x.unit} {x.hook} wrote' for x in r.records
                                      if x.relation_written or x.app_written or x.leader_written]
                   + [f'{kind} ran' for kind in r.kinds
                      if kind not in ('leader-elected', 'leader-settings-changed')]
                   + ([] if r.kinds['leader-settings-changed'] <= r.n - 1 else
                      ['leader-settings-changed more than N-1 times']))
        own = {x.seq for x in r.records if x.app_change and x.unit == r.leader}
        _claim('self-notified', r, [f'{x.unit} app-changed (hook {x.seq}) wrote' for x in r.records
                                    if x.seq in own and (x.relation_written or x.app_written
                                                         or x.leader_written)]
               + [f'{x.unit} {x.hook} (hook {x.seq}) was queued by the leader\'s own app-changed'
                  for x in r.records if own & set(x.causes)])
        if r.layer is not None:
            _claim('follower', r, _layer_in_followers(r))
            _claim('leader', r, _layer_in_leader(r))
        _claim('causes', r, [f'{x.unit} {x.hook} (hook {x.seq}) caused by {x.causes}'
                             for x in r.records if any(cause >= x.seq for cause in x.causes)])
    deploys = [r for r in runs if r.label == 'deploy']
    if deploys and deploys[-1].most_calls['follower'] > deploys[0].most_calls['follower']:
        _claim('follower', deploys[-1], [f"{deploys[-1].most_calls['follower']} calls in a "
                                         f"follower hook, {deploys[0].most_calls['follower']} "
                                         f'at N={deploys[0].n}'])
    for role in ('follower', 'leader'):
        if deploys and deploys[-1].most_trips[role] > deploys[0].most_trips[role]:
            _claim('round trips', deploys[-1], [f'{deploys[-1].most_trips[role]} in a {role} '
                                                f'hook, {deploys[0].most_trips[role]} at '
                                                f'N={deploys[0].n}'])
    for c in replays:
        leaders = [r for r in c.run.records if r.unit == c.run.leader]
        _claim('critical path', c.run, [] if [step.record for step in c.path] == leaders else
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


def _claim(name, run, broken):
    if broken:
        raise ClaimFailed(f'{run.name}: {CLAIMS[name]}: ' + '; '.join(broken[:5]))


def check_same(subprocess_runs, inprocess_runs):
    """Raise ClaimFailed unless both executors ran the same hooks; say so."""
    twins = {(r.label, r.n): r for r in inprocess_runs}
    for sub in subprocess_runs:
        inp = twins[sub.label, sub.n]
        if sub.signature != inp.signature:
            first = next((i for i, pair in enumerate(zip(sub.signature, inp.signature))
                          if pair[0] != pair[1]), min(len(sub.signature), len(inp.signature)))
            _claim('executors', sub, [f'hook {first + 1} differs'])
    return ('Counts are identical with both executors (same hooks in the same order, same '
            'hook tool calls, same keys written, same settings fetched) for: '
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


def call_cost(trips, latency):
    """A hook's cost in the replay: its in-process time and its round trips
    (``trips``: record seq -> Counter) at ``latency``."""
    return lambda record: record.seconds + latency * sum(trips[record.seq].values())


def every_call_cost(latency):
    """A hook's cost if every hook tool call were a round trip, the rule this
    benchmark used before it followed Juju's source."""
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


def _busy(records, cost):
    """Each unit's hooks' costs added up."""
    busy = collections.Counter()
    for r in records:
        busy[r.unit] += cost(r)
    return busy


class Convergence:
    """A deploy run replayed with every unit on its own machine (module docstring)."""

    def __init__(self, run):
        self.run = run
        cost = call_cost(run.trips, CALL_LATENCY)
        self.serial = sum(cost(r) for r in run.records)
        steps = replay(run.records, cost)
        self.seconds = max(step.end for step in steps)
        self.at = {latency: max(step.end for step in replay(run.records,
                                                            call_cost(run.trips, latency)))
                   for latency in OTHER_LATENCIES}
        self.path = critical_path(steps)
        self.leader_hooks = sum(step.record.unit == run.leader for step in self.path)
        self.leader_share = sum(step.end - step.start for step in self.path
                                if step.record.unit == run.leader) / self.seconds
        busy = _busy(run.records, cost)
        self.leader_busy = busy.pop(run.leader)
        self.follower_busy = max(busy.values())
        uncached = call_cost(run.trips_uncached, CALL_LATENCY)
        self.leader_busy_uncached = _busy(run.records, uncached)[run.leader]
        self.uncached = max(step.end for step in replay(run.records, uncached))
        self.every_call = max(step.end for step in replay(run.records,
                                                          every_call_cost(CALL_LATENCY)))
        #: what building each hook's context would add to the critical path
        self.context = len(self.path) * CONTEXT_CALLS * CALL_LATENCY

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

#: The causes of round trips, in the order the tables show them.
TRIP_CAUSES = ('remote settings', 'own settings', 'application settings', 'config',
               'leader settings', 'status-set', 'unit-get private-address', 'goal-state',
               'leader-set', 'public address', 'commit')


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
        seconds = wall.get((r.label, r.n))
        rows.append([
            r.label, r.n, r.hooks, floor, f'{r.hooks / floor:.2f}',
            '-' if old is None else old,
            r.kinds['relation-changed'], r.floor.get('relation-changed', 0),
            r.kinds['app-changed'], r.floor.get('app-changed', 0), r.own_app_changed,
            f'{r.certs} / {r.needed_certs}', r.redundant,
            f'{seconds:.1f}' if seconds is not None else '-', f'{r.seconds:.2f}'])
    return table(['run', 'N', 'hooks', 'floor', 'ratio', 'wire format 1',
                  '-changed, unit bags', 'floor', 'app-changed', 'floor', "the leader's own",
                  'certs issued / needed', 'redundant writes', 'wall s, processes',
                  'wall s, in-process'], rows)


def calls_table(runs):
    """One row per run: tool calls by whose, and the most in one hook."""
    rows = []
    for r in runs:
        rows.append([
            r.label, r.n, sum(r.tools.values()),
            r.origins['layer'], r.origins['consumer'], r.origins['framework'],
            r.most_calls['follower'], r.most_calls['leader'],
            f"{r.layer_most('follower', ('read',))} ≤ {FOLLOWER_READS}",
            r.layer_most('follower', WRITE_KINDS),
            f"{r.layer_most('leader', ('read',))} ≤ {LEADER_READS + r.n}",
            r.layer_most('leader', WRITE_KINDS),
            r.layer_most('leader', ('read',) + WRITE_KINDS)])
    return table(['run', 'N', 'tool calls', "layer's", "consumer's", "framework's",
                  'most calls in one follower hook', 'most calls in one leader hook',
                  'layer, one follower hook: reads', 'writes',
                  'layer, one leader hook: reads', 'writes', 'reads + writes'], rows)


def trips_table(runs):
    """One row per run: controller round trips, in all, per hook, the most in
    one hook, and by what they fetch or send (Part 3's rule)."""
    causes = [c for c in TRIP_CAUSES if any(r.round_trips[c] for r in runs)]
    causes += sorted({c for r in runs for c in r.round_trips} - set(causes))
    return table(['run', 'N', 'round trips', 'per hook', 'most in one follower hook',
                  'most in one leader hook'] + causes, [
        [r.label, r.n, sum(r.round_trips.values()),
         f'{sum(r.round_trips.values()) / r.hooks:.1f}', r.most_trips['follower'],
         r.most_trips['leader']] + [r.round_trips[c] for c in causes] for r in runs])


def kinds_table(runs):
    kinds = [k for k in KINDS if any(r.kinds[k] for r in runs)]
    kinds += sorted({k for r in runs for k in r.kinds} - set(kinds))
    return table(['run', 'N'] + kinds, [
        [r.label, r.n]
        + [f'{r.kinds[k]} ({r.floor[k]})' if k in r.floor else r.kinds[k] for k in kinds]
        for r in runs])


def tools_table(runs):
    tools = sorted({tool for r in runs for tool in r.tools}, key=lambda t: -runs[-1].tools[t])
    return table(['run', 'N', 'total'] + tools, [
        [r.label, r.n, sum(r.tools.values())] + [r.tools[t] for t in tools] for r in runs])


def summary_deploy_table(runs):
    """The summary table of deployments: a row per N."""
    rows = []
    for r in runs:
        calls, layer = sum(r.tools.values()), r.origins['layer']
        rows.append([r.n, r.hooks, sum(r.floor.values()),
                     WIRE_FORMAT_1.get(('deploy', r.n), '-'), calls, f'{calls / r.n ** 2:.1f}',
                     layer, f'{layer / r.n ** 2:.1f}', sum(r.round_trips.values()),
                     r.most_calls['follower'], r.most_calls['leader'],
                     f'{r.certs} / {r.needed_certs}', r.redundant, f'{r.seconds:.2f}'])
    return table(['N', 'hooks', 'floor', 'wire format 1', 'tool calls', 'tool calls / N²',
                  "the layer's", "the layer's / N²", 'controller round trips',
                  'most calls in one follower hook', 'most calls in one leader hook',
                  'certificates signed / needed', 'writes that changed nothing',
                  'wall s, in-process'], rows)


def summary_operations_table(runs):
    """The summary table of operations: a row per operation and N."""
    runs = sorted(runs, key=lambda r: (list(OPERATIONS).index(r.label), r.n))
    return table(['operation', 'N', 'hooks', 'floor', 'wire format 1', 'tool calls',
                  'controller round trips', 'most calls in one follower hook',
                  'certificates signed / needed', 'writes that changed nothing'], [
        [r.label, r.n, r.hooks, sum(r.floor.values()), WIRE_FORMAT_1.get((r.label, r.n), '-'),
         sum(r.tools.values()), sum(r.round_trips.values()), r.most_calls['follower'] or '-',
         f'{r.certs} / {r.needed_certs}', r.redundant]
        for r in runs])


def _ms(latency):
    return f'{latency * 1000:g} ms'


def convergence_table(replays):
    """One row per deployment replayed with every unit on its own machine."""
    return table(
        ['N', 'hooks', f'serial s, {_ms(CALL_LATENCY)} a round trip',
         f'concurrent s, {_ms(CALL_LATENCY)}']
        + [f'concurrent s, {_ms(latency)}' for latency in OTHER_LATENCIES]
        + ['critical path: hooks', 'units', "the leader's hooks", "the leader's share of its time",
           'leader busy s', 'busiest follower busy s', 'leader busy s, no settings cache',
           'concurrent s, no settings cache'],
        [[c.run.n, c.run.hooks, f'{c.serial:.1f}', f'{c.seconds:.1f}']
         + [f'{c.at[latency]:.1f}' for latency in OTHER_LATENCIES]
         + [len(c.path), len({step.record.unit for step in c.path}), c.leader_hooks,
            f'{c.leader_share:.0%}', f'{c.leader_busy:.1f}', f'{c.follower_busy:.1f}',
            f'{c.leader_busy_uncached:.1f}', f'{c.uncached:.1f}'] for c in replays])


def critical_paths(replays):
    """A line per deployment: its critical path, unit by unit."""
    return '\n'.join(
        f'- N={c.run.n}: ' + ', then '.join(
            f'{unit}, {sum(kinds.values())} hooks ('
            + ', '.join(f'{count} {kind}' for kind, count in kinds.items()) + f'), {seconds:.1f} s'
            for unit, kinds, seconds in c.segments())
        for c in replays)


def bottleneck(replays):
    """Sentences on how much longer the leader is busy than anyone else, on
    what the settings cache saves it, and on what the replay leaves out."""
    big = replays[-1]
    return (
        "The leader's busy time against the busiest follower's: "
        + ', '.join(f'{c.leader_busy / c.follower_busy:.1f}× at N={c.run.n}' for c in replays)
        + ". The settings cache is what keeps the leader's reads of every peer's bag cheap: "
        'the agent fetches a peer\'s settings only in the -joined or -changed about that peer, '
        'and serves every other read from its cache. Without it, every read a round trip, the '
        "leader's busy time would be "
        + ', '.join(f'{c.leader_busy_uncached:.1f} s against {c.leader_busy:.1f} s at N={c.run.n}'
                    for c in replays)
        + ' (the cache saves '
        + ', '.join(f'{1 - c.leader_busy / c.leader_busy_uncached:.0%} at N={c.run.n}'
                    for c in replays)
        + f'), and the deployment at N={big.run.n} would take {big.uncached:.1f} s instead of '
        f'{big.seconds:.1f} s. Charging every hook tool call a round trip, as this benchmark did '
        "before it followed Juju's source, gives "
        + ', '.join(f'{c.every_call:.1f} s at N={c.run.n}' for c in replays)
        + f'. Not charged: building each hook\'s context, about {CONTEXT_CALLS} more API calls '
        'a hook, the same for every hook; on the critical path that would add '
        + ', '.join(f'{c.context:.1f} s at N={c.run.n}' for c in replays)
        + f' ({_ms(CALL_LATENCY)} a round trip).')


def summary_tables(inp, inp_ops, replays):
    """cost.md's summary tables by marker name."""
    return {'deploy': summary_deploy_table(inp), 'operations': summary_operations_table(inp_ops),
            'convergence': convergence_table(replays)}


def markers(name):
    """The lines before and after summary table ``name``."""
    return f'<!-- bench:{name} -->', f'<!-- /bench:{name} -->'


def marked(name, text):
    """``text`` between the markers of summary table ``name``."""
    begin, end = markers(name)
    return f'{begin}\n{text}\n{end}'


def write_cost(path, report_text):
    """Write ``report_text`` into the cost.md at ``path`` after the line
    :data:`GENERATED`, keeping what stands above it. A file that does not
    exist yet gets that line and the report; one that exists without the
    line, or with it more than once, is an error rather than text lost."""
    head = ''
    if path.exists():
        text = path.read_text()
        if text.count(GENERATED + '\n') != 1:
            raise RuntimeError(f'{path} needs the line {GENERATED!r} once, above what the '
                               'benchmark writes')
        head = text.split(GENERATED + '\n')[0]
    path.write_text(f'{head}{GENERATED}\n\n{report_text}')


def growth(runs, operations):
    """Sentences on the deploy cost against N, and against wire format 1."""
    old = {n: hooks for (label, n), hooks in WIRE_FORMAT_1.items() if label == 'deploy'}
    off = [f'{hooks} at N={n}' for n, hooks in old.items() if hooks != 2 * n * n + 4 * n - 1]
    deploys = [r for r in runs if r.label == 'deploy']
    above = ', '.join(f'{r.hooks - sum(r.floor.values())} at N={r.n}' for r in deploys)
    shape = (f'exactly its floor, {HOOK_FORMULAS["deploy"][1]} hooks' if all(
        r.hooks == sum(r.floor.values()) for r in deploys) else
        f'its floor, {HOOK_FORMULAS["deploy"][1]} hooks, plus {above}')
    versus = ', '.join(f'{r.hooks - old[r.n]:+d} at N={r.n}' for r in deploys if r.n in old)
    big = deploys[-1]
    trips = sum(big.round_trips.values())
    sentences = [
        'Wire format 1 cost 2N² + 4N − 1 hooks to deploy'
        + (f' except {", ".join(off)}.' if off else '.'),
        f'Deploying costs {shape} ({versus} against wire format 1, which had no application '
        'bag to tell the leader of), '
        f'≈ {sum(big.tools.values()) / big.n ** 2:.1f}·N² hook tool calls at N={big.n}, '
        f"{big.origins['layer'] / big.n ** 2:.1f}·N² of them the layer's, and "
        f'{trips} controller round trips, {trips / big.hooks:.1f} a hook.']
    against = [f'{r.label} N={r.n}, {r.hooks} hooks (floor {sum(r.floor.values())}) against '
               f'{WIRE_FORMAT_1[r.label, r.n]}' for r in operations
               if (r.label, r.n) in WIRE_FORMAT_1]
    if against:
        sentences.append(
            'On settled units, against wire format 1: ' + '; '.join(against)
            + ". Wire format 2's floor is higher, as an app-changed cannot coalesce with a "
            "-changed about a unit, as wire format 1's answers in the leader's own bag did, and "
            'the leader is told of its own application-bag writes; in a re-key and a CA '
            "rotation each of the leader's application-bag writes (two, and three) reaches every "
            'unit; and a CA rotation retires the old CA, which wire format 1 never did.')
    return ' '.join(sentences)


def plot(runs, replays, path):
    """Hooks against N (log-log); the most calls and round trips in one hook
    against N, and the layer's reads with their bounds; and how long a
    deployment takes, serial and with every unit on its own machine (Part 3)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot, ticker

    figure, (hooks, calls, times) = pyplot.subplots(1, 3, figsize=(16.5, 4.5))
    ns = [r.n for r in runs]
    old = sorted((n, count) for (label, n), count in WIRE_FORMAT_1.items() if label == 'deploy')
    hooks.plot([n for n, _ in old], [count for _, count in old], 's--', color='grey',
               label='wire format 1')
    hooks.plot(ns, [sum(r.floor.values()) for r in runs], ':', color='black',
               label='fan-out floor')
    hooks.plot(ns, [r.hooks for r in runs], 'o-', label='wire format 2')
    hooks.set_yscale('log')
    hooks.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f'{value:g}'))
    hooks.set_ylabel('hooks run')
    hooks.set_title('Hooks to deploy N units and settle')
    series = [
        ('most calls in one leader hook', lambda r: r.most_calls['leader']),
        ("layer's reads in one leader hook", lambda r: r.layer_most('leader', ('read',))),
        ('most calls in one follower hook', lambda r: r.most_calls['follower']),
        ("layer's reads in one follower hook", lambda r: r.layer_most('follower', ('read',))),
        ('most round trips in one leader hook', lambda r: r.most_trips['leader']),
        ('most round trips in one follower hook', lambda r: r.most_trips['follower']),
    ]
    for label, value in series:
        calls.plot(ns, [value(r) for r in runs], 'o-' if 'calls' in label or 'reads' in label
                   else 'x-.', label=label)
    calls.plot(ns, [LEADER_READS + n for n in ns], '--', color='grey',
               label=f'bounds: {LEADER_READS} + N and {FOLLOWER_READS} reads')
    calls.plot(ns, [FOLLOWER_READS for _ in ns], '--', color='grey')
    calls.set_ylim(bottom=0)
    calls.set_ylabel('calls, round trips')
    calls.set_title('Hook tool calls and round trips in one hook')
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
    """Seconds to deploy against N: serial, concurrent at each latency, the
    busiest follower's busy time, and the concurrent time without the
    settings cache."""
    from matplotlib import ticker

    ns = [c.run.n for c in replays]
    axes.plot(ns, [c.serial for c in replays], 's--', color='grey',
              label=f'serial, {_ms(CALL_LATENCY)} a round trip')
    for latency in sorted(OTHER_LATENCIES + (CALL_LATENCY,)):
        axes.plot(ns, [c.seconds if latency == CALL_LATENCY else c.at[latency] for c in replays],
                  'o-', linewidth=2.5 if latency == CALL_LATENCY else 1,
                  label=f'concurrent, {_ms(latency)} a round trip')
    axes.plot(ns, [c.follower_busy for c in replays], ':', color='black',
              label=f'busiest follower busy, {_ms(CALL_LATENCY)}')
    axes.plot(ns, [c.uncached for c in replays], 'x-.', markersize=8,
              label=f'concurrent, {_ms(CALL_LATENCY)}, no settings cache')
    axes.set_yscale('log')
    axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f'{value:g}'))
    axes.set_ylabel('seconds')
    axes.set_title('Time to deploy N units, each on its own machine')


def report(inp, inp_ops, wall, same, replays, tables):
    """What the benchmark writes into docs/cost.md, with the summary ``tables``
    between their markers."""
    return '\n\n'.join([
        '## What the benchmark measured',
        'Generated by `tox -e bench` (benchmarks/converge.py); its docstring explains every '
        "column and floor, and the rule that says which hook tool calls cost a controller "
        "round trip. Every run follows Juju's rules as jujusim models them from Juju's "
        'source: the leader is told of its own application-bag writes (juju#20178), and a '
        "unit reads its peers' settings through its agent's settings cache. Counts come from "
        'the in-process executor. ' + same,
        growth(inp, inp_ops),
        'Claims the benchmark checks (it fails if one does not hold):\n\n'
        + '\n'.join(f'- {claim}' for claim in CLAIMS.values()),
        '## Part 1: deploy N units from nothing and settle',
        'Summary:',
        marked('deploy', tables['deploy']),
        'Every run:',
        hooks_table(inp, wall),
        "Hook tool calls, by whose and most in one hook (the layer's writes: relation-set, "
        "with charmhelpers' one-time `relation-set --help` probe):",
        calls_table(inp),
        'Controller round trips, by what they fetch or send (the rule of Part 3):',
        trips_table(inp),
        'Hooks by kind, observed (floor):',
        kinds_table(inp),
        'Hook tool calls by tool:',
        tools_table(inp),
        '## Part 2: operations on N settled units',
        'Summary:',
        marked('operations', tables['operations']),
        'Every run:',
        hooks_table(inp_ops, wall),
        calls_table(inp_ops),
        trips_table(inp_ops),
        kinds_table(inp_ops),
        tools_table(inp_ops),
        '## Part 3: how long a deployment takes, every unit on its own machine',
        'The deployments of Part 1 replayed as a Juju model runs them: each unit runs its own '
        'hooks in their recorded order, a hook starts once its unit is free and the hooks '
        'whose writes queued it have ended, and costs its in-process time plus '
        f'{_ms(CALL_LATENCY)} for each controller round trip its hook tool calls need (the '
        "docstring gives the rule from Juju's source; the replay at "
        + ' and '.join(_ms(latency) for latency in OTHER_LATENCIES) + ' shows how much the '
        "latency matters). Serial: the same costs one after another. Busy: a unit's hooks' "
        "costs added up. No settings cache: every read of a remote unit's settings a round "
        'trip. The in-process times are wall times on the machine that ran the benchmark, '
        'shared with other work, so the seconds vary from run to run; the round trips do not.',
        marked('convergence', tables['convergence']),
        f'The critical paths ({_ms(CALL_LATENCY)} a round trip), unit by unit:\n\n'
        + critical_paths(replays),
        bottleneck(replays),
    ]) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help=f'N in {QUICK_N} only')
    parser.add_argument('--max-n', type=int, help='largest N to run')
    parser.add_argument('--out', type=Path, help='where to write cost.md and cost.png '
                        '(default: docs/, or nowhere with --quick)')
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else REPO / 'docs')
    limit = args.max_n or float('inf')
    started = time.perf_counter()

    try:
        with tempfile.TemporaryDirectory(prefix='tls-bench-') as tmp:
            charm = build_charm(tmp)
            sub, inp, sub_ops, inp_ops = [], [], [], []
            for n in (QUICK_N[:2] if args.quick else SUBPROCESS_N):
                if n <= limit:
                    print(f'deploy N={n}, subprocess executor ...', flush=True)
                    sub.append(deploy(charm, 'subprocess', n, tmp))
            for n in SUBPROCESS_OPERATIONS_N:
                print(f'operations on {n} units, subprocess executor ...', flush=True)
                sub_ops += operations(charm, 'subprocess', n, tmp)
            with attributed_calls(tmp) as origins:
                for n in (QUICK_N if args.quick else INPROCESS_N):
                    if n <= limit:
                        print(f'deploy N={n}, in-process executor ...', flush=True)
                        inp.append(deploy(charm, 'inprocess', n, tmp, origins))
                for n in (SUBPROCESS_OPERATIONS_N if args.quick else OPERATIONS_N):
                    print(f'operations on {n} units, in-process executor ...', flush=True)
                    inp_ops += operations(charm, 'inprocess', n, tmp, origins)

        wall = {(r.label, r.n): r.seconds for r in sub + sub_ops}
        replays = [Convergence(r) for r in inp if r.n in CONVERGENCE_N]
        same = check_same(sub + sub_ops, inp + inp_ops)
        tables = summary_tables(inp, inp_ops, replays)
        text = report(inp, inp_ops, wall, same, replays, tables)
        print(text)
        check_claims(inp + inp_ops, replays)
    except ClaimFailed as failure:
        sys.exit(f'CLAIM FAILED: {failure}')
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_cost(out / 'cost.md', text)
        plot(inp, replays, out / 'cost.png')
        print(f'wrote {out / "cost.md"} and {out / "cost.png"}')
    print(f'benchmark wall time {time.perf_counter() - started:.0f} s')


if __name__ == '__main__':
    main()
