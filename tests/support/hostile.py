"""What the hostile-input tests (test_hostile.py, test_pem_corpus.py) share:
who is who in their three-unit driver deployment, how they write as an
operator would, and what every bad input must end with: the receiving unit
warns naming the writer and the key, raises no state, changes nothing, and
nothing secret spreads anywhere."""
import base64
import json

from peers import _APP_BAG, SIGN_CSR
from peers import CERT_KEY as _CERT_KEY
from peers import CSR_DIGEST_KEY as _DIGEST_KEY

LEADER, FOLLOWER, THIRD = 'drv/0', 'drv/1', 'drv/2'
# The follower's answer keys, the ones direction B attacks.
CERT_KEY = _CERT_KEY.format(FOLLOWER)
DIGEST_KEY = _DIGEST_KEY.format(FOLLOWER)
# How warnings name the writer of an application-bag value.
APP_BAG = _APP_BAG


def armor(name, data, width=64):
    """PEM text of ``data`` under the label ``name``, base64 in lines of ``width``."""
    text = base64.b64encode(data).decode()
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    return '\n'.join([f'-----BEGIN {name}-----'] + lines + [f'-----END {name}-----']) + '\n'


def snapshot(drv, unit):
    """What a bad input must leave as it was on ``unit``: its unit data,
    states and bag, and on the leader the application bag it writes."""
    state = {'kv': drv.kv(unit), 'flags': drv.flags(unit), 'bag': drv.model.bag(unit)}
    if unit == drv.model.leader:
        state['app'] = drv.model.app_bag()
    return state


def warned(records, writer, key):
    """WARNING lines of ``records`` that blame ``key`` on ``writer`` (a unit,
    or APP_BAG), whatever the reason they give."""
    return [message for record in records for level, message in record.logs
            if level == 'WARNING' and repr(key) in message and writer in message]


def assert_ignored(drv, since, victim, before, blamed=(), poked=None, nothing_spread=()):
    """The hooks since ``since`` succeeded; the victim's warned about each
    (writer, key) in ``blamed``, raised no state, changed nothing on the
    victim; no text in ``nothing_spread`` left ``poked`` (a unit's bag, or
    APP_BAG)."""
    records = drv.records(since=since)
    assert records and all(record.ok for record in records), [r.error for r in records]
    mine = [record for record in records if record.unit == victim]
    assert mine, f'no hook ran on {victim}'
    for writer, key in blamed:
        assert warned(mine, writer, key), f'no WARNING blaming {key!r} on {writer}'
    assert snapshot(drv, victim) == before
    assert not [r for r in mine if SIGN_CSR in r.flags]
    assert not [r for r in mine if drv.runs(victim, 'sign', r)]
    for text in nothing_spread:
        assert text not in everywhere_else(drv, records, poked)


def everywhere_else(drv, records, poked):
    """Every place a poked value could be copied to, as one text: the bags
    (the units', the application's) but ``poked``, leader settings, all unit
    data, the driver logs, and the logs, output and writes of ``records``."""
    units = drv.model.units
    places = [drv.model.bag(unit) for unit in units if unit != poked]
    if poked != APP_BAG:
        places.append(drv.model.app_bag())
    places += [drv.model.leader_settings] + [drv.model.kv(unit) for unit in units]
    places += [drv.log(unit) for unit in units]
    places += [(record.logs, record.output, record.relation_written, record.app_written)
               for record in records]
    return json.dumps(places)


def secrets(value):
    """The start of the body of a private key in ``value``: text that must
    never be republished anywhere."""
    if 'PRIVATE KEY' not in value:
        return []
    return [value.split('PRIVATE KEY-----', 1)[1].split()[0]]


def poke_app(drv, values):
    """Write ``values`` into the application bag as an operator would, run
    the hooks this queues on the follower and return their records. Only the
    follower's: what it makes of the values is under test, and a leader told
    of the write (JUJUSIM_SELF_NOTIFY=1) would answer again over them."""
    since = len(drv.model.history)
    drv.model.poke_app(values)
    drv.run_queued(FOLLOWER)
    return drv.records(since=since)
