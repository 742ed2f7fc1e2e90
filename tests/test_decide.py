"""The layer's decision, called as the plain function it is: no hooks, no
Juju, no charms.reactive dispatch. ``peers.decide(snapshot, inputs)`` says
what a unit trusts and takes, what waits on the leader's charm and what each
bag holds at hook end; the hooks (tests/test_peers.py) only read and act.
A hook tool called from here would fail: there is no Juju to answer it.
"""
import datetime
import time

import pytest
from support import pki

import peers
import pem
from peers import (
    CA_ACK_KEY,
    CA_KEY,
    CA_NEXT_KEY,
    CA_PREVIOUS_KEY,
    CA_ROUND_KEY,
    CA_SINCE_KEY,
    CERT_KEY,
    CSR_DIGEST_KEY,
    CSR_KEY,
)

DAY = 86400
NOW = int(time.time())  # the snapshots' clock, unless a test moves it
LEADER, PEER = 'app/0', 'app/1'


@pytest.fixture(scope='module')
def pki_set():
    """CAs A, B, C, and a key and CSR for each unit."""
    cas = {name: pki.make_ca(name) for name in 'ABC'}
    keys = {unit: pki.make_key() for unit in (LEADER, PEER)}
    csrs = {unit: pki.make_csr(key, unit) for unit, key in keys.items()}
    return cas, csrs


def certs(ca):
    return pem.certificates(ca.pem)


def roles(ca=None, next_ca=None, previous=None, rotation=0, since=0):
    return {CA_KEY: ca and certs(ca), CA_NEXT_KEY: next_ca and certs(next_ca),
            CA_PREVIOUS_KEY: previous and certs(previous), CA_ROUND_KEY: rotation, CA_SINCE_KEY: since}


def snapshot(cas, leader=True, app=None, bag=None, csrs=None, acks=None, answers=None, live=(),
             now=None, unit=LEADER, refusals=None):
    return peers.Snapshot(unit, leader, now or NOW, 'update-status', app or {}, bag or {}, cas,
                          answers or {}, csrs or {}, acks or {}, refusals or {}, lambda: set(live))


def inputs(csr=None, made=None, requested=None, held=None, stalled=None, replaced=(), refused=None):
    state = {'csr': csr and csr.pem, 'replaced': list(replaced), 'stalled': stalled or {},
             'cas_given': [], 'cas': {}}
    return peers.Inputs(csr, state, made or {}, requested, held, refused or {})


def answer_of(ca, csr, **kwargs):
    return pem.certificates(pki.sign(ca, csr, **kwargs))


def test_the_decision_is_a_function_of_its_arguments(pki_set):
    cas, csrs = pki_set
    snap = snapshot(roles(cas['A']), csrs={PEER: pem.request(csrs[PEER])}, acks={PEER: None})
    given = inputs(pem.request(csrs[LEADER]))
    assert peers.decide(snap, given) == peers.decide(snap, given)
    assert set(peers.decide(snap, given).pending) == {LEADER, PEER}


def test_a_rotation_counts_a_round_and_issues_nothing_until_every_unit_acknowledges_it(pki_set):
    cas, csrs = pki_set
    a, b = cas['A'], cas['B']
    snap = snapshot(roles(a), csrs={PEER: pem.request(csrs[PEER])}, acks={PEER: None})
    decision = peers.decide(snap, inputs(pem.request(csrs[LEADER]), requested=(certs(b), False)))
    assert decision.cas == roles(a, b, rotation=1, since=NOW) and decision.pending == {}
    assert decision.app[CA_NEXT_KEY] == b.pem and decision.app[CA_ROUND_KEY] == '1'
    assert decision.app[CA_SINCE_KEY] == str(NOW)  # when phase 1 began
    ack = decision.bag[CA_ACK_KEY]
    assert ack == pki.ca_ack(a.pem, b.pem, 1)
    acked = snapshot(roles(a, b, rotation=1, since=NOW - 60), acks={PEER: ack},
                     csrs={PEER: pem.request(csrs[PEER])})
    decision = peers.decide(acked, inputs(requested=(certs(b), False)))
    # Since the rotation began; ca_next is dropped, so the round moves on.
    assert decision.cas == roles(b, previous=a, rotation=2, since=NOW - 60)
    assert set(decision.pending) == {PEER}  # everything again, under B


