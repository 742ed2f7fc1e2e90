"""A third hostile review, of the rotation rounds (peers._read_cas,
_plan, _next_round). Each test here failed on the layer as reviewed
(4fc0741).

A number cannot tell one leader's decision from another's: two leaders
pick the same round when one's commit was lost, and an operator's rewound
or deleted round made an old leader's record look ahead. Mended: a leader
records a digest of the bag it decided from, and takes its whole record
only while the bag is still that one (a lost commit); it restores a role
only to a bag of the rotation it recorded (round and start), which every
leader's dropping of a role changes; a round never decides whose record
is newer. A ca_since later than now counts from now, at WARNING."""
from support import pki
from test_decide import NOW, PEER, inputs, snapshot

import peers
from peers import CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY, CA_ROUND_KEY, CA_SINCE_KEY


def record(cas, decided_from):
    """A leader's record (peers._Hook.write) of ``cas`` decided from the bag ``decided_from``."""
    roles = {key: cas.get(key) and cas[key].pem for key in peers.CA_KEYS}
    return dict(roles, **{CA_ROUND_KEY: cas.get(CA_ROUND_KEY, 0), CA_SINCE_KEY: cas.get(CA_SINCE_KEY, 0),
                          'from': peers._written(decided_from, peers.CA_KEYS + peers.ROTATION_KEYS)})


def trusts_ca(drv, unit, ca):
    return ca.pem in drv.model.kv(unit).get(peers.KV_CA, '')


def test_review_final_a_leader_back_after_an_emergency_in_its_lost_round_keeps_the_ca_dropped(make):
    """drv/0 promotes B (round 3: B issues, A previous) and Juju loses the
    commit. Leadership moves to drv/1 before drv/0 runs another hook; A's
    key leaks and drv/1's charm makes an emergency to B, which the bag's
    round 2 and the acks 2:A:B put in round 3 too: {ca: B}. Leadership
    comes back to drv/0, whose first hook reads the bag in the round it
    recorded, with every present role as recorded. It took ca_previous A
    for an operator's deletion and published the compromised CA again;
    now the bag is not the one it decided from, and the emergency ended
    the rotation it recorded (no ca_since): the bag stands."""
    drv = make(units=3)
    m = drv.model
    a, b = drv.ca, pki.make_ca('B')
    for unit in m.units:
        drv.control(unit, sign=False)
    drv.call('drv/0', 'set_ca', b.pem)                # round 2: A to B
    drv.run_queued('drv/1')
    drv.run_queued('drv/2')                           # both acknowledge 2:A:B
    m.restart_agent('drv/0')
    m.lose_commit('drv/0')
    assert m.run('drv/0').commit_lost                 # promotes B (round 3 recorded); lost
    assert m.kv('drv/0')[peers.KV_STATE.format('tls')]['cas'][CA_ROUND_KEY] == 3
    m.move_leader('drv/1')
    drv.schedule('drv/1', 'leader-elected', 'set_ca', [b.pem, True])
    first = next(i for u, i, h in m.pending() if u == 'drv/1' and h.name == 'leader-elected')
    assert m.run('drv/1', first).ok                   # the emergency: A dropped
    assert m.app_bag()[CA_KEY] == b.pem and CA_PREVIOUS_KEY not in m.app_bag()
    assert m.app_bag()[CA_ROUND_KEY] == '3'
    m.move_leader('drv/0')                            # before drv/0 ran a hook as a follower
    first = next(i for u, i, h in m.pending() if u == 'drv/0' and h.name == 'leader-elected')
    assert m.run('drv/0', first).ok
    drv.settle()
    assert CA_PREVIOUS_KEY not in m.app_bag(), 'the leader publishes the CA the emergency dropped'
    for unit in m.units:
        assert not trusts_ca(drv, unit, a), f'{unit} trusts the compromised CA the emergency dropped'


def test_review_final_decide_a_returning_leader_keeps_another_s_emergency_in_its_round():
    """The same at the decision: a leader's record {ca: B, ca_previous: A,
    round 2}, decided from {ca: A, ca_next: B, round 1}, and the bag
    {ca: B, round 2}: another leader's emergency to B, in the same round."""
    a, b = pki.make_ca('A'), pki.make_ca('B')
    before = {CA_KEY: a.pem, CA_NEXT_KEY: b.pem, CA_ROUND_KEY: '1', CA_SINCE_KEY: str(NOW)}
    given = inputs()
    given.state['cas'] = record({CA_KEY: b, CA_PREVIOUS_KEY: a, CA_ROUND_KEY: 2, CA_SINCE_KEY: NOW}, before)
    bag = {CA_KEY: b.pem, CA_ROUND_KEY: '2'}
    seen = peers._read_cas(bag, given.state, False, True)
    decision = peers.decide(snapshot(seen, app=bag, acks={PEER: None}), given)
    assert a.pem not in (decision.trust or ''), 'the leader trusts the CA an emergency dropped'
    assert CA_PREVIOUS_KEY not in decision.app, 'the leader republishes the CA an emergency dropped'


def returning_after_an_abandonment(round_written):
    """The decision of a leader back to a bag in which another leader
    abandoned (set_ca(A), as an earlier version did: Z still previous, the
    same ca_since) the phase 1 from A to B it recorded (round 3), with
    ``round_written`` for ca_round."""
    a, b, z = pki.make_ca('A'), pki.make_ca('B'), pki.make_ca('Z')
    rotating = {CA_KEY: a.pem, CA_NEXT_KEY: b.pem,
                CA_PREVIOUS_KEY: z.pem, CA_ROUND_KEY: '3', CA_SINCE_KEY: str(NOW)}
    given = inputs()
    given.state['cas'] = record({CA_KEY: a, CA_NEXT_KEY: b, CA_PREVIOUS_KEY: z, CA_ROUND_KEY: 3,
                                 CA_SINCE_KEY: NOW}, rotating)
    bag = {key: value for key, value in rotating.items() if key != CA_NEXT_KEY}
    bag[CA_ROUND_KEY] = round_written
    seen = peers._read_cas(bag, given.state, False, True)
    return peers.decide(snapshot(seen, app=bag, acks={PEER: None}), given)


