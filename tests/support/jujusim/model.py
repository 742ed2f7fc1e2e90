"""The simulated Juju model: one application, its units and one peer relation.

The model is the single source of truth for what Juju knows: units and their
hook queues, who is leader, leader settings, the committed relation settings
of every unit, which units each unit has seen join, and the application
config. Executors (see ``inprocess.py`` and ``subproc.py``) only run one hook
and report what its hook tools did; the model decides what that means.

Juju semantics modelled (peer relation ``<rel>:0``):

* Relation settings written by a hook are committed only if it succeeds. A
  commit that changes a unit's settings queues ``<rel>-relation-changed`` on
  every unit that has run ``-joined`` for it, unless one is still queued
  there (the relation resolver compares each member's settings version with
  the last it delivered, so changes coalesce: worker/uniter/relation/
  resolver.go); a write that changes no value bumps no version
  (state/settings.go) and so queues nothing.
* ``leader-set`` takes effect at once, even if the hook then fails (the
  leadership context writes to the controller at the call:
  worker/uniter/runner/context/leader.go), and is refused to non-leaders; a
  change queues ``leader-settings-changed`` on the other units (coalesced:
  the leadership resolver compares settings versions,
  worker/uniter/leadership/resolver.go). Leadership hooks are state driven as in Juju:
  ``leader-elected`` runs only if the unit still leads when its turn comes,
  ``leader-settings-changed`` only if it does not.
* ``-relation-created`` runs right after ``install``, before the leadership
  hooks, ``config-changed`` and ``start`` (juju/juju PR 11341; ops PR 259),
  and from then on the unit may read and write relation data (Juju hook
  reference, docs/reference/hook.md: "Starting from when
  *-relation-created is received, relation data can be read-written").
* During ``install`` the peer relation is not yet usable, and how that shows
  depends on the Juju version (:data:`JUJU`, chosen per model). Juju 2.9
  does not list it: ``relation-ids`` is empty, so ops' ``get_relation`` is
  None ("during 'install' the relation doesn't exist as exposed to the charm
  yet", a Juju developer in canonical/operator issue 583, 2021). Juju 3 lists
  it but refuses its data with "permission denied" (canonical/operator issue
  1452, 2024, and lp#2086837; documented in ops PR 2051: "peer relation data
  is not readable or writable during the Juju install event, even though the
  relation exists"); juju PR 18253 has relation-ids list peer relations
  always, "as they never have any members recorded and are always needed".
  Which 3.x release first listed it is not documented. See ``tools.py``.
* A unit sees (``relation-list``) the units whose ``-joined`` it has run; in
  ``-departed`` the departing unit is no longer listed (as charms.reactive
  notes of Juju >= 2.0), and afterwards it is gone from the list for good.
  It can read (``relation-get``) those units, itself, the remote unit of the
  running relation hook (so the departing unit in ``-departed``), and every
  unit it has seen depart: Juju keeps a unit's settings "accessible via
  relation-get for the complete lifetime of the relation" (hook reference,
  ``-relation-departed``; ``checkRemoteUnit`` in
  apiserver/facades/agent/uniter/uniter.go says the same), and a peer
  relation lives as long as the application. A unit it has
  not seen join is refused, as Juju refuses one that has not entered the
  relation's scope yet ("settings not found"): Juju would serve a unit that
  has, or one that left before this unit arrived, but a charm cannot tell
  those windows apart, so jujusim always takes the strict answer.
* The relation has one application bag (``relation-get/-set --app``; what
  the tools answer is in ``tools.py``). It belongs to the relation, not to a
  unit, so it outlives leaders and units. Only the leader writes it; the
  writes are committed with the unit-bag writes when the hook succeeds, and
  refused, failing the hook, if leadership ended during the hook (the
  controller takes application settings only with a current leadership
  token: juju PR 10572). The record's error is the uniter's for such a
  commit in the log of juju PR 20975 (a Juju 4 development build), "cannot
  apply changes: updating unit and application settings for ...: permission
  denied", which failed the hook there too.
* A commit that changes the application bag queues an app-changed hook,
  ``<rel>-relation-changed`` with $JUJU_REMOTE_APP set and $JUJU_REMOTE_UNIT
  empty (``Hook(name, None)``), on every live unit, whether or not it has run
  ``-joined`` for anyone, coalesced with one already queued. A unit's
  relation watcher follows the application bags of the counterpart
  applications, "for Peer relations, app" itself (``CounterpartApplications``
  in state/relationunit.go), and the uniter's relation resolver fires the
  hook whenever the bag's version differs from the last it delivered, before
  any -joined (worker/uniter/relation/resolver.go, ``nextHookForRelation``:
  "trigger all app hooks first", ``RemoteUnit: ""``); juju issue 20178 shows
  a single-unit application getting it. The leader gets it too, for its own
  writes (:data:`DEFAULT_SELF_NOTIFY`). A unit's relation state starts
  with no version, and a bag never written has version 0 (the resolver's
  "compatibility" note), so a unit added after the bag was first written gets
  one app-changed hook after ``start``, before its -joined hooks.
* A failed hook stays at the head of its unit's queue and is retried
  (worker/uniter/operation/runhook.go: a hook error leaves the operation
  pending, and the uniter runs it again before anything else).
* Relation settings are committed by the uniter after the hook process has
  exited 0 (worker/uniter/runner/context/context.go, ``Flush``: unit and
  application bag in one call, the application part under a leadership token
  re-checked then). By then charms.reactive has flushed unitdata, flags
  included. A commit that fails (the agent restarting between exit and
  commit, an API error) makes the uniter treat the hook as failed and retry
  it, unitdata already advanced: ``lose_commit`` and ``commit_loss`` model
  that (``HookRecord.commit_lost``). ``fail_next`` is the other failure, the
  hook process itself exiting non-zero, which flushes no unitdata.
* Remote units' settings are cached across hooks, per relation, by the unit's
  agent (worker/uniter/runner/context/cache.go, ``RelationCache``, kept by
  the context factory in contextfactory.go, ``getContextRelations``): before
  each hook the cache is pruned to the unit's current members; in a relation
  hook about unit Y, Y's entry is invalidated (-joined, -changed) or removed
  (-departed) (contextfactory.go, ``HookContext``); any other read of a
  member returns the
  copy this unit last read, however old. Settings of non-members (departed
  units) and the application bag are cached only within one hook, and the
  unit's own bag is always read fresh. ``restart_agent`` empties the cache.
* Leadership (worker/uniter/operation/leader.go,
  worker/uniter/leadership/resolver.go): a unit that becomes leader runs
  ``leader-elected``; there is no leader-deposed hook ("we should run a
  leader-deposed hook here, but we can't yet"): a deposed leader runs
  ``leader-settings-changed`` instead, as every non-leader does after its agent
  restarts (``restart_agent``). A leader being removed keeps its lease through
  its teardown: it runs its ``-departed`` hooks, ``stop`` and ``remove`` as
  leader, and another unit is elected only once it is gone.
* Storage: a charm whose metadata.yaml declares storage runs
  ``<name>-storage-attached`` for each store before ``install``
  (worker/uniter/storage/resolver.go, ``nextOp``: while attachments are
  pending and the charm is not installed, the uniter waits for them), when
  the peer relation is no more usable than in ``install``: the unit has not
  entered its scope (relation-created comes after install). ``queue`` can
  run one later too (``juju add-storage``), when the relation is usable.
* A hook the charm has no file for is skipped (recorded in ``skipped``), as
  Juju does (worker/uniter/operation/runhook.go logs "skipped ... hook
  (missing)" and the operation commits); relation membership still moves on.
* ``-relation-broken`` is never queued: the relation resolver skips it for
  a peer relation (worker/uniter/relation/resolver.go: "Since you cannot
  depart peer relations"), so a departing unit runs -departed for each peer,
  then stop and remove.
* Every record names the hooks that caused it (``HookRecord.causes``): the
  hooks whose writes queued it (relation-changed on the units that joined
  the writer, app-changed, and leader-settings-changed, where leader-set
  takes effect at the call, so even a hook that then failed is a cause),
  and for the ``-joined`` and ``-changed`` queued for a peer that has not
  run ``-relation-created`` yet, that hook of the peer: a unit enters the
  relation's scope once it has run it ("The relation-created hook always
  fires before joining", worker/uniter/relation/statetracker.go), and only
  then can the others join it. A hook queued again while it waits
  (coalesced) keeps every cause. What the operator queues has none:
  add_unit's setup hooks (its app-changed too), set_config's
  config-changed, ``queue``, the leadership hooks of ``move_leader`` and
  of a removal, the ``-departed`` hooks ``remove_unit`` queues at once, and
  what ``poke``, ``poke_app`` and ``poke_leader_settings`` fan out.
"""
import collections
import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