def test_an_acknowledgement_of_an_earlier_attempt_at_the_same_rotation_counts_for_nothing(pki_set):
    """A to B (round 1), back to A (round 2: ca_next is dropped), then B
    again: round 3. A unit's ack of round 1, stale in the leader's cache or
    never withdrawn, is not one; nor is it when an operator wrote the
    round back to 0: a new round is one past every ack's."""
    cas, _ = pki_set
    a, b = cas['A'], cas['B']
    rotating = snapshot(roles(a, b, rotation=1, since=NOW))
    abandoned = peers.decide(rotating, inputs(requested=(certs(a), False)))
    assert abandoned.cas == roles(a, rotation=2)
    stale = {PEER: pki.ca_ack(a.pem, b.pem, 1)}
    again = peers.decide(snapshot(roles(a, rotation=2), acks=stale), inputs(requested=(certs(b), False)))
    assert again.cas == roles(a, b, rotation=3, since=NOW)
    rewound = peers.decide(snapshot(roles(a), acks=stale), inputs(requested=(certs(b), False)))
    assert rewound.cas == roles(a, b, rotation=2, since=NOW)


def test_a_unit_the_leader_has_not_met_keeps_a_rotation_waiting(pki_set):
    cas, _ = pki_set
    a, b = cas['A'], cas['B']
    acks = {PEER: pki.ca_ack(a.pem, b.pem, 1)}
    waiting = snapshot(roles(a, b, rotation=1), acks=acks, live={LEADER, PEER, 'app/2'})
    assert peers.decide(waiting, inputs()).cas[CA_NEXT_KEY] == certs(b)
    met = snapshot(roles(a, b, rotation=1), acks=acks, live={LEADER, PEER})
    assert peers.decide(met, inputs()).cas[CA_KEY] == certs(b)


def test_an_emergency_replaces_every_ca_at_once(pki_set):
    cas, _ = pki_set
    decision = peers.decide(snapshot(roles(cas['A'], cas['B'], rotation=3)),
                            inputs(requested=(certs(cas['C']), True)))
    assert decision.cas == roles(cas['C'], rotation=4)  # ca_next is dropped
    assert decision.trust == cas['C'].pem


def test_a_previous_ca_leaves_the_trust_once_it_has_expired(pki_set):
    cas, _ = pki_set
    a, b = cas['A'], cas['B']
    now, acks = time.time(), {PEER: None}  # a unit yet to hold a certificate from B
    assert peers.decide(snapshot(roles(b, previous=a), now=now, acks=acks), inputs()).trust == b.pem + a.pem
    expired = peers.decide(snapshot(roles(b, previous=a), now=now + 3651 * DAY, acks=acks), inputs())
    assert expired.trust == b.pem and CA_PREVIOUS_KEY not in expired.app


def test_a_follower_trusts_what_the_application_bag_says_and_decides_nothing_for_the_leader(pki_set):
    cas, csrs = pki_set
    a, b = cas['A'], cas['B']
    follower = snapshot(roles(a, b, rotation=1), leader=False, unit=PEER)
    decision = peers.decide(follower, inputs(pem.request(csrs[PEER]), requested=(certs(cas['C']), False)))
    assert decision.trust == a.pem + b.pem and decision.pending == {} and decision.app == {}
    assert decision.bag == {CSR_KEY: pem.request(csrs[PEER]).pem, CA_ACK_KEY: pki.ca_ack(a.pem, b.pem, 1)}


def test_an_acknowledgement_is_withdrawn_once_its_next_ca_is_not_trusted(pki_set):
    cas, _ = pki_set
    a, b = cas['A'], cas['B']
    bag = {CA_ACK_KEY: pki.ca_ack(a.pem, b.pem, 1)}
    decision = peers.decide(snapshot(roles(a, rotation=1), leader=False, unit=PEER, bag=bag), inputs())
    assert decision.bag == {CA_ACK_KEY: None}


