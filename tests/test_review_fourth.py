"""A fourth hostile review, of the digest rule (43cfe32): a leader took its
whole record while the application bag's CA keys were, byte for byte, the
ones its last leader hook read; took the bag's roles otherwise; restored a
role missing from a bag of the rotation it recorded; kept a round behind
its own record at its own. Each test here failed on 43cfe32; each
docstring tells the sequence and the harm it did.

Mended: the first CA has a round, so no later bag is one a leader read
(but one an operator writes back whole); a lost commit is told also with
roles an operator deleted since; the restore compares ``ca_round`` and
``ca_since`` as written; any leader keeps its record's round; only an
acknowledgement's number can be junk to the count; and a new issuing CA is
told against the bag's own ``ca``, not the record a retry takes."""
from support import pki
from test_decide import NOW, PEER, inputs, snapshot
from test_review_final import record, returning_after_an_abandonment, trusts_ca

import peers
from peers import CA_ACK_KEY, CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY, CA_ROUND_KEY, CA_SINCE_KEY


def first(m, unit, name):
    return next(i for u, i, h in m.pending() if u == unit and h.name == name)


# (a) A bag written back to the bytes a leader last read is not a lost commit.

def test_review_fourth_decide_a_bag_rewound_to_what_the_leader_read_is_no_lost_commit():
    """The leader's record: phase 1 from A to B, decided from {ca: A} (a
    model that never rotated), and committed. Leadership moved on before it
    ran another hook; B's key leaked and the next leader's charm dropped it
    (set_ca(A, emergency=True)); an operator then deleted ca_round. The bag
    was again, byte for byte, the one the record says it was decided from,
    so the returning leader took its record whole: it published the dropped
    B as ca_next, and every unit trusted it again. Now the first CA has a
    round (1), so the bag it read was {ca: A, ca_round: 1}, and no deletion
    makes it that again."""
    a, b = pki.make_ca('A'), pki.make_ca('B')
    before = {CA_KEY: a.pem, CA_ROUND_KEY: '1'}
    given = inputs()
    given.state['cas'] = record({CA_KEY: a, CA_NEXT_KEY: b, CA_ROUND_KEY: 2, CA_SINCE_KEY: NOW}, before)
    bag = {CA_KEY: a.pem}                             # after the emergency (round 3), ca_round deleted
    seen = peers._read_cas(bag, given.state, False, True)
    decision = peers.decide(snapshot(seen, app=bag, acks={PEER: None}), given)
    assert b.pem not in (decision.trust or ''), 'the leader trusts the CA an emergency dropped'
    assert CA_NEXT_KEY not in decision.app, 'the leader publishes the CA an emergency dropped'


def test_review_fourth_a_returning_leader_does_not_republish_a_ca_an_emergency_dropped(make):
    """The same in a model. drv/0 starts A to B (committed); leadership
    moves to drv/1 before drv/0 runs its next hook; B's key leaks and
    drv/1's charm calls set_ca(A, emergency=True): {ca: A, ca_round: 2}.
    Leadership comes back to drv/0, and an operator deletes ca_round
    through it (juju exec relation-set --app) before its queued hooks run.
    drv/0's first hook reads {ca: A}, the bag its record was decided from,
    takes its record whole, and publishes B again as ca_next; every unit
    acknowledges it, and the compromised B is promoted to the issuing CA."""
    drv = make(units=3)
    m = drv.model
    a, b = drv.ca, pki.make_ca('B')
    for unit in m.units:
        drv.control(unit, sign=False)
    assert m.app_bag()[CA_ROUND_KEY] == '1' and CA_SINCE_KEY not in m.app_bag()   # never rotated
    drv.schedule('drv/0', 'update-status', 'set_ca', [b.pem])
    m.queue('drv/0', 'update-status')
    assert m.run('drv/0', first(m, 'drv/0', 'update-status')).ok      # A to B, round 2, committed
    assert m.app_bag()[CA_NEXT_KEY] == b.pem
    m.move_leader('drv/1')                            # before drv/0 runs its next hook
    drv.schedule('drv/1', 'leader-elected', 'set_ca', [a.pem, True])
    assert m.run('drv/1', first(m, 'drv/1', 'leader-elected')).ok     # B dropped, round 3
    assert CA_NEXT_KEY not in m.app_bag() and m.app_bag()[CA_ROUND_KEY] == '3'
    m.move_leader('drv/0')
    m.poke_app({CA_ROUND_KEY: None})                  # the operator
    drv.settle()
    published = [key for key in (CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY) if m.app_bag().get(key) == b.pem]
    assert not published, f'the leader publishes the CA the emergency dropped, as {published}'
    for unit in m.units:
        assert not trusts_ca(drv, unit, b), f'{unit} trusts the compromised CA the emergency dropped'


