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
from peers import CA_KEY, CA_NEXT_KEY, CA_ROUND_KEY


def app(drv):
    return drv.model.app_bag()


def test_review_a_round_past_twelve_digits_never_ends_the_rotation(make):
    drv = make(units=2)
    drv.model.poke_app({CA_ROUND_KEY: '999999999999'})  # a valid round, 12 digits
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
    drv.call('drv/0', 'set_ca', b.pem)                 # round 1: A to B
    drv.run_queued('drv/1')                            # drv/1 trusts A+B, acks 1:A:B
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
    assert bag[CA_ROUND_KEY] == '1'


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