import yaml

import support

from . import tools

#: A queued hook: its name, the remote unit (relation hooks; None in
#: ``-relation-created`` and in the -changed of an application-bag change) and
#: the departing unit (``-relation-departed``).
Hook = collections.namedtuple('Hook', 'name remote departing')
Hook.__new__.__defaults__ = (None, None)

#: The Juju versions jujusim models, by the name a Model's ``juju`` argument
#: and $JUJUSIM_JUJU take: ``version`` is $JUJU_VERSION; ``peer_in_install``
#: says whether ``install`` already sees the peer relation (listed, data
#: refused: Juju 3) or not at all (Juju 2.9). Everything else is the same,
#: the application bag included (both are newer than 2.7.4, see tools.py).
#: The versions are real releases: 3.6.8 is the one of juju issue 20178, 2.9.44
#: what jujusim reported before it modelled Juju 3.
Juju = collections.namedtuple('Juju', 'version peer_in_install')
JUJU = {'2.9': Juju('2.9.44', False), '3': Juju('3.6.8', True)}
#: The Juju of a Model that names none: $JUJUSIM_JUJU, else this one, the
#: stricter (a layer that works there works on both).
ENV_JUJU = 'JUJUSIM_JUJU'
DEFAULT_JUJU = '3'
#: Whether the leader also gets the app-changed hook for its own
#: application-bag writes on the peer relation. Juju's source settles it: for
#: a peer relation the counterpart applications include the application itself
#: (state/relationunit.go, ``CounterpartApplications``), and the uniter's
#: relation resolver compares application-bag versions with no filter for the
#: writer (worker/uniter/relation/resolver.go), in 2.9 as in 3.6; juju issue
#: 20178 shows it, and juju PR 22525 documented it. Juju's older hook reference
#: said the leader is not told: the source wins. A Model's ``self_notify``
#: argument can still turn it off (the old, kinder rule), else
#: $JUJUSIM_SELF_NOTIFY ('1' yes, '0' no), else this default.
ENV_SELF_NOTIFY = 'JUJUSIM_SELF_NOTIFY'
DEFAULT_SELF_NOTIFY = True
# Seconds the hooks' clock runs ahead of the real one (Model.advance_clock),
# for the executors and site/sitecustomize.py, which names it; unset while 0.
ENV_CLOCK_OFFSET = support.site.ENV_CLOCK_OFFSET
#: The keys Juju itself writes into every unit's bag (its addresses).
JUJU_KEYS = frozenset({'private-address', 'ingress-address', 'egress-subnets'})
MODEL_NAME = 'jujusim'
MODEL_UUID = 'a5a1e1e0-1e55-4c0d-8e11-1e55c0de0000'
GOAL_STATE_SINCE = '2024-01-01 00:00:00Z'
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
_ANY_HOOK = '*'
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_YAML_PATH = os.path.dirname(os.path.dirname(os.path.abspath(yaml.__file__)))
# Files that belong to a deployed unit, never to the charm being copied.
_UNIT_STATE_FILES = ('.unit-state.db', '.juju-persistent-config', '.git')


class JujuSimError(Exception):
    """Base class of the errors the simulator raises."""