def test_a_follower_takes_its_answer_and_only_a_valid_one(pki_set):
    cas, csrs = pki_set
    a = cas['A']
    csr = pem.request(csrs[PEER])
    answer = answer_of(a, csrs[PEER])
    app = {CERT_KEY.format(PEER): answer.pem, CSR_DIGEST_KEY.format(PEER): csr.digest}

    def decide(answers, held=None, replaced=()):
        snap = snapshot(roles(a), leader=False, unit=PEER, app=app, answers=answers)
        return peers.decide(snap, inputs(csr, held=held, replaced=replaced))
    assert decide({PEER: (answer, csr.digest)}).take == answer
    assert decide({PEER: (answer, csr.digest)}, held=answer).take is None  # held already
    foreign = answer_of(cas['B'], csrs[PEER])
    decision = decide({PEER: (foreign, csr.digest)})
    assert decision.take is None and 'its issuer is none of the CAs' in decision.notes[0][1]
    wrong_key = answer_of(a, csrs[LEADER])
    assert 'public key' in decide({PEER: (wrong_key, csr.digest)}).notes[0][1]
    lagging = decide({PEER: (answer, 'f' * 64)}, replaced=['f' * 64])
    assert lagging.take is None and lagging.notes[0][0] == peers.hookenv.DEBUG


def test_an_answer_is_due_for_renewal_from_two_thirds_of_its_lifetime(pki_set):
    cas, csrs = pki_set
    a = cas['A']
    csr = pem.request(csrs[PEER])
    answer = answer_of(a, csrs[PEER], days=90)
    app = {CERT_KEY.format(PEER): answer.pem, CSR_DIGEST_KEY.format(PEER): csr.digest}

    def pending(days, stalled=None):
        snap = snapshot(roles(a), app=app, answers={PEER: (answer, csr.digest)}, csrs={PEER: csr},
                        acks={PEER: None}, now=time.time() + days * DAY)
        return peers.decide(snap, inputs(stalled=stalled)).pending
    assert pending(59) == {}
    assert pending(61) == {PEER: csr}
    assert pending(61, stalled={PEER: answer.certs[0].not_after}) == {}  # a renewal that did not renew


def test_the_application_bag_keeps_live_units_answers_and_drops_them_all_for_a_new_ca(pki_set):
    cas, csrs = pki_set
    a = cas['A']
    csr = pem.request(csrs[PEER])
    answer = answer_of(a, csrs[PEER])
    app = {CA_KEY: a.pem, CA_ROUND_KEY: '1', CERT_KEY.format(PEER): answer.pem,
           CSR_DIGEST_KEY.format(PEER): csr.digest, CERT_KEY.format('app/7'): answer.pem}
    snap = snapshot(roles(a, rotation=1), app=app, answers={PEER: (answer, csr.digest)}, csrs={PEER: csr},
                    acks={PEER: None})
    assert peers.decide(snap, inputs()).app == {CERT_KEY.format('app/7'): None}  # app/7 is gone
    emergency = peers.decide(snap, inputs(requested=(certs(cas['C']), True)))
    assert emergency.app[CERT_KEY.format(PEER)] is None and emergency.app[CA_KEY] == cas['C'].pem
    assert set(emergency.pending) == {PEER}


def test_the_leader_repairs_junk_over_a_ca_from_its_record():
    """_read_cas: junk in a CA key reads as what this unit recorded when its
    last hook ended; the leader's decision then writes its record back."""
    a, b = pki.make_ca('A'), pki.make_ca('B')
    state = {'cas': {CA_KEY: a.pem, CA_NEXT_KEY: b.pem, CA_PREVIOUS_KEY: None, CA_ROUND_KEY: 4,
                     CA_SINCE_KEY: NOW - 60}}
    app = {CA_KEY: 'junk', CA_NEXT_KEY: b.pem, CA_ROUND_KEY: 'x', CA_SINCE_KEY: str(NOW - 60)}
    cas = peers._read_cas(app, state, False)
    assert cas == roles(a, b, rotation=4, since=NOW - 60)
    decision = peers.decide(snapshot(cas, app=app, acks={PEER: None}), inputs())  # PEER has not acked
    assert decision.app == {CA_KEY: a.pem, CA_ROUND_KEY: '4'} and decision.trust == a.pem + b.pem


