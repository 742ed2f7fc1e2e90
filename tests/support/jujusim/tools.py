"""The fake Juju hook tools, shared by both executors.

A hook talks to Juju only through hook tools (``relation-get``,
``leader-set``, ``juju-log`` ...). :class:`HookTools` answers them for one hook
run from a *context*: a plain dict snapshot the model takes before the hook
(who the unit is, what it may see, committed relation data, leader settings,
config ...). Every call becomes an *event* dict (argv, exit code, stderr and
its effect, such as staged relation settings), which the model applies when
the hook is over: relation settings only if the hook succeeded;
leader settings, status and log lines always.

The peer relation as the relation tools show it, by the context's flags:

* ``listed`` false (Juju 2.9 ``install``): ``relation-ids`` does not list it
  and ``-r <rel>:0`` is "relation not found" (exit 2, which charmhelpers'
  ``relation_get`` turns into None).
* ``listed`` and ``data_denied`` (Juju 3 ``install``): ``relation-ids``
  lists it and ``relation-list -r`` answers from the hook context (Juju's
  relation-list reads the context's member list and asks the controller
  nothing: worker/uniter/runner/jujuc/relation-list.go), which is empty
  before any ``-joined``. ``relation-get`` on it fails with Juju's "ERROR
  permission denied", exit 1 (the wording ops reports as ModelError:
  canonical/operator issues 1452 and 551). ``relation-set`` reads the unit's
  settings before it writes and fails with that error annotated, "ERROR
  cannot read relation settings: permission denied" (jujuc relation-set.go,
  ``Run``). Its ``--help`` still answers: that needs no relation.
* ``listed`` only: the relation is usable.

The application bag of the peer relation (``relation-get --app [-r RID]
<key|-> APP``, ``relation-set --app [-r RID] --file F``), as jujuc does it
(worker/uniter/runner/jujuc/relation-get.go and relation-set.go, Juju 3.6):

* Every unit may read it (for a non-leader on a peer relation since Juju
  2.7.4: juju PR 11289, lp#1865229). The leader reads its hook context, so
  it sees this hook's own ``relation-set --app`` writes
  (``mustReadSettingsFromController``: "If we are the leader for the
  requested app, read from local uniter context"; the QA of juju PR 11233
  shows the value just written); any other unit reads the committed bag from
  the controller. With ``--app`` a unit name stands for its application;
  without a name, ``--app`` means $JUJU_REMOTE_APP.
* ``relation-get`` without a unit uses $JUJU_REMOTE_UNIT; where that is empty
  in a relation hook (``-relation-created``, or the ``-relation-changed`` of
  an application-bag change) Juju reads the bag of $JUJU_REMOTE_APP instead
  (``determineUnitOrAppName``), for a peer relation this application's own.
  Outside relation hooks, without a name: "no unit or application
  specified", exit 2, as an Init error.
* Only the leader may write it, checked when ``relation-set --app`` runs:
  "ERROR cannot write relation settings", exit 1, before the relation data
  is read; during Juju 3's ``install`` the leader gets "ERROR cannot read
  relation application settings: permission denied" (relation-set.go
  ``Run``). The writes are staged like unit-bag writes (``app_set`` events);
  '' or null deletes a key.
* Leadership is asked for at call time (``ensureLeader`` in
  worker/uniter/runner/context/leader.go claims it on every check and, once
  refused, stays a minion for the rest of the hook), so it can end in the
  middle of a hook: the context's ``depose_before`` names the hook tool before
  whose first call it ends (``Model.move_leader(..., mid_hook=)``). From that
  call on ``is-leader`` is false, ``leader-set``, ``status-set
  --application`` and ``relation-set --app`` are refused, and ``relation-get
  --app`` reads the committed bag. The event of that call carries
  ``deposed`` so that later tool processes replay it.

The ``subprocess`` executor runs the tools as real processes: every tool name
on the hook's PATH is a link to one small script that calls :func:`main`. The
context and the events of the running hook live in one file named by
``$JUJUSIM_CONTEXT``: the marshalled context, then one marshalled event per
call so far, appended by each tool process. The ``inprocess`` executor keeps a
:class:`HookTools` object and calls :meth:`HookTools.call` directly.

Tool processes start often (dozens per hook, with ``python -S``), so this
module imports only ``os``, ``sys``, ``marshal`` and json's C string encoder;
``import json`` alone would cost several milliseconds per call (it pulls in
``re`` and ``enum``), so JSON output is written by :func:`dumps`. ``yaml`` is
imported only by ``relation-set --file``.

Argument forms: exactly those charmhelpers 1.2.1 (``charmhelpers.core.hookenv``)
produces are accepted. Anything else is not a Juju error but a gap in this
double: it exits 1 with a message naming the tool and its argv, and the event
is marked ``unsupported`` so the model raises even if the charm ignores the
exit code. Juju's own errors keep Juju's exit codes: 2 for a bad command line
(charmhelpers' ``relation_get`` turns that into ``None``), 1 otherwise.
"""
import marshal
import os
import sys

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # a Python built without the C accelerator
    from json.encoder import py_encode_basestring_ascii as _quote