class HookRetriesExhausted(JujuSimError):
    """A hook kept failing; ``record`` is its last run."""

    def __init__(self, message, record):
        super().__init__(message)
        self.record = record


class UnsupportedToolCall(JujuSimError):
    """A hook called a hook tool in a way jujusim does not model."""

    def __init__(self, message, record):
        super().__init__(message)
        self.record = record


class NotSettled(JujuSimError):
    """``settle`` ran ``max_hooks`` hooks and hooks are still queued."""


@dataclass
class HookRecord:
    """What one hook run did, as Juju (and the test) saw it."""

    seq: int  #: position in the model's history, from 1
    unit: str
    hook: str
    remote: Optional[str]  #: $JUJU_REMOTE_UNIT (None where it is empty)
    app_change: bool  #: a -relation-changed for the application bag
    departing: Optional[str]  #: $JUJU_DEPARTING_UNIT
    attempt: int  #: 1 for the first run of this queued hook, 2 for its first retry ...
    ok: bool
    error: str  #: traceback or exit status when not ok
    output: str  #: the hook's stdout and stderr
    calls: collections.Counter  #: hook tool calls by tool name
    argv: list  #: every hook tool call, in order, as an argv list
    relation_written: dict  #: relation-set writes committed (None = deleted); {} if not ok
    app_written: dict  #: relation-set --app writes committed, the same way
    leader_written: dict  #: leader-set writes (they take effect even if not ok)
    flags: frozenset  #: reactive flags set on the unit after the hook
    logs: list  #: juju-log lines as (level, message)
    unsupported: list  #: argv of tool calls jujusim does not model
    seconds: float  #: wall time of the hook run
    #: seqs of the earlier hooks that caused this one, in the order they came
    #: (module docstring): a replay that runs every unit on its own machine
    #: starts it once they have all ended; () for what the operator queued.
    causes: tuple
    #: the hook exited 0 but Juju lost its relation-settings commit (lose_commit)
    commit_lost: bool = False
    #: the remote units whose settings the agent fetched from the controller
    #: for this hook, in order; every other read of a remote unit was served
    #: from the agent's settings cache (module docstring)
    fetched: list = None


class _Entry:
    """A queued hook, how often it has failed so far, and the seqs of the
    hooks that caused it (HookRecord.causes)."""

    __slots__ = ('hook', 'failures', 'causes')

    def __init__(self, hook, causes=()):
        self.hook = hook
        self.failures = 0
        self.causes = list(causes)

    def add_cause(self, cause):
        """Note that the hook ``cause`` (a seq; None: the operator) queued this one too."""
        if cause is not None and cause not in self.causes:
            self.causes.append(cause)


class _Unit:
    """What Juju knows about one unit."""

    def __init__(self, name, number, charm_dir):
        self.name = name
        self.number = number
        # Loopback addresses: distinct per unit, and usable on this machine.
        self.address = f'127.0.{number // 254}.{number % 254 + 1}'
        self.charm_dir = charm_dir
        self.state_db = os.path.join(charm_dir, '.unit-state.db')
        self.queue = []
        self.joined = set()  # remote units whose -relation-joined ran here
        self.created = False  # -relation-created ran here
        self.departed = set()  # remote units whose -relation-departed ran here
        self.bag = {'private-address': self.address,
                    'ingress-address': self.address,
                    'egress-subnets': self.address + '/32'}
        self.dying = False
        self.gone = False
        self.fail = None  # fail_next: a hook name, _ANY_HOOK or None
        self.lose = None  # lose_commit: a hook name, _ANY_HOOK or None
        # The agent's settings cache (module docstring): member -> the bag
        # this unit last read of it, or None where the next read is fresh.
        self.cache = {}
        self.status = ('maintenance', '')


