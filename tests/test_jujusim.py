"""Tests of jujusim, the Juju test double, against a tiny reactive charm.

The probe charm below is built in a temporary directory. Its handlers write
relation data, leader settings, unit data and flags, and record what they see
(``kv['seen']``), so that each Juju semantic jujusim promises can be checked
in process. One test runs a short scenario with both executors and compares
what they did; it is short because there every hook and every hook tool call
is a process (a hook takes about 300 ms).
"""
import os
import textwrap
import time

import pytest
from support.jujusim import HookRetriesExhausted, Model, NotSettled, UnsupportedToolCall
from support.jujusim.model import DEFAULT_JUJU, ENV_JUJU, ENV_SELF_NOTIFY, JUJU, Hook
from support.jujusim.tools import HookTools, dumps

EXECUTORS = ('inprocess', 'subprocess')
JUJUS = ('2.9', '3')
SELF_NOTIFY = (False, True)
#: What the probe notes of $JUJU_RELATION, _RELATION_ID, _REMOTE_UNIT, _REMOTE_APP
#: and _DEPARTING_UNIT (None: unset) outside relation hooks and in -relation-created.
NO_RELATION_ENV = [None] * 5
CREATED_ENV = ['cluster', 'cluster:0', '', 'probe', None]
APP_CHANGED_ENV = CREATED_ENV  # no remote unit there either

PROBE = {
    'metadata.yaml': """\
        name: probe
        summary: jujusim test charm
        description: jujusim test charm
        peers:
          cluster:
            interface: probe
        """,
    'config.yaml': """\
        options:
          greeting: {type: string, default: hello, description: published to peers}
          explode: {type: boolean, default: false, description: config-changed raises}
          peek: {type: string, description: config-changed reads this unit's relation data}
          misuse: {type: boolean, default: false, description: config-changed misuses a tool}
          try-leader-set: {type: boolean, default: false, description: every unit leader-sets}
          app-word: {type: string, description: "config-changed writes it to the application bag"}
          watch: {type: string, description: "update-status notes the count this unit published"}
        """,
    'hooks/hook.template': """\
        #!/usr/bin/env python3
        import sys
        sys.path.append('lib')
        from charms.reactive import main
        main()
        """,
    'reactive/probe.py': """\
        import subprocess
        import time

        from charmhelpers.core import hookenv, unitdata
        from charms.reactive import hook, set_flag, when, when_not


        def note(what):
            seen = unitdata.kv().get('seen', [])
            seen.append(what)
            unitdata.kv().set('seen', seen)


        def count_start():
            starts = unitdata.kv().get('starts', {})
            starts[hookenv.hook_name()] = starts.get(hookenv.hook_name(), 0) + 1
            unitdata.kv().set('starts', starts)


        # An import-time registration: a hook process makes it exactly once.
        hookenv.atstart(count_start)


        @hook('install')
        def install():
            set_flag('probe.installed')


        @hook('leader-elected')
        def elected():
            hookenv.leader_set({'leader': hookenv.local_unit()})


        @hook('leader-settings-changed')
        def leader_changed():
            note(['leader', hookenv.leader_get('leader')])


        @hook('config-changed')
        def config_changed():
            config = hookenv.config()
            leader = hookenv.is_leader()  # asked first: leadership can end mid-hook
            unitdata.kv().set('greeting', config['greeting'])
            for rid in hookenv.relation_ids('cluster'):
                hookenv.relation_set(rid, greeting=config['greeting'])
            if config['explode']:
                raise RuntimeError('explode is set')
            if config['peek']:
                rid = hookenv.relation_ids('cluster')[0]
                note(['peek', config['peek'],
                      hookenv.relation_get('private-address', config['peek'], rid),
                      sorted(hookenv.related_units(rid))])
            if config['misuse']:
                subprocess.check_output(['relation-get', '--app', '-'])
            if config['try-leader-set']:
                try:
                    hookenv.leader_set(tried=hookenv.local_unit())
                except subprocess.CalledProcessError:
                    note(['leader-set refused'])
            if config['app-word'] is not None:
                write_app_word(config['app-word'], leader)


        def write_app_word(word, leader):
            # The leader writes unguarded: a refusal fails the hook.
            rid = hookenv.relation_ids('cluster')[0]
            if leader:
                hookenv.relation_set(rid, {'word': word}, app=True)
                note(['app-wrote', hookenv.relation_get('word', rid=rid, app='probe')])
                return
            try:
                hookenv.relation_set(rid, {'word': 'forged'}, app=True)
                note(['app-wrote anyway'])
            except subprocess.CalledProcessError as err:
                note(['app-refused', err.returncode,
                      hookenv.relation_get('word', rid=rid, app='probe')])


        @hook('update-status')
        def update_status():
            count = unitdata.kv().get('count', 0) + 1
            unitdata.kv().set('count', count)
            unitdata.kv().set('clock', time.time())
            rid = hookenv.relation_ids('cluster')[0]
            hookenv.relation_set(rid, count=str(count))
            watched = hookenv.config('watch')
            if watched:
                note(['watch', watched, hookenv.relation_get('count', watched, rid)])


        @when('probe.installed')
        @when_not('probe.started')
        def start():
            hookenv.status_set('active', 'ready')
            set_flag('probe.started')


        @when('cluster.joined')
        def joined(cluster):
            set_flag('probe.clustered')
        """,
    'hooks/relations/probe/peers.py': """\
        import os
        import subprocess

        from charmhelpers.core import hookenv, unitdata
        from charms.reactive import RelationBase, hook, scopes

        RELATION_ENV = ('JUJU_RELATION', 'JUJU_RELATION_ID', 'JUJU_REMOTE_UNIT',
                        'JUJU_REMOTE_APP', 'JUJU_DEPARTING_UNIT')


        def note(what):
            seen = unitdata.kv().get('seen', [])
            seen.append(what)
            unitdata.kv().set('seen', seen)


        def note_env():
            # The relation variables of this hook: None if unset, '' if set but empty.
            note(['env', hookenv.hook_name(), os.environ['JUJU_VERSION'],
                  [os.environ.get(name) for name in RELATION_ENV]])


        def attempt(call, *args, **kwargs):
            # What a hook tool call returned, or its exit status if it failed.
            try:
                return call(*args, **kwargs)
            except subprocess.CalledProcessError as err:
                return err.returncode


        @hook('install', 'data-storage-attached')
        def install():
            # What install (and storage-attached, which comes before it) sees of the
            # peer relation: the Juju versions differ there.
            note_env()
            for rid in hookenv.relation_ids('cluster'):
                note(['install', rid, attempt(hookenv.related_units, rid),
                      attempt(hookenv.relation_get, rid=rid, unit=hookenv.local_unit()),
                      attempt(subprocess.check_call, ['relation-set', '-r', rid, 'early=1']),
                      attempt(hookenv.relation_get, rid=rid, app='probe'),
                      attempt(subprocess.check_call,
                              ['relation-set', '--app', '-r', rid, 'early=1'])])


        class ProbePeers(RelationBase):
            scope = scopes.UNIT

            @hook('{peers:probe}-relation-created')
            def created(self):
                note_env()
                hookenv.relation_set(hookenv.relation_id(),
                                     greeting=hookenv.config('greeting'))

            @hook('{peers:probe}-relation-{joined,changed}')
            def changed(self):
                remote = hookenv.remote_unit()
                if not remote:  # the application bag changed
                    note_env()
                    rid = hookenv.relation_id()
                    note(['app-changed', hookenv.relation_get('word'),
                          hookenv.relation_get('word', rid=rid, app='probe'),
                          hookenv.relation_get(rid=rid, app=hookenv.local_unit())])
                    return
                self.conversation().set_state('{relation_name}.joined')
                note([hookenv.hook_name(), remote, self.get_remote('greeting'),
                      sorted(hookenv.related_units())])

            @hook('{peers:probe}-relation-departed')
            def departed(self):
                self.conversation().remove_state('{relation_name}.joined')
                remote = hookenv.remote_unit()
                note(['departed, leader:', remote, hookenv.is_leader()])
                note([hookenv.hook_name(), remote, os.environ.get('JUJU_DEPARTING_UNIT'),
                      hookenv.relation_get('private-address', remote),
                      sorted(hookenv.related_units())])
        """,
}
HOOKS = ['install', 'config-changed', 'leader-elected', 'leader-settings-changed', 'start',
         'stop', 'update-status'] + ['cluster-relation-' + kind for kind in (
             'created', 'joined', 'changed', 'departed', 'broken')]