def test_a_follower_takes_no_answer_issued_by_the_next_ca(pki_set):
    """Phase 1: the leader issues nothing, so an answer from ``ca_next`` in
    the bag (an operator's) is no answer: a unit that trusts only ``ca``
    would reject it."""
    cas, csrs = pki_set
    csr = pem.request(csrs[PEER])
    early = answer_of(cas['B'], csrs[PEER])
    app = {CERT_KEY.format(PEER): early.pem, CSR_DIGEST_KEY.format(PEER): csr.digest}
    snap = snapshot(roles(cas['A'], cas['B'], rotation=1), leader=False, unit=PEER, app=app,
                    answers={PEER: (early, csr.digest)})
    decision = peers.decide(snap, inputs(csr))
    assert decision.take is None and 'issuer' in decision.notes[0][1]


def test_a_leaf_certificate_is_no_ca():
    """An operator's leaf certificate over ``ca`` reads as junk (the
    recorded CA stands), and set_ca refuses one."""
    a = pki.make_ca('A')
    leaf = pki.sign(a, pki.make_csr(pki.make_key(), PEER))
    state = {'cas': {CA_KEY: a.pem, CA_NEXT_KEY: None, CA_PREVIOUS_KEY: None}}
    assert peers._read_cas({CA_KEY: leaf}, state, False)[CA_KEY] == certs(a)
    with pytest.raises(ValueError, match='not a CA certificate'):
        pem.authorities(a.pem + leaf)
    assert pem.authorities(a.pem) == certs(a)


def test_the_previous_ca_retires_once_every_unit_holds_a_certificate_from_the_new_one(pki_set):
    """Phase 3: a unit holding a certificate from the new CA says so
    (``<round>:<new CA>``); once every unit has, the leader drops the old
    CA and every unit's trust with it."""
    cas, csrs = pki_set
    a, b = cas['A'], cas['B']
    after = roles(b, previous=a, rotation=1, since=NOW - 60)
    mine = answer_of(b, csrs[PEER])
    follower = peers.decide(snapshot(after, leader=False, unit=PEER),
                            inputs(pem.request(csrs[PEER]), held=mine))
    held_ack = follower.bag[CA_ACK_KEY]
    assert held_ack == f'1:{certs(b).digest}' and follower.trust == b.pem + a.pem
    leaders = answer_of(b, csrs[LEADER])
    waiting = peers.decide(snapshot(after, acks={PEER: pki.ca_ack(a.pem, b.pem)}), inputs(held=leaders))
    assert waiting.cas[CA_PREVIOUS_KEY] == certs(a)
    retired = peers.decide(snapshot(after, acks={PEER: held_ack}), inputs(held=leaders))
    assert retired.cas == roles(b, rotation=2) and retired.trust == b.pem  # ca_previous dropped: round 2
    assert retired.app == {CA_KEY: b.pem, CA_ROUND_KEY: '2'}  # of an empty bag: no ca_previous, no ca_since
    old = answer_of(a, csrs[LEADER])  # the leader itself still presents an old certificate
    assert peers.decide(snapshot(after, acks={PEER: held_ack}), inputs(held=old)).cas[CA_PREVIOUS_KEY]


def test_a_unit_that_never_held_a_certificate_holds_back_no_retirement(pki_set):
    """It presents no certificate from the old CA. One in a re-key may:
    its consumer keeps the old certificate until the new one comes."""
    cas, csrs = pki_set
    after = roles(cas['B'], previous=cas['A'], rotation=1, since=NOW - 60)
    follower = snapshot(after, leader=False, unit=PEER)
    assert peers.decide(follower, inputs(pem.request(csrs[PEER]))).bag[CA_ACK_KEY] == peers._held(after)
    assert CA_ACK_KEY not in peers.decide(follower, inputs(pem.request(csrs[PEER]), replaced=['0' * 64])).bag


