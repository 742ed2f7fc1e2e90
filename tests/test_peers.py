"""Unit tests of the layer's states, methods, unitdata and wire format.

Every test runs the layer for real inside the driver charm (tests/support/driver.py):
real ``charms.reactive.main()`` dispatch, real handlers taking the relation
object, real unitdata, with jujusim answering the hook tools. Test names say
the rule they check, so that the docs (README.md, docs/) can cite them.
"""
import collections

import pytest
from cryptography import x509
from support import pki
from support.driver import STORAGE
from support.jujusim.model import JUJU_KEYS
from support.pki import ca_ack, ca_digest, csr_digest, public_key

import peers
from peers import (
    CA_KEY,
    CERT_AVAILABLE,
    CERT_KEY,
    CREATE_CSR,
    CSR_DIGEST_KEY,
    CSR_KEY,
    KV_SERVER_CERT,
    KV_STATE,
    SIGN_CSR,
)

GLOBAL_CONVERSATION = 'reactive.conversations.{}.global'


def relation_sets(record):
    """The relation-set calls of a hook, without charmhelpers' --help probes."""
    return [argv for argv in record.argv if argv[0] == 'relation-set' and argv[1:] != ['--help']]




def belongs_to_key(drv, unit, cert_pem):
    return public_key(cert_pem) == pki.public_der(drv.key(unit).public_key())


def issued_by(ca, cert_pem):
    return pki.verify_signature(ca.cert, x509.load_pem_x509_certificate(cert_pem.encode()))


# -- create certificate signing request ---------------------------------------

def test_create_raised_on_relation_created_for_a_lone_unit(make):
    drv = make(units=1, create=False)
    flags_by_hook = [(r.hook, CREATE_CSR in r.flags) for r in drv.records('drv/0')]
    assert flags_by_hook[:2] == [('install', False), ('tls-relation-created', True)]
    first = drv.runs('drv/0', 'create')[0]
    assert (first['hook'], first['arg']) == ('tls-relation-created', 'TlsPeers')


def test_create_stays_raised_while_the_charm_does_not_call_set_csr(make):
    drv = make(units=1, create=False)
    drv.run('drv/0', 'update-status')
    hooks = [run['hook'] for run in drv.runs('drv/0', 'create')]
    assert hooks == ['tls-relation-created', 'leader-elected', 'config-changed', 'start',
                     'update-status']
    assert drv.flags('drv/0') == {CREATE_CSR}


def test_set_csr_clears_create(make):
    drv = make(units=1, create=False, sign=False)
    drv.call('drv/0', 'set_csr', pki.make_csr(pki.make_key(), 'drv/0'), hook='config-changed')
    assert CREATE_CSR not in drv.record.flags
    assert drv.runs('drv/0', 'create', drv.record) == []
    assert drv.model.bag('drv/0')[CSR_KEY].startswith('-----BEGIN CERTIFICATE REQUEST-----')


# -- sign certificate signing request -----------------------------------------

def test_sign_raised_on_a_lone_leader_for_its_own_csr(make):
    drv = make(units=1, sign=False)
    assert drv.flags('drv/0') == {SIGN_CSR}
    assert list(drv.call('drv/0', 'get_csr_map')) == ['drv/0']


def test_sign_raised_only_on_the_leader(make):
    drv = make(units=3, sign=False)
    assert drv.flags('drv/0') == {SIGN_CSR}
    assert drv.flags('drv/1') == drv.flags('drv/2') == set()
    assert drv.runs('drv/1', 'sign') == drv.runs('drv/2', 'sign') == []
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2']


def test_sign_cleared_once_every_pending_csr_is_answered(make):
    drv = make(units=3, sign=False)
    csrs = drv.call('drv/0', 'get_csr_map')
    answers = [('set_cert', [unit, pki.sign(drv.ca, csrs[unit])]) for unit in ('drv/0', 'drv/1')]
    record = drv.run('drv/0', 'update-status', calls=answers + [('get_csr_map', [])])
    assert SIGN_CSR in record.flags
    assert list(drv.results(record)[-1]['value']) == ['drv/2']
    record = drv.run('drv/0', 'update-status',
                     calls=[('set_cert', ['drv/2', pki.sign(drv.ca, csrs['drv/2'])])])
    assert SIGN_CSR not in record.flags
    assert drv.call('drv/0', 'get_csr_map') == {}


def test_sign_not_raised_when_every_csr_is_answered(make):
    drv = make(units=3)
    assert drv.flags('drv/0') == {CERT_AVAILABLE}
    drv.run('drv/0', 'update-status')
    assert drv.runs('drv/0', 'sign', drv.model.history[-1]) == []


def test_sign_raised_again_after_a_follower_rekeys(make):
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    csr = drv.rekey('drv/1')
    drv.settle()
    assert drv.flags('drv/0') == {SIGN_CSR, CERT_AVAILABLE}
    assert drv.call('drv/0', 'get_csr_map') == {'drv/1': csr}
    drv.control('drv/0', sign=True)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert SIGN_CSR not in drv.flags('drv/0')
    assert belongs_to_key(drv, 'drv/1', drv.cert('drv/1'))


def test_set_ca_with_the_same_ca_changes_nothing(make):
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    drv.call('drv/0', 'set_ca', drv.ca.pem)
    assert SIGN_CSR not in drv.record.flags
    assert relation_sets(drv.record) == []


def test_an_emergency_set_ca_makes_every_csr_pending_at_once(make):
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    other = pki.make_ca('other CA')
    drv.call('drv/0', 'set_ca', other.pem, True)
    assert SIGN_CSR in drv.record.flags
    # The answers under the old CA go, and the old CA with them; the units
    # keep their certificates until the new ones arrive. The roles change:
    # the round moves on.
    assert drv.model.app_bag() == {peers.CA_KEY: other.pem, peers.CA_ROUND_KEY: '2'}
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2']
    drv.settle()
    assert drv.call('drv/1', 'get_ca') == other.pem
    assert drv.cert('drv/1') and drv.flags('drv/1') == {CERT_AVAILABLE}


def test_a_new_ca_is_trusted_everywhere_before_anything_is_issued_under_it(make):
    """Rotation, phase (a): the new CA goes out next to the current one and
    nothing is pending; each follower trusts both and acknowledges. Phase
    (b): once all have, every CSR is pending under the new CA, which is now
    the issuing one; the old one stays trusted."""
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    old, new = drv.ca, pki.make_ca('new CA')
    drv.call('drv/0', 'set_ca', new.pem)
    assert SIGN_CSR not in drv.record.flags and drv.call('drv/0', 'get_csr_map') == {}
    app = drv.model.app_bag()
    assert (app[peers.CA_KEY], app[peers.CA_NEXT_KEY]) == (old.pem, new.pem)
    assert peers.CA_PREVIOUS_KEY not in app
    assert drv.call('drv/0', 'get_ca') == old.pem + new.pem
    for unit in ('drv/1', 'drv/2'):
        drv.run(unit, 'tls-relation-changed', remote='drv/0')
        assert drv.call(unit, 'get_ca') == old.pem + new.pem
        assert drv.model.bag(unit)[peers.CA_ACK_KEY] == ca_ack(old.pem, new.pem)
        assert drv.call('drv/0', 'get_csr_map') == {} or unit == 'drv/2'
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2']
    app = drv.model.app_bag()
    assert (app[peers.CA_KEY], app[peers.CA_PREVIOUS_KEY]) == (new.pem, old.pem)
    assert peers.CA_NEXT_KEY not in app
    drv.use_ca(new)
    drv.control('drv/0', sign=True)
    drv.run('drv/0', 'update-status')
    drv.settle()
    for unit in drv.model.units:
        assert issued_by(new, drv.cert(unit)) and belongs_to_key(drv, unit, drv.cert(unit))
        assert drv.call(unit, 'get_ca') == new.pem  # every unit holds a new certificate: old retired