# (b) An operator's deletion in a lost commit's window: taken, and the CA given is lost.

def test_review_fourth_decide_a_deletion_during_a_lost_commit_is_undone_and_the_ca_given_kept():
    """Phase 3 of A to B (round 2, A previous): every unit still presents
    its certificate from A. The leader's charm starts B to C (set_ca(C),
    once: round 3) and Juju loses the commit. Before the retry an operator
    deletes ca_previous, the deletion the docs say the leader undoes. The
    bag is not the one the record was decided from and is a round behind
    it, so the retry takes the bag's roles: the rotation to C is lost (the
    charm gave C once), and ca_previous stays deleted, with no rotation
    left to restore it: every unit drops A while they all present
    certificates from A."""
    a, b, c = pki.make_ca('A'), pki.make_ca('B'), pki.make_ca('C')
    phase3 = {CA_KEY: b.pem, CA_PREVIOUS_KEY: a.pem, CA_ROUND_KEY: '2', CA_SINCE_KEY: str(NOW - 60)}
    given = inputs()
    given.state['cas'] = record({CA_KEY: b, CA_NEXT_KEY: c, CA_PREVIOUS_KEY: a, CA_ROUND_KEY: 3,
                                 CA_SINCE_KEY: NOW}, phase3)
    bag = {key: value for key, value in phase3.items() if key != CA_PREVIOUS_KEY}
    seen = peers._read_cas(bag, given.state, False, True)
    decision = peers.decide(snapshot(seen, app=bag, acks={PEER: None}), given)
    assert c.pem in (decision.trust or ''), 'the rotation to C, given once, is lost'
    assert a.pem in (decision.trust or ''), "the operator's deletion of ca_previous is not undone"


# (c) A round rewound while leadership moves to a unit that last ran as a follower.

def test_review_fourth_a_round_rewound_as_leadership_moves_lets_no_lost_withdrawal_count(make):
    """test_review_rounds_a_round_rewound_mid_phase_lets_no_lost_withdrawal_count,
    with leadership moving to drv/2 as the operator writes ca_round=1 back.
    drv/1 acknowledged round 1 (A to B), which was abandoned (round 2); its
    withdrawal was lost and its agent is down: its bag says 1:A:B while it
    trusts only A. drv/0 rotates to B again (round 3). The operator writes
    ca_round=1, and leadership moves to drv/2, whose last hook ran as a
    follower: its record has no 'from', so the round-behind rule does not
    apply and it takes round 1. drv/0 and drv/2 acknowledge 1:A:B, drv/1's
    leftover matches, and B is promoted: B issues while drv/1 trusts only
    A, and drv/1 rejects every new certificate."""
    from test_review import rotating_to_b
    drv, a, b = rotating_to_b(make)                   # round 2: A to B
    m = drv.model
    drv.run_queued('drv/1')                           # drv/1 acknowledges 2:A:B
    drv.call('drv/0', 'set_ca', a.pem)                # abandoned (round 3)
    m.lose_commit('drv/1')
    assert m.run('drv/1', first(m, 'drv/1', 'tls-relation-changed')).commit_lost
    assert b.pem not in m.kv('drv/1')[peers.KV_CA]
    assert m.bag('drv/1')[CA_ACK_KEY] == pki.ca_ack(a.pem, b.pem, 2)
    drv.call('drv/0', 'set_ca', b.pem)                # round 4: A to B again
    assert m.app_bag()[CA_ROUND_KEY] == '4'
    drv.run_queued('drv/2')                           # drv/2 follows: acknowledges 4:A:B
    m.poke_app({CA_ROUND_KEY: '2'})                   # an operator's old value
    m.move_leader('drv/2')
    drv.settle_without('drv/1')
    assert m.app_bag()[CA_KEY] == a.pem or b.pem in m.kv('drv/1')[peers.KV_CA], \
        'B issues while drv/1 trusts only A'