def test_a_certificate_either_of_two_same_named_cas_may_have_issued_is_no_new_one(pki_set):
    """The layer checks no signatures: with no authority key identifier,
    a certificate from the old CA or the new one, of the same name, looks
    the same, so it holds the old CA back (until it expires)."""
    _, csrs = pki_set
    old, new = pki.make_ca('app CA'), pki.make_ca('app CA')
    after = roles(new, previous=old, rotation=1, since=NOW)

    def ack(issuer, aki):
        held = pem.certificates(pki.sign(issuer, csrs[PEER], aki=aki))
        snap = snapshot(after, leader=False, unit=PEER)
        return peers.decide(snap, inputs(pem.request(csrs[PEER]), held=held)).bag.get(CA_ACK_KEY)
    assert ack(old, aki=False) is None and ack(new, aki=False) is None
    assert ack(new, aki=True) == peers._held(after)  # with one, it is told apart


def test_a_new_round_is_one_a_unit_can_read(pki_set):
    """An operator's largest round a unit reads leaves the leader no room
    for one more: it is junk to the leader, which counts from what else it
    has seen."""
    cas, _ = pki_set
    top = roles(cas['A'], rotation=peers.MAX_ROUND - 1)
    started = peers.decide(snapshot(top), inputs(requested=(certs(cas['B']), False)))
    assert started.cas[CA_ROUND_KEY] == 1