def test_new_ca_gets_every_unit_a_certificate_from_it(make):
    drv = make(units=3)
    other = pki.make_ca('other CA')
    drv.use_ca(other)
    drv.run('drv/0', 'update-status')
    drv.settle()
    for unit in drv.model.units:
        assert issued_by(other, drv.cert(unit)) and belongs_to_key(drv, unit, drv.cert(unit))
        assert drv.call(unit, 'get_ca') == other.pem


def test_every_two_units_accept_each_other_after_every_hook_of_a_rotation(make):
    """The point of the phases: whatever hook has run, each unit's
    certificate is signed by a CA the other unit trusts, both ways."""
    drv = make(units=4)
    drv.use_ca(pki.make_ca('new CA'))
    drv.run('drv/0', 'update-status')
    checked = 0
    while drv.model.pending():
        unit = drv.model.pending()[0][0]
        assert drv.model.run(unit).ok
        bundles = {unit: drv.model.kv(unit)[peers.KV_CA] for unit in drv.model.units}
        for one in drv.model.units:
            for other in drv.model.units:
                assert pki.trusts(bundles[other], drv.cert(one)), f'{other} rejects {one}'
        checked += 1
    assert checked >= 8 and all(issued_by(drv.ca, drv.cert(unit)) for unit in drv.model.units)