def build_probe(root):
    """Write the probe charm under ``root``; like charm-build, no 'remove' hook."""
    charm = root / 'probe'
    for path, text in PROBE.items():
        target = charm / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    for name in HOOKS:
        hook = charm / 'hooks' / name
        hook.write_text((charm / 'hooks' / 'hook.template').read_text())
        hook.chmod(0o755)
    return str(charm)


@pytest.fixture(scope='module')
def probe(tmp_path_factory):
    return build_probe(tmp_path_factory.mktemp('charm'))


@pytest.fixture
def model(probe, tmp_path):
    with Model(probe, 'cluster', workdir=str(tmp_path)) as m:
        yield m


def hooks_of(model, unit):
    return [(r.hook, r.remote) for r in model.history if r.unit == unit]


def seen(model, unit):
    return model.kv(unit).get('seen', [])


# -- the hook tools on their own ---------------------------------------------

def tool_context(**overrides):
    context = {
        'unit': 'app/0', 'relation': 'cluster', 'relation_id': 'cluster:0',
        'hook_relation_id': 'cluster:0', 'remote': 'app/1', 'listed': True, 'data_denied': False,
        'members': ['app/1'], 'leader': False, 'leader_settings': {'ca': 'PEM'},
        'bags': {'app/0': {'private-address': '127.0.0.1'},
                 'app/1': {'private-address': '127.0.0.2', 'csr': 'x'}},
        'app': 'app', 'app_bag': {'ca': 'CA', 'old': 'x'}, 'depose_before': None,
        'config': {'a': 1, 'b': None}, 'address': '127.0.0.1', 'goal_state': {}, 'yaml_path': '',
    }
    context.update(overrides)
    return context


def test_tools_answer_the_forms_charmhelpers_uses(tmp_path):
    tools = HookTools(tool_context())
    assert tools.call(['relation-get', '--format=json', '-r', 'cluster:0', 'csr', 'app/1']) \
        == (0, '"x"\n', '')
    assert tools.call(['relation-get', '--format=json', 'nokey'])[1] == 'null\n'
    assert tools.call(['relation-get', '--format=json', '-'])[1] \
        == '{"csr":"x","private-address":"127.0.0.2"}\n'
    assert '--file' in tools.call(['relation-set', '--help'])[1]
    settings = tmp_path / 'settings.yaml'
    settings.write_text("a: '1'\nprivate-address: null\nc: ''\n")
    assert tools.call(['relation-set', '-r', 'cluster:0', '--file', str(settings)])[0] == 0
    assert tools.call(['relation-set', 'd=4', 'e='])[0] == 0
    assert tools.call(['relation-get', '--format=json', '-', 'app/0'])[1] == '{"a":"1","d":"4"}\n'
    assert tools.staged == {'a': '1', 'private-address': None, 'c': None, 'd': '4', 'e': None}
    assert tools.call(['relation-ids', '--format=json', 'cluster'])[1] == '["cluster:0"]\n'
    assert tools.call(['relation-ids', '--format=json', 'other'])[1] == '[]\n'
    assert tools.call(['relation-list', '--format=json', '-r', 'cluster:0'])[1] == '["app/1"]\n'
    assert tools.call(['is-leader', '--format=json'])[1] == 'false\n'
    assert tools.call(['leader-get', '--format=json', 'ca'])[1] == '"PEM"\n'
    assert tools.call(['leader-get', '--format=json', 'none'])[1] == 'null\n'
    assert tools.call(['config-get', '--all', '--format=json'])[1] == '{"a":1,"b":null}\n'
    assert tools.call(['unit-get', '--format=json', 'private-address'])[1] == '"127.0.0.1"\n'
    assert tools.call(['juju-log', '-l', 'WARNING', 'careful'])[0] == 0
    assert tools.call(['juju-log', 'plain'])[0] == 0
    assert tools.call(['status-set', 'active', ''])[0] == 0
    assert [e['log'] for e in tools.events if 'log' in e] == [
        ('WARNING', 'careful'), ('INFO', 'plain')]


def test_tools_refuse_like_juju():
    tools = HookTools(tool_context(hook_relation_id=None, remote=None))
    # A unit this one has not seen join, a relation it does not know: Juju's errors.
    rc, _, err = tools.call(['relation-get', '--format=json', '-r', 'cluster:0', '-', 'app/2'])
    assert rc == 1 and 'app/2' in err and 'settings not found' in err
    assert tools.call(['relation-get', '--format=json', '-r', 'db:3', '-', 'app/1'])[0] == 2
    assert tools.call(['relation-get', '--format=json', '-'])[0] == 2  # no relation, no unit
    rc, _, err = tools.call(['relation-get', '--format=json', '-r', 'cluster:0', '-'])
    assert rc == 2 and 'no unit or application specified' in err
    assert tools.call(['relation-list', '--format=json'])[0] == 2
    rc, _, err = tools.call(['leader-set', 'a=b'])
    assert rc == 1 and 'not the leader' in err
    assert tools.call(['status-set', '--application', 'active', 'x'])[0] == 1
    assert not any(e.get('unsupported') for e in tools.events)
    assert HookTools(tool_context(listed=False)).call(
        ['relation-ids', '--format=json', 'cluster'])[1] == '[]\n'


def test_tools_refuse_peer_data_while_juju_3_lists_the_relation_in_install():
    tools = HookTools(tool_context(hook_relation_id=None, remote=None, members=[],
                                   data_denied=True))
    assert tools.call(['relation-ids', '--format=json', 'cluster'])[1] == '["cluster:0"]\n'
    assert tools.call(['relation-list', '--format=json', '-r', 'cluster:0']) == (0, '[]\n', '')
    assert tools.call(['relation-get', '--format=json', '-r', 'cluster:0', '-', 'app/0']) \
        == (1, '', 'ERROR permission denied\n')
    assert tools.call(['relation-set', '-r', 'cluster:0', 'a=b']) \
        == (1, '', 'ERROR cannot read relation settings: permission denied\n')
    assert '--file' in tools.call(['relation-set', '--help'])[1]
    assert tools.staged == {} and not any(e.get('unsupported') for e in tools.events)


