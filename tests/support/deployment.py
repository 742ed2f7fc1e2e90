"""A deployment of an example charm on jujusim, shared by end-to-end scenarios.

A subprocess hook costs about 0.3 s, so a test module plays its scenarios one
after another on one deployment (3 units, then 5, then a leader change ...).
Each test still states only its own change: :func:`play_up_to` plays the
scenarios listed before it that have not been played, so a test run alone
(``-k``) starts from the same state as in a full run.
"""
import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from peers import CA_ACK_KEY, CA_KEY, CA_PREVIOUS_KEY, CA_ROUND_KEY, CA_SINCE_KEY, CERT_KEY, CSR_KEY
from peers import CSR_DIGEST_KEY as DIGEST_KEY
from support import pki
from support.jujusim import Model
from support.jujusim.model import JUJU_KEYS

LOUD = ('WARNING', 'ERROR', 'CRITICAL')
INJECTED = 'injected hook failure'  # in the traceback of a fail_next failure
# Wire format 2: a unit's own bag holds its CSR beside what Juju puts there,
# the application bag the CA and the leader's answers; leader settings hold
# only what the example charms keep there (their CA), nothing of the layer's.
CHARM_LEADER_KEYS = {'ca-cert', 'ca-key', 'ca-generation'}


class Deployment:
    """A model of an example charm with hooks as processes, and the checks on
    hooks every scenario ends with. Units write their files under ``tls_dir``."""

    def __init__(self, charm, relation, workdir, commit_loss=0.0, seed=None):
        """``commit_loss`` and ``seed`` are jujusim's: with them, hooks that
        exit 0 lose their relation-settings commit at that rate, and units
        take turns and leaders are elected at random, reproducibly."""
        self.model = Model(str(charm), relation, executor='subprocess', workdir=str(workdir),
                           commit_loss=commit_loss, seed=seed)
        self.tls_dir = Path(self.model.workdir) / 'tls'
        self.model.set_config(**{'tls-dir': str(self.tls_dir)})
        self.played = set()  # names of the shared scenarios played on it
        self.mark = 0  # where the current scenario starts in the model's history

    def begin(self):
        self.mark = len(self.model.history)

    def deploy(self, units):
        for _ in range(units):
            self.model.add_unit()
        self.model.settle()

    def scale_out_keeps_certificates(self, units):
        """Add ``units`` units and settle; assert (through ``check()``, which
        each example's scenarios define) that every unit holds a working
        certificate and that none already there was re-issued one."""
        before = self.certificates()
        self.deploy(units)
        after = self.check()
        assert all(after[unit] == cert for unit, cert in before.items()), \
            'scaling out must not re-issue the certificates of the units already there'

    def remove_a_follower_keeps_certificates(self):
        """Remove the newest unit, a follower, and settle; assert that the
        others keep their certificates."""
        leaving = self.model.units[-1]
        assert leaving != self.model.leader
        before = self.certificates()
        self.model.remove_unit(leaving)
        self.model.settle()
        assert leaving not in self.model.units
        after = self.check()
        assert all(after[unit] == before[unit] for unit in after)

    def rotate_ca_with_handshakes(self):
        """Bump ca-generation and run every hook that follows, one at a
        time; after each, every two units complete mutual TLS with the files
        they have, both ways (a routine rotation never breaks a handshake).
        Return the number of hooks run."""
        m = self.model
        m.set_config(**{'ca-generation': m.config['ca-generation'] + 1})
        hooks = 0
        while m.pending():
            hooks += m.run(m.pending()[0][0]) is not None
            for server in m.units:
                for client in m.units:
                    if server != client:
                        self.handshake(server, client)
        return hooks

    def rekey_every_unit(self):
        """Bump key-generation and settle; return the keys and certificates
        before, and the keys and (checked) certificates after."""
        keys, certs = self.keys(), self.certificates()
        self.model.set_config(**{'key-generation': self.model.config['key-generation'] + 1})
        self.model.settle()
        after = self.check()
        return keys, certs, self.keys(), after

    def records(self):
        """The hooks run since the scenario began."""
        return self.model.history[self.mark:]

    def check_hooks(self, failed=(), warnings=()):
        """Assert that since the scenario began only the injected failures
        happened and only the expected warnings were logged loudly.

        ``failed`` lists the (unit, hook) of injected failures, in order;
        hooks whose commit the model lost (``commit_loss``) are injected
        failures too, and need no listing.
        ``warnings`` lists a (unit, key, writer) for each line expected at
        WARNING or above, in any order: ``unit`` logged it at WARNING, and it
        names the relation key and who wrote it. The wording is the layer's.
        """
        records = self.records()
        failures = [r for r in records if not r.ok and not r.commit_lost]
        assert [(r.unit, r.hook) for r in failures] == list(failed), [r.error for r in failures]
        assert all(INJECTED in r.error for r in failures)
        expected = list(warnings)
        for record in records:
            for level, message in record.logs:
                if level not in LOUD:
                    continue
                match = next((w for w in expected if level == 'WARNING' and w[0] == record.unit
                              and w[1] in message and w[2] in message), None)
                assert match, f'{record.unit} {record.hook} logged {level}: {message}'
                expected.remove(match)
        assert expected == [], f'warnings that were not logged: {expected}'

    def check_relation_data(self, published, ca=None, poked=()):
        """Assert that the committed relation data is wire format 2.

        Unit bags hold only a ``csr`` of the layer's (and a ``ca_ack`` once
        a rotation happened), and the (unit, key) pairs in ``poked``, which a
        scenario put there itself; leader settings hold nothing of the
        layer's. The application bag holds ``ca`` (the CA's PEM, or no such
        key when None), during a rotation ``ca_previous`` and ``ca_since``,
        after one ``ca_round``, and answers only
        for live units that have a
        CSR, each with the digest of that CSR; for each unit in ``published``
        (``{unit: certificate}``) the answer is that certificate.
        """
        m = self.model
        for unit in m.units:
            keys = set(m.bag(unit)) - JUJU_KEYS - {key for who, key in poked if who == unit}
            assert keys <= {CSR_KEY, CA_ACK_KEY}, f'{unit}: {sorted(m.bag(unit))}'
        assert set(m.leader_settings) <= CHARM_LEADER_KEYS, sorted(m.leader_settings)
        bag = m.app_bag()
        if ca is None:
            assert CA_KEY not in bag
        else:
            assert x509.load_pem_x509_certificate(bag[CA_KEY].encode()) == \
                x509.load_pem_x509_certificate(ca.encode())
        answered = {unit for unit in m.units if CERT_KEY.format(unit) in bag}
        assert set(published) <= answered, f'no answer for {sorted(set(published) - answered)}'
        answer_keys = {template.format(unit) for unit in answered
                       for template in (CERT_KEY, DIGEST_KEY)}
        assert bag.get(CA_ROUND_KEY, '1').isdigit(), bag[CA_ROUND_KEY]  # routine rotations started
        others = set(bag) - {CA_KEY, CA_PREVIOUS_KEY, CA_ROUND_KEY, CA_SINCE_KEY}
        assert others == answer_keys, \
            f'keys for no live unit, or half answers: {sorted(others ^ answer_keys)}'
        for unit in answered:
            csr = m.bag(unit).get(CSR_KEY)
            assert csr and bag[DIGEST_KEY.format(unit)] == pki.csr_digest(csr), unit
        for unit, cert in published.items():
            assert x509.load_pem_x509_certificate(
                bag[CERT_KEY.format(unit)].encode()) == cert, unit

    def now(self):
        """The time the hooks live in (the model's clock)."""
        return pki.utc_now() + datetime.timedelta(seconds=self.model.clock_offset)

    def handshake(self, server, client):
        """pki.mtls_handshake between two units' files at the hooks' time."""
        return pki.mtls_handshake(self.tls_dir, server, client, at=self.now())

    def keys(self):
        """{unit: DER of the public key in its key.pem}."""
        return {unit: pki.public_der(serialization.load_pem_private_key(
            (pki.unit_dir(self.tls_dir, unit) / 'key.pem').read_bytes(), None).public_key())
            for unit in self.model.units}

    def certificates(self):
        """{unit: the certificate in its cert.pem}."""
        return {unit: x509.load_pem_x509_certificate(
            (pki.unit_dir(self.tls_dir, unit) / 'cert.pem').read_bytes())
            for unit in self.model.units}


def writes(records):
    """(unit, hook) of each of ``records`` that wrote relation data (a unit
    bag or the application bag) or leader settings."""
    return [(r.unit, r.hook) for r in records
            if r.relation_written or r.app_written or r.leader_written]


def play_up_to(deployment, scenarios, current):
    """Play on ``deployment`` every scenario before ``current`` in
    ``scenarios`` that it has not played yet, then begin ``current``."""
    for earlier in scenarios[:scenarios.index(current)]:
        if earlier.__name__ not in deployment.played:
            deployment.played.add(earlier.__name__)
            deployment.begin()
            earlier(deployment)
    deployment.played.add(current.__name__)
    deployment.begin()
    return deployment