class Model:
    """One Juju application with a peer relation; see the package docstring."""

    def __init__(self, charm_dir, relation, executor='inprocess', workdir=None, seed=None,
                 app=None, max_retries=5, juju=None, self_notify=None, commit_loss=0.0):
        if executor not in ('inprocess', 'subprocess'):
            raise ValueError(f'executor must be inprocess or subprocess, not {executor!r}')
        #: The name of the Juju modelled, a key of :data:`JUJU`.
        self.juju = juju or os.environ.get(ENV_JUJU) or DEFAULT_JUJU
        if self.juju not in JUJU:
            raise ValueError(f'juju must be one of {sorted(JUJU)} (argument or ${ENV_JUJU}), '
                             f'not {self.juju!r}')
        self._juju = JUJU[self.juju]
        if self_notify is None:
            setting = os.environ.get(ENV_SELF_NOTIFY) or str(int(DEFAULT_SELF_NOTIFY))
            if setting not in ('0', '1'):
                raise ValueError(f'${ENV_SELF_NOTIFY} must be 0 or 1, not {setting!r}')
            self_notify = setting == '1'
        #: Whether the leader gets app-changed for its own writes (ENV_SELF_NOTIFY).
        self.self_notify = bool(self_notify)
        self.clock_offset = 0  # seconds: see advance_clock
        self.executor = executor
        self.charm_dir = os.path.abspath(charm_dir)
        metadata = _read_yaml(os.path.join(self.charm_dir, 'metadata.yaml'))
        if relation not in (metadata.get('peers') or {}):
            raise ValueError(f'{relation} is not a peer relation in {self.charm_dir}/metadata.yaml')
        self.relation = relation
        self.relation_id = relation + ':0'
        self.app = app or metadata['name']
        self.max_retries = max_retries
        config_path = os.path.join(self.charm_dir, 'config.yaml')
        self._options = {}
        if os.path.exists(config_path):
            self._options = _read_yaml(config_path).get('options') or {}
        self._config = {}
        # A directory of its own, so that several models can share ``workdir``;
        # removed by close() unless it is under a workdir the caller gave.
        self.workdir = os.path.abspath(tempfile.mkdtemp(prefix='jujusim-', dir=workdir))
        self._remove_workdir = workdir is None
        self.tools_dir = _install_tools(os.path.join(self.workdir, 'hook-tools'))
        self._rng = random.Random(seed) if seed is not None else None
        if not 0 <= commit_loss < 1:
            raise ValueError(f'commit_loss is a probability below 1, not {commit_loss!r}')
        #: The chance that a hook which exited 0 loses its commit (lose_commit).
        self.commit_loss = commit_loss
        self._loss_rng = random.Random(seed)
        self._storage = sorted((metadata.get('storage') or {}))
        self._units = {}  # name -> _Unit, in order of unit number
        self._next_number = 0
        self._leader = None
        self._leader_settings = {}
        self._app_bag = {}
        self._app_version = 0  # commits that changed the application bag
        self._mid_hook_move = None  # (new leader, hook tool): see move_leader
        self._app_status = ('unknown', '')
        self._round_robin = -1
        self.history = []
        #: hooks Juju would not run: (unit, Hook, reason)
        self.skipped = []
        if executor == 'inprocess':
            from .inprocess import InProcessExecutor
            self._executor = InProcessExecutor()
        else:
            from .subproc import SubprocessExecutor
            self._executor = SubprocessExecutor()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Close the units' databases; remove the model's directory if it is temporary."""
        self._executor.close()
        if self._remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- state --------------------------------------------------------------

    @property
    def units(self):
        """Names of the live units (not being removed), in order of number."""
        return [u.name for u in self._units.values() if not u.dying]

    @property
    def leader(self):
        return self._leader

    @property
    def leader_settings(self):
        return dict(self._leader_settings)

    @property
    def config(self):
        """The application config as ``config-get --all`` shows it."""
        values = {name: option.get('default') for name, option in self._options.items()}
        values.update(self._config)
        return values

    @property
    def app_status(self):
        """(state, message) last set with ``status-set --application``."""
        return self._app_status

    def bag(self, unit):
        """Committed relation settings of ``unit``; KeyError once it is gone.

        A test asking for a gone unit's bag is most likely confused, so this
        refuses; hooks of the units that saw it depart can still read its last
        settings with ``relation-get``, as in Juju.
        """
        target = self._unit(unit)
        if target.gone:
            raise KeyError(f'{unit} is gone')
        return dict(target.bag)

    def app_bag(self):
        """Committed settings of the relation's application bag."""
        return dict(self._app_bag)

    def status(self, unit):
        """(state, message) last set by ``unit`` with ``status-set``."""
        return self._unit(unit).status

    def kv(self, unit):
        """The committed unit data (charmhelpers unitdata) of ``unit``."""
        return self._executor.read_kv(self._unit(unit), '')

    def flags(self, unit):
        """The reactive flags set on ``unit``."""
        return set(self._executor.read_kv(self._unit(unit), 'reactive.states.'))

    def pending(self):
        """Every queued hook as ``(unit, index, Hook)``, units in order of number."""
        return [(u.name, i, entry.hook) for u in self._units.values()
                for i, entry in enumerate(u.queue)]

    # -- what an operator (or Juju) does ------------------------------------

    def add_unit(self):
        """Add a unit and queue its setup and join hooks; return its name.

        The order is Juju's for a scaled-up peer application: the storage
        hooks (``<name>-storage-attached`` for each store the charm declares),
        install, relation-created, leader-elected (the first unit) or
        leader-settings-changed, config-changed, start; then for every live
        unit E, -joined and -changed for E here, and for the new unit on E.
        If the application bag was ever written, an app-changed hook comes
        after start (see the module docstring).
        """
        number = self._next_number
        self._next_number += 1
        name = f'{self.app}/{number}'
        unit_dir = os.path.join(self.workdir, f'unit-{self.app}-{number}')
        charm_dir = os.path.join(unit_dir, 'charm')
        shutil.copytree(self.charm_dir, charm_dir, symlinks=True,
                        ignore=shutil.ignore_patterns(*_UNIT_STATE_FILES))
        unit = _Unit(name, number, charm_dir)
        self._executor.add_unit(unit)
        others = [u for u in self._units.values() if not u.dying]
        self._units[name] = unit
        unit.queue = [_Entry(Hook(name)) for name in self._storage_hooks()]
        unit.queue += [_Entry(Hook('install')), _Entry(Hook(self._hook_name('created')))]
        if self._leader is None:
            self._leader = name
            unit.queue.append(_Entry(Hook('leader-elected')))
        else:
            unit.queue.append(_Entry(Hook('leader-settings-changed')))
        unit.queue += [_Entry(Hook('config-changed')), _Entry(Hook('start'))]
        if self._app_version:
            unit.queue.append(_Entry(Hook(self._hook_name('changed'))))
        for other in others:
            for hook in ('joined', 'changed'):
                unit.queue.append(_Entry(Hook(self._hook_name(hook), other.name)))
            for hook in ('joined', 'changed'):
                other.queue.append(_Entry(Hook(self._hook_name(hook), name)))
        return name

    def remove_unit(self, unit):
        """Start removing ``unit``: -departed on both sides, then stop and remove.

        Hooks for it that other units have not run yet are dropped (Juju
        compares states; a unit that left is never reported as joining). A
        leader keeps its lease through its teardown (module docstring): it
        runs its -departed hooks, stop and remove as leader, and another live
        unit is elected once it is gone.
        """
        leaving = self._live_unit(unit)
        leaving.dying = True
        joined, changed, departed = (self._hook_name(h) for h in ('joined', 'changed', 'departed'))
        for other in self._units.values():
            if other is leaving or other.gone:
                continue
            # A failed hook is retried as it is, so it stays; if it is a
            # -joined, the unit joins after all and must see -departed too.
            other.queue = [e for e in other.queue if e.failures or not (
                e.hook.remote == leaving.name and e.hook.name in (joined, changed))]
            if leaving.name in other.joined or any(
                    e.hook.remote == leaving.name for e in other.queue):
                other.queue.append(_Entry(Hook(departed, leaving.name, leaving.name)))
        leaving.queue = [e for e in leaving.queue
                         if e.failures or e.hook.name not in (joined, changed)]
        if self._mid_hook_move and leaving.name == self._mid_hook_move[0]:
            self._mid_hook_move = None
        remotes = leaving.joined.union(e.hook.remote for e in leaving.queue if e.hook.remote)
        for remote in sorted(remotes, key=self._number):
            leaving.queue.append(_Entry(Hook(departed, remote, leaving.name)))
        leaving.queue += [_Entry(Hook('stop')), _Entry(Hook('remove'))]

    def move_leader(self, unit, mid_hook=None):
        """Make ``unit`` the leader; queue leader-elected on it, and
        leader-settings-changed on the deposed leader (Juju has no
        leader-deposed hook: module docstring).

        Without ``mid_hook`` leadership moves now, between hooks, so the next
        hooks of the old leader run as a non-leader's. With a hook tool name
        (say ``'relation-set'``) it moves while the current leader runs its
        next hook, just before that hook's first call of the tool (at its end
        if it makes none), as a lease can run out while a hook runs: Juju
        checks leadership when a tool needs it, so the calls from there on
        are a non-leader's, and application-bag writes staged before are
        refused at commit (see the module docstring and ``tools.py``).
        """
        new = self._live_unit(unit)
        if mid_hook is not None:
            if self._leader in (None, new.name):
                raise ValueError(f'{unit} cannot take leadership from {self._leader} mid-hook')
            self._mid_hook_move = (new.name, mid_hook)
            return
        self._mid_hook_move = None
        self._set_leader(new)

    def _set_leader(self, new):
        if self._leader == new.name:
            return
        old = self._units.get(self._leader)
        self._leader = new.name
        if old is not None and not old.dying:
            self._queue_once(old, Hook('leader-settings-changed'))
        self._queue_once(new, Hook('leader-elected'))

    def advance_clock(self, **delta):
        """Move the hooks' clock ahead (``days=61``, as datetime.timedelta
        takes it): in later hooks, in process or as processes, time.time()
        runs that far ahead of the real time (site/sitecustomize.py). Tests
        never sleep."""
        self.clock_offset += int(datetime.timedelta(**delta).total_seconds())

    def set_config(self, **values):
        """Set (or, with None, reset) config options; queue config-changed if it changed."""
        types = {'string': (str,), 'int': (int,), 'float': (int, float), 'boolean': (bool,)}
        for key, value in values.items():
            if key not in self._options:
                raise ValueError(f'unknown config option {key!r}')
            expected = types.get(self._options[key].get('type', 'string'), (object,))
            wrong_bool = isinstance(value, bool) and bool not in expected
            if value is not None and (wrong_bool or not isinstance(value, expected)):
                raise TypeError('config option {!r} is {}, not {!r}'.format(
                    key, self._options[key].get('type'), value))
        before = self.config
        for key, value in values.items():
            if value is None:
                self._config.pop(key, None)
            else:
                self._config[key] = value
        if self.config != before:
            for unit in self._units.values():
                if not unit.dying:
                    self._queue_once(unit, Hook('config-changed'))

    def queue(self, unit, hook, remote=None):
        """Queue ``hook`` (e.g. update-status) on ``unit``.

        Of this relation's hooks only ``-relation-changed`` for a unit that
        ``unit`` has joined can be queued: the others would break Juju's
        guarantees about membership.
        """
        target = self._unit(unit)
        if target.gone:
            raise ValueError(f'{unit} is gone')
        if hook.startswith(self.relation + '-relation-'):
            if hook != self._hook_name('changed') or remote not in target.joined:
                raise ValueError('only {} for a unit {} has joined can be queued'
                                 .format(self._hook_name('changed'), unit))
        elif remote is not None:
            raise ValueError(f'{hook} is not a hook of relation {self.relation}')
        target.queue.append(_Entry(Hook(hook, remote)))

    def poke(self, unit, settings):
        """Write ``settings`` into ``unit``'s bag from outside its hooks, as
        an operator's ``juju exec --unit <unit> -- relation-set`` does:
        committed at once (a None value deletes the key) and fanned out as
        relation-changed to the units that joined it."""
        self._commit_bag(self._live_unit(unit), settings)

    def poke_leader_settings(self, settings):
        """Write leader settings from outside any hook, as an operator's
        ``juju exec --unit <leader> -- leader-set`` does."""
        self._write_leader_settings(settings)

    def poke_app(self, settings):
        """Write ``settings`` into the application bag from outside any hook,
        as an operator's ``juju exec --unit <leader> -- relation-set --app``
        does: committed at once (a None value deletes the key) and fanned out
        as app-changed, like a leader's hook writes."""
        if self._leader is None:
            raise ValueError('there is no leader to write the application bag')
        self._commit_app(settings)

    def fail_next(self, unit, hook_name=None):
        """Make the next hook run on ``unit`` (named ``hook_name``, if given) fail.

        It fails at its very end, after all its handlers ran, when it commits
        its unit data; its relation settings are discarded and it is retried.
        """
        self._unit(unit).fail = hook_name or _ANY_HOOK

    def lose_commit(self, unit, hook_name=None):
        """Make the next hook run on ``unit`` (named ``hook_name``, if given)
        exit 0 and then lose its relation-settings commit, as when the agent
        restarts between the hook's exit and the commit (module docstring):
        its unit data, flags included, are kept; its unit- and
        application-bag writes are discarded; Juju retries it."""
        self._unit(unit).lose = hook_name or _ANY_HOOK

    def restart_agent(self, unit):
        """Restart ``unit``'s agent between hooks: its settings cache is
        emptied, and a non-leader runs leader-settings-changed, as the
        uniter's leadership resolver does at start (module docstring)."""
        target = self._live_unit(unit)
        target.cache = {}
        if self._leader != target.name:
            self._queue_once(target, Hook('leader-settings-changed'))

    def duplicate(self, unit, index):
        """Queue a second copy of the hook at ``index`` right after it."""
        queue = self._unit(unit).queue
        queue.insert(index + 1, _Entry(queue[index].hook, queue[index].causes))

    # -- running hooks ------------------------------------------------------

    def settle(self, max_hooks=10000, seed=None):
        """Run queued hooks until no unit has any; return their records.

        Each unit runs its hooks in queue order. Units take turns in order of
        number (round robin), or, with a seed (here or the model's), a random
        unit with queued hooks goes next. Raises :class:`NotSettled` after
        ``max_hooks`` hooks.
        """
        rng = random.Random(seed) if seed is not None else self._rng
        records = []
        for _ in range(max_hooks):
            ready = [u for u in self._units.values() if u.queue]
            if not ready:
                return records
            if rng is not None:
                unit = rng.choice(ready)
            else:
                unit = next((u for u in ready if u.number > self._round_robin), ready[0])
                self._round_robin = unit.number
            record = self._run(unit, 0)
            if record is not None:
                records.append(record)
        if any(u.queue for u in self._units.values()):
            raise NotSettled(f'{max_hooks} hooks ran and these are still queued: {self.pending()}')
        return records

    def run(self, unit, index=0):
        """Run the hook at ``index`` of ``unit``'s queue; return its record.

        Running a hook other than the first models Juju delivering, say, a
        relation-changed before a leader-settings-changed queued earlier.
        Orders Juju guarantees cannot be broken: hooks of one remote unit stay
        in order, and nothing passes install, relation-created, start, stop or
        remove. Returns None if Juju would not run the hook (no hook file, or
        leadership moved on since it was queued).
        """
        target = self._unit(unit)
        entry = target.queue[index]
        barriers = ('install', 'start', 'stop', 'remove', self._hook_name('created'),
                    *self._storage_hooks())
        for earlier in target.queue[:index]:
            if (earlier.hook.name in barriers or entry.hook.name in barriers
                    or (entry.hook.remote and earlier.hook.remote == entry.hook.remote)):
                raise ValueError(f'Juju never runs {entry.hook} before {earlier.hook} on {unit}')
        return self._run(target, index)

    def _run(self, unit, index):
        entry = unit.queue.pop(index)
        hook = entry.hook
        hook_path = os.path.join(unit.charm_dir, 'hooks', hook.name)
        reason = None
        if hook.name == 'leader-elected' and self._leader != unit.name:
            reason = 'no longer the leader'
        elif hook.name == 'leader-settings-changed' and self._leader == unit.name:
            reason = 'the leader is not told about leader settings'
        elif not (os.path.isfile(hook_path) and os.access(hook_path, os.X_OK)):
            reason = 'the charm has no such hook'
            self._transition(unit, hook)
        if reason is not None:
            self.skipped.append((unit.name, hook, reason))
            self._note_gone(unit)
            return None

        fail = unit.fail in (_ANY_HOOK, hook.name)
        if fail:
            unit.fail = None
        lose = unit.lose in (_ANY_HOOK, hook.name)
        if lose:
            unit.lose = None
        seq = len(self.history) + 1
        move = self._mid_hook_move if unit.name == self._leader else None
        self._prepare_cache(unit, hook)
        spec = HookSpec(unit, hook, hook_path, self._environment(unit, hook, seq),
                        self._context(unit, hook, move and move[1]), fail)
        started = time.perf_counter()
        result = self._executor.run(spec)
        seconds = time.perf_counter() - started
        if move is not None:  # it happened during the hook, before its commit
            self._mid_hook_move = None
            self._set_leader(self._units[move[0]])
        lose = lose or (self.commit_loss and self._loss_rng.random() < self.commit_loss)
        record = self._apply(unit, entry, result, seq, seconds, bool(lose), spec.context['bags'])
        self._note_gone(unit)
        if record.unsupported:
            raise UnsupportedToolCall(f'{unit.name} {hook.name} made hook tool calls jujusim does '
                                      f'not model: {record.unsupported}', record)
        if not record.ok and entry.failures > self.max_retries:
            raise HookRetriesExhausted(f'{unit.name} {hook.name} failed {entry.failures} times; '
                                       f'last error:\n{record.error}', record)
        return record

    def _note_gone(self, unit):
        """A dying unit whose queue is empty is gone; a leader that goes
        hands its lease to another live unit then (module docstring)."""
        unit.gone = unit.dying and not unit.queue
        if unit.gone and self._leader == unit.name:
            self._elect()

    def _apply(self, unit, entry, result, seq, seconds, lose, bags):
        """Make the effects of a finished hook real and record it; with
        ``lose``, a hook that exited 0 loses its relation-settings commit;
        ``bags``: the remote settings the hook was shown."""
        staged, app_staged, leader_written, logs, unsupported = {}, {}, {}, [], []
        fetched = []
        for event in result.events:
            if event.get('unsupported'):
                unsupported.append(event['argv'])
            if event['rc'] != 0:
                continue
            if 'read' in event and self._cache_read(unit, event['read'], bags, fetched):
                fetched.append(event['read'])
            staged.update(event.get('relation_set', {}))
            app_staged.update(event.get('app_set', {}))
            leader_written.update(event.get('leader_set', {}))
            if 'log' in event:
                logs.append(tuple(event['log']))
            if 'status' in event:  # status-set takes effect at once
                application, state, message = event['status']
                if application:
                    self._app_status = (state, message)
                else:
                    unit.status = (state, message)
        if leader_written:  # leader-set takes effect at once, even if the hook fails
            self._write_leader_settings(leader_written, seq)
        ok, error = result.ok, result.error
        if ok and app_staged and self._leader != unit.name:
            ok, error = False, ('cannot apply changes: updating unit and application settings '
                                f'for "{unit.name}": permission denied')
        commit_lost = ok and lose
        if commit_lost:
            ok, error = False, ('jujusim: the hook exited 0 and its relation settings were not '
                                'committed (Model.lose_commit); unit data was kept')
        if ok:
            self._transition(unit, entry.hook)
            if entry.hook.name == self._hook_name('created'):
                self._cause_joins(unit, seq)
            self._commit_app(app_staged, seq)
            self._commit_bag(unit, staged, seq)
        else:
            entry.failures += 1
            unit.queue.insert(0, entry)
        record = HookRecord(
            seq=seq, unit=unit.name, hook=entry.hook.name, remote=entry.hook.remote,
            app_change=entry.hook == Hook(self._hook_name('changed')),
            departing=entry.hook.departing,
            attempt=entry.failures + (1 if ok else 0),
            ok=ok, error=error, output=result.output,
            calls=collections.Counter(event['argv'][0] for event in result.events),
            argv=[event['argv'] for event in result.events],
            relation_written=staged if ok else {}, app_written=app_staged if ok else {},
            leader_written=leader_written,
            flags=frozenset(self._executor.read_kv(unit, 'reactive.states.')),
            logs=logs, unsupported=unsupported, seconds=seconds, causes=tuple(entry.causes),
            commit_lost=commit_lost, fetched=fetched)
        self.history.append(record)
        return record

    def _transition(self, unit, hook):
        """Update relation membership after ``hook`` completed on ``unit``."""
        if hook.name == self._hook_name('created'):
            unit.created = True
        elif hook.name == self._hook_name('joined'):
            unit.joined.add(hook.remote)
        elif hook.name == self._hook_name('departed') and hook.remote in unit.joined:
            unit.joined.discard(hook.remote)
            unit.departed.add(hook.remote)
            unit.queue = [e for e in unit.queue if e.hook.remote != hook.remote
                          or e.hook.name == hook.name]

    def _cause_joins(self, unit, seq):
        """``unit`` entered the relation with hook ``seq``: that caused the
        -joined and -changed for it still queued on the other units."""
        join = (self._hook_name('joined'), self._hook_name('changed'))
        for other in self._units.values():
            for entry in other.queue:
                if entry.hook.remote == unit.name and entry.hook.name in join:
                    entry.add_cause(seq)

    def _commit_app(self, changes, cause=None):
        """Commit application-bag writes; queue app-changed (module docstring),
        caused by hook ``cause`` (None: the operator)."""
        bag = tools.merged(self._app_bag, changes)
        if bag == self._app_bag:
            return
        self._app_bag = bag
        self._app_version += 1
        for unit in self._units.values():
            if not unit.dying and (self.self_notify or unit.name != self._leader):
                self._queue_once(unit, Hook(self._hook_name('changed')), cause)

    def _commit_bag(self, unit, staged, cause=None):
        """Commit relation-set writes; tell the units that joined ``unit``,
        caused by hook ``cause`` (None: the operator)."""
        bag = tools.merged(unit.bag, staged)
        if bag == unit.bag:
            return
        unit.bag = bag
        departed = self._hook_name('departed')
        for other in self._units.values():
            if other is unit or other.gone or unit.name not in other.joined:
                continue
            if any(e.hook.name == departed and e.hook.remote == unit.name for e in other.queue):
                continue
            self._queue_once(other, Hook(self._hook_name('changed'), unit.name), cause)

    def _write_leader_settings(self, changes, cause=None):
        """Change leader settings; queue leader-settings-changed on the other
        units, caused by hook ``cause`` (None: the operator)."""
        settings = tools.merged(self._leader_settings, changes)
        if settings == self._leader_settings:
            return
        self._leader_settings = settings
        for unit in self._units.values():
            if not unit.dying and unit.name != self._leader:
                self._queue_once(unit, Hook('leader-settings-changed'), cause)

    def _elect(self):
        """Pick a new leader among the live units (lowest number, or by seed)."""
        candidates = [u for u in self._units.values() if not u.dying]
        if not candidates:
            self._leader = None
            return
        chosen = self._rng.choice(candidates) if self._rng is not None else candidates[0]
        self._leader = chosen.name
        self._queue_once(chosen, Hook('leader-elected'))

    # -- what a hook sees ---------------------------------------------------

    def _environment(self, unit, hook, seq):
        """The environment Juju gives a hook (executors add their own).

        In every relation hook Juju sets $JUJU_REMOTE_UNIT, empty in those
        about no unit (``-relation-created``), and $JUJU_REMOTE_APP; it sets
        $JUJU_DEPARTING_UNIT only in ``-relation-departed`` (``HookVars`` in
        juju/juju worker/uniter/runner/context/context.go; the environment of
        a relation-created hook in canonical/operator PR 218 shows
        ``JUJU_REMOTE_UNIT=`` and ``JUJU_REMOTE_APP=<application>`` for a peer
        relation). So ``hookenv.remote_unit()`` is '' there, not None.
        """
        env = {
            'JUJU_UNIT_NAME': unit.name,
            'JUJU_HOOK_NAME': hook.name,
            'JUJU_DISPATCH_PATH': 'hooks/' + hook.name,
            'JUJU_CHARM_DIR': unit.charm_dir,
            'CHARM_DIR': unit.charm_dir,
            'JUJU_CONTEXT_ID': f'{unit.name}-{hook.name}-{seq}',
            'JUJU_MODEL_NAME': MODEL_NAME,
            'JUJU_MODEL_UUID': MODEL_UUID,
            'JUJU_PRINCIPAL_UNIT': '',
            'JUJU_MACHINE_ID': str(unit.number),
            'JUJU_AVAILABILITY_ZONE': '',
            'JUJU_API_ADDRESSES': '127.0.0.1:17070',
            'JUJU_VERSION': self._juju.version,
            'UNIT_STATE_DB': unit.state_db,
            'PATH': os.pathsep.join([self.tools_dir, os.path.dirname(sys.executable),
                                     SYSTEM_PATH]),
            'LANG': 'C.UTF-8',
            'APT_LISTCHANGES_FRONTEND': 'none',
            'DEBIAN_FRONTEND': 'noninteractive',
        }
        for name in ('HOME', 'TMPDIR'):
            if name in os.environ:
                env[name] = os.environ[name]
        if self.clock_offset:
            env[ENV_CLOCK_OFFSET] = str(self.clock_offset)
        if hook.name.startswith(self.relation + '-relation-'):
            env['JUJU_RELATION'] = self.relation
            env['JUJU_RELATION_ID'] = self.relation_id
            env['JUJU_REMOTE_APP'] = self.app
            env['JUJU_REMOTE_UNIT'] = hook.remote or ''
            if hook.departing:
                env['JUJU_DEPARTING_UNIT'] = hook.departing
        return env

    def _members(self, unit, hook):
        """The units ``unit``'s relation-list names during ``hook``."""
        members = set(unit.joined)
        if hook.name == self._hook_name('joined'):
            members.add(hook.remote)
        elif hook.name == self._hook_name('departed'):
            members.discard(hook.remote)
        return members

    def _prepare_cache(self, unit, hook):
        """What the agent does to its settings cache before ``hook``
        (module docstring): prune it to the members, then forget the remote
        unit of a relation hook (invalidated, or removed when it departs)."""
        unit.cache = {name: unit.cache.get(name) for name in self._members(unit, hook)}
        if hook.name.startswith(self.relation + '-relation-') and hook.remote in unit.cache:
            unit.cache[hook.remote] = None

    def _cache_read(self, unit, name, bags, fetched):
        """``unit`` read ``name``'s settings from ``bags``: a member's stay
        cached until invalidated; anyone else's only for the hook (``fetched``
        this hook so far). Return whether the agent had to fetch them from
        the controller."""
        if name in unit.cache:
            miss = unit.cache[name] is None
            unit.cache[name] = bags.get(name)
            return miss
        return name not in fetched

    def _context(self, unit, hook, depose_before=None):
        """The snapshot the hook tools answer from (see tools.HookTools);
        ``depose_before``: the tool before which leadership ends (move_leader).
        A member's bag is the copy this unit's agent has cached, if any."""
        relation_hook = hook.name.startswith(self.relation + '-relation-')
        members = self._members(unit, hook)
        readable = members | unit.departed
        if relation_hook and hook.remote:
            readable.add(hook.remote)
        bags = {name: dict(self._units[name].bag) for name in readable}
        bags.update((name, dict(cached)) for name, cached in unit.cache.items()
                    if cached is not None)
        bags[unit.name] = dict(unit.bag)
        live = [u for u in self._units.values() if not u.gone]
        # Before relation-created the unit is not in the relation's scope.
        install = (hook.name == 'install' or hook.name in self._storage_hooks()
                   and not unit.created) and self._juju.peer_in_install
        return {
            'unit': unit.name,
            'relation': self.relation,
            'relation_id': self.relation_id,
            'hook_relation_id': self.relation_id if relation_hook else None,
            'remote': hook.remote,
            'listed': unit.created or hook.name == self._hook_name('created') or install,
            'data_denied': install,
            'members': sorted(members),
            'bags': bags,
            'app': self.app,
            'app_bag': dict(self._app_bag),
            'leader': self._leader == unit.name,
            'depose_before': depose_before,
            'leader_settings': dict(self._leader_settings),
            'config': self.config,
            'address': unit.address,
            'goal_state': {
                'units': {u.name: {'status': 'dying' if u.dying else 'active',
                                   'since': GOAL_STATE_SINCE} for u in live},
                'relations': {self.relation: {
                    u.name: {'status': 'joined', 'since': GOAL_STATE_SINCE}
                    for u in live if u is not unit and not u.dying}},
            },
            'yaml_path': _YAML_PATH,
        }

    # -- helpers ------------------------------------------------------------

    def _hook_name(self, kind):
        return f'{self.relation}-relation-{kind}'

    def _storage_hooks(self):
        """The storage-attached hooks a unit runs before ``install``."""
        return [f'{name}-storage-attached' for name in self._storage]

    def _number(self, name):
        return self._units[name].number

    def _unit(self, name):
        try:
            return self._units[name]
        except KeyError:
            raise ValueError(f'no unit {name!r}') from None

    def _live_unit(self, name):
        unit = self._unit(name)
        if unit.dying:
            raise ValueError(f'{name} is being removed')
        return unit

    def _queue_once(self, unit, hook, cause=None):
        """Queue ``hook`` unless the same hook is already waiting (Juju
        coalesces); either way hook ``cause`` (a seq, or None) is one of its causes."""
        entry = next((entry for entry in unit.queue if entry.hook == hook), None)
        if entry is None:
            entry = _Entry(hook)
            unit.queue.append(entry)
        entry.add_cause(cause)


