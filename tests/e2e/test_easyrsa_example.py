"""End-to-end scenarios: easyrsa-example, a consumer in the original layer's style.

examples/easyrsa-example is built by charm-build and run on jujusim with a
process per hook, like tls-example in test_scenarios.py. It uses only the
original API, and what it hands the layer is what easy-rsa writes: followers
publish easy-rsa's request files with set_csr(), and the leader answers with
easy-rsa's certificate files, a text dump before the PEM, with set_cert().

Every scenario ends with :meth:`EasyRsaDeployment.check`: no hook failed,
nothing was logged at WARNING or above, no handler ran twice in one hook,
every live unit holds a certificate for its current key that chains to the
CA in leader settings and names the unit, the application bag holds every
follower's certificate with the digest of its CSR, the leader and a follower complete
mutual-TLS handshakes both ways, and a further update-status on every unit
changes nothing. The scenarios share one deployment, in the order of
SCENARIOS (see e2e/deployment.py).
"""
import collections

import pytest
from cryptography import x509
from support import pki
from support.build import build_charm
from support.deployment import Deployment, play_up_to, writes

from peers import CERT_AVAILABLE, CREATE_CSR, SIGN_CSR

EXAMPLE = 'easyrsa-example'
LAYER_STATES = (CREATE_CSR, SIGN_CSR, CERT_AVAILABLE)
# charms.reactive logs this (at INFO, through juju-log) for every handler it runs.
INVOKED = 'Invoking reactive handler: '
TEXT_DUMP = 'Certificate:'  # how easy-rsa's certificate files start
PEM_CERT = '-----BEGIN CERTIFICATE-----'


class EasyRsaDeployment(Deployment):
    """The easyrsa-example charm on jujusim, and the checks every scenario ends with."""

    def check(self):
        """Assert the end state every scenario must reach; return {unit: certificate}."""
        m = self.model
        self.check_settled()
        self.check_hooks()
        repeated = [(r.unit, r.hook, handler) for r in self.records()
                    for handler, runs in handlers_run(r).items() if runs > 1]
        assert repeated == [], 'handlers that ran more than once in one hook'

        ca = m.leader_settings['ca-cert']
        certs = {unit: pki.check_unit(self.tls_dir, unit, ca_pem=ca) for unit in m.units}
        followers = [u for u in m.units if u != m.leader]
        for unit in followers:
            published = m.bag(unit)['csr']
            requests = pki.unit_dir(self.tls_dir, unit).glob('easy-rsa/requests/reqs/*.req')
            assert published in {path.read_text() for path in requests}, \
                f'{unit}: its CSR is not a request file easy-rsa wrote'
            csr = x509.load_pem_x509_csr(published.encode())
            assert pki.public_der(csr.public_key()) == pki.public_der(certs[unit].public_key()), \
                f'{unit}: the certificate is not for its current request'
        self.check_issued_by_easyrsa(certs)
        # Never calling set_ca, the charm publishes no CA on the relation;
        # every follower is answered in the application bag.
        self.check_relation_data({unit: certs[unit] for unit in followers}, ca=None)
        for client in followers[-1:] or [m.leader]:
            for server, peer in ((m.leader, client), (client, m.leader)):
                result = pki.mtls_handshake(self.tls_dir, server, peer)
                assert (result['server'], result['client']) == (server, peer)
        return certs

    def check_issued_by_easyrsa(self, certs):
        """Every unit's certificate is one that easy-rsa wrote on a leader (this
        one or an earlier one), as a file that starts with its text dump: that
        file is what the leader handed set_cert() for a follower, and copied
        as cert.pem for itself. Followers hold the layer's PEM of it."""
        m = self.model
        issued = {}
        for path in self.tls_dir.glob('*/easy-rsa/ca-*/issued/*.crt'):
            text = path.read_text()
            assert text.startswith(TEXT_DUMP) and PEM_CERT in text, path
            issued[x509.load_pem_x509_certificate(text.encode())] = text
        missing = [unit for unit, cert in certs.items() if cert not in issued]
        assert missing == [], 'certificates no leader issued with easy-rsa'
        leader_cert = pki.unit_dir(self.tls_dir, m.leader) / 'cert.pem'
        assert leader_cert.read_text() == issued[certs[m.leader]]
        for unit in certs:
            if unit != m.leader:
                assert (pki.unit_dir(self.tls_dir, unit) / 'cert.pem').read_text().startswith(
                    PEM_CERT), unit

    def check_settled(self):
        """An update-status on every unit writes nothing, changes no flag and
        runs no handler but the leader's request_certificate: the layer keeps
        'create certificate signing request' raised on a leader that never
        published a CSR (one that became leader after publishing one as a
        follower has none raised)."""
        m = self.model
        flags = {unit: m.flags(unit) for unit in m.units}
        expected = {unit: [] for unit in m.units}
        if 'csr' not in m.bag(m.leader):
            expected[m.leader] = [CREATE_CSR]
        assert {u: [s for s in LAYER_STATES if s in f] for u, f in flags.items()} == expected
        for unit in m.units:
            m.queue(unit, 'update-status')
        records = m.settle()
        # One each, in the order the model's round robin takes the units.
        assert collections.Counter((r.unit, r.hook) for r in records) == \
            collections.Counter((unit, 'update-status') for unit in m.units)
        assert writes(records) == []
        ran = {r.unit: sorted(handlers_run(r)) for r in records}
        assert ran == {unit: ['request_certificate'] if states else []
                       for unit, states in expected.items()}
        assert {unit: m.flags(unit) for unit in m.units} == flags