APP_GET = ['relation-get', '--format=json', '--app', '-r', 'cluster:0']


def test_tools_answer_the_application_bag_forms_charmhelpers_uses(tmp_path):
    settings = tmp_path / 'settings.yaml'
    settings.write_text("ca: NEW\nold: ''\nextra: null\n")
    tools = HookTools(tool_context(leader=True))
    assert tools.call(APP_GET + ['-', 'app']) == (0, '{"ca":"CA","old":"x"}\n', '')
    assert tools.call(['relation-set', '--app', '-r', 'cluster:0', '--file', str(settings)]) \
        == (0, '', '')
    assert tools.call(['relation-set', '--app', 'more=1'])[0] == 0  # the hook's relation
    assert tools.app_staged == {'ca': 'NEW', 'old': None, 'extra': None, 'more': '1'}
    assert tools.staged == {}
    # The leader reads its hook context: its own writes of this hook included.
    assert tools.call(APP_GET + ['-', 'app'])[1] == '{"ca":"NEW","more":"1"}\n'
    assert tools.call(APP_GET + ['ca', 'app/1'])[1] == '"NEW"\n'  # a unit names its app
    assert tools.call(APP_GET + ['ca'])[1] == '"NEW"\n'  # $JUJU_REMOTE_APP
    # Any other unit reads the committed bag.
    follower = HookTools(tool_context())
    assert follower.call(APP_GET + ['-', 'app'])[1] == '{"ca":"CA","old":"x"}\n'
    assert follower.call(['relation-get', '--format=json', '--app', 'ca', 'app'])[1] \
        == '"CA"\n'
    assert not any(e.get('unsupported') for e in tools.events + follower.events)


def test_tools_read_the_application_bag_where_no_remote_unit_is_named():
    # In -relation-created and app-changed $JUJU_REMOTE_UNIT is empty, so Juju
    # reads the bag of $JUJU_REMOTE_APP, this application's own on a peer relation.
    tools = HookTools(tool_context(remote=None))
    assert tools.call(['relation-get', '--format=json', 'ca']) == (0, '"CA"\n', '')
    assert tools.call(['relation-get', '--format=json', '-', 'app/0'])[1] \
        == '{"private-address":"127.0.0.1"}\n'
    # Outside relation hooks there is no remote application to default to.
    elsewhere = HookTools(tool_context(remote=None, hook_relation_id=None))
    for args in (['-r', 'cluster:0', 'ca'], ['--app', '-r', 'cluster:0', 'ca']):
        rc, _, err = elsewhere.call(['relation-get', '--format=json'] + args)
        assert rc == 2 and 'no unit or application specified' in err
    assert elsewhere.call(APP_GET + ['ca', 'app'])[1] == '"CA"\n'


def test_tools_let_only_the_leader_write_the_application_bag():
    tools = HookTools(tool_context())
    assert tools.call(['relation-set', '--app', '-r', 'cluster:0', 'ca=FORGED']) \
        == (1, '', 'ERROR cannot write relation settings\n')
    assert tools.app_staged == {} and not tools.events[-1].get('unsupported')
    # During Juju 3's install: the leader check first, then the data refused.
    install = {'hook_relation_id': None, 'remote': None, 'data_denied': True}
    follower = HookTools(tool_context(**install))
    assert follower.call(['relation-set', '--app', '-r', 'cluster:0', 'a=b'])[2] \
        == 'ERROR cannot write relation settings\n'
    leader = HookTools(tool_context(leader=True, **install))
    assert leader.call(['relation-set', '--app', '-r', 'cluster:0', 'a=b']) \
        == (1, '', 'ERROR cannot read relation application settings: permission denied\n')
    assert leader.call(APP_GET + ['-', 'app']) == (1, '', 'ERROR permission denied\n')
    assert leader.app_staged == {}


def test_tools_check_leadership_when_a_call_needs_it():
    # Leadership ends just before the first relation-set, as Model.move_leader(mid_hook=) asks.
    tools = HookTools(tool_context(leader=True, depose_before='relation-set'))
    assert tools.call(['is-leader', '--format=json'])[1] == 'true\n'
    assert tools.call(['leader-set', 'a=1'])[0] == 0
    assert tools.call(['relation-set', '-r', 'cluster:0', 'a=1'])[0] == 0  # unit bag: fine
    assert tools.call(['relation-set', '--app', '-r', 'cluster:0', 'a=1'])[2] \
        == 'ERROR cannot write relation settings\n'
    assert tools.call(['is-leader', '--format=json'])[1] == 'false\n'
    assert tools.call(['leader-set', 'a=2'])[0] == 1
    assert [e.get('deposed', False) for e in tools.events] == [False, False, True, False,
                                                               False, False]
    # A later tool process of the same hook replays the events: still not the leader.
    replayed = HookTools(tools.ctx, tools.events)
    assert replayed.call(['is-leader', '--format=json'])[1] == 'false\n'
    assert replayed.call(APP_GET + ['-', 'app'])[1] == '{"ca":"CA","old":"x"}\n'


@pytest.mark.parametrize('argv', [
    ['relation-get', '--app', '-'],
    ['relation-get', '-r', 'cluster:0', '-', 'app/1'],
    ['relation-get', '--format=json', '-r', 'cluster:0', '--app', '-', 'app'],
    ['relation-get', '--format=json', '--app', '-', 'other-app'],
    ['relation-set', '-r', 'cluster:0', '--app', '--file', 'f'],
    ['relation-list'],
    ['is-leader'],
    ['leader-get', 'key'],
    ['leader-set', 'oops'],
    ['config-get', 'a'],
    ['juju-log', 'two', 'words'],
    ['status-set', 'active'],
    ['storage-get', 'location'],
    # Tools nothing here calls are not modelled at all.
    ['status-get', '--format=json', '--include-data'],
    ['network-get', '--primary-address', 'cluster'],
    ['open-port', '443/tcp'],
    ['application-version-set', '1.0'],
    ['action-get', 'x', '--format=json'],
])
def test_tools_fail_loudly_on_forms_they_do_not_model(argv):
    tools = HookTools(tool_context(leader=True))
    rc, out, err = tools.call(argv)
    assert (rc, out) == (1, '')
    assert argv[0] in err and repr(argv[1:]) in err and 'unsupported' in err
    assert tools.events[-1]['unsupported']


def test_dumps_is_json():
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20)

    @settings(max_examples=50, deadline=None)
    @given(values)
    def check(value):
        assert json.loads(dumps(value)) == value

    check()


# -- Juju semantics, in process ------------------------------------------------

