"""A second hostile review, of the rotation rounds: a leader's plan moves
``ca_round`` on with every change of the CA roles, and a leader whose own
record is a round ahead of the application bag republishes it (Juju lost
its last hook's commit). Each of these failed on the layer as reviewed
(ab71242) and is kept as a regression test. Two more are in
test_review.py (an operator's deletion of ``ca_previous``)."""
import pytest
from support import pki
from test_decide import LEADER, NOW, PEER, certs, inputs, roles, snapshot
from test_review import rotating_to_b

import peers
import pem
from peers import CA_ACK_KEY, CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY, CA_ROUND_KEY, CA_SINCE_KEY, MAX_ROUND


@pytest.fixture(scope='module')
def pki_set():
    """CAs A, B, C, and a CSR for each unit (as test_decide's)."""
    return ({name: pki.make_ca(name) for name in 'ABC'},
            {unit: pki.make_csr(pki.make_key(), unit) for unit in (LEADER, PEER)})


def trusts_ca(drv, unit, ca):
    return ca.pem in drv.model.kv(unit).get(peers.KV_CA, '')


def record_of(cas):
    """What _Hook.write records of a Decision's ``cas`` (state['cas'])."""
    record = {key: cas[key] and cas[key].pem for key in peers.CA_KEYS}
    return dict(record, **{key: cas[key] for key in peers.ROTATION_KEYS})


def test_review_rounds_a_new_leader_s_emergency_after_a_lost_promotion_drops_the_old_cas(make):
    """drv/0 promotes B and Juju loses the commit after unitdata recorded
    it; drv/1 leads and makes an emergency to C, in a round equal to the one
    drv/0 recorded. No unit, drv/0 included, trusts A or B again: a
    follower never takes a role missing from the bag from its record."""
    drv = make(units=3)
    m = drv.model
    a, b, c = drv.ca, pki.make_ca('B'), pki.make_ca('C')
    for unit in m.units:
        drv.control(unit, sign=False)
    drv.call('drv/0', 'set_ca', b.pem)                # round 2: A to B
    drv.run_queued('drv/1')
    drv.run_queued('drv/2')                           # both acknowledge 2:A:B
    m.restart_agent('drv/0')                          # its next hook reads both acks
    m.lose_commit('drv/0')
    record = m.run('drv/0')                           # promotes B; the commit is lost
    assert record.commit_lost
    assert m.app_bag()[CA_NEXT_KEY] == b.pem          # the bag never moved on
    assert m.kv('drv/0')[peers.KV_STATE.format('tls')]['cas'][CA_ROUND_KEY] == 3
    m.move_leader('drv/1')
    drv.schedule('drv/1', 'leader-elected', 'set_ca', [c.pem, True])
    first = next(i for u, i, h in m.pending() if u == 'drv/1' and h.name == 'leader-elected')
    assert m.run('drv/1', first).ok                   # the emergency: A and B dropped
    assert m.app_bag()[CA_KEY] == c.pem and CA_PREVIOUS_KEY not in m.app_bag()
    drv.settle()
    for unit in m.units:
        drv.run(unit, 'update-status')
    assert not trusts_ca(drv, 'drv/0', a), 'drv/0 trusts the compromised CA the emergency dropped'


def test_review_rounds_a_forged_ack_round_is_junk_to_the_count(pki_set):
    """A peer's bag says ca_ack = '<MAX_ROUND-2>:...' (forged). No run of
    rotations reaches such a number, so the leader counts from the others;
    after the phase is waited out and an emergency to C, a follower that
    recorded phase 3 trusts C alone."""
    cas, _ = pki_set
    a, b, c = cas['A'], cas['B'], cas['C']
    forged = {PEER: f'{MAX_ROUND - 2}:{pki.ca_digest(a.pem)}'}
    started = peers.decide(snapshot(roles(a), acks=forged), inputs(requested=(certs(b), False)))
    assert started.cas[CA_ROUND_KEY] == 1
    waited = peers.decide(snapshot(started.cas, acks=forged, now=NOW + peers.ROTATION_WAIT), inputs())
    assert waited.cas[CA_KEY] == certs(b) and waited.cas[CA_PREVIOUS_KEY] == certs(a)
    emergency = peers.decide(snapshot(waited.cas, acks=forged, now=NOW + peers.ROTATION_WAIT),
                             inputs(requested=(certs(c), True)))
    assert emergency.cas[CA_KEY] == certs(c) and emergency.trust == c.pem
    # A follower that recorded the phase-3 bag reads the emergency's bag.
    follower = inputs()
    follower.state['cas'] = record_of(waited.cas)
    bag = {CA_KEY: c.pem, CA_ROUND_KEY: str(emergency.cas[CA_ROUND_KEY])}
    seen = peers._read_cas(bag, follower.state, False)
    decision = peers.decide(snapshot(seen, leader=False, unit=PEER), follower)
    assert decision.trust == c.pem, 'after an emergency a follower still trusts the CAs it dropped'


def test_review_rounds_a_lost_commit_of_a_rotation_given_once_after_an_earlier_one_is_republished(make):
    """test_review_a_lost_commit_loses_a_rotation_given_once, after one
    completed rotation (A to B): the leader's record of C's start is a
    round ahead of the bag, and the retry republishes it."""
    drv = make(units=2)
    drv.use_ca(pki.make_ca('B'))
    for _ in range(3):
        drv.run('drv/0', 'update-status')
        drv.settle()
    assert CA_PREVIOUS_KEY not in drv.model.app_bag() and CA_ROUND_KEY in drv.model.app_bag()
    drv.control('drv/0', sign=False)
    c = pki.make_ca('C')
    drv.model.lose_commit('drv/0', 'config-changed')
    drv.call('drv/0', 'set_ca', c.pem, hook='config-changed')
    drv.settle()
    assert c.pem in (drv.model.app_bag().get(CA_NEXT_KEY), drv.model.app_bag().get(CA_KEY)), \
        'the rotation to C is lost'