def handlers_run(record):
    """{handler function name: how often charms.reactive ran it} in one hook."""
    return collections.Counter(message[len(INVOKED):].rsplit(':', 1)[1]
                               for _, message in record.logs if message.startswith(INVOKED))


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    charm = build_charm(tmp_path_factory.getbasetemp() / 'e2e-build', example=EXAMPLE)
    deployment = EasyRsaDeployment(charm, 'tls', tmp_path_factory.mktemp('easyrsa'))
    yield deployment
    deployment.model.close()


@pytest.fixture
def app(request, shared):
    """The shared deployment with every scenario before this test in SCENARIOS played on it."""
    return play_up_to(shared, SCENARIOS, request.function)


# --- scenarios on one shared deployment, in this order ----------------------

def test_deploy_three_units(app):
    app.deploy(3)
    assert app.model.units == [f'{EXAMPLE}/0', f'{EXAMPLE}/1', f'{EXAMPLE}/2']
    app.check()


def test_scale_to_five(app):
    app.scale_out_keeps_certificates(2)
    assert len(app.model.units) == 5


def test_remove_a_follower(app):
    app.remove_a_follower_keeps_certificates()


def test_remove_the_leader(app):
    """The new leader signs with the CA from leader settings: it rebuilds an
    easy-rsa PKI from it, issues itself a certificate and signs whatever
    requests the layer could not carry over from the leader that left (with
    the keys they were made for, so followers keep theirs)."""
    m = app.model
    old, ca, keys = m.leader, m.leader_settings['ca-cert'], app.keys()
    m.remove_unit(old)
    m.settle()
    assert m.leader not in (old, None) and old not in m.units
    app.check()
    assert m.leader_settings['ca-cert'] == ca
    restored = list((pki.unit_dir(app.tls_dir, m.leader) / 'easy-rsa').glob('ca-*/private/ca.key'))
    assert [path.read_text() for path in restored] == [m.leader_settings['ca-key']]
    new_keys = app.keys()
    assert [unit for unit in m.units if new_keys[unit] != keys[unit]] == [m.leader], \
        'only the new leader, which issued itself a certificate, has a new key'


def test_rekey_every_unit(app):
    m = app.model
    keys, certs, new_keys, after = app.rekey_every_unit()
    assert [unit for unit in m.units if new_keys[unit] == keys[unit]] == []
    assert [unit for unit in m.units if after[unit] == certs[unit]] == []


def test_ca_change(app):
    """Without set_ca, followers learn of the new CA from leader settings and
    re-key; their new requests are what makes the leader sign them again."""
    m = app.model
    old_ca, keys = m.leader_settings['ca-cert'], app.keys()
    m.set_config(**{'ca-generation': m.config['ca-generation'] + 1})
    m.settle()
    assert m.leader_settings['ca-cert'] != old_ca
    app.check()  # checks every certificate against the new CA
    new_keys = app.keys()
    assert [unit for unit in m.units if new_keys[unit] == keys[unit]] == []


SCENARIOS = [test_deploy_three_units, test_scale_to_five, test_remove_a_follower,
             test_remove_the_leader, test_rekey_every_unit, test_ca_change]