def test_deploy_runs_the_setup_and_join_hooks_in_juju_order(model):
    u0, u1 = model.add_unit(), model.add_unit()
    model.settle()
    setup = ['install', 'cluster-relation-created', 'config-changed', 'start']
    assert hooks_of(model, u0) == [(h, None) for h in setup[:2] + ['leader-elected'] + setup[2:]] \
        + [('cluster-relation-joined', u1), ('cluster-relation-changed', u1)]
    assert hooks_of(model, u1) == [(h, None) for h in setup[:2] + ['leader-settings-changed']
                                   + setup[2:]] \
        + [('cluster-relation-joined', u0), ('cluster-relation-changed', u0)]
    assert model.leader == u0 and model.leader_settings == {'leader': u0}
    assert model.units == [u0, u1]
    assert model.bag(u1) == {'private-address': '127.0.0.2', 'ingress-address': '127.0.0.2',
                             'egress-subnets': '127.0.0.2/32', 'greeting': 'hello'}
    assert model.flags(u0) == {'probe.installed', 'probe.started', 'probe.clustered',
                               'cluster.joined'}
    assert model.status(u0) == ('active', 'ready')
    assert ['leader', u0] in seen(model, u1)
    assert ['cluster-relation-joined', u0, 'hello', [u0]] in seen(model, u1)
    # Import-time atstart registrations happen once per hook, as in a fresh process.
    assert set(model.kv(u0)['starts'].values()) == {1}
    assert all(r.ok and r.attempt == 1 for r in model.history)
    assert model.skipped == []


def test_records_count_tool_calls_and_keep_logs(model):
    u0 = model.add_unit()
    model.settle()
    created = next(r for r in model.history if r.hook == 'cluster-relation-created')
    # charmhelpers probes `relation-set --help` once per hook, then writes with --file.
    assert created.calls['relation-set'] == 2 and created.calls['config-get'] == 1
    assert created.argv[0] == ['juju-log', '-l', 'INFO',
                               'Reactive main running for hook cluster-relation-created']
    assert ('INFO', 'Reactive main running for hook cluster-relation-created') in created.logs
    assert created.relation_written == {'greeting': 'hello'}
    elected = next(r for r in model.history if r.hook == 'leader-elected')
    assert elected.leader_written == {'leader': u0}
    assert elected.flags == frozenset({'probe.installed', 'probe.started'})
    assert elected.seconds > 0 and [r.seq for r in model.history] == [1, 2, 3, 4, 5]


def test_in_process_hooks_leave_the_test_process_as_it_was(model):
    import subprocess
    import sys
    before = (dict(os.environ), list(sys.path), os.getcwd(), subprocess.check_output)
    model.add_unit()
    model.settle()
    assert before == (dict(os.environ), list(sys.path), os.getcwd(), subprocess.check_output)
    assert not any(name.split('.')[0] in ('reactive', 'relations') for name in sys.modules)


def test_in_process_hooks_keep_the_registrations_of_other_tests(model):
    from charmhelpers.core import hookenv
    from charms.reactive import bus, hook

    def elsewhere():
        """Registered by some unit test in the same process."""

    hook('install')(elsewhere)
    hookenv.atstart(elsewhere)
    handlers, atstart = dict(bus.Handler._HANDLERS), list(hookenv._atstart)
    try:
        model.add_unit()
        model.settle()
        assert (dict(bus.Handler._HANDLERS), list(hookenv._atstart)) == (handlers, atstart)
    finally:
        bus.Handler._HANDLERS.pop(bus._action_id(elsewhere))
        hookenv._atstart.remove((elsewhere, (), {}))


def test_relation_changed_fans_out_and_coalesces(model):
    u0, u1, u2 = (model.add_unit() for _ in range(3))
    model.settle()
    model.queue(u0, 'update-status')
    model.queue(u0, 'update-status')
    model.run(u0)
    model.run(u0)
    changed = ('cluster-relation-changed', u0, None)
    assert [(u, tuple(h)) for u, _, h in model.pending()] == [(u1, changed), (u2, changed)]
    assert model.bag(u0)['count'] == '2'
    # Writing what is already there changes nothing, so nobody is told.
    model.queue(u0, 'config-changed')
    assert model.run(u0).relation_written == {'greeting': 'hello'}
    assert len(model.pending()) == 2
    model.settle()
    assert seen(model, u1)[-1] == ['cluster-relation-changed', u0, 'hello', [u0, u2]]


def test_records_name_the_hooks_whose_writes_queued_them(model):
    u0, u1 = model.add_unit(), model.add_unit()
    model.settle()
    seq = {(r.unit, r.hook, r.remote): r.seq for r in model.history}
    causes = {(r.unit, r.hook, r.remote): r.causes for r in model.history}
    # What add_unit queued has no cause, but a peer's -joined and -changed wait
    # for it to enter the relation, and u1's leader-settings-changed, queued by
    # add_unit too, was queued again (coalesced) by the leader's leader-set.
    for unit in (u0, u1):
        for hook in ('install', 'cluster-relation-created', 'config-changed', 'start'):
            assert causes[unit, hook, None] == (), (unit, hook)
    assert causes[u0, 'leader-elected', None] == ()
    assert causes[u1, 'leader-settings-changed', None] == (seq[u0, 'leader-elected', None],)
    for unit, peer in ((u0, u1), (u1, u0)):
        for hook in ('cluster-relation-joined', 'cluster-relation-changed'):
            assert causes[unit, hook, peer] == (seq[peer, 'cluster-relation-created', None],)
    # Two writes coalesce into one relation-changed, which keeps both causes.
    model.queue(u0, 'update-status')
    model.queue(u0, 'update-status')
    first, second = model.run(u0), model.run(u0)
    assert (first.causes, second.causes) == ((), ())
    changed, = model.settle()
    assert (changed.unit, changed.remote, changed.causes) == (u1, u0, (first.seq, second.seq))
    # The leader's application-bag write causes app-changed; set_config's hooks have none.
    write_word(model, 'w')
    runs = model.settle()
    written = next(r for r in runs if r.unit == u0 and r.hook == 'config-changed')
    assert [(r.unit, r.causes) for r in runs if r.hook == 'config-changed'] == [(u0, ()), (u1, ())]
    told = [u0, u1] if model.self_notify else [u1]  # the leader too, where Juju tells it
    assert sorted((r.unit, r.causes) for r in runs if r.app_change) == \
        [(unit, (written.seq,)) for unit in told]


def test_relation_list_shows_only_joined_units_and_relation_get_is_strict(probe, tmp_path):
    with Model(probe, 'cluster', workdir=str(tmp_path), max_retries=0) as model:
        u0, u1 = model.add_unit(), model.add_unit()
        model.settle()
        u2 = model.add_unit()
        model.set_config(peek=u2)
        queued = [h for unit, _, h in model.pending() if unit == u0]
        assert queued == [Hook('cluster-relation-joined', u2), Hook('cluster-relation-changed', u2),
                          Hook('config-changed')]
        with pytest.raises(HookRetriesExhausted) as failed:
            model.run(u0, 2)  # before u0 has seen u2 join
        assert failed.value.record.hook == 'config-changed'
        assert 'settings not found' in failed.value.record.output  # the tool's stderr
        model.run(u0, 1)  # -joined: now u2 is in u0's relation-list and readable
        assert seen(model, u0)[-1] == ['cluster-relation-joined', u2, None, [u1, u2]]
        assert model.run(u0).ok