#: What an executor gets to run one hook.
HookSpec = collections.namedtuple('HookSpec', 'unit hook hook_path env context fail')

#: What an executor reports: ``events`` are the hook tool events (tools.py).
HookResult = collections.namedtuple('HookResult', 'ok error output events')


def kv_rows(conn, prefix):
    """The rows of a unitdata database whose keys start with ``prefix``, decoded."""
    rows = conn.execute('select key, data from kv').fetchall()
    return {key[len(prefix):]: json.loads(data) for key, data in rows if key.startswith(prefix)}


def _read_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def _install_tools(directory):
    """Create ``directory`` with every hook tool name linked to one script.

    The script runs ``python -S``: skipping ``site`` saves a few milliseconds
    per call and keeps the hooks' sitecustomize (which imports charmhelpers)
    out of the tool processes.
    """
    if any(c.isspace() for c in sys.executable):
        raise JujuSimError('hook tools need a Python path without spaces for their #! line, '
                           f'not {sys.executable!r}')
    os.makedirs(directory)
    script = os.path.join(directory, 'jujusim-hook-tool')
    with open(script, 'w') as handle:
        handle.write(f'#!{sys.executable} -S\n'
                     '"""A jujusim hook tool: every tool name here links to this file."""\n'
                     'import sys\n'
                     f'sys.path.insert(0, {_PACKAGE_PARENT!r})\n'
                     'from jujusim.tools import main\n'
                     'main()\n')
    os.chmod(script, 0o755)
    for name in tools.TOOL_NAMES:
        os.symlink('jujusim-hook-tool', os.path.join(directory, name))
    return directory