def test_a_unit_that_joins_mid_rotation_trusts_both_and_is_waited_for(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    old, new = drv.ca, pki.make_ca('new CA')
    drv.call('drv/0', 'set_ca', new.pem)
    drv.add_unit()
    drv.run_queued('drv/2')
    assert drv.call('drv/2', 'get_ca') == old.pem + new.pem
    assert drv.model.bag('drv/2')[peers.CA_ACK_KEY] == ca_ack(old.pem, new.pem)
    drv.settle()
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2']
    assert drv.model.app_bag()[peers.CA_PREVIOUS_KEY] == old.pem


def test_a_leader_change_mid_rotation_continues_it(make):
    """The phase lives in the application bag: a new leader whose charm has
    not yet given any CA carries the rotation on once every unit trusts the
    new CA."""
    drv = make(units=3)
    new = pki.make_ca('new CA')
    drv.control('drv/0', sign=False)
    drv.call('drv/0', 'set_ca', new.pem)
    drv.run('drv/1', 'tls-relation-changed', remote='drv/0')
    drv.use_ca(new)
    drv.model.move_leader('drv/1')
    drv.settle()
    assert drv.model.leader == 'drv/1' and peers.CA_NEXT_KEY not in drv.model.app_bag()
    for unit in drv.model.units:
        assert issued_by(new, drv.cert(unit)) and drv.call(unit, 'get_ca') == new.pem


def test_the_previous_ca_is_dropped_once_it_expires(make, clock):
    """drv/1's agent is down through a rotation: the leader goes on without
    it after ROTATION_WAIT, and the old CA, which drv/1 still presents a
    certificate from, stays trusted until it expires."""
    drv = make(units=2)
    short, new = pki.make_ca('short-lived CA', days=20), pki.make_ca('new CA')
    drv.use_ca(short)
    drv.call('drv/0', 'set_ca', short.pem, True)
    drv.settle()
    drv.use_ca(new)
    drv.run('drv/0', 'update-status')
    clock(seconds=peers.ROTATION_WAIT)
    drv.run('drv/0', 'update-status')
    drv.settle_without('drv/1')
    assert drv.model.app_bag()[peers.CA_PREVIOUS_KEY] == short.pem
    clock(days=21)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert peers.CA_PREVIOUS_KEY not in drv.model.app_bag()
    assert [drv.call(unit, 'get_ca') for unit in drv.model.units] == [new.pem, new.pem]


def test_a_new_leader_with_another_ca_warns_that_the_old_one_was_lost(make):
    """charmed-kubernetes/bundle#564: the CA key went with the old leader.
    The new leader's charm gives another CA: a WARNING names both, and the
    rotation keeps every pair of units talking while it re-issues."""
    drv = make(units=3)
    old, other = drv.ca, pki.make_ca('replacement CA')
    drv.use_ca(other)
    drv.model.move_leader('drv/1')
    records = drv.settle()
    lost = [record.unit for record in records for message in warnings([record])
            if ca_digest(old.pem) in message and ca_digest(other.pem) in message]
    assert lost == ['drv/1']
    for unit in drv.model.units:
        assert issued_by(other, drv.cert(unit)) and drv.call(unit, 'get_ca') == other.pem


def test_a_routine_rotation_is_no_lost_ca(make):
    drv = make(units=2)
    drv.use_ca(pki.make_ca('new CA'))
    drv.run('drv/0', 'update-status')
    assert not warnings(drv.settle())


def test_set_ca_twice_in_a_hook_with_the_same_new_ca_is_no_lost_ca(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    new = pki.make_ca('new CA')
    record = drv.run('drv/0', 'update-status', calls=[('set_ca', [new.pem]), ('set_ca', [new.pem])])
    assert record.ok and [r.get('error') for r in drv.results(record)] == [None, None]
    assert not warnings([record])
    assert drv.model.app_bag()[peers.CA_NEXT_KEY] == new.pem


def test_an_acknowledgement_of_an_abandoned_rotation_does_not_count(make):
    """A to B, one unit acknowledges; back to A, that unit drops B and
    withdraws its acknowledgement; B again: nothing is issued under B
    until that unit trusts B again."""
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    a, b = drv.ca, pki.make_ca('B')
    drv.call('drv/0', 'set_ca', b.pem)
    drv.run('drv/1', 'update-status')
    assert peers.CA_ACK_KEY in drv.model.bag('drv/1')
    drv.call('drv/0', 'set_ca', a.pem)
    drv.run('drv/1', 'update-status')
    assert drv.call('drv/1', 'get_ca') == a.pem
    drv.call('drv/0', 'set_ca', b.pem)
    drv.run('drv/2', 'update-status')
    drv.run('drv/0', 'update-status')
    app = drv.model.app_bag()
    assert (app[peers.CA_KEY], app.get(peers.CA_NEXT_KEY)) == (a.pem, b.pem)
    drv.settle()
    assert drv.model.app_bag()[peers.CA_KEY] == b.pem
    assert all(b.pem in drv.call(unit, 'get_ca') for unit in drv.model.units)


def test_an_acknowledgement_names_the_rotation_it_acknowledges(make):
    """A to B, then an emergency C, then a routine rotation back to B: the
    acknowledgements of A to B mean nothing for C to B."""
    drv = make(units=3)
    b, c = pki.make_ca('B'), pki.make_ca('C')
    drv.use_ca(b)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert peers.CA_ACK_KEY in drv.model.bag('drv/1')
    drv.control('drv/0', sign=False)  # its handlers would give C routinely
    drv.call('drv/0', 'set_ca', c.pem, True)
    drv.settle()
    assert [drv.call(unit, 'get_ca') for unit in drv.model.units] == [c.pem] * 3
    drv.control('drv/0', sign=True)
    drv.call('drv/0', 'set_ca', b.pem)
    app = drv.model.app_bag()
    assert (app[peers.CA_KEY], app.get(peers.CA_NEXT_KEY)) == (c.pem, b.pem)
    drv.settle()
    for unit in drv.model.units:
        assert issued_by(b, drv.cert(unit)) and drv.call(unit, 'get_ca') == b.pem



def test_set_ca_refuses_a_non_leader_and_non_certificates(make):
    drv = make(units=2)
    with pytest.raises(ValueError, match='only the leader'):
        drv.call('drv/1', 'set_ca', drv.ca.pem)
    with pytest.raises(ValueError):
        drv.call('drv/0', 'set_ca', drv.model.bag('drv/1')[CSR_KEY])
    assert drv.call('drv/0', 'get_ca') == drv.ca.pem


def test_csr_left_pending_at_failover_is_signed_by_the_new_leader(make):
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    drv.rekey('drv/2')
    drv.settle()
    assert 'drv/2' in drv.call('drv/0', 'get_csr_map')
    drv.model.remove_unit('drv/0')
    records = drv.settle()
    assert drv.model.leader == 'drv/1'
    signed = [e['units'] for r in records for e in drv.log('drv/1', 'signed', r)]
    assert signed and 'drv/2' in signed[0]
    assert belongs_to_key(drv, 'drv/2', drv.cert('drv/2'))
    assert drv.flags('drv/1') == {CERT_AVAILABLE}
    assert drv.model.app_bag()[CSR_DIGEST_KEY.format('drv/2')] == csr_digest(drv.model.bag('drv/2')[CSR_KEY])


def test_new_leader_inherits_answers_when_leadership_moves_between_live_units(make):
    drv = make(units=3)
    certs = {unit: drv.cert(unit) for unit in drv.model.units}
    published = drv.model.app_bag()
    drv.model.move_leader('drv/1')
    records = drv.settle()
    assert certs == {unit: drv.cert(unit) for unit in drv.model.units}
    assert [r for r in records if r.relation_written or r.app_written] == []
    assert drv.runs('drv/1', 'sign') == [] and drv.model.app_bag() == published


def test_ex_leader_keeps_its_certificate_when_leadership_moves(make):
    drv = make(units=2)
    cert = drv.cert('drv/0')
    drv.model.move_leader('drv/1')
    records = drv.settle()
    assert drv.cert('drv/0') == cert
    assert all(CERT_AVAILABLE in r.flags for r in records if r.unit == 'drv/0')


def test_unit_bags_hold_only_csrs_whoever_leads(make):
    drv = make(units=3)
    drv.model.move_leader('drv/1')
    drv.settle()
    for unit in drv.model.units:
        assert set(drv.model.bag(unit)) == JUJU_KEYS | {CSR_KEY}


# -- signed certificate available ---------------------------------------------

def test_available_raised_on_delivery(make):
    drv = make(units=2, sign=False)
    assert drv.flags('drv/1') == set()
    drv.control('drv/0', sign=True)
    drv.run('drv/0', 'update-status')
    drv.settle()
    first = [r for r in drv.records('drv/1') if CERT_AVAILABLE in r.flags][0]
    assert (first.hook, first.app_change) == ('tls-relation-changed', True)
    run = drv.runs('drv/1', 'available', first)[0]
    assert run['cert'] == drv.cert('drv/1') and belongs_to_key(drv, 'drv/1', run['cert'])
    assert run['ca'] == drv.ca.pem


def test_available_cleared_on_rekey_until_the_new_certificate(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    drv.rekey('drv/1')
    assert CERT_AVAILABLE not in drv.record.flags
    drv.settle()
    assert drv.flags('drv/1') == set()
    assert drv.call('drv/1', 'get_signed_cert') is None
    drv.control('drv/0', sign=True)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert drv.flags('drv/1') == {CERT_AVAILABLE}
    assert belongs_to_key(drv, 'drv/1', drv.call('drv/1', 'get_signed_cert'))


def test_rekey_removes_the_old_certificate_from_unitdata(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    assert {CERT_KEY.format('drv/1'), KV_SERVER_CERT} <= set(drv.kv('drv/1'))
    drv.rekey('drv/1')
    assert set(drv.kv('drv/1')) == {peers.KV_STATE.format('tls'), peers.KV_CA, peers.KV_CA_EXPIRY}


def test_available_handler_runs_again_on_redelivery(make):
    drv = make(units=2)
    renewed = pki.sign(drv.ca, drv.model.bag('drv/1')[CSR_KEY])
    drv.call('drv/0', 'set_cert', 'drv/1', renewed)
    records = drv.settle()
    record = [r for r in records if r.unit == 'drv/1' and r.hook == 'tls-relation-changed'][0]
    assert [run['cert'] for run in drv.runs('drv/1', 'available', record)] == [renewed]
    assert drv.cert('drv/1') == renewed


def test_available_handler_runs_again_in_the_hook_where_the_leader_signs_itself(make):
    drv = make(units=1)
    other = pki.make_ca('other CA')
    drv.use_ca(other)
    record = drv.run('drv/0', 'update-status')
    runs = drv.runs('drv/0', 'available', record)
    # Also raised anew when set_ca() changes the CAs the unit trusts
    # (test_a_change_of_trust_reaches_a_charm_that_cleared_available).
    assert not issued_by(other, runs[0]['cert']) and issued_by(other, runs[-1]['cert'])


# -- get_csr_map ----------------------------------------------------------------

def test_get_csr_map_lists_exactly_the_pending_csrs(make):
    drv = make(units=3, sign=False)
    csrs = {unit: drv.model.bag(unit)[CSR_KEY] for unit in drv.model.units}
    assert drv.call('drv/0', 'get_csr_map') == csrs
    drv.call('drv/0', 'set_cert', 'drv/1', pki.sign(drv.ca, csrs['drv/1']))
    del csrs['drv/1']
    assert drv.call('drv/0', 'get_csr_map') == csrs


def test_get_csr_map_omits_invalid_csrs(make):
    drv = make(units=3, sign=False)
    drv.model.poke('drv/2', {CSR_KEY: 'not a CSR'})
    drv.settle()
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1']


def test_get_csr_map_omits_departed_units(make):
    drv = make(units=3, sign=False)
    drv.model.remove_unit('drv/2')
    drv.settle()
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1']


def test_get_csr_map_is_empty_on_a_follower(make):
    drv = make(units=3, sign=False)
    assert drv.call('drv/1', 'get_csr_map') == {}


def test_departed_unit_leaves_the_application_bag(make):
    drv = make(units=3)
    assert {CERT_KEY.format('drv/2'), CSR_DIGEST_KEY.format('drv/2')} <= set(drv.model.app_bag())
    drv.model.remove_unit('drv/2')
    drv.settle()
    assert not [key for key in drv.model.app_bag() if key.startswith('drv/2')]
    assert drv.call('drv/0', 'get_csr_map') == {}


def test_a_new_leader_drops_the_answers_of_a_unit_that_left_before_it_led(make):
    """drv/1 runs -departed for drv/2 as a follower and is made leader
    before drv/0, the leader then, has run its own. relation-list no longer
    names drv/2 on drv/1, as it names no unit drv/1 has yet to meet:
    goal-state tells the two apart."""
    drv = make(units=3)
    drv.model.remove_unit('drv/2')
    for unit in ('drv/2', 'drv/1'):
        drv.run_queued(unit)
    assert CSR_DIGEST_KEY.format('drv/2') in drv.model.app_bag()
    drv.model.move_leader('drv/1')
    drv.run_queued('drv/1')
    assert not hook_failures(drv)
    assert not [key for key in drv.model.app_bag() if key.startswith('drv/2')]
    drv.settle()
    assert all(holds_its_certificate(drv, unit) for unit in drv.model.units)


# -- renewal and expiry (the driver's leader signs for 90 days) ---------------------

def warnings(records):
    return [message for record in records for level, message in record.logs if level == 'WARNING']


def every_unit_holds(drv, certs):
    return {unit: drv.cert(unit) for unit in drv.model.units} == certs


def test_nothing_is_renewed_before_two_thirds_of_its_lifetime(make, clock):
    drv = make(units=3)
    held = {unit: drv.cert(unit) for unit in drv.model.units}
    clock(days=59)
    since = len(drv.model.history)
    for unit in drv.model.units:
        drv.run(unit, 'update-status')
    assert drv.settle() == [] and every_unit_holds(drv, held)
    assert not [r for r in drv.records(since=since) if r.relation_written or r.app_written]
    assert not warnings(drv.records(since=since))


def test_a_certificate_past_two_thirds_of_its_lifetime_is_renewed(make, clock):
    """update-status on the leader finds every answer due, lists it and
    raises sign, its signing handler renews; each unit takes its renewed
    certificate and runs its available handler again, the leader at once."""
    drv = make(units=3)
    held = {unit: drv.cert(unit) for unit in drv.model.units}
    clock(days=61)
    record = drv.run('drv/0', 'update-status')
    assert len(drv.runs('drv/0', 'sign', record)) == 1
    drv.settle()
    for unit in drv.model.units:
        cert = drv.cert(unit)
        assert cert != held[unit] and holds_its_certificate(drv, unit)
        assert pki.validity(load(cert))[1] > pki.validity(load(held[unit]))[1]
        assert drv.call(unit, 'get_signed_cert_expiry') == not_after(cert)
        assert drv.runs(unit, 'available')[-1]['cert'] == cert
    assert drv.call('drv/0', 'get_csr_map') == {} and SIGN_CSR not in drv.flags('drv/0')
    assert not warnings(drv.records())


def test_an_expired_certificate_is_renewed(make, clock):
    drv = make(units=2)
    held = drv.cert('drv/1')
    clock(days=200)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert drv.cert('drv/1') != held and holds_its_certificate(drv, 'drv/1')


def test_renewal_survives_a_leader_change(make, clock):
    """Whether an answer is due comes from the certificate itself: a new
    leader renews what its predecessor left due."""
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    held = drv.cert('drv/2')
    clock(days=61)
    drv.model.move_leader('drv/1')
    drv.settle()
    assert drv.cert('drv/2') != held and holds_its_certificate(drv, 'drv/2')


def test_a_renewal_that_does_not_expire_later_is_warned_about_once(make, clock):
    """copilot-collections#69: a renewal that hands back what the unit has
    (a cached certificate) is no renewal. The leader warns once, naming the
    unit, and stops listing it, so the charm is not asked in every hook;
    a new CSR makes it pending again as usual."""
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    held = drv.cert('drv/1')
    clock(days=61)
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1']
    drv.call('drv/0', 'set_cert', 'drv/1', held)
    stalled = [m for m in warnings([drv.record]) if 'drv/1' in m]
    assert len(stalled) == 1 and not_after(held) in stalled[0]
    since = len(drv.model.history)
    for _ in range(3):
        assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0']
    drv.settle()
    assert drv.cert('drv/1') == held
    assert not [m for m in warnings(drv.records(since=since)) if 'drv/1' in m]
    csr = drv.rekey('drv/1')
    drv.settle()
    assert drv.call('drv/0', 'get_csr_map')['drv/1'] == csr


def test_a_unit_warns_in_the_last_tenth_of_its_certificates_lifetime(make, clock):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    clock(days=80)
    assert not warnings([drv.run('drv/1', 'update-status')])
    clock(days=82)
    found = warnings([drv.run('drv/1', 'update-status')])
    assert len(found) == 1 and 'drv/1' in found[0] and not_after(drv.cert('drv/1')) in found[0]


def test_a_certificate_that_outlives_its_ca_is_warned_about(make):
    drv = make(units=2, sign=False)
    short = pki.make_ca('short-lived CA', days=30)
    cert = pki.sign(short, drv.model.bag('drv/1')[CSR_KEY], days=90)
    record = drv.run('drv/0', 'update-status', calls=[('set_ca', [short.pem]), ('set_cert', ['drv/1', cert])])
    found = [m for m in warnings([record]) if 'drv/1' in m]
    assert len(found) == 1 and not_after(short.pem) in found[0]
    drv.settle()
    assert drv.cert('drv/1') == cert


def load(pem):
    return x509.load_pem_x509_certificate(pem.encode())


# -- set_cert -------------------------------------------------------------------

def test_set_cert_refuses_a_non_leader(make):
    drv = make(units=2, sign=False)
    cert = pki.sign(drv.ca, drv.model.bag('drv/1')[CSR_KEY])
    with pytest.raises(ValueError, match='only the leader'):
        drv.call('drv/1', 'set_cert', 'drv/1', cert)


@pytest.mark.parametrize('name', ['drv/9', 'drv-1'])
def test_set_cert_refuses_an_unknown_unit_and_names_the_units_it_knows(make, name):
    drv = make(units=2, sign=False)
    cert = pki.sign(drv.ca, drv.model.bag('drv/1')[CSR_KEY])
    with pytest.raises(ValueError, match='set_cert: .*no valid CSR.*drv/0, drv/1 .*<application>/<number>'):
        drv.call('drv/0', 'set_cert', name, cert)


@pytest.mark.parametrize('what', ['csr', 'text', 'private key'])
def test_set_cert_refuses_pem_that_is_not_a_certificate(make, what):
    drv = make(units=2, sign=False)
    value = {'csr': drv.model.bag('drv/1')[CSR_KEY], 'text': 'a certificate',
             'private key': pki.key_pem(pki.make_key())}[what]
    with pytest.raises(ValueError):
        drv.call('drv/0', 'set_cert', 'drv/1', value)
    assert 'drv/1' in drv.call('drv/0', 'get_csr_map')


def test_set_cert_refuses_a_certificate_for_another_key(make):
    drv = make(units=2, sign=False)
    csr = drv.model.bag('drv/1')[CSR_KEY]
    cert = pki.sign(drv.ca, csr, public_key=pki.make_key().public_key())
    with pytest.raises(ValueError, match='public key'):
        drv.call('drv/0', 'set_cert', 'drv/1', cert)
    assert relation_sets(drv.record) == []
    assert 'drv/1' in drv.call('drv/0', 'get_csr_map')


@pytest.mark.parametrize('name', ['lost CA', 'driver CA'], ids=['another name', 'the same name'])
def test_set_cert_refuses_a_certificate_issued_by_none_of_the_published_cas(make, name):
    """A leader that lost its CA key and signs with a new one without
    set_ca(): its units would hold certificates their peers do not trust."""
    drv = make(units=2, sign=False)
    drv.call('drv/0', 'set_ca', drv.ca.pem)
    cert = pki.sign(pki.make_ca(name), drv.model.bag('drv/1')[CSR_KEY])
    with pytest.raises(ValueError, match='set_cert: .*issuer is none of the CAs'):
        drv.call('drv/0', 'set_cert', 'drv/1', cert)
    assert relation_sets(drv.record) == []
    assert 'drv/1' in drv.call('drv/0', 'get_csr_map')


def test_set_cert_delivers_the_leaders_own_certificate_locally(make):
    drv = make(units=2, sign=False)
    cert = pki.sign(drv.ca, drv.model.bag('drv/0')[CSR_KEY])
    record = drv.run('drv/0', 'update-status',
                     calls=[('set_cert', ['drv/0', cert]), ('get_signed_cert', [])])
    assert drv.results(record)[-1]['value'] == cert
    assert CERT_AVAILABLE in record.flags
    assert drv.kv('drv/0')[CERT_KEY.format('drv/0')] == cert
    # Delivered in the hook that signed it; published too, so that a
    # successor leader finds it answered.
    assert drv.model.app_bag()[CERT_KEY.format('drv/0')] == cert


def test_set_cert_publishes_all_answers_of_a_hook_in_one_relation_set(make):
    drv = make(units=3, sign=False)
    csrs = drv.call('drv/0', 'get_csr_map')
    record = drv.run('drv/0', 'update-status', calls=[
        ('set_cert', [unit, pki.sign(drv.ca, csr)]) for unit, csr in sorted(csrs.items())])
    sets = relation_sets(record)
    assert len(sets) == 1 and '--app' in sets[0]
    assert {CERT_KEY.format('drv/1'), CSR_DIGEST_KEY.format('drv/1'), CERT_KEY.format('drv/2'),
            CSR_DIGEST_KEY.format('drv/2')} <= set(record.app_written)


# -- get_signed_cert ------------------------------------------------------------

def test_get_signed_cert_is_none_before_delivery(make):
    drv = make(units=2, sign=False)
    assert drv.call('drv/1', 'get_signed_cert', hook='config-changed') is None


@pytest.mark.parametrize('hook', ['config-changed', 'update-status', 'leader-settings-changed'])
def test_get_signed_cert_in_any_hook(make, hook):
    drv = make(units=2)
    assert drv.call('drv/1', 'get_signed_cert', hook=hook) == drv.cert('drv/1')
    assert belongs_to_key(drv, 'drv/1', drv.cert('drv/1'))


# -- set_csr ----------------------------------------------------------------------

BAD_CSRS = {
    'not PEM': lambda csr, key: 'hello',
    'two CSRs': lambda csr, key: csr + csr,
    'a certificate': lambda csr, key: pki.make_ca().pem,
    'CSR and private key': lambda csr, key: csr + pki.key_pem(key),
    'private key': lambda csr, key: pki.key_pem(key),
}


@pytest.mark.parametrize('case', sorted(BAD_CSRS))
def test_set_csr_refuses_bad_input_and_changes_nothing(make, case):
    drv = make(units=2)
    key = pki.make_key()
    bad = BAD_CSRS[case](pki.make_csr(key, 'drv/1'), key)
    bag, kv, flags = drv.model.bag('drv/1'), drv.kv('drv/1'), drv.flags('drv/1')
    with pytest.raises(ValueError):
        drv.call('drv/1', 'set_csr', bad)
    assert relation_sets(drv.record) == []
    assert (drv.model.bag('drv/1'), drv.kv('drv/1'), drv.flags('drv/1')) == (bag, kv, flags)


@pytest.mark.parametrize('encoding', ['compressed', 'explicit'])
def test_set_csr_refuses_a_key_a_ca_does_not_echo_back(make, encoding):
    """A CA writes an EC key uncompressed and with its curve's name, so a
    certificate for a CSR with a compressed point or explicit parameters
    would never carry the CSR's key as it is: refused at once, by name."""
    drv = make(units=2)
    bag, kv, flags = drv.model.bag('drv/1'), drv.kv('drv/1'), drv.flags('drv/1')
    with pytest.raises(ValueError, match='set_csr: its EC key'):
        drv.call('drv/1', 'set_csr', pki.openssl_ec_csr('drv/1', encoding))
    assert relation_sets(drv.record) == []
    assert (drv.model.bag('drv/1'), drv.kv('drv/1'), drv.flags('drv/1')) == (bag, kv, flags)


REFORMATTED = {
    'no trailing newline': lambda pem: pem.rstrip('\n'),
    'extra trailing newlines': lambda pem: pem + '\n\n',
    'CRLF line breaks': lambda pem: pem.replace('\n', '\r\n'),
    'one-line base64': lambda pem: '\n'.join(
        [pem.splitlines()[0], ''.join(pem.splitlines()[1:-1]), pem.splitlines()[-1]]),
}


@pytest.mark.parametrize('case', sorted(REFORMATTED))
def test_set_csr_with_the_same_csr_reformatted_changes_nothing(make, case):
    drv = make(units=2)
    csr, kv = drv.model.bag('drv/1')[CSR_KEY], drv.kv('drv/1')
    drv.call('drv/1', 'set_csr', REFORMATTED[case](csr))
    assert relation_sets(drv.record) == []
    assert drv.kv('drv/1') == kv
    assert CERT_AVAILABLE in drv.record.flags


@pytest.mark.parametrize('unit', ['drv/0', 'drv/1'])
def test_rekey_from_config_changed(make, unit):
    """The original layer failed here with 'Unable to determine default scope'."""
    drv = make(units=2)
    csr = drv.rekey(unit, hook='config-changed')
    assert drv.record.ok and drv.record.relation_written[CSR_KEY] == csr
    drv.settle()
    assert belongs_to_key(drv, unit, drv.cert(unit))
    assert drv.flags(unit) == {CERT_AVAILABLE}


# -- handlers, unitdata and wire format -------------------------------------------

@pytest.mark.parametrize('hook', ['config-changed', 'update-status', 'start'])
def test_handlers_with_a_tls_argument_run_in_non_relation_hooks(make, hook):
    drv = make(units=1, sign=False)
    drv.add_unit(create=False)
    drv.settle()
    for unit, handler in (('drv/0', 'sign'), ('drv/1', 'create')):
        record = drv.run(unit, hook)
        assert [run['arg'] for run in drv.runs(unit, handler, record)] == ['TlsPeers']
    drv.call('drv/1', 'set_csr', pki.make_csr(pki.make_key(), 'drv/1'))
    drv.control('drv/0', sign=True)
    drv.settle()
    record = drv.run('drv/1', hook)
    assert [run['arg'] for run in drv.runs('drv/1', 'available', record)] == ['TlsPeers']


def test_handlers_with_a_tls_argument_run_in_leader_elected(make):
    drv = make(units=2)
    drv.model.move_leader('drv/1')
    drv.settle()
    record = [r for r in drv.records('drv/1') if r.hook == 'leader-elected'][-1]
    assert [run['arg'] for run in drv.runs('drv/1', 'available', record)] == ['TlsPeers']


def test_unitdata_keys(make):
    drv = make(units=3)
    for unit in drv.model.units:
        kv = drv.kv(unit)
        assert set(kv) == {peers.KV_CERT.format(unit), peers.KV_SERVER_CERT, peers.KV_SERVER_CERT_EXPIRY,
                           peers.KV_CA, peers.KV_CA_EXPIRY, peers.KV_STATE.format('tls')}
        assert kv[peers.KV_CERT.format(unit)] == kv[peers.KV_SERVER_CERT]
        assert kv[peers.KV_CA] == drv.ca.pem
        cert = kv[peers.KV_SERVER_CERT]
        assert issued_by(drv.ca, cert) and belongs_to_key(drv, unit, cert)
        assert kv[peers.KV_SERVER_CERT_EXPIRY] == not_after(cert)
        assert kv[peers.KV_CA_EXPIRY] == not_after(drv.ca.pem)
        assert drv.call(unit, 'get_signed_cert_expiry') == not_after(cert)
        assert drv.call(unit, 'get_ca_expiry') == not_after(drv.ca.pem)


def not_after(pem):
    """A certificate's notAfter as the layer gives it: ISO 8601, in UTC, to the second."""
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ')


def test_wire_format(make):
    drv = make(units=3)
    followers = ('drv/1', 'drv/2')
    for unit in followers:
        assert set(drv.model.bag(unit)) == JUJU_KEYS | {CSR_KEY}
    assert set(drv.model.bag('drv/0')) == JUJU_KEYS | {CSR_KEY}
    published = drv.model.app_bag()
    expected = {CA_KEY, peers.CA_ROUND_KEY}
    for unit in ('drv/0',) + followers:
        expected |= {CERT_KEY.format(unit), CSR_DIGEST_KEY.format(unit)}
        assert published[CSR_DIGEST_KEY.format(unit)] == csr_digest(drv.model.bag(unit)[CSR_KEY])
        assert published[CERT_KEY.format(unit)] == drv.cert(unit)
    assert set(published) == expected
    assert published[CA_KEY] == drv.ca.pem and published[peers.CA_ROUND_KEY] == '1'
    assert drv.model.leader_settings == {}


def test_settled_update_status_writes_nothing(make):
    drv = make(units=3)
    for unit in drv.model.units:
        record = drv.run(unit, 'update-status')
        assert record.calls['relation-set'] == record.calls['leader-set'] == 0
        assert record.relation_written == record.leader_written == {}


def test_follower_hook_tool_calls_do_not_grow_with_the_number_of_units(make):
    argv = []
    for units in (3, 6):
        drv = make(units=units)
        status = drv.run('drv/1', 'update-status')
        changed = drv.run('drv/1', 'tls-relation-changed', remote='drv/0')
        argv.append((status.argv, changed.argv))
    assert argv[0] == argv[1]


def test_a_relation_named_cluster_works(make):
    drv = make(units=3, relation='cluster')
    for unit in drv.model.units:
        assert drv.flags(unit) == {CERT_AVAILABLE}
        assert belongs_to_key(drv, unit, drv.cert(unit))
        assert KV_STATE.format('cluster') in drv.kv(unit)
    assert {CERT_KEY.format('drv/1'), CSR_DIGEST_KEY.format('drv/2')} <= set(drv.model.app_bag())
    value = drv.model.kv('drv/1')['reactive.states.' + CERT_AVAILABLE]
    assert value == {'relation': 'cluster', 'conversations': [GLOBAL_CONVERSATION.format('cluster')]}


# -- upgrade from the original layer -------------------------------------------------

def old_flag(peer):
    """A flag as the original layer left it: bound to one peer's conversation."""
    return {'relation': 'tls', 'conversations': [f'reactive.conversations.tls:0.{peer}']}


def test_upgrade_adopts_a_csr_published_by_the_original_layer(make):
    drv = make(units=2)
    bag, cert = drv.model.bag('drv/1'), drv.cert('drv/1')
    drv.write_kv('drv/1', {KV_STATE.format('tls'): None,
                           'reactive.states.' + CREATE_CSR: old_flag('drv/0'),
                           'reactive.states.' + CERT_AVAILABLE: old_flag('drv/0')})
    record = drv.run('drv/1', 'upgrade-charm')
    assert record.ok
    assert drv.runs('drv/1', 'create', record) == []
    assert relation_sets(record) == [] and drv.model.bag('drv/1') == bag
    assert drv.flags('drv/1') == {CERT_AVAILABLE}
    assert [run['cert'] for run in drv.runs('drv/1', 'available', record)] == [cert]
    assert drv.model.kv('drv/1')[KV_STATE.format('tls')][CSR_KEY] == bag[CSR_KEY]


def test_upgrade_replaces_flags_bound_to_other_conversations(make):
    drv = make(units=2, sign=False)
    drv.write_kv('drv/0', {'reactive.states.' + SIGN_CSR: old_flag('drv/1')})
    record = drv.run('drv/0', 'upgrade-charm', calls=[('get_csr_map', [])])
    assert record.ok
    assert sorted(drv.results(record)[0]['value']) == ['drv/0', 'drv/1']
    assert [run['arg'] for run in drv.runs('drv/0', 'sign', record)] == ['TlsPeers']
    value = drv.model.kv('drv/0')['reactive.states.' + SIGN_CSR]
    assert value == {'relation': 'tls', 'conversations': [GLOBAL_CONVERSATION.format('tls')]}


def test_answer_to_the_previous_csr_is_not_delivered(make):
    drv = make(units=2)
    old_csr = drv.model.bag('drv/1')[CSR_KEY]
    drv.control('drv/0', sign=False)
    drv.rekey('drv/1')
    drv.settle()
    # A leader lagging behind answers the CSR that drv/1 just replaced.
    drv.model.poke_app({CERT_KEY.format('drv/1'): pki.sign(drv.ca, old_csr),
                        CSR_DIGEST_KEY.format('drv/1'): csr_digest(old_csr)})
    records = drv.settle()
    assert drv.cert('drv/1') is None and drv.flags('drv/1') == set()
    assert not [m for r in records for level, m in r.logs if level == 'WARNING']


# -- consumers written for the original layer ------------------------------------

def hook_failures(drv):
    return [(r.unit, r.hook, r.error) for r in drv.model.history if not r.ok]


def repeated_runs(drv):
    """(unit, handler, hook seq) of every handler that ran more than once in one hook."""
    seen = collections.Counter((unit, e['handler'], e['context'])
                               for unit in drv.model.units for e in drv.log(unit, 'handler'))
    return [key for key, count in seen.items() if count > 1]


def test_original_consumer_converges(make):
    """Like layer-tls: the leader issues its own certificate outside the
    layer (no CSR), followers remove ``signed certificate available`` once
    they have copied the certificate, the leader signs whatever
    ``get_csr_map()`` lists."""
    drv = make(units=3, original=True)
    assert hook_failures(drv) == [] and repeated_runs(drv) == []
    assert CSR_KEY not in drv.model.bag('drv/0') and CREATE_CSR in drv.flags('drv/0')
    for unit in ('drv/1', 'drv/2'):
        assert issued_by(drv.ca, drv.cert(unit)) and belongs_to_key(drv, unit, drv.cert(unit))
        assert drv.flags(unit) == set()
        assert len(drv.runs(unit, 'available')) == 1


def test_a_removed_available_state_stays_removed_until_the_next_certificate(make):
    drv = make(units=2, original=True)
    record = drv.run('drv/1', 'update-status')
    assert drv.runs('drv/1', 'available', record) == [] and drv.flags('drv/1') == set()
    renewed = pki.sign(drv.ca, drv.model.bag('drv/1')[CSR_KEY], days=30)
    drv.call('drv/0', 'set_cert', 'drv/1', renewed)
    drv.settle()
    assert [run['cert'] for run in drv.runs('drv/1', 'available')][-1] == renewed
    assert len(drv.runs('drv/1', 'available')) == 2 and drv.flags('drv/1') == set()


def test_a_change_of_trust_reaches_a_charm_that_cleared_available(make):
    """A consumer that removes ``signed certificate available`` once it has
    written its files sees it raised again when the CAs it must trust
    change (phase 1 of a rotation), not only with its next certificate."""
    drv = make(units=3)
    drv.control('drv/1', clear=True)
    drv.run('drv/1', 'update-status')
    assert drv.flags('drv/1') == set()
    old, new = drv.ca, pki.make_ca('new CA')
    drv.use_ca(new)
    drv.run('drv/0', 'update-status')
    handled = len(drv.runs('drv/1', 'available'))
    drv.run('drv/1', 'update-status')
    assert [run['ca'] for run in drv.runs('drv/1', 'available')[handled:]] == [old.pem + new.pem]
    assert drv.flags('drv/1') == set()
    drv.settle()
    last = drv.runs('drv/1', 'available')[-1]
    assert issued_by(new, last['cert']) and last['ca'] == new.pem  # and again once old is retired


def test_a_unit_between_a_re_key_and_its_answer_is_told_of_a_new_ca(make):
    """drv/1 re-keys (no certificate until the leader answers, so ``signed
    certificate available`` is down) and a rotation begins: ``ca
    certificate available`` is raised anew in the hook that trusts the new
    CA, before drv/1 acknowledges it, so its charm writes ca.pem before any
    peer presents a certificate from the new CA."""
    drv = make(units=3)
    drv.control('drv/1', clear=True)
    drv.control('drv/0', sign=False)
    drv.rekey('drv/1')
    assert drv.cert('drv/1') is None and peers.CA_AVAILABLE not in drv.model.flags('drv/1')
    old, new = drv.ca, pki.make_ca('new CA')
    drv.call('drv/0', 'set_ca', new.pem)
    handled = len(drv.runs('drv/1', 'ca available'))
    drv.run('drv/1', 'update-status')  # after the -changed that brings the new CA
    assert [run['ca'] for run in drv.runs('drv/1', 'ca available')[handled:]] == [old.pem + new.pem]
    assert drv.model.bag('drv/1')[peers.CA_ACK_KEY] == ca_ack(old.pem, new.pem)
    assert peers.CA_AVAILABLE not in drv.model.flags('drv/1')  # cleared by its charm
    drv.run('drv/1', 'update-status')
    assert drv.runs('drv/1', 'ca available', drv.record) == []  # once per change, not per hook


def test_original_consumer_after_a_leader_move(make):
    """The old leader, now a follower without a CSR, is asked for one; the
    new leader signs it along with nothing else."""
    drv = make(units=3, original=True)
    held = {unit: drv.cert(unit) for unit in ('drv/1', 'drv/2')}
    drv.model.move_leader('drv/1')
    drv.model.queue('drv/0', 'update-status')  # Juju runs one every few minutes
    drv.settle()
    assert hook_failures(drv) == [] and repeated_runs(drv) == []
    assert CSR_KEY in drv.model.bag('drv/0')
    assert issued_by(drv.ca, drv.cert('drv/0')) and belongs_to_key(drv, 'drv/0', drv.cert('drv/0'))
    assert {unit: drv.cert(unit) for unit in held} == held


# -- hooks where the relation cannot be used ------------------------------------------

RELATION_TOOLS = ('relation-get', 'relation-set', 'relation-list')


@pytest.mark.parametrize('hook', ['install', f'{STORAGE}-storage-attached'])
def test_install_leaves_relation_data_alone(make, hook):
    """Juju 3 lists the peer relation in install, and in the storage hooks
    that run before it, but refuses relation-get and relation-set on it;
    Juju 2 does not list it. Either way the layer keeps off it, and every
    method still answers."""
    drv = make(units=1, storage=True)
    unit = drv.add_unit()
    calls = [drv.schedule(unit, hook, method, args) for method, args in (
        ('get_csr_map', []), ('get_signed_cert', []), ('get_ca', []),
        ('set_cert', ['drv/0', drv.cert('drv/0')]))]
    drv.settle()
    install = next(r for r in drv.records(unit) if r.hook == hook)
    assert install.ok and [a for a in install.argv if a[0] in RELATION_TOOLS] == []
    outcomes = {e['id']: e for e in drv.results(install)}
    assert [outcomes[c].get('value') for c in calls[:3]] == [{}, None, None]
    assert outcomes[calls[3]]['error'][0] == 'ValueError'
    assert hook_failures(drv) == [] and issued_by(drv.ca, drv.cert(unit))


def test_a_storage_hook_after_install_leaves_the_states_alone(make):
    """A store added later (juju add-storage) runs its storage-attached hook
    after install, and the layer cannot tell that hook from the one before
    install: it keeps off the relation there too, and leaves every state as
    it was, so a consumer's handlers keep running."""
    drv = make(units=2, storage=True)
    before = {unit: drv.flags(unit) for unit in drv.model.units}
    assert before == {'drv/0': {CERT_AVAILABLE}, 'drv/1': {CERT_AVAILABLE}}
    for unit in drv.model.units:
        record = drv.run(unit, f'{STORAGE}-storage-attached')
        assert record.ok and [a for a in record.argv if a[0] in RELATION_TOOLS] == []
        assert drv.flags(unit) == before[unit]
        assert drv.runs(unit, 'available', record)


# -- upgrade from the original layer, and units of both side by side -------------------

def original_deployment(make, units=3):
    """``units`` units running the original layer with an original-style
    consumer, settled: the followers hold certificates from drv/0's bag."""
    drv = make(units=0)
    for _ in range(units):
        drv.run_original_layer(drv.add_unit(original=True))
    drv.settle()
    assert hook_failures(drv) == []
    assert all(CERT_KEY.format(unit) in drv.model.bag('drv/0') for unit in drv.model.units[1:])
    return drv


def holds_its_certificate(drv, unit):
    cert = drv.cert(unit)
    return bool(cert) and issued_by(drv.ca, cert) and belongs_to_key(drv, unit, cert)


@pytest.mark.parametrize('order', ['leader first', 'leader last'])
def test_a_mixed_window_converges_once_every_unit_is_upgraded(make, order):
    """Upgraded units ignore the original leader's unit-bag answers (no
    digest binds them to a CSR); an upgraded leader answers every CSR again,
    in the application bag, where only upgraded units look."""
    drv = original_deployment(make)
    units = drv.model.units if order == 'leader first' else drv.model.units[::-1]
    for done, unit in enumerate(units, 1):
        drv.upgrade(unit)
        drv.settle()
        assert hook_failures(drv) == []
        upgraded = units[:done]
        if 'drv/0' in upgraded:
            assert all(holds_its_certificate(drv, u) for u in upgraded if u != 'drv/0')
        else:
            assert all(drv.cert(u) is None for u in upgraded)
    assert all(holds_its_certificate(drv, unit) for unit in drv.model.units[1:])
    for unit in drv.model.units:
        assert set(drv.model.bag(unit)) <= JUJU_KEYS | {CSR_KEY}, 'the original answers are gone'


def test_upgraded_units_warn_about_the_original_leaders_answers(make):
    drv = original_deployment(make, units=2)
    drv.upgrade('drv/1')
    drv.settle()
    record = drv.run('drv/1', 'tls-relation-changed', remote='drv/0')
    assert record.ok and drv.cert('drv/1') is None
    key = CERT_KEY.format('drv/1')
    assert [m for level, m in record.logs if level == 'WARNING' and f"'{key}' from drv/0" in m]


# -- the inherited RelationBase API and leadership lost mid-hook --------------------------

@pytest.mark.parametrize('hook, remote', [('update-status', None), ('config-changed', None),
                                          ('leader-settings-changed', None),
                                          ('tls-relation-changed', 'drv/0')])
def test_the_inherited_relation_base_api_works_in_every_hook(make, hook, remote):
    """charms.reactive's own RelationBase methods find their conversation
    (the layer's scope is the relation-wide one) outside relation hooks too."""
    drv = make(units=2)
    calls = [('is_state', [CERT_AVAILABLE]), ('set_state', ['tls.custom']), ('is_state', ['tls.custom']),
             ('remove_state', ['tls.custom']), ('is_state', ['tls.custom']), ('get_remote', [CSR_KEY]),
             ('set_remote', ['note', 'hello'])]
    record = drv.run('drv/1', hook, remote=remote, calls=calls)
    assert record.ok
    assert [r.get('value', r.get('error')) for r in drv.results(record)] == [
        True, None, True, None, False, drv.model.bag('drv/0')[CSR_KEY], None]
    assert drv.model.bag('drv/1')['note'] == 'hello'


def test_a_leader_deposed_mid_hook_fails_that_hook_and_the_new_leader_carries_on(make):
    """Juju refuses ``relation-set --app`` once the lease is gone: the hook
    fails whole (its answers are not published) and is retried as a
    follower's; the new leader signs."""
    drv = make(units=3)
    drv.model.move_leader('drv/1', mid_hook='relation-set')
    drv.rekey('drv/2')
    drv.settle()
    assert [(unit, hook) for unit, hook, _ in hook_failures(drv)] == [('drv/0', 'tls-relation-changed')]
    assert drv.model.leader == 'drv/1' and holds_its_certificate(drv, 'drv/2')
    assert drv.model.app_bag()[CSR_DIGEST_KEY.format('drv/2')] == csr_digest(drv.model.bag('drv/2')[CSR_KEY])


# -- what the layer itself costs ----------------------------------------------------------

@pytest.mark.parametrize('units', [2, 5])
def test_the_layers_own_hook_tool_calls_stay_within_budget(make, units):
    """Reads: at most 4 in a follower's hook, at most 4 + N in the leader's.
    Writes: one relation-set per bag that changes (and charmhelpers'
    relation-set --help probe before the first), none in a hook that
    changes nothing. Counted with a consumer that calls no hook tool
    itself, over a renewal, a re-key and the answer to it."""
    drv = make(units=units)
    for unit in drv.model.units:
        drv.control(unit, create=False, sign=False)
    since = len(drv.model.history)
    drv.call('drv/0', 'set_cert', 'drv/1', pki.sign(drv.ca, drv.model.bag('drv/1')[CSR_KEY], days=30))
    drv.settle()
    csr = drv.rekey('drv/1')
    drv.settle()
    drv.call('drv/0', 'set_cert', 'drv/1', pki.sign(drv.ca, csr))
    drv.settle()
    records = drv.records(since=since)
    assert {r.hook for r in records} >= {'update-status', 'config-changed', 'tls-relation-changed'}
    for record in records:
        calls = [argv for argv in record.argv if argv[0] != 'juju-log']
        writes = [argv for argv in calls if argv[0] == 'relation-set']
        reads = len(calls) - len(writes)
        assert reads <= (4 + units if record.unit == 'drv/0' else 4), (record.unit, record.hook, calls)
        bags = bool(record.relation_written) + bool(record.app_written)
        assert len(writes) == (bags + 1 if bags else 0), (record.unit, record.hook, writes)


# -- Juju's rules from its source: the settings cache, commits lost after exit 0 ----------

def test_a_stale_cached_csr_delays_the_answer_and_delivers_nothing_old(make):
    """Juju's agent serves a peer's settings from its cache until a hook
    about that peer: the leader's update-status, run before its -changed
    about a unit that re-keyed, still sees the old CSR, already answered. It
    issues nothing then, and the unit gets nothing for its old CSR; the
    -changed about it brings the new CSR, which is signed."""
    drv = make(units=3)
    m, follower = drv.model, 'drv/1'
    old_cert = drv.cert(follower)
    csr = drv.rekey(follower)
    assert drv.cert(follower) is None and CERT_AVAILABLE not in drv.flags(follower)
    m.queue('drv/0', 'update-status')
    status = m.run('drv/0', [i for u, i, h in m.pending() if u == 'drv/0'][-1])
    assert status.ok and follower not in status.fetched  # served from the agent's cache
    assert status.app_written == {} and SIGN_CSR not in drv.flags('drv/0')
    drv.run_queued(follower)
    assert drv.cert(follower) is None
    drv.settle()
    assert drv.cert(follower) != old_cert and belongs_to_key(drv, follower, drv.cert(follower))
    assert m.app_bag()[CSR_DIGEST_KEY.format(follower)] == csr_digest(csr)


@pytest.mark.parametrize('unit, hook', [('drv/0', 'tls-relation-changed'),
                                        ('drv/2', 'config-changed')])
def test_a_lost_commit_is_made_good_by_the_retry(make, unit, hook):
    """The leader's hook that signs a new CSR, or the follower's that
    publishes it, exits 0 and Juju then loses its relation writes, unitdata
    (flags included) already saved: the retry publishes what was lost, and
    the follower ends with a certificate for its new key."""
    drv = make(units=3)
    m = drv.model
    m.lose_commit(unit, hook)
    csr = drv.rekey('drv/2')
    drv.settle()
    assert [(r.unit, r.hook) for r in m.history if r.commit_lost] == [(unit, hook)]
    assert m.bag('drv/2')[CSR_KEY] == csr
    assert m.app_bag()[CSR_DIGEST_KEY.format('drv/2')] == csr_digest(csr)
    assert belongs_to_key(drv, 'drv/2', drv.cert('drv/2'))
    assert all(drv.flags(u) == {CERT_AVAILABLE} for u in m.units)
    assert all(r.ok or r.commit_lost for r in m.history)


# -- a known gap: an acknowledgement left from an earlier attempt at a rotation -----------

def queued_index(m, unit, name, remote=None):
    """Index in ``unit``'s queue of the first hook ``name`` (about ``remote``)."""
    return next(i for u, i, h in m.pending()
                if u == unit and h.name == name and (remote is None or h.remote == remote))


def abandoned_rotation(drv):
    """ca=A; the leader's charm rotates to B; drv/1 trusts A and B and
    acknowledges A to B; in the leader's -changed about drv/1 its charm (the
    operator changed the CA again) gives C instead: ca_next=C."""
    m = drv.model
    a, b, c = drv.ca, pki.make_ca('B'), pki.make_ca('C')
    drv.use_ca(b)
    drv.run('drv/0', 'update-status')
    drv.run_queued('drv/1')
    assert m.bag('drv/1')[peers.CA_ACK_KEY] == ca_ack(a.pem, b.pem)
    drv.use_ca(c)
    assert m.run('drv/0', queued_index(m, 'drv/0', 'tls-relation-changed', 'drv/1')).ok
    assert m.app_bag()[peers.CA_NEXT_KEY] == c.pem
    return a, b, c


def nothing_issued_under_an_untrusted_ca(drv, b):
    bundle = drv.model.kv('drv/1')[peers.KV_CA]
    assert b.pem not in bundle  # drv/1 trusts A and C only
    assert drv.model.app_bag().get(CA_KEY) != b.pem, 'B issues while drv/1 does not trust it'
    assert pki.trusts(bundle, drv.cert('drv/0')), "drv/1 rejects the leader's new certificate"


def test_a_stale_cached_ack_of_an_abandoned_rotation_never_starts_issuing(make):
    """drv/1 then drops B and acknowledges A to C, and the operator goes
    back to B. Juju runs the leader's config-changed before its -changed
    about drv/1, and its agent serves drv/1's bag from its cache: the old
    A to B acknowledgement, which must not count as drv/1 trusting B."""
    drv = make(units=2)
    m = drv.model
    a, b, c = abandoned_rotation(drv)
    drv.run_queued('drv/1')
    assert m.bag('drv/1')[peers.CA_ACK_KEY] == ca_ack(a.pem, c.pem, 3)
    drv.use_ca(b)
    m.queue('drv/0', 'config-changed')
    record = m.run('drv/0', queued_index(m, 'drv/0', 'config-changed'))
    assert record.ok and 'drv/1' not in record.fetched  # served from the agent's cache
    nothing_issued_under_an_untrusted_ca(drv, b)


def test_a_lost_withdrawal_of_an_ack_never_starts_issuing(make):
    """drv/1's hook that drops B exits 0 and Juju loses its commit: it
    trusts A and C, its bag still acknowledges A to B. The operator goes
    back to B; the leader reads that fresh and must not count it."""
    drv = make(units=2)
    m = drv.model
    a, b, _ = abandoned_rotation(drv)
    m.lose_commit('drv/1')
    assert m.run('drv/1', 0).commit_lost
    assert m.bag('drv/1')[peers.CA_ACK_KEY] == ca_ack(a.pem, b.pem)
    drv.use_ca(b)
    m.restart_agent('drv/0')
    m.queue('drv/0', 'config-changed')
    assert m.run('drv/0', queued_index(m, 'drv/0', 'config-changed')).ok
    nothing_issued_under_an_untrusted_ca(drv, b)


def test_a_refused_csr_reaches_its_unit_and_a_new_one_is_pending_again(make):
    """The leader's charm refuses drv/1's CSR: it leaves get_csr_map(),
    drv/1 warns once and raises ``certificate signing request refused``
    with the reason; its next CSR is pending again, and answered."""
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    drv.rekey('drv/1')
    assert 'drv/1' in drv.call('drv/0', 'get_csr_map')
    drv.call('drv/0', 'refuse_csr', 'drv/1', 'subject not allowed\nby policy')
    assert drv.call('drv/0', 'get_csr_map') == {}
    assert peers.SIGN_CSR not in drv.model.flags('drv/0')
    records = drv.settle()
    told = [r for r in records if r.unit == 'drv/1' for message in warnings([r]) if 'refused' in message]
    assert len(told) == 1 and peers.CSR_REFUSED in drv.model.flags('drv/1')
    assert drv.call('drv/1', 'get_refusal') == 'subject not allowed by policy'
    drv.control('drv/0', sign=True)
    drv.rekey('drv/1')
    assert peers.CSR_REFUSED not in drv.model.flags('drv/1')
    drv.settle()
    assert belongs_to_key(drv, 'drv/1', drv.cert('drv/1'))
    assert peers.REFUSAL_KEY.format('drv/1') not in drv.model.app_bag()


def test_refuse_csr_is_for_the_leader_and_a_unit_with_a_csr(make):
    drv = make(units=2)
    with pytest.raises(ValueError, match='refuse_csr: only the leader'):
        drv.call('drv/1', 'refuse_csr', 'drv/0', 'no')
    with pytest.raises(ValueError, match="refuse_csr: 'drv/7' has no valid CSR"):
        drv.call('drv/0', 'refuse_csr', 'drv/7', 'no')