@pytest.mark.parametrize('juju', JUJUS)
def test_departed_units_leave_relation_list_but_stay_readable(probe, tmp_path, juju):
    with Model(probe, 'cluster', workdir=str(tmp_path), juju=juju) as model:
        u0, u1, u2 = (model.add_unit() for _ in range(3))
        model.settle()
        model.remove_unit(u1)
        model.settle()
        departed = 'cluster-relation-departed'
        assert seen(model, u0)[-1] == [departed, u1, u1, '127.0.0.2', [u2]]
        assert seen(model, u2)[-1] == [departed, u1, u1, '127.0.0.2', [u0]]
        assert [r.remote for r in model.history if r.unit == u1 and r.hook == departed] == [u0, u2]
        assert all(r.departing == u1 for r in model.history if r.hook == departed)
        assert hooks_of(model, u1)[-1] == ('stop', None)
        assert (u1, Hook('remove'), 'the charm has no such hook') in model.skipped
        assert model.units == [u0, u2]
        assert 'cluster.joined' not in model.flags(u1)
        with pytest.raises(KeyError):
            model.bag(u1)
        # Juju keeps its settings for the life of the relation: those who saw it leave read them.
        model.set_config(peek=u1)
        model.settle()
        assert seen(model, u0)[-1] == ['peek', u1, '127.0.0.2', [u2]]
        assert seen(model, u2)[-1] == ['peek', u1, '127.0.0.2', [u0]]
        # A unit that never saw it join is refused, like any unit it has not seen join.
        u3 = model.add_unit()
        with pytest.raises(HookRetriesExhausted) as failed:
            model.settle()
        record = failed.value.record
        assert (record.unit, record.hook) == (u3, 'config-changed')
        assert 'settings not found' in record.output


@pytest.mark.parametrize('juju, install_sees', [
    ('2.9', []),
    # Listed, with no units yet, and its data refused: relation-get and relation-set, of
    # the unit bag and of the application bag, exit 1.
    ('3', [['install', 'cluster:0', [], 1, 1, 1, 1]]),
])
def test_install_sees_the_peer_relation_as_its_juju_shows_it(probe, tmp_path, juju, install_sees):
    version = JUJU[juju].version
    with Model(probe, 'cluster', workdir=str(tmp_path), juju=juju) as model:
        u0, u1 = model.add_unit(), model.add_unit()
        model.settle()
        for unit in (u0, u1):  # u1 too: the relation has units, but none joined u1 yet
            assert seen(model, unit)[:len(install_sees) + 2] == \
                [['env', 'install', version, NO_RELATION_ENV]] + install_sees \
                + [['env', 'cluster-relation-created', version, CREATED_ENV]]
            assert 'early' not in model.bag(unit)
        install = model.history[0]
        assert (install.hook, install.ok) == ('install', True)
        assert ('ERROR permission denied' in install.output) is (juju == '3')
        assert ('ERROR cannot read relation settings: permission denied' in install.output) \
            is (juju == '3')
        # u0 leads: its application-bag write gets past the leader check, u1's does not.
        assert ('ERROR cannot read relation application settings: permission denied'
                in install.output) is (juju == '3')
        follower = next(r for r in model.history if r.unit == u1 and r.hook == 'install')
        assert ('ERROR cannot write relation settings' in follower.output) is (juju == '3')
        assert model.app_bag() == {}


def test_the_juju_modelled_is_an_argument_or_the_environment(probe, tmp_path, monkeypatch):
    def juju(**kwargs):
        with Model(probe, 'cluster', workdir=str(tmp_path), **kwargs) as model:
            return model.juju
    monkeypatch.delenv(ENV_JUJU, raising=False)
    assert juju() == DEFAULT_JUJU == '3'
    monkeypatch.setenv(ENV_JUJU, '2.9')
    assert juju() == '2.9' and juju(juju='3') == '3'
    monkeypatch.setenv(ENV_JUJU, '4')
    with pytest.raises(ValueError):
        juju()


def test_leadership_moves_and_only_the_leader_may_leader_set(model):
    u0, u1, u2 = (model.add_unit() for _ in range(3))
    model.settle()
    model.move_leader(u1)
    model.settle()
    assert model.leader == u1 and model.leader_settings == {'leader': u1}
    assert ['leader', u1] == seen(model, u0)[-1] == seen(model, u2)[-1]
    # No leader-deposed: the deposed leader runs leader-settings-changed.
    assert hooks_of(model, u0)[-1] == ('leader-settings-changed', None)
    assert 'leader-deposed' not in [r.hook for r in model.history] + [h.name for _, h, _ in model.skipped]
    model.set_config(**{'try-leader-set': True})
    model.settle()
    assert model.leader_settings == {'leader': u1, 'tried': u1}
    assert seen(model, u0)[-1] == ['leader', u1]  # leader-settings-changed after the refusal
    assert ['leader-set refused'] in seen(model, u0) and ['leader-set refused'] in seen(model, u2)
    model.remove_unit(u1)
    assert model.leader == u1  # a dying leader keeps its lease until it is gone
    while any(u == u1 for u, _, _ in model.pending()):
        model.run(u1)
    assert model.leader == u0
    model.fail_next(u0, 'leader-elected')
    model.run(u0, next(i for u, i, h in model.pending() if h.name == 'leader-elected'))
    # leader-set takes effect at once: it stays although the hook failed ...
    assert model.history[-1].ok is False
    assert model.leader_settings == {'leader': u0, 'tried': u1}
    assert Hook('leader-settings-changed') in [h for u, _, h in model.pending() if u == u2]
    model.settle()  # ... and the retry writes the same, which changes nothing
    assert model.leader_settings == {'leader': u0, 'tried': u1}


# -- the application bag ----------------------------------------------------------

def app_hooks(model, records=None):
    """The units that ran an app-changed hook, in order."""
    return [r.unit for r in (model.history if records is None else records) if r.app_change]


def write_word(model, word):
    """Every unit's config-changed writes ``word`` (the leader) or tries to."""
    model.set_config(**{'app-word': word})


@pytest.fixture(params=SELF_NOTIFY, ids=['others-told', 'leader-told-too'])
def self_notify(request):
    return request.param


@pytest.fixture
def trio(probe, tmp_path, self_notify):
    with Model(probe, 'cluster', workdir=str(tmp_path), self_notify=self_notify) as m:
        units = [m.add_unit() for _ in range(3)]
        m.settle()
        yield m, units


