"""The benchmark's call-cost rule (benchmarks/converge.py, ``round_trips``):
which hook tool calls of a hook cost a controller round trip, as Juju's unit
agent makes them. The benchmark's docstring names the Juju source of each
case; these tests hold the function to it, on hand-made records."""
import collections
import importlib.util
from pathlib import Path

import pytest
from support.jujusim.model import HookRecord

_SPEC = importlib.util.spec_from_file_location(
    'converge', Path(__file__).resolve().parents[1] / 'benchmarks' / 'converge.py')
converge = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(converge)

UNIT, PEER, OTHER = 'tls-example/0', 'tls-example/1', 'tls-example/2'


def record(*argv, hook='tls-relation-changed', remote=PEER, fetched=(), ok=True):
    """A HookRecord of ``UNIT`` that made the calls ``argv`` (lists)."""
    return HookRecord(
        seq=1, unit=UNIT, hook=hook, remote=remote, app_change=False, departing=None,
        attempt=1, ok=ok, error='', output='',
        calls=collections.Counter(call[0] for call in argv), argv=[list(call) for call in argv],
        relation_written={}, app_written={}, leader_written={}, flags=frozenset(), logs=[],
        unsupported=[], seconds=0.0, causes=(), fetched=list(fetched))


def get(name, *app):
    return ['relation-get', '--format=json', *app, '-r', 'tls:0', '-', name]


def test_what_the_agent_answers_itself_costs_nothing():
    assert converge.round_trips(record(
        ['is-leader', '--format=json'], ['relation-ids', '--format=json', 'tls'],
        ['relation-list', '--format=json', '-r', 'tls:0'], ['juju-log', '-l', 'INFO', 'hi'],
        ['relation-set', '--help'])) == {}


def test_a_remote_unit_costs_a_round_trip_only_where_the_agent_fetched_it():
    calls = [get(PEER), get(OTHER), get(PEER)]
    assert converge.round_trips(record(*calls, fetched=[PEER])) == {'remote settings': 1}
    assert converge.round_trips(record(*calls, fetched=[])) == {}
    assert converge.round_trips(record(*calls, fetched=[PEER]), cache=False) == {
        'remote settings': 3}


def test_the_remote_unit_of_the_hook_is_read_without_a_name():
    bare = ['relation-get', '--format=json', '-']
    assert converge.round_trips(record(bare, fetched=[PEER])) == {'remote settings': 1}
    # without a remote unit (an app-changed), Juju reads the application bag
    assert converge.round_trips(record(bare, remote=None)) == {'application settings': 1}


def test_own_settings_and_the_application_bag_are_fetched_once_and_sent_back_once():
    trips = converge.round_trips(record(
        get(UNIT), get(UNIT), ['relation-set', '-r', 'tls:0', '--file', 'f'],
        get('tls-example', '--app'), ['relation-set', '--app', '-r', 'tls:0', '--file', 'g'],
        get('tls-example', '--app')))
    assert trips == {'own settings': 1, 'application settings': 1, 'commit': 1}


def test_a_hook_that_only_reads_the_application_bag_commits_nothing():
    assert converge.round_trips(record(get('tls-example', '--app'))) == {
        'application settings': 1}


def test_reading_its_own_settings_is_enough_to_commit():
    """FinalSettings sends the unit's settings whenever the hook loaded them."""
    assert converge.round_trips(record(get(UNIT))) == {'own settings': 1, 'commit': 1}


def test_a_failed_hook_commits_nothing():
    assert converge.round_trips(record(get(UNIT), ok=False)) == {'own settings': 1}


def test_config_changed_always_commits():
    assert converge.round_trips(record(['config-get', '--all', '--format=json'],
                                       ['config-get', '--all', '--format=json'],
                                       hook='config-changed', remote=None)) == {
        'config': 1, 'commit': 1}


def test_leader_settings_are_read_once_until_the_hook_writes_them():
    trips = converge.round_trips(record(
        ['leader-get', '--format=json', '-'], ['leader-get', '--format=json', '-'],
        ['leader-set', 'a=b'], ['leader-get', '--format=json', '-']))
    assert trips == {'leader settings': 2, 'leader-set': 1}


def test_calls_that_ask_the_controller_every_time():
    trips = converge.round_trips(record(
        ['status-set', 'active', ''], ['status-set', 'active', 'x'],
        ['goal-state', '--format=json'],
        ['unit-get', '--format=json', 'private-address'],
        ['unit-get', '--format=json', 'private-address'],
        ['unit-get', '--format=json', 'public-address'],
        ['unit-get', '--format=json', 'public-address']))
    assert trips == {'status-set': 2, 'goal-state': 1, 'unit-get private-address': 2,
                     'public address': 1}


def test_a_tool_the_rule_does_not_name_fails_the_benchmark():
    with pytest.raises(converge.ClaimFailed, match='network-get'):
        converge.round_trips(record(['network-get', '--format=json', 'tls']))


def test_more_fetches_than_reads_fail_the_benchmark():
    with pytest.raises(converge.ClaimFailed, match='fetched'):
        converge.round_trips(record(get(PEER), fetched=[PEER, OTHER]))