# (c) A peer's ack just under the junk line makes _next_round hand out a round again.

def test_review_fourth_decide_an_ack_just_under_the_junk_line_repeats_no_round():
    """A peer writes ca_ack = '<MAX_ROUND//2 - 1>:x' (its own bag: any
    unit can). The leader's charm rotates A to B: round MAX_ROUND//2, which
    _read_cas takes but _next_round ignores as junk. The charm abandons B
    (round MAX_ROUND//2 + 1, one past the bag's), then rotates to B again:
    every round seen is junk to _next_round but the peer's, so the round is
    MAX_ROUND//2 again, the abandoned rotation's. app/2 acknowledged that
    one and its withdrawal was lost (it trusts only A): its 'R:A:B' counts
    for the new rotation, and B is promoted at once, before app/2 trusts
    it."""
    a, b = pki.make_ca('A'), pki.make_ca('B')
    from test_decide import certs, roles
    third = 'app/2'
    junk_line = peers.MAX_ROUND // 2
    hostile = {PEER: f'{junk_line - 1}:x', third: None}

    def step(cas, acks, requested=None, state_round=None):
        given = inputs(requested=requested)
        given.state['cas'] = {CA_ROUND_KEY: cas[CA_ROUND_KEY] if state_round is None else state_round}
        return peers.decide(snapshot(cas, acks=acks, live={PEER, third}), given)

    started = step(roles(a), hostile, requested=(certs(b), False))
    first_round = started.cas[CA_ROUND_KEY]
    stale = peers._transition(started.cas)              # app/2 acknowledges it; its withdrawal is lost
    abandoned = step(started.cas, dict(hostile, **{third: stale}), requested=(certs(a), False))
    assert abandoned.cas[CA_NEXT_KEY] is None
    again = step(abandoned.cas, dict(hostile, **{third: stale}), requested=(certs(b), False))
    assert again.cas[CA_ROUND_KEY] != first_round, 'a new rotation takes the round of an abandoned one'
    acks = {PEER: peers._transition(again.cas), third: stale}
    promoted = step(again.cas, acks)
    assert promoted.cas[CA_NEXT_KEY] == certs(b), 'B promoted on a leftover ack of the abandoned rotation'


def lost_emergency_after_a_refusal(make):
    """drv/1's CSR refused under A (drv.ca); then set_ca(C, emergency=True),
    once, in a hook whose commit Juju loses; settled. The driver, its
    model and C."""
    drv = make(units=3)
    m = drv.model
    c = pki.make_ca('C')
    drv.control('drv/0', sign=False)
    drv.call('drv/0', 'refuse_csr', 'drv/1', 'renewals of drv/1 are not allowed under A')
    drv.settle()
    m.lose_commit('drv/0', 'config-changed')
    drv.schedule('drv/0', 'config-changed', 'set_ca', [c.pem, True])
    m.queue('drv/0', 'config-changed')
    assert m.run('drv/0').commit_lost
    drv.settle()
    return drv, m, c


# (d) The retry of a lost emergency keeps a refusal made under the dropped CA.