def test_the_leader_writes_the_application_bag_and_every_unit_hears_of_it(trio):
    model, (u0, u1, u2) = trio
    assert model.leader == u0 and app_hooks(model) == [] and model.app_bag() == {}
    write_word(model, 'w')
    runs = model.settle()
    assert model.app_bag() == {'word': 'w'}
    written = next(r for r in runs if r.unit == u0)
    assert (written.hook, written.app_written, written.relation_written) == (
        'config-changed', {'word': 'w'}, {'greeting': 'hello'})
    # The leader's relation-get shows its write before the hook commits it.
    assert ['app-wrote', 'w'] in seen(model, u0)
    # The others were refused at the call and their hooks went on; they read the
    # committed bag (u0 went first).
    for unit in (u1, u2):
        assert ['app-refused', 1, 'w'] in seen(model, unit)
        refused = next(r for r in runs if r.unit == unit and r.hook == 'config-changed')
        assert refused.ok and refused.app_written == {}
        assert 'ERROR cannot write relation settings' in refused.output
    # -relation-changed with no remote unit, once per unit (the leader too if self-notified);
    # relation-get with no unit, with --app and with a unit name for the app all read it.
    assert sorted(app_hooks(model, runs)) == ([u0] if model.self_notify else []) + [u1, u2]
    for record in runs:
        if record.app_change:
            assert (record.hook, record.remote, record.ok) == ('cluster-relation-changed',
                                                               None, True)
            assert seen(model, record.unit)[-2:] == [
                ['env', 'cluster-relation-changed', JUJU[model.juju].version, APP_CHANGED_ENV],
                ['app-changed', 'w', 'w', {'word': 'w'}]]
    # Writing what is there changes nothing and tells nobody; '' deletes.
    model.queue(u0, 'config-changed')
    assert model.run(u0).app_written == {'word': 'w'} and model.pending() == []
    write_word(model, '')
    runs = model.settle()
    assert model.app_bag() == {} and next(r for r in runs if r.unit == u0).app_written \
        == {'word': None}
    assert sorted(app_hooks(model, runs)) == ([u0] if model.self_notify else []) + [u1, u2]


def test_app_changed_hooks_coalesce_and_reach_units_that_joined_nobody(probe, tmp_path,
                                                                      self_notify):
    with Model(probe, 'cluster', workdir=str(tmp_path), self_notify=self_notify) as model:
        u0 = model.add_unit()
        model.settle()
        u1 = model.add_unit()
        for _ in range(5):  # install .. start: u1 has run -joined for nobody yet
            model.run(u1)
        model.poke_app({'word': 'a'})
        model.poke_app({'word': 'b'})
        app_changed = Hook('cluster-relation-changed')
        queued = {unit: [h for u, _, h in model.pending() if u == unit] for unit in (u0, u1)}
        assert queued[u1] == [Hook('cluster-relation-joined', u0),
                              Hook('cluster-relation-changed', u0), app_changed]
        assert queued[u0].count(app_changed) == int(model.self_notify)
        model.run(u1, 2)  # Juju runs app hooks before -joined
        assert seen(model, u1)[-1] == ['app-changed', 'b', 'b', {'word': 'b'}]
        model.poke_app({'word': None, 'other': 'x'})  # None deletes, as in poke
        model.settle()
        assert model.app_bag() == {'other': 'x'}
        assert seen(model, u1)[-1] == ['app-changed', None, None, {'other': 'x'}]


def test_the_application_bag_outlives_leaders_and_units(trio):
    model, (u0, u1, u2) = trio
    write_word(model, 'w')
    model.settle()
    model.move_leader(u1)
    model.settle()
    assert model.app_bag() == {'word': 'w'}  # nobody wrote since
    model.remove_unit(u1)
    assert model.leader == u1 and model.app_bag() == {'word': 'w'}
    # A unit being removed is told of no more changes, though it still leads.
    model.poke_app({'word': 'v'})
    assert sorted(u for u, _, h in model.pending() if h == Hook('cluster-relation-changed')) \
        == [u0, u2]
    model.settle()
    assert model.leader == u0
    # A unit that arrives after the bag was first written is told of it after start.
    u3 = model.add_unit()
    model.settle()
    assert hooks_of(model, u3)[4:7] == [('start', None), ('cluster-relation-changed', None),
                                        ('cluster-relation-joined', u0)]
    assert ['app-changed', 'v', 'v', {'word': 'v'}] in seen(model, u3)
    assert model.app_bag() == {'word': 'v'}  # u3's word was refused
    with Model(model.charm_dir, 'cluster', workdir=str(model.workdir)) as empty:
        with pytest.raises(ValueError):
            empty.poke_app({'word': 'w'})  # no unit, so no leader to write as


def test_a_failed_hook_commits_no_application_bag_writes(trio):
    model, (u0, u1, u2) = trio
    model.fail_next(u0, 'config-changed')
    write_word(model, 'w')
    failed = model.run(u0)
    assert (failed.hook, failed.ok, failed.app_written) == ('config-changed', False, {})
    assert ['app-wrote', 'w'] not in seen(model, u0)  # its unit data was rolled back too
    assert model.app_bag() == {} and app_hooks(model) == []
    assert Hook('cluster-relation-changed') not in [h for _, _, h in model.pending()]
    runs = model.settle()
    retried = next(r for r in runs if r.unit == u0)
    assert (retried.ok, retried.attempt, retried.app_written) == (True, 2, {'word': 'w'})
    assert sorted(app_hooks(model, runs)) == ([u0] if model.self_notify else []) + [u1, u2]


def test_leadership_is_checked_when_the_application_bag_is_written(trio):
    model, (u0, u1, u2) = trio
    # Moved between hooks: u0's next hook is a non-leader's from its start.
    write_word(model, 'w')
    model.move_leader(u1)
    model.settle()
    assert ['app-refused', 1, None] in seen(model, u0)
    assert model.app_bag() == {'word': 'w'} and ['app-wrote', 'w'] in seen(model, u1)
    # Moved during a hook, before the write: refused at the call, the hook fails and
    # is retried as a non-leader's.
    model.move_leader(u2, mid_hook='relation-set')
    assert model.leader == u1  # not before u1's next hook
    write_word(model, 'x')
    runs = model.settle()
    failed, retried = [r for r in runs if r.unit == u1 and r.hook == 'config-changed']
    assert not failed.ok and 'CalledProcessError' in failed.error
    assert 'ERROR cannot write relation settings' in failed.output
    # u2 led from the failure on, so its config-changed, run before the retry, wrote.
    assert retried.ok and ['app-refused', 1, 'x'] in seen(model, u1)
    assert model.leader == u2 and model.app_bag() == {'word': 'x'}
    assert [r.hook for r in runs if r.unit == u2][:2] == ['config-changed', 'leader-elected']
    assert 'leader-settings-changed' in [r.hook for r in runs if r.unit == u1]


def test_writes_staged_before_leadership_ends_are_refused_at_commit(trio):
    model, (u0, u1, u2) = trio
    model.move_leader(u1, mid_hook='application-version-set')  # after the write
    write_word(model, 'w')
    runs = model.settle()
    failed, retried = [r for r in runs if r.unit == u0 and r.hook == 'config-changed']
    assert not failed.ok and failed.app_written == {} and failed.relation_written == {}
    assert 'permission denied' in failed.error
    # The failed run's unit data was committed when it exited 0; only Juju's commit failed.
    notes = seen(model, u0)
    assert retried.ok and notes.index(['app-wrote', 'w']) < notes.index(['app-refused', 1, 'w'])
    assert model.leader == u1 and model.app_bag() == {'word': 'w'}  # u1 wrote it
    assert next(r for r in runs if r.unit == u1 and r.hook == 'config-changed').app_written \
        == {'word': 'w'}