def test_a_silent_unit_holds_phase_1_for_rotation_wait_and_is_named_meanwhile(pki_set):
    cas, _ = pki_set
    a, b = cas['A'], cas['B']
    silent = {PEER: None}

    def decide(minutes):
        snap = snapshot(roles(a, b, rotation=1, since=NOW), acks=silent, now=NOW + minutes * 60)
        return peers.decide(snap, inputs())
    assert decide(1).cas[CA_NEXT_KEY] == certs(b) and decide(1).notes == ()
    named = decide(peers.SILENT_AFTER // 60).notes
    assert named and named[0][0] == peers.hookenv.WARNING and PEER in named[0][1]
    gone_on = decide(peers.ROTATION_WAIT // 60).cas
    assert gone_on[CA_KEY] == certs(b) and gone_on[CA_PREVIOUS_KEY] == certs(a)


@pytest.mark.parametrize('phase', [1, 3])
def test_a_rotation_names_every_unit_it_waits_for_the_unmet_ones_too(pki_set, phase):
    """app/2 is in goal-state but not in relation-list (its machine is
    being provisioned, or this leader has not run its -joined yet): phase
    1 and phase 3 wait for it, and the WARNING names it."""
    cas, csrs = pki_set
    a, b = cas['A'], cas['B']
    since = NOW - peers.SILENT_AFTER
    state = roles(a, b, rotation=1, since=since) if phase == 1 else \
        roles(b, previous=a, rotation=1, since=since)
    ack = peers._transition(state) or peers._held(state)
    snap = snapshot(state, acks={PEER: ack}, live={LEADER, PEER, 'app/2'})
    decision = peers.decide(snap, inputs(held=answer_of(b if phase == 3 else a, csrs[LEADER])))
    assert decision.cas == state
    assert [message for _, message in decision.notes if 'waits for app/2 ' in message]


def test_a_certificate_that_would_expire_ends_phase_1_sooner(pki_set):
    """Not one merely due for renewal (units that have not acknowledged
    yet are most often live ones whose hooks have not run), but one that
    would expire before ROTATION_WAIT is up."""
    cas, csrs = pki_set
    a, b = cas['A'], cas['B']
    csr = pem.request(csrs[LEADER])

    def decide(hours_left):
        start = pki.utc_now() - datetime.timedelta(hours=24 - hours_left)
        answer = answer_of(a, csrs[LEADER], days=1, not_before=start)
        snap = snapshot(roles(a, b, rotation=1, since=NOW), acks={PEER: None},
                        answers={LEADER: (answer, csr.digest)})
        return peers.decide(snap, inputs(csr))
    assert decide(hours_left=7).cas[CA_NEXT_KEY] == certs(b)  # due, but far from expiring: waits
    assert decide(hours_left=-1).cas[CA_NEXT_KEY] == certs(b)  # expired already: nothing to save
    ended = decide(hours_left=0.5)
    assert ended.cas[CA_KEY] == certs(b) and set(ended.pending) == {LEADER}


def test_a_refused_csr_is_pending_no_more_until_the_unit_publishes_another(pki_set):
    cas, csrs = pki_set
    csr, other = pem.request(csrs[PEER]), pem.request(pki.make_csr(pki.make_key(), PEER))
    base = dict(csrs={PEER: csr}, acks={PEER: None})
    refused = peers.decide(snapshot(roles(cas['A']), **base), inputs(refused={PEER: (csr.digest, 'no')}))
    assert refused.pending == {} and refused.app[peers.REFUSAL_KEY.format(PEER)] == f'{csr.digest} no'
    published = {PEER: (csr.digest, 'no')}
    assert peers.decide(snapshot(roles(cas['A']), refusals=published, **base), inputs()).pending == {}
    again = peers.decide(snapshot(roles(cas['A']), refusals=published, csrs={PEER: other}, acks={PEER: None},
                                  app={peers.REFUSAL_KEY.format(PEER): f'{csr.digest} no'}), inputs())
    assert again.pending == {PEER: other} and again.app[peers.REFUSAL_KEY.format(PEER)] is None
    # A new CA voids every refusal, as every answer: every CSR is pending under it.
    app = {peers.REFUSAL_KEY.format(PEER): f'{csr.digest} no'}
    new_ca = peers.decide(snapshot(roles(cas['A']), refusals=published, app=app, **base),
                          inputs(requested=(certs(cas['C']), True)))
    assert PEER in new_ca.pending and new_ca.app[peers.REFUSAL_KEY.format(PEER)] is None


def test_a_new_leader_keeps_the_refusal_of_a_unit_it_has_not_met(pki_set):
    """As it keeps that unit's answer: goal-state says the unit lives, its
    relation-list does not name it yet, so its CSR is unknown; dropping the
    refusal would tell the unit its CSR is no longer refused, until the
    charm refuses it again."""
    cas, csrs = pki_set
    csr, key = pem.request(csrs[PEER]), peers.REFUSAL_KEY.format(PEER)
    app = {CA_KEY: cas['A'].pem, CA_ROUND_KEY: '1', key: f'{csr.digest} no'}
    refusals, settled = {PEER: (csr.digest, 'no')}, roles(cas['A'], rotation=1)
    unmet = peers.decide(snapshot(settled, app=app, refusals=refusals, live=[PEER]), inputs())
    gone = peers.decide(snapshot(settled, app=app, refusals=refusals), inputs())
    assert unmet.app == {} and gone.app == {key: None}


def test_a_unit_is_told_of_the_refusal_of_its_current_csr_only(pki_set):
    _, csrs = pki_set
    csr = pem.request(csrs[PEER])

    def told(digest):
        snap = snapshot(roles(pki_set[0]['A']), leader=False, unit=PEER, refusals={PEER: (digest, 'bad')})
        return peers.decide(snap, inputs(csr))
    assert told(csr.digest).refusal == 'bad' and 'refused' in told(csr.digest).notes[0][1]
    assert told('0' * 64).refusal is None


def test_a_reason_is_one_printable_line_and_capped():
    assert peers._plain('a\nb\x1b[31m') == 'a b [31m'
    assert len(peers._plain('x' * 1000)) == peers.MAX_REASON
    assert peers._plain('') == peers._plain('\x00\n\x07') == peers.NO_REASON  # a refusal reads as one
