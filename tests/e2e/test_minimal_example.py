"""examples/minimal, the consumer that is safe to copy, built by charm-build
and deployed on jujusim with a process per hook.

Three units settle; then every unit's files must be a key and a certificate
for it that chains to the CA in its own ca.pem (the leader's, from leader
settings), that names the unit (CN and the <app>-<n> SAN), and every two
units must complete a mutual-TLS handshake, both ways, with those files.
"""
import itertools

import pytest
from cryptography import x509
from support import pki
from support.build import build_charm
from support.deployment import Deployment

from peers import CERT_AVAILABLE, CREATE_CSR, SIGN_CSR


@pytest.fixture(scope='module')
def app(tmp_path_factory):
    charm = build_charm(tmp_path_factory.getbasetemp() / 'e2e-build', example='minimal')
    deployment = Deployment(charm, 'tls', tmp_path_factory.mktemp('minimal'))
    yield deployment
    deployment.model.close()


def test_three_units_get_certificates_from_the_ca_they_trust(app):
    m = app.model
    app.deploy(3)
    assert m.units == ['minimal/0', 'minimal/1', 'minimal/2']
    app.check_hooks()
    ca = x509.load_pem_x509_certificate(m.leader_settings['ca-cert'].encode())
    certs = {}
    for unit in m.units:
        # The CA in the unit's own ca.pem, which check_unit also holds to the leader's.
        certs[unit] = pki.check_unit(app.tls_dir, unit, ca_pem=ca)
        assert [s for s in (CREATE_CSR, SIGN_CSR, CERT_AVAILABLE) if s in m.flags(unit)] \
            == [CERT_AVAILABLE], unit
        assert m.status(unit)[0] == 'active', m.status(unit)
        assert (pki.unit_dir(app.tls_dir, unit) / 'csr.pem').is_file()
    app.check_relation_data(certs, ca=m.leader_settings['ca-cert'])
    for server, client in itertools.permutations(m.units, 2):
        result = app.handshake(server, client)
        assert (result['server'], result['client']) == (server, client)


def test_a_deleted_key_is_replaced_and_certified(app):
    """The re-key minimal supports: its key.pem deleted, a unit makes a new
    key on its next hook and asks for a certificate for it."""
    m = app.model
    unit = m.units[1]
    before = app.certificates()
    (pki.unit_dir(app.tls_dir, unit) / 'key.pem').unlink()
    app.begin()
    m.queue(unit, 'update-status')
    m.settle()
    app.check_hooks()
    after = {u: pki.check_unit(app.tls_dir, u) for u in m.units}
    assert after[unit] != before[unit]
    assert all(after[u] == before[u] for u in m.units if u != unit)
    for other in m.units:
        if other != unit:
            app.handshake(unit, other)
            app.handshake(other, unit)