def test_self_notification_is_an_argument_or_the_environment(probe, tmp_path, monkeypatch):
    def self_notify(**kwargs):
        with Model(probe, 'cluster', workdir=str(tmp_path), **kwargs) as model:
            return model.self_notify
    monkeypatch.delenv(ENV_SELF_NOTIFY, raising=False)
    assert self_notify() is True and self_notify(self_notify=False) is False
    monkeypatch.setenv(ENV_SELF_NOTIFY, '0')
    assert self_notify() is False and self_notify(self_notify=True) is True
    monkeypatch.setenv(ENV_SELF_NOTIFY, 'yes')
    with pytest.raises(ValueError):
        self_notify()


def test_a_failed_hook_is_rolled_back_and_retried(model):
    u0, u1 = model.add_unit(), model.add_unit()
    model.settle()
    model.fail_next(u0, 'update-status')
    model.queue(u0, 'config-changed')
    model.queue(u0, 'update-status')
    runs = model.settle()
    assert [(r.hook, r.ok, r.attempt) for r in runs if r.unit == u0] == [
        ('config-changed', True, 1), ('update-status', False, 1), ('update-status', True, 2)]
    failed = runs[1]
    assert 'injected hook failure' in failed.error and failed.relation_written == {}
    assert failed.calls['relation-set'] == 2  # it did write; the write was discarded
    assert model.kv(u0)['count'] == 1 and model.bag(u0)['count'] == '1'
    assert [(r.unit, r.hook) for r in runs[3:]] == [(u1, 'cluster-relation-changed')]


def test_a_hook_that_keeps_failing_gives_up_loudly(probe, tmp_path):
    with Model(probe, 'cluster', workdir=str(tmp_path), max_retries=2) as model:
        u0 = model.add_unit()
        model.settle()
        model.set_config(explode=True)
        with pytest.raises(HookRetriesExhausted) as failed:
            model.settle()
        assert 'explode is set' in failed.value.record.error
        assert [r.ok for r in model.history[-3:]] == [False, False, False]
        assert model.kv(u0)['greeting'] == 'hello'  # rolled back each time
        model.set_config(explode=False)
        (retried,) = model.settle()
        assert (retried.hook, retried.ok, retried.attempt) == ('config-changed', True, 4)


def test_config(model):
    u0 = model.add_unit()
    model.settle()
    assert model.config == {'greeting': 'hello', 'explode': False, 'peek': None,
                            'misuse': False, 'try-leader-set': False, 'app-word': None,
                            'watch': None}
    model.set_config(greeting='hello')
    assert model.pending() == []
    model.set_config(greeting='hi')
    assert model.pending() == [(u0, 0, Hook('config-changed'))]
    model.settle()
    assert model.kv(u0)['greeting'] == 'hi' and model.bag(u0)['greeting'] == 'hi'
    model.set_config(greeting=None)
    assert model.config['greeting'] == 'hello'
    with pytest.raises(ValueError):
        model.set_config(colour='red')
    with pytest.raises(TypeError):
        model.set_config(explode='yes')


def test_run_delivers_early_within_juju_guarantees_and_duplicate(model):
    u0, u1 = model.add_unit(), model.add_unit()
    with pytest.raises(ValueError):
        model.run(u0, 1)  # nothing passes install
    model.settle()
    model.queue(u0, 'update-status')
    model.queue(u0, 'cluster-relation-changed', remote=u1)
    model.queue(u0, 'cluster-relation-changed', remote=u1)
    with pytest.raises(ValueError):
        model.run(u0, 2)  # hooks of one remote unit stay in order
    assert model.run(u0, 1).hook == 'cluster-relation-changed'
    model.duplicate(u0, 0)
    assert [h.name for _, _, h in model.pending()] == ['update-status'] * 2 \
        + ['cluster-relation-changed']
    model.settle()
    with pytest.raises(ValueError):
        model.queue(u0, 'cluster-relation-joined', remote=u1)


def test_settle_order_follows_the_seed(probe, tmp_path):
    def order(seed):
        with Model(probe, 'cluster', workdir=str(tmp_path), seed=seed) as model:
            for _ in range(3):
                model.add_unit()
            return [(r.unit, r.hook, r.remote) for r in model.settle()]
    assert order(1) == order(1)
    assert order(1) != order(2)


def test_settle_gives_up_when_hooks_keep_coming(model):
    model.add_unit()
    with pytest.raises(NotSettled):
        model.settle(max_hooks=3)


def test_relation_must_be_a_peer_relation(probe, tmp_path):
    with pytest.raises(ValueError):
        Model(probe, 'db', workdir=str(tmp_path))


# -- both executors ----------------------------------------------------------------

def directed_scenario(model):
    """Few hooks (each is a process in the subprocess executor), many semantics."""
    u0, u1 = model.add_unit(), model.add_unit()
    for _ in range(6):  # install .. start, then -joined for u1
        model.run(u0)
    model.fail_next(u0, 'update-status')
    model.queue(u0, 'update-status')
    model.run(u0, 1)  # before the queued -changed for u1; fails at its end
    model.run(u0)  # the retry comes first
    model.set_config(**{'app-word': 'w'})
    model.run(u0, 1)  # config-changed: the leader writes the application bag ...
    model.run(u0, 1)  # ... and, told of its own write, reads it
    model.remove_unit(u1)
    assert model.pending()[0] == (u0, 0, Hook('cluster-relation-departed', u1, u1))
    model.run(u0)
    model.set_config(misuse=True)
    with pytest.raises(UnsupportedToolCall):
        model.run(u0)
    return u0, u1


def observable(model):
    """What must not depend on the executor: everything but timing and tracebacks."""
    def text(arg):  # temporary file names and tracebacks (paths, frames) differ
        return 'Hook error: ...' if arg.startswith('Hook error:') else arg

    def argv(args):
        return [('<file>' if i and args[i - 1] == '--file' else text(arg))
                for i, arg in enumerate(args)]
    history = [(r.unit, r.hook, r.remote, r.app_change, r.departing, r.attempt, r.ok,
                dict(r.calls), [argv(a) for a in r.argv], r.relation_written, r.app_written,
                r.leader_written, r.flags,
                [(level, text(message)) for level, message in r.logs], r.unsupported)
               for r in model.history]
    kv = {u: {k: v for k, v in model.kv(u).items() if k != 'clock'} for u in model.units}
    return history, model.app_bag(), {u: (model.bag(u), kv[u]) for u in model.units}


@pytest.mark.parametrize('executor', EXECUTORS)
def test_the_hooks_clock_runs_ahead_as_the_test_says(probe, tmp_path, executor):
    with Model(probe, 'cluster', executor=executor, workdir=str(tmp_path)) as model:
        unit = model.add_unit()
        model.settle()
        for days in (0, 61, 122):
            before = time.time()
            model.queue(unit, 'update-status')
            assert model.run(unit).ok
            assert before <= model.kv(unit)['clock'] - days * 86400 <= time.time(), days
            model.advance_clock(days=61)
    assert time.time() - before < 3600  # the test's own clock never moved