def test_review_rounds_a_lost_abandonment_given_once_stays_abandoned(make):
    """Phase 1 of A to B, every unit acknowledged; the charm abandons B
    (its key leaked) with set_ca(A) once (config.changed), and Juju loses
    that hook's commit. The retry takes the leader's record, a round ahead
    of the bag, over the bag's ca_next B: B is never promoted."""
    drv, a, b = rotating_to_b(make)                   # round 2: A to B
    m = drv.model
    drv.run_queued('drv/1')
    drv.run_queued('drv/2')                           # both acknowledge 2:A:B
    m.lose_commit('drv/0', 'config-changed')
    drv.schedule('drv/0', 'config-changed', 'set_ca', [a.pem])
    m.queue('drv/0', 'config-changed')                # before its -changed about the acks
    first = next(i for u, i, h in m.pending() if u == 'drv/0' and h.name == 'config-changed')
    assert m.run('drv/0', first).commit_lost          # abandoned (round 3 recorded); the commit is lost
    assert m.kv('drv/0')[peers.KV_STATE.format('tls')]['cas'][CA_NEXT_KEY] is None
    drv.settle()
    assert m.app_bag()[CA_KEY] == a.pem and CA_PREVIOUS_KEY not in m.app_bag(), \
        'the abandoned CA B is promoted to issue'


def test_review_rounds_a_round_rewound_mid_phase_lets_no_lost_withdrawal_count(make):
    """test_review_a_rewound_ca_round_lets_no_lost_withdrawal_count_on_a_new_leader
    with the operator's old ca_round written after the rotation started:
    drv/1's ack 2:A:B of the abandoned round 2 (its withdrawal lost, its
    agent down) would match the rewound round, but the leader's record (4)
    is ahead of it, and stands."""
    drv, a, b = rotating_to_b(make)                   # round 2: A to B
    m = drv.model
    drv.run_queued('drv/1')                           # drv/1 acknowledges 2:A:B
    drv.call('drv/0', 'set_ca', a.pem)                # abandoned (round 3)
    m.lose_commit('drv/1')
    index = next(i for u, i, h in m.pending() if u == 'drv/1' and h.name == 'tls-relation-changed')
    assert m.run('drv/1', index).commit_lost          # its withdrawal is lost; its agent goes down
    assert b.pem not in m.kv('drv/1')[peers.KV_CA]
    assert m.bag('drv/1')[CA_ACK_KEY] == pki.ca_ack(a.pem, b.pem, 2)
    drv.call('drv/0', 'set_ca', b.pem)                # round 4: A to B again
    assert m.app_bag()[CA_ROUND_KEY] == '4'
    m.poke_app({CA_ROUND_KEY: '2'})                   # an operator's old value
    for _ in range(3):
        drv.run_queued('drv/2')
        drv.run_queued('drv/0')
    assert m.app_bag()[CA_KEY] == a.pem or b.pem in m.kv('drv/1')[peers.KV_CA], \
        'B issues while drv/1 trusts only A'


def test_review_rounds_a_rotation_between_intermediates_of_one_root_retires_the_old_one(pki_set):
    """The CAs given are chains, issuing intermediate first: A1 + R, then
    B1 + R, under one root R. A unit holding leaf + B1 presents the new CA:
    R, which both chains list, tells nothing apart, so only the previous
    CA's own certificates (A1) count against it."""
    _, csrs = pki_set
    root = pki.make_ca('root')
    old, new = pki.make_ca('issuing A', issuer=root), pki.make_ca('issuing B', issuer=root)
    ca, previous = pem.authorities(new.pem + root.pem), pem.authorities(old.pem + root.pem)
    cas = {CA_KEY: ca, CA_NEXT_KEY: None, CA_PREVIOUS_KEY: previous, CA_ROUND_KEY: 2, CA_SINCE_KEY: NOW}
    csr = pem.request(csrs[PEER])
    held = pem.certificates(pki.sign(new, csrs[PEER]) + new.pem)   # leaf, then its intermediate
    assert peers._checked(held, csr, ca) == held                      # what set_cert takes under B1 + R
    decision = peers.decide(snapshot(cas, leader=False, unit=PEER), inputs(csr, held=held))
    assert decision.bag.get(CA_ACK_KEY) == peers._held(cas), 'a unit presenting B1 never acknowledges'


def test_review_rounds_a_lost_emergency_given_once_is_republished(make):
    """The charm calls set_ca(C, emergency=True) once (config.changed, not
    raised again on the retry: unitdata was saved) and Juju loses the
    hook's commit. The leader's record, a round ahead of the bag (which has
    no ca_round yet), is republished: C alone."""
    drv = make(units=2)
    a, c = drv.ca, pki.make_ca('C')
    drv.control('drv/0', sign=False)
    drv.model.lose_commit('drv/0', 'config-changed')
    drv.schedule('drv/0', 'config-changed', 'set_ca', [c.pem, True])
    drv.model.queue('drv/0', 'config-changed')
    assert drv.model.run('drv/0').commit_lost
    assert drv.model.kv('drv/0')[peers.KV_STATE.format('tls')]['cas'][CA_KEY] == c.pem
    drv.settle()
    assert drv.model.app_bag()[CA_KEY] == c.pem and not trusts_ca(drv, 'drv/1', a), \
        'the emergency is lost: the compromised CA stays'
