"""The examples name a certificate after the unit the layer pairs its CSR
with, never after what the CSR asks for.

The layer hands the leader's signer ``{unit name: CSR}``, the unit name
being Juju's for the bag the CSR is in; the CSR itself is whatever that unit
wrote. A compromised unit can write any CSR into its own bag, one that names
another unit included, and its peers would trust a certificate naming that
unit as they trust the unit itself. So each example, built by charm-build
and run with a process per hook, is deployed with three units; one follower
then writes into its own bag, as a unit's root can with ``relation-set``, a
CSR for a key of its own whose subject and SANs name the other follower
(its ``<app>-<n>`` and its address too). Only the leader's hooks run after
that (the follower's own layer would put its real CSR back), and the
leader's answer in the application bag must be for the forged CSR's key,
from the application's CA, and name the follower and nothing of the other.
"""
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from support import pki
from support.build import build_charm
from support.deployment import Deployment

from peers import CERT_KEY, CSR_DIGEST_KEY, CSR_KEY


@pytest.fixture(params=['tls-example', 'easyrsa-example', 'minimal'])
def app(request, tmp_path_factory, tmp_path):
    charm = build_charm(tmp_path_factory.getbasetemp() / 'e2e-build', example=request.param)
    deployment = Deployment(charm, 'tls', tmp_path)
    yield deployment
    deployment.model.close()


def test_a_csr_naming_another_unit_gets_a_certificate_naming_its_own(app):
    m = app.model
    app.deploy(3)
    forger, victim = [unit for unit in m.units if unit != m.leader]
    victim_address = m.bag(victim)['ingress-address']
    key = pki.make_key()
    csr = pki.make_csr(key, victim, names=pki.unit_sans(victim, extra=[victim_address]))
    assert common_names(x509.load_pem_x509_csr(csr.encode())) == [victim]

    m.poke(forger, {CSR_KEY: csr})
    while any(unit == m.leader for unit, _, _ in m.pending()):
        m.run(m.leader)

    bag = m.app_bag()
    assert bag.get(CSR_DIGEST_KEY.format(forger)) == pki.csr_digest(csr), \
        'the leader did not answer the CSR naming another unit'
    cert = x509.load_pem_x509_certificate(bag[CERT_KEY.format(forger)].encode())
    assert pki.public_der(cert.public_key()) == pki.public_der(key.public_key())
    ca = x509.load_pem_x509_certificate(m.leader_settings['ca-cert'].encode())
    assert pki.verify_signature(ca, cert), 'not issued under the application CA'

    assert common_names(cert) == [forger]
    assert forger.replace('/', '-') in pki.sans(cert, x509.DNSName)
    names = [attribute.value for attribute in cert.subject] + [str(n) for n in pki.sans(cert)]
    named = [name for name in names
             if victim in name or victim.replace('/', '-') in name or name == victim_address]
    assert named == [], f'the certificate of {forger} names {victim}: {named}'


def common_names(cert_or_csr):
    return [a.value for a in cert_or_csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