def test_executors_agree(probe, tmp_path):
    results = []
    for executor in EXECUTORS:
        with Model(probe, 'cluster', executor=executor, workdir=str(tmp_path),
                   self_notify=True) as model:
            u0, u1 = directed_scenario(model)
            assert [(r.hook, r.ok, r.app_change) for r in model.history][5:] == [
                ('cluster-relation-joined', True, False), ('update-status', False, False),
                ('update-status', True, False), ('config-changed', True, False),
                ('cluster-relation-changed', True, True),
                ('cluster-relation-departed', True, False),
                ('config-changed', False, False)], executor
            assert model.history[8].app_written == {'word': 'w'}, executor
            assert seen(model, u0)[-6:] == [
                ['cluster-relation-joined', u1, None, [u1]],
                ['app-wrote', 'w'],
                ['env', 'cluster-relation-changed', JUJU[model.juju].version,
                 APP_CHANGED_ENV],
                ['app-changed', 'w', 'w', {'word': 'w'}],
                ['departed, leader:', u1, True],
                ['cluster-relation-departed', u1, u1, '127.0.0.2', []]], executor
            assert model.kv(u0)['count'] == 1 and model.bag(u0)['count'] == '1', executor
            misuse = model.history[-1]
            assert misuse.unsupported == [['relation-get', '--app', '-']], executor
            assert 'CalledProcessError' in misuse.error, executor
            results.append(observable(model))
    assert results[0] == results[1]


# -- Juju's rules from its source (model.py's docstring names the files) -------

def test_the_leader_is_told_of_its_own_application_bag_writes_by_default(probe, tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv(ENV_SELF_NOTIFY, raising=False)
    with Model(probe, 'cluster', workdir=str(tmp_path)) as model:
        u0, u1 = model.add_unit(), model.add_unit()
        model.settle()
        write_word(model, 'w')
        runs = model.settle()
        assert sorted(app_hooks(model, runs)) == [u0, u1]


def update_status(model, unit):
    """Queue update-status on ``unit`` and run it at once, ahead of its other hooks."""
    model.queue(unit, 'update-status')
    return model.run(unit, len(model._unit(unit).queue) - 1)


def test_a_member_s_settings_are_cached_until_a_hook_about_it(model):
    u0, u1 = model.add_unit(), model.add_unit()
    model.settle()
    model.set_config(watch=u1)
    model.settle()
    update_status(model, u0)  # u0 reads u1's count, None yet, and its agent caches that
    update_status(model, u1)  # u1 commits count=1; u0 gets a -changed about u1 ...
    assert Hook('cluster-relation-changed', u1) in [h for u, _, h in model.pending() if u == u0]
    update_status(model, u0)
    assert seen(model, u0)[-1] == ['watch', u1, None]  # ... but until it runs, reads the old copy
    model.settle()  # the -changed about u1 invalidates it
    update_status(model, u0)
    assert seen(model, u0)[-1] == ['watch', u1, '1']


def test_an_agent_restart_empties_the_cache_and_runs_leader_settings_changed(model):
    u0, u1 = model.add_unit(), model.add_unit()
    model.settle()
    model.set_config(watch=u0)
    model.settle()
    update_status(model, u1)  # caches u0's count, None
    update_status(model, u0)
    update_status(model, u1)
    assert seen(model, u1)[-1] == ['watch', u0, None]  # cached
    model.restart_agent(u1)
    model.restart_agent(u0)  # the leader runs no leadership hook
    assert [h.name for u, _, h in model.pending() if u == u0] == ['cluster-relation-changed']
    assert Hook('leader-settings-changed') in [h for u, _, h in model.pending() if u == u1]
    update_status(model, u1)
    assert seen(model, u1)[-1] == ['watch', u0, '1']  # read fresh, before any -changed about u0


def test_a_dying_leader_leads_through_its_teardown(model):
    u0, u1, u2 = (model.add_unit() for _ in range(3))
    model.settle()
    model.remove_unit(u0)
    assert model.leader == u0 and u0 not in model.units
    runs = []
    while any(u == u0 for u, _, _ in model.pending()):
        runs.append(model.run(u0))
    assert [r.hook for r in runs if r] == ['cluster-relation-departed'] * 2 + ['stop']
    assert [n for n in seen(model, u0) if n[0] == 'departed, leader:'] == [
        ['departed, leader:', u1, True], ['departed, leader:', u2, True]]
    assert model.leader == u1  # elected once u0 is gone
    model.settle()
    assert ('leader-elected', None) in hooks_of(model, u1)


def test_a_commit_lost_after_exit_keeps_unit_data_and_retries_the_hook(trio):
    model, (u0, u1, u2) = trio
    model.lose_commit(u0, 'config-changed')
    write_word(model, 'w')
    lost = model.run(u0)
    assert (lost.hook, lost.ok, lost.commit_lost) == ('config-changed', False, True)
    assert lost.relation_written == {} and lost.app_written == {}
    assert ['app-wrote', 'w'] in seen(model, u0)  # unit data was flushed at exit
    assert model.app_bag() == {} and model.bag(u0)['greeting'] == 'hello'
    assert model.pending()[0] == (u0, 0, Hook('config-changed'))
    runs = model.settle()
    retried = next(r for r in runs if r.unit == u0)
    assert (retried.ok, retried.attempt, retried.app_written) == (True, 2, {'word': 'w'})


def test_commits_are_lost_at_a_seeded_rate(probe, tmp_path):
    def lost(seed):
        with Model(probe, 'cluster', workdir=str(tmp_path), seed=seed, commit_loss=0.3) as model:
            for _ in range(3):
                model.add_unit()
            model.settle()
            return [(r.unit, r.hook, r.remote) for r in model.history if r.commit_lost]
    first = lost(5)
    assert first and first == lost(5) and first != lost(6)
    with pytest.raises(ValueError):
        Model(probe, 'cluster', workdir=str(tmp_path), commit_loss=1)


@pytest.mark.parametrize('juju', JUJUS)
def test_storage_hooks_run_before_install_where_the_relation_is_unusable(tmp_path, juju):
    root = tmp_path / 'charm'
    charm = build_probe(root)
    metadata = os.path.join(charm, 'metadata.yaml')
    with open(metadata, 'a') as handle:
        handle.write('storage:\n  data:\n    type: filesystem\n')
    hook = os.path.join(charm, 'hooks', 'data-storage-attached')
    with open(os.path.join(charm, 'hooks', 'hook.template')) as template, open(hook, 'w') as out:
        out.write(template.read())
    os.chmod(hook, 0o755)
    with Model(charm, 'cluster', workdir=str(tmp_path), juju=juju) as model:
        u0 = model.add_unit()
        model.settle()
        assert [h for h, _ in hooks_of(model, u0)][:2] == ['data-storage-attached', 'install']
        envs = [n[1] for n in seen(model, u0) if n[0] == 'env']
        assert envs[:2] == ['data-storage-attached', 'install']
        relation = [n for n in seen(model, u0) if n[0] == 'install']
        # Juju 3 lists the relation and refuses its data in both; Juju 2.9 lists it in neither.
        assert relation == ([['install', 'cluster:0', [], 1, 1, 1, 1]] * 2 if juju == '3' else [])


def test_records_say_which_reads_the_agent_fetched(model):
    u0, u1 = model.add_unit(), model.add_unit()
    model.settle()
    model.set_config(watch=u1)
    model.settle()
    assert update_status(model, u0).fetched == []  # cached by its -changed about u1
    model.restart_agent(u0)
    assert update_status(model, u0).fetched == [u1]
    assert update_status(model, u0).fetched == []