#: Every hook tool of Juju 2.9. All are put on PATH so that a call never
#: silently degrades into charmhelpers' "tool missing" fallbacks. Only the
#: ones the layer, charms.reactive, charmhelpers and the charms here call have
#: a ``_tool_`` method below; any other fails as unsupported, and the model
#: raises UnsupportedToolCall for it.
TOOL_NAMES = (
    'action-fail', 'action-get', 'action-log', 'action-set', 'add-metric',
    'application-version-set', 'close-port', 'config-get', 'credential-get',
    'goal-state', 'is-leader', 'juju-log', 'juju-reboot', 'k8s-raw-get',
    'k8s-raw-set', 'k8s-spec-get', 'k8s-spec-set', 'leader-get', 'leader-set',
    'network-get', 'open-port', 'opened-ports', 'payload-register',
    'payload-status-set', 'payload-unregister', 'pod-spec-get', 'pod-spec-set',
    'relation-get', 'relation-ids', 'relation-list', 'relation-set',
    'resource-get', 'state-delete', 'state-get', 'state-set', 'status-get',
    'status-set', 'storage-add', 'storage-get', 'storage-list', 'unit-get',
)

LOG_LEVELS = ('TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
WORKLOAD_STATES = ('maintenance', 'blocked', 'waiting', 'active')
ENV_CONTEXT = 'JUJUSIM_CONTEXT'
#: Value of $JUJUSIM_CONTEXT during in-process hooks, where tools are answered
#: without processes; a tool process started anyway must not guess.
INPROCESS = 'inprocess'

RELATION_SET_HELP = """\
Usage: relation-set [options] key=value [key=value ...]

Summary:
set relation settings

Options:
--app  (= false)
    pick whether you are setting "application" settings or "unit" settings
--file  (= )
    file containing key-value pairs
--format (= "")
    deprecated format flag
-r, --relation  (= %s)
    specify a relation by id

Details:
"relation-set" writes the local unit's settings for some relation. If no
relation is specified then the current relation is used. The setting values
are not inspected and are stored as strings. Setting an empty string causes
the setting to be removed.
"""


def dumps(value):
    """Serialize ``value`` as compact JSON with sorted keys (as Juju does)."""
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return '{' + ','.join(_quote(k) + ':' + dumps(v)
                              for k, v in sorted(value.items())) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(dumps(v) for v in value) + ']'
    raise TypeError(f'cannot serialize {value!r}')


class ToolError(Exception):
    """A hook tool call that Juju itself would refuse (exit code ``rc``)."""

    def __init__(self, rc, message):
        super().__init__(message)
        self.rc = rc


class Unsupported(Exception):
    """A call this double does not model: a gap in jujusim, not a Juju error."""


class HookTools:
    """The hook tools as seen by one hook run.

    ``context`` is the model's snapshot (see ``Model._context``); ``events``
    are the calls already made during this hook (by earlier tool processes),
    replayed so that e.g. a ``relation-get`` sees an earlier ``relation-set``.
    """

    def __init__(self, context, events=()):
        self.ctx = context
        self.unit = context['unit']
        self.events = []
        self.staged = {}  # relation-set so far: key -> value, None deletes
        self.app_staged = {}  # relation-set --app so far, the same way
        self.leader = context['leader']  # false once leadership ends mid-hook
        self._depose_before = context['depose_before']
        self.leader_settings = dict(context['leader_settings'])
        for event in events:
            self._record(event)

    # -- dispatch -----------------------------------------------------------

    def call(self, argv):
        """Run one tool invocation; return ``(exit code, stdout, stderr)``."""
        name = os.path.basename(argv[0])
        args = list(argv[1:])
        event = {'argv': [name] + args, 'rc': 0, 'err': ''}
        out = ''
        method = getattr(self, '_tool_' + name.replace('-', '_'), None)
        if self.leader and name == self._depose_before:
            event['deposed'] = True
            self.leader = False
        try:
            if method is None:
                raise Unsupported('no model of this tool')
            out, effect = method(args)
            event.update(effect)
        except ToolError as err:
            event['rc'] = err.rc
            event['err'] = f'ERROR {err}\n'
        except Unsupported as err:
            event['rc'] = 1
            event['unsupported'] = True
            event['err'] = (f'jujusim: unsupported hook tool call {name} {args!r}: {err}; only the '
                            'argument forms charmhelpers uses are modelled\n')
        self._record(event)
        return event['rc'], out, event['err']

    def _record(self, event):
        """Keep ``event`` and apply its effect to what later calls see."""
        self.events.append(event)
        if 'relation_set' in event:
            self.staged.update(event['relation_set'])
        if 'app_set' in event:
            self.app_staged.update(event['app_set'])
        if event.get('deposed'):
            self.leader = False
        for key, value in event.get('leader_set', {}).items():
            if value is None:
                self.leader_settings.pop(key, None)
            else:
                self.leader_settings[key] = value

    # -- argument helpers ---------------------------------------------------

    @staticmethod
    def _format_json(args):
        """Drop the leading ``--format=json`` charmhelpers always passes."""
        if args[:1] != ['--format=json']:
            raise Unsupported('expected --format=json first')
        return args[1:]

    @staticmethod
    def _take_rid(args):
        """Split an optional leading ``-r RID`` off ``args``."""
        if args[:1] == ['-r']:
            if len(args) < 2:
                raise ToolError(2, 'flag needs an argument: -r')
            return args[1], args[2:]
        return None, args

    def _relation_id(self, rid):
        """The relation a call is about: ``-r RID`` or the hook's relation."""
        if rid is None:
            rid = self.ctx['hook_relation_id']
            if rid is None:
                raise ToolError(2, 'no relation id specified')
        if rid != self.ctx['relation_id'] or not self.ctx['listed']:
            raise ToolError(2, f'invalid value "{rid}" for option -r: relation not found')
        return rid

    def _app_bag(self):
        """The application bag as this unit reads it now (module docstring)."""
        if self.leader:
            return merged(self.ctx['app_bag'], self.app_staged)
        return self.ctx['app_bag']

    def _require_leader(self, what):
        if not self.leader:
            raise ToolError(1, f'cannot {what}: this unit is not the leader')

    # -- relation tools -----------------------------------------------------

    def _tool_relation_get(self, args):
        """``relation-get --format=json [--app] [-r RID] <key|-> [UNIT|APP]``."""
        args = self._format_json(args)
        app = args[:1] == ['--app']
        rid, args = self._take_rid(args[1:] if app else args)
        if len(args) not in (1, 2) or args[0].startswith('-') and args[0] != '-':
            raise Unsupported('expected <key|-> [unit or application]')
        rid = self._relation_id(rid)
        name = args[1] if len(args) == 2 else None
        if name is None and not (self.ctx['remote'] and not app):
            # $JUJU_REMOTE_APP: set in every relation hook, else not found.
            if self.ctx['hook_relation_id'] is None:
                raise ToolError(2, 'no unit or application specified')
            name, app = self.ctx['app'], True
        elif name is None:
            name = self.ctx['remote']
        elif app:
            name = name.split('/')[0]
        if self.ctx['data_denied']:
            raise ToolError(1, 'permission denied')
        if app:
            if name != self.ctx['app']:
                raise Unsupported('a peer relation has no other application')
            bag = self._app_bag()
        elif name == self.unit:
            bag = merged(self.ctx['bags'][self.unit], self.staged)
        elif name in self.ctx['bags']:
            bag = self.ctx['bags'][name]
        else:
            raise ToolError(1, f'cannot read settings for unit "{name}" in relation "{rid}": '
                               f'unit "{name}": settings not found')
        # Another unit's settings, which this unit's agent caches (model.py).
        effect = {'read': name} if name != self.unit and not app else {}
        return dumps(bag if args[0] == '-' else bag.get(args[0])) + '\n', effect

    def _tool_relation_set(self, args):
        """``relation-set --help``; ``relation-set [--app] [-r RID] --file F | k=v ...``."""
        if args == ['--help']:
            return RELATION_SET_HELP % (self.ctx['hook_relation_id'] or ''), {}
        app = args[:1] == ['--app']
        rid, args = self._take_rid(args[1:] if app else args)
        if len(args) == 2 and args[0] == '--file':
            settings = self._settings_file(args[1])
        elif args and all('=' in arg and not arg.startswith('-') for arg in args):
            settings = dict(arg.split('=', 1) for arg in args)
        else:
            raise Unsupported('expected --file <path> or key=value arguments')
        self._relation_id(rid)
        if app and not self.leader:
            raise ToolError(1, 'cannot write relation settings')
        if self.ctx['data_denied']:
            raise ToolError(1, 'cannot read relation {}settings: permission denied'
                            .format('application ' if app else ''))
        changes = {}
        for key, value in settings.items():
            if not isinstance(key, str) or not key:
                raise ToolError(1, f'invalid key {key!r}')
            if value is not None and not isinstance(value, str):
                raise ToolError(1, f'value of {key!r} is not a string: {value!r}')
            changes[key] = value or None  # '' and null both delete
        return '', {'app_set' if app else 'relation_set': changes}

    def _settings_file(self, path):
        """Read the YAML mapping that ``relation-set --file`` names."""
        try:
            import yaml
        except ImportError:  # tool process started with python -S
            sys.path.append(self.ctx['yaml_path'])
            import yaml
        try:
            with open(path) as handle:  # libyaml's parser when PyYAML has it
                settings = yaml.load(handle, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
        except (OSError, yaml.YAMLError) as err:
            raise ToolError(1, f'cannot read settings file {path}: {err}') from err
        if settings is None:
            return {}
        if not isinstance(settings, dict):
            raise ToolError(1, f'settings file {path} is not a YAML mapping')
        return settings

    def _tool_relation_ids(self, args):
        """``relation-ids --format=json NAME``."""
        args = self._format_json(args)
        if len(args) != 1:
            raise Unsupported('expected one relation name')
        found = args[0] == self.ctx['relation'] and self.ctx['listed']
        return dumps([self.ctx['relation_id']] if found else []) + '\n', {}

    def _tool_relation_list(self, args):
        """``relation-list --format=json [-r RID]``."""
        rid, rest = self._take_rid(self._format_json(args))
        if rest:
            raise Unsupported('expected only -r RID')
        self._relation_id(rid)
        return dumps(self.ctx['members']) + '\n', {}

    # -- leadership ---------------------------------------------------------

    def _tool_is_leader(self, args):
        """``is-leader --format=json``."""
        if self._format_json(args):
            raise Unsupported('expected no arguments')
        return dumps(self.leader) + '\n', {}

    def _tool_leader_get(self, args):
        """``leader-get --format=json <key|->``."""
        args = self._format_json(args)
        if len(args) != 1:
            raise Unsupported('expected <key|->')
        if args[0] == '-':
            return dumps(self.leader_settings) + '\n', {}
        return dumps(self.leader_settings.get(args[0])) + '\n', {}

    def _tool_leader_set(self, args):
        """``leader-set key=value ...``; ``key=`` unsets."""
        for arg in args:
            if '=' not in arg or arg.startswith('-'):
                raise Unsupported('expected key=value arguments')
        if not self.leader:
            raise ToolError(1, 'cannot write leadership settings: cannot write settings: '
                               'not the leader')
        changes = dict(arg.split('=', 1) for arg in args)
        return '', {'leader_set': {k: v or None for k, v in changes.items()}}

    # -- unit, config and status --------------------------------------------

    def _tool_juju_log(self, args):
        """``juju-log [-l LEVEL] MESSAGE``."""
        level = 'INFO'
        if len(args) == 3 and args[0] == '-l':
            level = args[1].upper()
            if level not in LOG_LEVELS:
                raise ToolError(2, f'invalid value "{args[1]}" for option -l')
            args = args[2:]
        if len(args) != 1:
            raise Unsupported('expected [-l LEVEL] MESSAGE')
        return '', {'log': (level, args[0])}

    def _tool_status_set(self, args):
        """``status-set [--application] STATE MESSAGE``."""
        application = args[:1] == ['--application']
        if application:
            args = args[1:]
        if len(args) != 2:
            raise Unsupported('expected [--application] STATE MESSAGE')
        if args[0] not in WORKLOAD_STATES:
            raise ToolError(2, f'invalid status "{args[0]}"')
        if application:
            self._require_leader('set application status')
        return '', {'status': (application, args[0], args[1])}

    def _tool_config_get(self, args):
        """``config-get --all --format=json``."""
        if args != ['--all', '--format=json']:
            raise Unsupported('expected --all --format=json')
        return dumps(self.ctx['config']) + '\n', {}

    def _tool_unit_get(self, args):
        """``unit-get --format=json private-address|public-address``."""
        args = self._format_json(args)
        if len(args) != 1:
            raise Unsupported('expected one setting name')
        if args[0] not in ('private-address', 'public-address'):
            raise ToolError(1, f'unknown setting "{args[0]}"')
        return dumps(self.ctx['address']) + '\n', {}

    def _tool_goal_state(self, args):
        """``goal-state --format=json``."""
        if self._format_json(args):
            raise Unsupported('expected no arguments')
        return dumps(self.ctx['goal_state']) + '\n', {}


def merged(settings, changes):
    """``settings`` with ``changes`` applied, as Juju applies a write: a None
    value deletes the key."""
    result = dict(settings)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def read_context(path):
    """Return ``(context, events)`` from a context file."""
    events = []
    with open(path, 'rb') as handle:
        context = marshal.load(handle)
        while True:
            try:
                events.append(marshal.load(handle))
            except EOFError:
                return context, events


def main():
    """Entry point of a tool process: answer ``sys.argv`` from $JUJUSIM_CONTEXT."""
    name = os.path.basename(sys.argv[0])
    path = os.environ.get(ENV_CONTEXT)
    if not path or path == INPROCESS:
        sys.stderr.write(
            'jujusim: hook tool {} {!r} started as a process {}\n'.format(
                name, sys.argv[1:],
                'outside a simulated hook' if not path else
                'by an in-process hook; only subprocess.call/check_call/check_output/run '
                'are intercepted there, use the subprocess executor'))
        sys.exit(1)
    tools = HookTools(*read_context(path))
    rc, out, err = tools.call([name] + sys.argv[1:])
    with open(path, 'ab') as handle:
        handle.write(marshal.dumps(tools.events[-1]))
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(rc)
