"""An outside review's reproductions (a hostile peer, a careless operator, a
charm author), each failing on the layer as the review found it and kept
as a regression test once fixed, or, where the review found the docs
wrong, holding the documented behaviour."""
import datetime
import pathlib
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID, ObjectIdentifier
from support import pki

import peers
import pem
from peers import CA_ACK_KEY, CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY, CA_ROUND_KEY


def app(drv):
    return drv.model.app_bag()


@pytest.mark.parametrize('written', ['999999999999', str(peers.MAX_ROUND - 1)], ids=['12-digit', 'max'])
def test_review_a_round_past_twelve_digits_never_ends_the_rotation(make, written):
    """A valid round of 12 digits; and an operator's MAX_ROUND - 1, which
    every unit reads but one more would be junk to them all: the leader
    counts from what else it has seen, and the next rotation completes."""
    drv = make(units=2)
    drv.model.poke_app({CA_ROUND_KEY: written})
    drv.settle()
    new = pki.make_ca('new CA')
    drv.use_ca(new)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert app(drv)[CA_KEY] == new.pem and CA_NEXT_KEY not in app(drv)


def test_review_set_cert_with_a_certificate_from_the_ca_being_rotated_to(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    new = pki.make_ca('new CA')
    drv.call('drv/0', 'set_ca', new.pem)
    assert app(drv)[CA_NEXT_KEY] == new.pem
    csr = drv.model.bag('drv/1')['csr']
    with pytest.raises(ValueError, match='issuer is none of the CAs answers are issued under'):
        drv.call('drv/0', 'set_cert', 'drv/1', pki.sign(new, csr))  # drv/1 may not trust it yet


@pytest.mark.parametrize('hook', ['install', 'data-storage-attached'])
def test_review_set_ca_in_install_is_given_in_the_next_hook(make, hook):
    drv = make(units=1, sign=False, settle=False, storage=True)
    drv.schedule('drv/0', hook, 'set_ca', [drv.ca.pem])
    drv.settle()
    outcome = [e for e in drv.log('drv/0', 'call')]
    assert outcome and 'error' not in outcome[0]
    assert app(drv).get(CA_KEY) == drv.ca.pem  # given in the next hook where it can be


def run_all_but(drv, down, rounds=6):
    """Run every queued hook of every unit but ``down`` (its agent is down)."""
    for _ in range(rounds):
        for unit in drv.model.units:
            if unit != down:
                drv.run_queued(unit)


def test_review_a_unit_down_mid_rotation_stops_every_renewal(make, clock):
    drv = make(units=3)
    held = {unit: drv.cert(unit) for unit in drv.model.units}
    drv.use_ca(pki.make_ca('new CA'))
    drv.run('drv/0', 'update-status')  # phase 1 begins; drv/2's agent is down from now on
    run_all_but(drv, 'drv/2')
    assert CA_NEXT_KEY in app(drv)
    clock(days=61)  # past two thirds of the 90-day certificates
    drv.run('drv/0', 'update-status')
    run_all_but(drv, 'drv/2')
    clock(days=95)  # every certificate has expired
    drv.run('drv/0', 'update-status')
    run_all_but(drv, 'drv/2')
    assert drv.cert('drv/0') != held['drv/0'] and drv.cert('drv/1') != held['drv/1']


def self_signed(extensions):
    """A self-signed EC certificate with ``extensions`` ((extension, critical) pairs)."""
    key = pki.make_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'a server, not a CA')])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30)))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_review_one_unreadable_extension_makes_a_leaf_a_ca():
    odd = x509.UnrecognizedExtension(ObjectIdentifier('1.3.6.1.4.1.99999.1'), b'not DER')
    leaf = self_signed([(x509.BasicConstraints(ca=False, path_length=None), True), (odd, False)])
    assert pem.certificates(leaf).certs[0].ca is False
    with pytest.raises(ValueError):
        pem.authorities(leaf)