def test_review_fourth_a_lost_emergency_voids_a_refusal_made_under_the_dropped_ca(make):
    """drv/0's charm refused drv/1's CSR under A. A's key leaks:
    set_ca(C, emergency=True), once, and Juju loses the hook's commit. The
    retry takes the leader's record whole, so the issuing CA it reads is
    already C: _new_ca is false, and the refusal made under A is kept and
    published under C (test_review_an_emergency_rotation_lists_a_refused_csr_again
    without the lost commit lists drv/1). drv/1, whose certificate from A no
    peer trusts any more, is never listed for one from C: it stays cut off
    until it re-keys."""
    drv, m, c = lost_emergency_after_a_refusal(make)
    assert m.app_bag()[CA_KEY] == c.pem
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2'], \
        'the refusal made under the dropped CA stands under the new one'


# (a/b) The restore rule's premise: an abandonment beside a ca_previous keeps ca and ca_since.

def test_review_fourth_decide_junk_in_ca_round_leaves_another_s_abandonment_standing():
    """test_review_final_decide_a_returning_leader_keeps_another_s_abandonment
    with junk written over ca_round. A leader's record: phase 1 from A to B
    with Z previous (round 3, since S), committed. Another leader's charm
    abandoned B (set_ca(A): round 4; Z stays previous, so ca and ca_since
    stay too: the premise 'every decision that drops a role ends the
    rotation or changes the issuing CA' is false for it). A careless
    operator writes ca_round=oops. The returning leader reads the junk
    round as its record's (3), the same ca_since, every present role as
    recorded: it takes the abandonment for an operator's deletion and
    publishes the abandoned B again."""
    decision = returning_after_an_abandonment('oops')  # was '4', the abandonment's
    assert decision.cas[CA_NEXT_KEY] is None and CA_NEXT_KEY not in decision.app, \
        'the leader publishes a CA another leader abandoned'


def test_review_fourth_a_deletion_during_a_lost_commit_is_undone_and_the_ca_given_kept(make):
    """The same in a model: phase 3 of A to B, every unit still presenting
    its certificate from A. The leader's charm gives C once
    (config-changed) and Juju loses the commit; an operator deletes
    ca_previous before the retry. The rotation to C is never published, and
    A stays deleted: every unit drops A while every unit presents a
    certificate from A."""
    from test_review import phase_two_without_re_signing
    drv = make(units=3)
    m = drv.model
    old, new = phase_two_without_re_signing(drv)
    c = pki.make_ca('C')
    m.lose_commit('drv/0', 'config-changed')
    drv.schedule('drv/0', 'config-changed', 'set_ca', [c.pem])
    m.queue('drv/0', 'config-changed')
    assert m.run('drv/0').commit_lost
    m.poke_app({CA_PREVIOUS_KEY: None})               # the operator, before the retry
    assert m.run('drv/0').ok                          # the retry
    assert (m.app_bag().get(CA_NEXT_KEY), m.app_bag().get(CA_PREVIOUS_KEY)) == (c.pem, old.pem), \
        'the rotation to C is lost, or A stays deleted'
    drv.settle()
    assert all(trusts_ca(drv, unit, c) for unit in m.units), 'the rotation to C is lost'


def test_review_fourth_a_lost_emergency_drops_the_answers_under_the_dropped_ca(make):
    """The same lost emergency, with drv/1's CSR refused under A: the retry
    reads the record's C as the issuing CA already, so the answers under A
    are not dropped from the application bag (they are only overwritten
    when re-signed, and drv/1's never is). drv/1 then logs at WARNING, in
    every hook, that its certificate in the bag is from none of the CAs
    answers are issued under."""
    drv, m, c = lost_emergency_after_a_refusal(make)
    assert peers.CERT_KEY.format('drv/1') not in m.app_bag(), 'an answer under the dropped CA stays'
    warnings = [message for _ in range(3) for level, message in drv.run('drv/1', 'update-status').logs
                if level == 'WARNING']
    assert not warnings, warnings