def test_review_final_decide_a_returning_leader_keeps_another_s_abandonment():
    """A leader's record of phase 1 from A to B with Z previous (round 3),
    committed; another leader's charm abandoned B (round 4). The returning
    leader's bag lacks only ca_next, every other role as recorded, but it
    is a later round: the abandonment stands."""
    decision = returning_after_an_abandonment('4')
    assert decision.cas[CA_NEXT_KEY] is None and CA_NEXT_KEY not in decision.app


def test_review_final_a_lost_commit_after_a_forged_high_round_keeps_a_ca_given_once(make):
    """An operator writes ca_round = MAX_ROUND // 2 (a number _next_round
    counted as junk, but _read_cas takes: it is under MAX_ROUND). The
    charm then starts a rotation to C with set_ca once (config-changed)
    and Juju loses that hook's commit. The leader's record (round 1, from
    _next_round) was behind the bag's forged round, so the retry took the
    bag and lost the rotation to C. Now the bag is the one it decided
    from, and its record stands; and the junk line is an acknowledgement's
    alone, so the round is one past the bag's."""
    drv = make(units=2)
    m = drv.model
    drv.control('drv/0', sign=False)
    m.poke_app({CA_ROUND_KEY: str(peers.MAX_ROUND // 2)})
    drv.settle()
    c = pki.make_ca('C')
    m.lose_commit('drv/0', 'config-changed')
    drv.call('drv/0', 'set_ca', c.pem, hook='config-changed')  # lost, retried (attempt 2)
    assert drv.record.attempt == 2
    assert m.kv('drv/0')[peers.KV_STATE.format('tls')]['cas'][CA_ROUND_KEY] == peers.MAX_ROUND // 2 + 1
    drv.settle()
    assert c.pem in (m.app_bag().get(CA_NEXT_KEY), m.app_bag().get(CA_KEY)), 'the rotation to C is lost'


def test_review_final_a_ca_since_in_the_future_counts_from_now_at_warning():
    """Phase 1 of A to B (round 1); an operator writes ca_since a year
    ahead (digits, under MAX_ROUND: taken). PEER's agent is down and never
    acknowledges. Phase 1 was neither waited out nor warned about, for a
    year; now the leader says so at WARNING and publishes now as the start,
    and ROTATION_WAIT later the rotation goes on without PEER."""
    a, b = pki.make_ca('A'), pki.make_ca('B')
    committed = {CA_KEY: a.pem, CA_NEXT_KEY: b.pem, CA_ROUND_KEY: '1', CA_SINCE_KEY: str(NOW)}
    given = inputs()
    given.state['cas'] = record({CA_KEY: a, CA_NEXT_KEY: b, CA_ROUND_KEY: 1, CA_SINCE_KEY: NOW}, committed)
    bag = dict(committed, **{CA_SINCE_KEY: str(NOW + 365 * 86400)})
    now = NOW + 2 * peers.ROTATION_WAIT
    seen = peers._read_cas(bag, given.state, False, True)
    decision = peers.decide(snapshot(seen, app=bag, acks={PEER: None}, live={PEER}, now=now), given)
    assert any(level == 'WARNING' and f"'{CA_SINCE_KEY}'" in message and 'later than now' in message
               for level, message in decision.notes)
    assert decision.app[CA_SINCE_KEY] == str(now) and decision.cas[CA_NEXT_KEY] == seen[CA_NEXT_KEY]
    bag = dict(bag, **decision.app)
    later = now + peers.ROTATION_WAIT
    seen = peers._read_cas(bag, given.state, False, True)
    decision = peers.decide(snapshot(seen, app=bag, acks={PEER: None}, live={PEER}, now=later), given)
    assert decision.cas[CA_NEXT_KEY] is None and decision.cas[CA_KEY] == seen[CA_NEXT_KEY], 'still waiting'


def test_review_final_a_deleted_ca_round_keeps_a_returning_leader_from_undoing_another_s_emergency():
    """drv/0 led with {ca: A}, round 5 (committed). Leadership moved to
    another unit before drv/0 ran a hook as a follower; that leader made
    an emergency to C (round 6). An operator then deletes ca_round (or
    writes back any lower one), and leadership returns to drv/0. Its
    record, 'ahead' of the bag, was taken whole, and the compromised A
    published and trusted again in place of C; now the bag's roles stand,
    and only the round is the leader's."""
    a, c = pki.make_ca('A'), pki.make_ca('C')
    committed = {CA_KEY: a.pem, CA_ROUND_KEY: '5'}
    given = inputs()
    given.state['cas'] = record({CA_KEY: a, CA_ROUND_KEY: 5}, committed)
    bag = {CA_KEY: c.pem}                             # after the emergency (round 6), ca_round deleted
    seen = peers._read_cas(bag, given.state, False, True)
    decision = peers.decide(snapshot(seen, app=bag, acks={PEER: None}), given)
    assert a.pem not in (decision.trust or ''), 'the leader trusts the CA an emergency dropped'
    assert decision.app.get(CA_KEY) != a.pem, 'the leader publishes the CA an emergency dropped'