def test_review_one_unreadable_extension_drops_the_key_identifier_check():
    ca, twin = pki.make_ca('same name'), pki.make_ca('same name')
    csr = pki.make_csr(pki.make_key(), 'drv/1')
    good = pem.certificates(pki.sign(twin, csr)).certs[0]
    assert not pem.issued_by(good, pem.authorities(ca.pem).certs[0])  # the AKI tells them apart
    # the same certificate with one more, unreadable, extension
    cert = x509.load_pem_x509_certificate(pki.sign(twin, csr).encode())
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
               .public_key(cert.public_key()).serial_number(cert.serial_number)
               .not_valid_before(cert.not_valid_before_utc).not_valid_after(cert.not_valid_after_utc))
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    builder = builder.add_extension(x509.UnrecognizedExtension(
        ObjectIdentifier('1.3.6.1.4.1.99999.1'), b'not DER'), critical=False)
    odd = builder.sign(twin.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    assert not pem.issued_by(pem.certificates(odd).certs[0], pem.authorities(ca.pem).certs[0])


def test_review_the_application_bag_is_the_layers_as_the_readme_says(make):
    drv = make(units=2)
    drv.model.poke_app({'cluster-token': 'kept by the charm'})
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert 'cluster-token' not in app(drv)
    assert "the application bag is the layer's (it removes keys it did not write)" in \
        ' '.join((pathlib.Path(__file__).parents[1] / 'README.md').read_text().split())


def test_review_an_upgrade_from_the_previous_release_never_raises_ca_available(make):
    drv = make(units=2, settle=False)
    for unit in drv.model.units:
        for module in ('peers.py', 'pem.py'):
            old = subprocess.run(['git', 'show', f'22a2227~1:{module}'], check=True,
                                 capture_output=True, text=True).stdout
            (drv.charm_dir(unit) / 'hooks' / 'relations' / 'tls' / module).write_text(old)
    drv.settle()
    assert all(drv.model.kv(unit).get(peers.KV_CA) for unit in drv.model.units)
    for unit in drv.model.units:
        drv.upgrade(unit)
    drv.settle()
    for unit in drv.model.units:
        assert drv.runs(unit, 'ca available'), unit


def run_skipping(drv, unit, hook, remote_to_skip, calls=()):
    """Queue ``hook`` on ``unit`` and run every hook in its queue but those
    about ``remote_to_skip`` (Juju may deliver them later): that peer's bag
    stays as the unit's agent cached it."""
    for method, args in calls:
        drv.schedule(unit, hook, method, args)
    drv.model.queue(unit, hook)
    while True:
        ready = [i for u, i, h in drv.model.pending() if u == unit and h.remote != remote_to_skip]
        if not ready:
            return
        drv.model.run(unit, ready[0])


def test_review_an_old_ca_round_lets_a_stale_ack_promote_early(make):
    stale_ack_scenario(make, old_round=True)


def test_review_control_without_the_old_round_the_stale_ack_does_not_count(make):
    stale_ack_scenario(make, old_round=False)


def stale_ack_scenario(make, old_round):
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    a, b = drv.ca, pki.make_ca('B')
    drv.call('drv/0', 'set_ca', b.pem)                 # round 2: A to B
    drv.run_queued('drv/1')                            # drv/1 trusts A+B, acks 2:A:B
    drv.run_queued('drv/0')                            # the leader reads that ack
    drv.call('drv/0', 'set_ca', a.pem)                 # abandoned
    drv.run_queued('drv/1')                            # drv/1 trusts A only, withdraws its ack
    assert b.pem not in drv.model.kv('drv/1')[peers.KV_CA]
    assert peers.CA_ACK_KEY not in drv.model.bag('drv/1')
    if old_round:
        drv.model.poke_app({CA_ROUND_KEY: '0'})        # an operator writes an old round
    run_skipping(drv, 'drv/0', 'update-status', 'drv/1', calls=[('set_ca', [b.pem])])
    drv.run_queued('drv/2')                            # drv/2 acks the rotation
    run_skipping(drv, 'drv/0', 'update-status', 'drv/1')
    # the leader issues under B only once every unit trusts B
    assert app(drv)[CA_KEY] == a.pem or b.pem in drv.model.kv('drv/1')[peers.KV_CA]


def test_review_deleting_ca_next_silently_abandons_the_rotation(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)  # a charm that gives the new CA once (config-changed, say)
    new = pki.make_ca('new CA')
    drv.call('drv/0', 'set_ca', new.pem)
    drv.model.poke_app({CA_NEXT_KEY: None})
    drv.settle()
    assert app(drv).get(CA_NEXT_KEY) == new.pem or app(drv)[CA_KEY] == new.pem


def test_review_a_lost_commit_loses_a_rotation_given_once(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    new = pki.make_ca('new CA')
    drv.model.lose_commit('drv/0', 'config-changed')
    drv.call('drv/0', 'set_ca', new.pem, hook='config-changed')
    drv.settle()
    assert new.pem in (app(drv).get(CA_NEXT_KEY), app(drv).get(CA_KEY))


def test_review_every_test_the_docs_cite_exists():
    root = pathlib.Path(__file__).resolve().parents[1]
    cited = set()
    for doc in [root / 'README.md', *sorted((root / 'docs').glob('*.md'))]:
        cited |= set(re.findall(r'`(test_[a-z0-9_]+)', doc.read_text()))
    defined = set()
    for source in (root / 'tests').rglob('*.py'):
        defined |= set(re.findall(r'def (test_[a-z0-9_]+)', source.read_text()))
    assert sorted(cited - defined) == []


# -- checked and held (no marker) ---------------------------------------------------

def test_review_held_a_leaf_over_ca_is_repaired_and_set_ca_refuses_a_leaf(make):
    drv = make(units=2)
    published = app(drv)[CA_KEY]
    leaf = pki.sign(drv.ca, pki.make_csr(pki.make_key(), 'drv/9'))
    drv.model.poke_app({CA_KEY: leaf})
    drv.settle()
    assert app(drv)[CA_KEY] == published
    assert all(drv.model.kv(unit)[peers.KV_CA] == published for unit in drv.model.units)
    drv.control('drv/0', sign=False)
    with pytest.raises(ValueError, match='set_ca'):
        drv.call('drv/0', 'set_ca', leaf)


def test_review_held_set_cert_twice_and_set_ca_twice_in_one_hook(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    b, c = pki.make_ca('B'), pki.make_ca('C')
    csr = drv.model.bag('drv/1')['csr']
    first, second = pki.sign(drv.ca, csr), pki.sign(drv.ca, csr)
    record = drv.run('drv/0', 'update-status', calls=[('set_cert', ['drv/1', first]),
                                                      ('set_cert', ['drv/1', second]),
                                                      ('set_ca', [b.pem]), ('set_ca', [c.pem])])
    assert record.ok and all('error' not in r for r in drv.results(record))
    bag = app(drv)
    assert bag['drv/1_signed_certificate'] == second and bag[CA_NEXT_KEY] == c.pem
    assert bag[CA_ROUND_KEY] == '2'  # the first CA's round is 1


def test_review_a_unit_down_mid_rotation_delays_a_new_unit_an_hour_at_most(make, clock):
    drv = make(units=3)
    drv.use_ca(pki.make_ca('new CA'))
    drv.run('drv/0', 'update-status')
    run_all_but(drv, 'drv/2')
    new = drv.add_unit()
    run_all_but(drv, 'drv/2')
    assert drv.cert(new) is None  # phase 1 issues nothing
    clock(seconds=peers.ROTATION_WAIT)
    drv.run('drv/0', 'update-status')
    run_all_but(drv, 'drv/2')
    assert drv.cert(new) is not None


# Issue 17's review (retirement, the silent-unit bound, refuse_csr): each
# failed on the layer as reviewed. Its decide() cases are in test_decide.py;
# a forward step of the leader's clock in phase 1 stays a known limit of a
# bound in wall-clock time (docs/guarantees.md).

def queued_index(m, unit, name, remote=None):
    return next(i for u, i, h in m.pending()
                if u == unit and h.name == name and (remote is None or h.remote == remote))


def rotating_to_b(make):
    """Three units whose leader's charm signs nothing, rotating from their
    CA, A, to a new one, B (round 2): the driver, A and B."""
    drv = make(units=3)
    a, b = drv.ca, pki.make_ca('B')
    for unit in drv.model.units:
        drv.control(unit, sign=False)
    drv.call('drv/0', 'set_ca', b.pem)
    return drv, a, b


def phase_two_without_re_signing(drv):
    """Rotate drv.ca (A) to a new CA B with a leader's charm that does not
    sign: every unit acknowledges, B becomes ``ca`` and A ``ca_previous``,
    and every unit still holds (and presents) its certificate from A."""
    old, new = drv.ca, pki.make_ca('B')
    drv.control('drv/0', sign=False)
    drv.call('drv/0', 'set_ca', new.pem)
    drv.settle()
    assert (app(drv)[CA_KEY], app(drv)[CA_PREVIOUS_KEY]) == (new.pem, old.pem)
    return old, new


def test_review_an_operator_deleting_ca_previous_is_undone_by_the_leader(make):
    """Every unit still presents its certificate from A when an operator
    deletes ca_previous: the leader, told of the write, publishes it again
    from its record (the rotation it recorded, by round and start, every
    other role as recorded), and every unit trusts A again. A follower
    whose hook runs before the leader's drops A meanwhile: a role's removal
    from the bag is the leader's word to it (docs/design.md, "CA rotation")."""
    drv = make(units=3)
    old, new = phase_two_without_re_signing(drv)
    assert all(pki.trusts(old.pem, drv.cert(u)) for u in drv.model.units)  # every unit still on A
    drv.model.poke_app({CA_PREVIOUS_KEY: None})
    drv.run_queued('drv/0')
    assert app(drv)[CA_PREVIOUS_KEY] == old.pem
    drv.settle()
    assert all(pki.trusts(drv.model.kv(u)[peers.KV_CA], drv.cert(v))
               for u in drv.model.units for v in drv.model.units)


def test_review_an_operator_deleting_ca_previous_and_rewinding_ca_round_is_the_leader_s_word(make):
    """The same deletion with an older ca_round written with it is not told
    from another leader's decision (the third review: a round cannot say
    whose it is): the leader takes the roles as they read, keeps its own
    round and says so at WARNING. Every unit drops A alike, and trusts
    every peer again once the charm signs under B (docs/design.md)."""
    drv = make(units=3)
    m = drv.model
    old, new = phase_two_without_re_signing(drv)
    round_before = app(drv)[CA_ROUND_KEY]
    m.poke_app({CA_PREVIOUS_KEY: None, CA_ROUND_KEY: '1'})
    since = len(m.history)
    drv.run_queued('drv/0')
    assert CA_PREVIOUS_KEY not in app(drv) and app(drv)[CA_ROUND_KEY] == round_before
    assert any("'ca_round'" in message and 'behind' in message for record in drv.records('drv/0', since)
               for level, message in record.logs if level == 'WARNING')
    drv.settle()
    assert not any(old.pem in m.kv(u)[peers.KV_CA] for u in m.units)
    drv.control('drv/0', sign=True)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert all(pki.trusts(m.kv(u)[peers.KV_CA], drv.cert(v)) for u in m.units for v in m.units)


def test_review_a_new_leader_that_has_not_met_a_unit_keeps_its_refusal(make):
    """drv/0 refuses the CSR of drv/2, which has just joined; leadership
    moves to drv/1 before it runs its -joined about drv/2 (relation-list
    lacks it, goal-state lists it): the refusal stays, as that unit's
    answer would."""
    drv = make(units=2)
    m = drv.model
    drv.control('drv/0', sign=False)
    new = drv.add_unit()
    drv.run_queued(new)
    drv.run_queued('drv/0')
    drv.call('drv/0', 'refuse_csr', new, 'not in the allow-list')
    key = peers.REFUSAL_KEY.format(new)
    assert key in m.app_bag()
    m.move_leader('drv/1')
    assert m.run('drv/1', queued_index(m, 'drv/1', 'leader-elected')).ok  # before its -joined about drv/2
    assert key in m.app_bag(), 'the refusal of a live unit the new leader has not met is deleted'


def test_review_a_unit_without_a_csr_holds_back_no_retirement(make):
    """drv/2's charm has published no CSR (it wants only the CA, or waits
    for its own config): it presents no certificate from the old CA, so
    the rotation retires it once the others hold certificates from B."""
    drv = make(units=2)
    drv.add_unit(create=False)
    drv.settle()
    assert drv.cert('drv/2') is None and 'csr' not in drv.model.bag('drv/2')
    new = pki.make_ca('B')
    drv.use_ca(new)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert all(pki.trusts(new.pem, drv.cert(u)) for u in ('drv/0', 'drv/1'))  # re-issued under B
    for _ in range(3):
        drv.run('drv/0', 'update-status')
        drv.settle()
    assert CA_PREVIOUS_KEY not in app(drv), 'the old CA is never retired'


def test_review_a_returning_leader_does_not_republish_a_rotation_its_successor_abandoned(make):
    """drv/0 starts a rotation from A to B, and its agent goes down; drv/1
    leads and abandons it (B's key leaked, say); drv/0 leads again. Its
    record of a term ago does not stand in for the ca_next drv/1 removed:
    the abandonment moved the round on."""
    drv = make(units=3)
    m = drv.model
    a, b = drv.ca, pki.make_ca('B')
    for unit in m.units:
        drv.control(unit, sign=False)
    drv.call('drv/0', 'set_ca', b.pem)
    assert m.app_bag()[CA_NEXT_KEY] == b.pem
    m.move_leader('drv/1')                       # drv/0's agent is down: it runs nothing now
    drv.call('drv/1', 'set_ca', a.pem)           # the rotation is abandoned (drv/2 had not acknowledged)
    run_all_but(drv, 'drv/0')
    assert CA_NEXT_KEY not in m.app_bag()
    assert all(b.pem not in m.kv(u)[peers.KV_CA] for u in ('drv/1', 'drv/2'))
    m.move_leader('drv/0')                       # drv/1's lease lapses; drv/0 is back
    drv.run_queued('drv/0')
    assert m.app_bag().get(CA_NEXT_KEY) != b.pem, 'the abandoned CA is published again'


def test_review_an_emergency_rotation_lists_a_refused_csr_again(make):
    """A refusal under A (of drv/1's renewal) is void under C: an emergency
    makes every CSR pending, as the README says."""
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    drv.call('drv/0', 'refuse_csr', 'drv/1', 'renewals of drv/1 are not allowed under A')
    drv.settle()
    c = pki.make_ca('C')
    drv.call('drv/0', 'set_ca', c.pem, True)
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2']


def test_review_a_rewound_ca_round_lets_no_lost_withdrawal_count_on_a_new_leader(make):
    """drv/1 acknowledged round 2 (A to B), which was abandoned, and Juju
    lost the commit of its withdrawal: its bag still says 2:A:B while it
    trusts only A. Leadership moves to drv/2, which has never led, an
    operator writes ca_round=0, and drv/2's charm rotates to B: the new
    round is one past every acknowledgement's, so the leftover counts for
    nothing."""
    drv, a, b = rotating_to_b(make)
    m = drv.model
    drv.run_queued('drv/1')                        # drv/1 trusts A and B, acknowledges 1:A:B
    drv.call('drv/0', 'set_ca', a.pem)             # abandoned
    m.lose_commit('drv/1')
    assert m.run('drv/1', queued_index(m, 'drv/1', 'tls-relation-changed')).commit_lost
    assert b.pem not in m.kv('drv/1')[peers.KV_CA]
    assert m.bag('drv/1')[CA_ACK_KEY] == pki.ca_ack(a.pem, b.pem, 2)
    m.move_leader('drv/2')
    m.poke_app({CA_ROUND_KEY: '0'})                # an operator's old value
    drv.call('drv/2', 'set_ca', b.pem)
    drv.run_queued('drv/0')                        # drv/0 acknowledges the new rotation
    drv.run_queued('drv/2')
    assert m.app_bag()[CA_KEY] == a.pem or b.pem in m.kv('drv/1')[peers.KV_CA], \
        'B issues while drv/1 trusts only A'


def test_review_a_routine_rotation_lists_a_refused_csr_again(make):
    """The same refusal under A, then a routine rotation to B: every CSR
    is pending under B, drv/1's too, so it can get a certificate from B and
    the old CA can retire."""
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    drv.call('drv/0', 'refuse_csr', 'drv/1', 'renewals of drv/1 are not allowed under A')
    drv.settle()
    drv.call('drv/0', 'set_ca', pki.make_ca('B').pem)
    drv.settle()
    assert CA_PREVIOUS_KEY in app(drv)          # phase 2: every CSR pending under B
    assert sorted(drv.call('drv/0', 'get_csr_map')) == ['drv/0', 'drv/1', 'drv/2']


def test_review_a_dying_leader_keeps_the_refusals_of_the_units_that_stay(make):
    """A removed leader leads through its teardown, its relation-list
    shrinking with each -departed: the refusal of drv/2, which stays, is
    kept."""
    drv = make(units=3)
    drv.control('drv/0', sign=False)
    drv.rekey('drv/2')
    drv.run_queued('drv/0')
    drv.call('drv/0', 'refuse_csr', 'drv/2', 'not in the allow-list')
    drv.settle()
    key = peers.REFUSAL_KEY.format('drv/2')
    assert key in app(drv) and peers.CSR_REFUSED in drv.model.flags('drv/2')
    drv.model.remove_unit('drv/0')
    drv.run_queued('drv/0')                          # its -departed hooks, stop, remove
    assert key in app(drv), 'the dying leader deleted the refusal of a unit that stays'



def test_review_refuse_csr_after_set_cert_in_one_hook_is_an_error(make):
    """The leader's own certificate was delivered at once by set_cert, so
    a refusal after it cannot be kept: refuse_csr says so, and changes
    nothing (for a follower too, one rule)."""
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    csr = drv.rekey('drv/0')
    drv.run_queued('drv/0')
    cert = pki.sign(drv.ca, csr)
    record = drv.run('drv/0', 'update-status', calls=[('set_cert', ['drv/0', cert]),
                                                      ('refuse_csr', ['drv/0', 'fails the policy check'])])
    assert 'answered in this hook' in drv.results(record)[1]['error'][1]
    drv.settle()
    assert drv.cert('drv/0') == cert and drv.call('drv/0', 'get_refusal') is None
