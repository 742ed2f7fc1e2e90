"""A deployment of an example charm on jujusim, shared by end-to-end scenarios.

A subprocess hook costs about 0.3 s, so a test module plays its scenarios one
after another on one deployment (3 units, then 5, then a leader change ...).
Each test still states only its own change: :func:`play_up_to` plays the
scenarios listed before it that have not been played, so a test run alone
(``-k``) starts from the same state as in a full run.
"""
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jujusim import Model

from e2e import pki

LOUD = ('WARNING', 'ERROR', 'CRITICAL')
INJECTED = 'injected hook failure'  # in the traceback of a fail_next failure


class Deployment:
    """A model of an example charm with hooks as processes, and the checks on
    hooks every scenario ends with. Units write their files under ``tls_dir``."""

    def __init__(self, charm, relation, workdir):
        self.model = Model(str(charm), relation, executor='subprocess', workdir=str(workdir))
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

    def records(self):
        """The hooks run since the scenario began."""
        return self.model.history[self.mark:]

    def check_hooks(self, failed=(), warnings=()):
        """Assert that since the scenario began only the injected failures
        happened and only the expected messages were logged loudly.

        ``failed`` lists the (unit, hook) of injected failures, ``warnings``
        the (unit, message) logged at WARNING or above, both in order.
        """
        records = self.records()
        assert [(r.unit, r.hook) for r in records if not r.ok] == list(failed), \
            [r.error for r in records if not r.ok]
        assert all(INJECTED in r.error for r in records if not r.ok)
        assert [(r.unit, message) for r in records
                for level, message in r.logs if level in LOUD] == list(warnings)

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
