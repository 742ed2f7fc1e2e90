"""Model-based tests: random hook sequences on up to six units of the example charm.

A hypothesis state machine drives a jujusim model of the example charm
(built once with charm-build; real peers.py, charms.reactive, unitdata and
cryptography, hooks run in process). Its rules are what Juju and an operator
do: add and remove units, move leadership, deliver any queued hook in any
order Juju allows, fail a hook (it is retried), deliver a hook twice, stop
and restart a unit's agent, re-key one unit or all, replace the CA, run
update-status, and write junk or forged certificates into a follower's bag.

After every hook it checks: no hook failed but the injected failures, and
nothing was logged at WARNING or above unless a bag was tampered with; a
unit stores only a certificate that a then-leader published or delivered to
it, for the key of its current CSR, and a CA that leader settings held, never
going back to a CA that leader settings replaced; within one leadership the
leader issues at most one certificate per (unit, CSR, CA); a relation-set
writes only changes, at most once per hook; only the leader publishes
answers, and only for units in its relation-list; no private key leaves a
unit (but the example's ``ca-key``); ``sign certificate signing request`` is
raised iff the leader has something pending, and ``signed certificate
available`` iff the unit holds a certificate. After settling (the ``settle``
rule, and at teardown): every live unit holds a certificate for its current
key and CSR from the current CA, and the files to match; the leader's bag
carries its term and answers exactly the live units; no follower's bag holds
what only the leader writes.

CI runs 1,000 sequences, derandomized (about three minutes on two cores).
For a longer run, with new random sequences each time (about an hour)::

    HYPOTHESIS_PROFILE=long python -m pytest -q tests/test_model.py -k random
    HYPOTHESIS_PROFILE=long tox -e py3 -- tests/test_model.py -k random

(A profile name this module does not know means the CI profile, since other
modules may define profiles of their own.) Sequences the model found are
replayed by the plain tests at the end.
"""
import hashlib
import os
import re
import shutil
import sys
from collections import defaultdict

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from e2e import pki
from e2e.build import build_charm
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from jujusim import Model

RELATION = 'tls'
MAX_UNITS = 6
CREATE_CSR = 'create certificate signing request'
SIGN_CSR = 'sign certificate signing request'
CERT_AVAILABLE = 'signed certificate available'
LAYER_STATE = 'interface-tls.' + RELATION
KV_CA = 'tls.ca.certificate'
LEADER_TERM = 'tls-leader'  # '<number> <unit>' in leader settings and in the leader's bag
KV_SERVER_CERT = 'tls.server.certificate'
INJECTED = 'jujusim: injected hook failure'
# The example keeps its CA key in leader settings on purpose (see ensure_ca
# in tls_example.py); it is the one private key allowed outside a unit.
CA_KEY_SETTING = 'ca-key'
ANSWER = re.compile(r'(.+)_(signed_certificate|csr_sha256)$')
MAX_SETTLE_HOOKS = 2000

PROFILES = {
    # Shrinking a failure takes minutes: CI stops at the first one.
    'ci': settings(max_examples=1000, stateful_step_count=12, derandomize=True, database=None,
                   deadline=None, report_multiple_bugs=False,
                   suppress_health_check=[HealthCheck.too_slow]),
    'long': settings(max_examples=10000, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow]),
}
SETTINGS = PROFILES.get(os.environ.get('HYPOTHESIS_PROFILE'), PROFILES['ci'])

UNIT = st.integers(0, MAX_UNITS - 1)  # an index into a list of units, modulo its length
PICK = st.integers(0, 63)  # an index into the queued hooks, modulo their number

_rogue = []


def rogue_ca():
    """A CA no leader ever had, made on first use."""
    if not _rogue:
        _rogue.append(pki.make_ca('rogue CA'))
    return _rogue[0]


def public_key(pem):
    """The SubjectPublicKeyInfo DER of a PEM certificate or CSR."""
    data = pem.encode()
    loaded = (x509.load_pem_x509_csr(data) if b'CERTIFICATE REQUEST' in data
              else x509.load_pem_x509_certificate(data))
    return loaded.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)


def csr_digest(pem):
    """Hex SHA-256 of a CSR's DER, as the layer publishes it; None if not a CSR."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except (ValueError, AttributeError):
        return None
    return hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()


def cert_der(pem):
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


class TlsModel(RuleBasedStateMachine):
    """The example charm on a jujusim model, and what its hooks have done so far."""

    def __init__(self, charm_dir, workdir):
        super().__init__()
        # Juju retries a failing hook forever; only injected failures are
        # allowed, and each is checked as it happens.
        self.model = Model(charm_dir, RELATION, executor='inprocess', workdir=workdir,
                           max_retries=10 ** 6)
        self.tls_dir = os.path.join(self.model.workdir, 'tls')
        self.model.set_config(**{'tls-dir': self.tls_dir})
        self.leader = None
        self.epoch = 0  # increases with every change of leader
        self.armed = set()  # units whose next hook is to fail
        self.poked = set()  # units whose bag an operator wrote since their last hook
        self.ever_poked = False
        self.created = set()  # units that ran -relation-created
        self.joined = defaultdict(set)  # unit -> its relation-list, from the hooks it ran
        self.cas = {}  # DER of every CA certificate leader settings held -> its rank, from 0
        self.newest_ca = {}  # (unit, 'ca' or 'cert') -> rank of the newest CA it trusted, had a cert from
        self.csr_keys = {}  # digest of every CSR a unit ever had -> its public key
        self.published = set()  # (unit, certificate) a then-leader published or kept
        self.issued = defaultdict(set)  # (epoch, unit, CSR digest, CA DER) -> certificates
        self.issuers = {}  # certificate -> DER of the CA (in self.cas) that signed it
        self.rekeys = 0
        self.stalled = None  # a unit whose agent runs no hooks for now

    # -- rules: what Juju and the operator do -------------------------------

    @initialize(units=st.integers(1, 1))
    def deploy(self, units):
        for _ in range(units):
            self.model.add_unit()
        self._note_leader()

    @precondition(lambda self: len(self.model.units) < MAX_UNITS)
    @rule()
    def add_unit(self):
        self.model.add_unit()

    @precondition(lambda self: len(self.model.units) > 1)
    @rule(i=UNIT)
    def remove_unit(self, i):
        self.model.remove_unit(self._live(i))
        self._note_leader()

    @rule(i=UNIT, fail=st.booleans())
    def move_leader(self, i, fail):
        """Make a unit the leader; with ``fail``, its next hook (its first as
        leader, unless it is the leader already) fails."""
        unit = self._live(i)
        self.model.move_leader(unit)
        self._note_leader()
        if fail:
            self._fail(unit)

    @precondition(lambda self: self._pending_hooks())
    @rule(picks=st.lists(PICK, min_size=1, max_size=8))
    def deliver(self, picks):
        """Run one queued hook per pick, any Juju may run next."""
        for pick in picks:
            pending = self._pending_hooks()
            if not pending:
                return
            for k in range(len(pending)):
                unit, index, _ = pending[(pick + k) % len(pending)]
                try:
                    self._run(unit, index)
                    break
                except ValueError as error:  # an order Juju never produces
                    if not str(error).startswith('Juju never runs'):
                        raise

    @rule(i=UNIT)
    def fail_next(self, i):
        self._fail(self._live(i))

    @precondition(lambda self: self.model.pending())
    @rule(pick=PICK)
    def duplicate(self, pick):
        pending = self.model.pending()
        unit, index, _ = pending[pick % len(pending)]
        self.model.duplicate(unit, index)

    @rule(i=st.none() | UNIT)
    def rekey(self, i):
        """Every unit re-keys (config), or one: its key generation then
        differs from the config and it re-keys in its next hook that has a
        certificate (here update-status)."""
        if i is None:
            self.model.set_config(**{'key-generation': self.model.config['key-generation'] + 1})
            return
        unit = self._live(i)
        self.rekeys += 1
        udir = pki.unit_dir(self.tls_dir, unit)
        udir.mkdir(parents=True, exist_ok=True)
        # Negative: config generations only count up from 0.
        (udir / 'key-generation').write_text(str(-self.rekeys))
        self.model.queue(unit, 'update-status')

    @rule()
    def new_ca(self):
        self.model.set_config(**{'ca-generation': self.model.config['ca-generation'] + 1})

    @rule(i=UNIT)
    def update_status(self, i):
        self.model.queue(self._live(i), 'update-status')

    @precondition(lambda self: len(self.model.units) > 1)
    @rule(i=UNIT, j=UNIT, forge=st.booleans())
    def poke(self, i, j, forge):
        """An operator writes into a follower's bag: junk for its CSR, or an
        answer for another unit's current CSR from a rogue CA."""
        followers = [u for u in self.model.units if u != self.model.leader]
        unit = followers[i % len(followers)]
        if forge:
            others = [u for u in self.model.units if u != unit]
            victim = others[j % len(others)]
            csr = self.model.bag(victim).get('csr')
            digest = csr_digest(csr) if csr else None
            settings = {'ca': rogue_ca().pem}
            if digest:
                settings[f'{victim}_signed_certificate'] = pki.sign(rogue_ca(), csr)
                settings[f'{victim}_csr_sha256'] = digest
        else:
            settings = {'csr': 'junk, not a CSR'}
        self.model.poke(unit, settings)
        self.poked.add(unit)
        self.ever_poked = True

    @rule(i=UNIT)
    def stall(self, i):
        """A unit's agent goes down (it runs no hook), or, if one is down
        already, comes back."""
        self.stalled = self._live(i) if self.stalled is None else None

    @rule()
    def settle(self):
        """Run every hook (but the stalled unit's); check the outcome if
        none is stalled."""
        if self.stalled is None:
            self._settle_and_check()
        else:
            self._settle()

    def teardown(self):
        try:
            # After a failed step, settling would only bury its error under another.
            if sys.exc_info()[0] is None:
                self.stalled = None
                self._settle_and_check()
        finally:
            self.model.close()
            shutil.rmtree(self.model.workdir, ignore_errors=True)

    # -- running hooks ------------------------------------------------------

    def _run(self, unit, index):
        was_leader = self.model.leader == unit
        bag_before = self.model.bag(unit)
        record = self.model.run(unit, index)
        if record is not None:
            self._check_hook(record, was_leader, bag_before)

    def _settle_and_check(self):
        self._settle()
        # An operator's write is undone by the unit's next hook; Juju runs
        # update-status every few minutes, so that is when at the latest.
        for unit in sorted(self.poked & set(self.model.units)):
            self.model.queue(unit, 'update-status')
        self._settle()
        assert self.model.settle() == []
        self._check_settled()

    def _pending_hooks(self):
        """The queued hooks, but the stalled unit's."""
        return [entry for entry in self.model.pending() if entry[0] != self.stalled]

    def _settle(self):
        """What Model.settle does (units take turns), checking every hook."""
        last = -1
        for _ in range(MAX_SETTLE_HOOKS):
            ready = sorted({unit for unit, _, _ in self._pending_hooks()}, key=_number)
            if not ready:
                return
            unit = next((u for u in ready if _number(u) > last), ready[0])
            last = _number(unit)
            self._run(unit, 0)
        raise AssertionError(f'not settled after {MAX_SETTLE_HOOKS} hooks: {self.model.pending()}')

    # -- checks after every hook --------------------------------------------

    def _check_hook(self, record, was_leader, bag_before):
        unit = record.unit
        what = f'{unit} {record.hook} (hook #{record.seq})'
        injected = unit in self.armed
        self.armed.discard(unit)
        assert record.ok or injected, f'{what} failed:\n{record.error}'
        loud = [message for level, message in record.logs if level in ('WARNING', 'ERROR', 'CRITICAL')]
        assert self.ever_poked or not loud, f'{what} logged {loud}, with no bag tampered with'
        assert not injected or (not record.ok and INJECTED in record.error), \
            f'{what} was to fail by injection, but: ok={record.ok}\n{record.error}'
        settings = self.model.leader_settings
        if settings.get('ca-cert'):
            self.cas.setdefault(cert_der(settings['ca-cert']), len(self.cas))
        for key, value in record.leader_written.items():
            assert key == CA_KEY_SETTING or 'PRIVATE KEY' not in (value or ''), \
                f'{what} leader-set a private key in {key}'
        sets = [argv for argv in record.argv if argv[0] == 'relation-set' and '--help' not in argv]
        assert len(sets) <= 1, f'{what} ran relation-set {len(sets)} times'
        for key, value in record.relation_written.items():
            assert value != bag_before.get(key), f'{what} wrote {key} unchanged ({value!r})'
            assert 'PRIVATE KEY' not in (value or ''), f'{what} published a private key in {key}'
        if not was_leader:
            answers = {k: v for k, v in record.relation_written.items() if v and _leaders_key(k)}
            assert not answers, f'{what}, not the leader, published {sorted(answers)}'
        csr = record.relation_written.get('csr')
        if csr and csr_digest(csr):
            self.csr_keys[csr_digest(csr)] = public_key(csr)
        kv = self.model.kv(unit)
        if record.ok:
            self._note_membership(record)
            if was_leader:
                self._check_leader_hook(record, self.model.bag(unit), kv)
        self._check_stored(unit, what, record.flags, kv, was_leader)

    def _note_membership(self, record):
        unit = record.unit
        if record.hook == f'{RELATION}-relation-created':
            self.created.add(unit)
        elif record.hook == f'{RELATION}-relation-joined':
            self.joined[unit].add(record.remote)
        elif record.hook == f'{RELATION}-relation-departed':
            self.joined[unit].discard(record.remote)
        if unit in self.created:
            self.poked.discard(unit)  # its hook wrote its whole bag anew

    def _check_leader_hook(self, record, bag, kv):
        """The leader published (or delivered to itself) an answer for every
        CSR it can see, under its CA, and nothing for anyone else."""
        leader = record.unit
        what = f'{leader} {record.hook} (hook #{record.seq}, leader)'
        for key, value in record.relation_written.items():
            match = ANSWER.match(key)
            if value and match and match[2] == 'signed_certificate':
                self._note_issued(match[1], bag.get(f'{match[1]}_csr_sha256'), value, what)
        state = kv.get(LAYER_STATE, {})
        own = kv.get(f'{leader}_signed_certificate')
        if own and state.get('csr') and (leader, own) not in self.published:
            self._note_issued(leader, csr_digest(state['csr']), own, what)
        for key in bag:
            match = ANSWER.match(key)
            # Before -relation-created the layer does not touch the bag.
            assert not match or match[1] in self.joined[leader] | {leader} or \
                leader not in self.created, f'{what}: its bag answers {match[1]}, not in its relation-list'
        pending = self._pending(leader, kv)
        assert (SIGN_CSR in record.flags) == bool(pending), \
            f'{what}: {SIGN_CSR!r} raised: {SIGN_CSR in record.flags}, pending: {pending}'
        assert not pending, f'{what} left CSRs unanswered: {pending}'
        ca = kv.get(KV_CA)
        for peer in self.joined[leader]:
            digest = csr_digest(self._bag(peer).get('csr') or '')
            if digest:
                cert = bag.get(f'{peer}_signed_certificate')
                assert bag.get(f'{peer}_csr_sha256') == digest and cert, \
                    f'{what}: its bag does not answer the current CSR of {peer}'
                assert ca and self._issuer(cert) == cert_der(ca), \
                    f"{what}: the certificate it publishes for {peer} is not from its CA"

    def _note_issued(self, unit, digest, cert, what):
        """Record a certificate the leader published for ``unit``'s CSR
        ``digest``; it must be for that CSR's key, from a CA of leader
        settings, and the only one for that CSR and CA in this leadership."""
        assert digest in self.csr_keys, f'{what} published a certificate for an unknown CSR'
        assert public_key(cert) == self.csr_keys[digest], \
            f"{what} published a certificate for {unit} that is not for its CSR's key"
        ca = self._issuer(cert)
        assert ca, f'{what} published a certificate for {unit} from no CA of leader settings'
        self.published.add((unit, cert))
        certificates = self.issued[self.epoch, unit, digest, ca]
        certificates.add(cert)
        assert len(certificates) == 1, \
            f'{what} issued {len(certificates)} certificates for one CSR of {unit} and one CA'

    def _pending(self, leader, kv):
        """The CSRs the leader sees that its layer state does not record as
        answered under its current CA."""
        state = kv.get(LAYER_STATE, {})
        ca = kv.get(KV_CA)
        ca_digest = hashlib.sha256(ca.encode()).hexdigest() if ca else None
        digests = {peer: csr_digest(self._bag(peer).get('csr') or '') for peer in self.joined[leader]}
        if state.get('csr'):
            digests[leader] = csr_digest(state['csr'])
        issued = state.get('issued', {})
        return sorted(unit for unit, digest in digests.items() if digest and (
            (issued.get(unit, {}).get('csr'), issued.get(unit, {}).get('ca')) != (digest, ca_digest)))

    def _check_stored(self, unit, what, flags, kv, was_leader):
        """What the unit holds after a hook: a certificate a leader published
        for it, for its current CSR's key, flagged as available."""
        cert = kv.get(f'{unit}_signed_certificate')
        assert cert == kv.get(KV_SERVER_CERT), f'{what}: its two certificate keys differ'
        assert (CERT_AVAILABLE in flags) == bool(cert), \
            f'{what}: {CERT_AVAILABLE!r} raised: {CERT_AVAILABLE in flags}, certificate: {bool(cert)}'
        assert was_leader or SIGN_CSR not in flags, f'{what}: {SIGN_CSR!r} on a follower'
        csr = kv.get(LAYER_STATE, {}).get('csr')
        if csr:
            self.csr_keys[csr_digest(csr)] = public_key(csr)
        if cert:
            published = (unit, cert) in self.published
            assert published, f'{what} stored a certificate no leader published for it'
            assert csr and public_key(cert) == public_key(csr), \
                f"{what} stored a certificate that is not for its current CSR's key"
        ca = kv.get(KV_CA)
        assert not ca or cert_der(ca) in self.cas, f'{what} trusts a CA leader settings never held'
        # Leader settings replace a CA (ca-generation) because it must no
        # longer be used: a unit never goes back to an older one.
        for kind, der in (('ca', ca and cert_der(ca)), ('cert', cert and self._issuer(cert))):
            if der:
                assert self.cas[der] >= self.newest_ca.get((unit, kind), 0), \
                    f'{what}: its {kind} goes back to a CA that leader settings replaced'
                self.newest_ca[unit, kind] = self.cas[der]

    # -- checks after settling ----------------------------------------------

    def _check_settled(self):
        model = self.model
        leader = model.leader
        settings = model.leader_settings
        ca = settings.get('ca-cert')
        term = settings.get(LEADER_TERM, '')
        assert ca and term.split()[1:] == [leader], f'leader settings: {sorted(settings)}, term {term!r}'
        ca_cert = x509.load_pem_x509_certificate(ca.encode())
        leader_bag = model.bag(leader)
        assert leader_bag.get('ca') == ca, "the leader's bag does not carry the current CA"
        assert leader_bag.get(LEADER_TERM) == term, "the leader's bag does not carry its term"
        answered = {ANSWER.match(key)[1] for key in leader_bag if ANSWER.match(key)}
        assert answered == set(model.units), \
            f"the leader's bag answers {sorted(answered)}; live units: {model.units}"
        for unit in model.units:
            kv = model.kv(unit)
            flags = model.flags(unit)
            bag = model.bag(unit)
            csr = kv.get(LAYER_STATE, {}).get('csr')
            cert = kv.get(f'{unit}_signed_certificate')
            assert csr and csr_digest(bag.get('csr') or '') == csr_digest(csr), \
                f'{unit} does not publish its current CSR'
            assert cert and cert == kv.get(KV_SERVER_CERT), f'{unit} holds no certificate'
            assert public_key(cert) == public_key(csr), f"{unit}: certificate not for its CSR's key"
            assert kv.get(KV_CA) == ca, f'{unit} does not trust the current CA'
            assert pki.verify_signature(ca_cert, x509.load_pem_x509_certificate(cert.encode())), \
                f'{unit}: certificate not from the current CA'
            layer_flags = flags & {CREATE_CSR, SIGN_CSR, CERT_AVAILABLE}
            assert layer_flags == {CERT_AVAILABLE}, f'{unit} has flags {sorted(layer_flags)}'
            pki.check_unit(self.tls_dir, unit, ca)
            cert_pem = (pki.unit_dir(self.tls_dir, unit) / 'cert.pem').read_text()
            assert cert_der(cert_pem) == cert_der(cert), f'{unit}: cert.pem is not its certificate'
            assert leader_bag[f'{unit}_signed_certificate'] == cert, \
                f"the leader's bag does not hold the certificate {unit} has"
            assert leader_bag[f'{unit}_csr_sha256'] == csr_digest(csr), \
                f"the leader's bag does not answer the CSR {unit} has"
            if unit != leader:
                stale = sorted(k for k in bag if _leaders_key(k))
                assert not stale, f'{unit}, a follower, still publishes {stale}'
        pending = self._pending(leader, model.kv(leader))
        assert not pending, f'the leader left CSRs unanswered: {pending}'
        for unit in model.units:
            for key, value in model.bag(unit).items():
                assert 'PRIVATE KEY' not in value, f'a private key in the bag of {unit}: {key}'
        for key, value in settings.items():
            assert key == CA_KEY_SETTING or 'PRIVATE KEY' not in value, f'a private key in {key}'

    # -- helpers ------------------------------------------------------------

    def _bag(self, unit):
        """``unit``'s committed bag; {} once it is gone, when jujusim no
        longer shows it (though a peer that has it in its relation-list
        still reads it, as in Juju)."""
        try:
            return self.model.bag(unit)
        except KeyError:
            return {}

    def _fail(self, unit):
        self.model.fail_next(unit)
        self.armed.add(unit)

    def _live(self, i):
        units = self.model.units
        return units[i % len(units)]

    def _note_leader(self):
        if self.model.leader != self.leader:
            self.leader = self.model.leader
            self.epoch += 1

    def _issuer(self, cert):
        """DER of the CA in leader settings' history that signed ``cert``, or None."""
        if cert not in self.issuers:
            loaded = x509.load_pem_x509_certificate(cert.encode())
            for der in self.cas:
                if pki.verify_signature(x509.load_der_x509_certificate(der), loaded):
                    self.issuers[cert] = der
        return self.issuers.get(cert)


def _leaders_key(key):
    """Whether only the leader may write ``key`` into its bag."""
    return key in ('ca', LEADER_TERM) or bool(ANSWER.match(key))


def _number(unit):
    return int(unit.rsplit('/', 1)[1])


@pytest.fixture(scope='module')
def charm(tmp_path_factory):
    return str(build_charm(tmp_path_factory.mktemp('build')))


def test_random_hook_sequences(charm, tmp_path):
    run_state_machine_as_test(lambda: TlsModel(charm, str(tmp_path)), settings=SETTINGS)


def replay(charm, tmp_path, steps):
    """Play ``steps`` (functions of the machine) as hypothesis would, then settle and check."""
    state = TlsModel(charm, str(tmp_path))
    try:
        for step in steps:
            step(state)
    finally:
        state.teardown()


def test_a_returning_leader_whose_first_hook_fails(charm, tmp_path):
    """Found by the model. 0 leads and answers under CA 1; while 0's agent is
    down, 1 leads, the CA is replaced and 1 answers everyone under CA 2;
    leadership goes back to 0, whose first hook fails after its leader-set.

    Before leadership terms, followers then trusted 0's bag, still holding
    its CA 1 answers, and went back to the replaced CA. With terms, the retry
    found leader settings naming 0 and its own state saying it leads (from
    its earlier term), so it neither started the new term nor took it up:
    its bag kept the old term, and followers waited for it for ever.
    """
    replay(charm, tmp_path, [
        lambda s: s.deploy(units=1), lambda s: s.add_unit(), lambda s: s.add_unit(),
        lambda s: s.settle(), lambda s: s.stall(i=0), lambda s: s.move_leader(i=1, fail=False),
        lambda s: s.new_ca(), lambda s: s.settle(), lambda s: s.move_leader(i=0, fail=True)])


def test_a_new_leader_is_trusted_only_once_its_bag_is_its_own(charm, tmp_path):
    """Found by the model. What a follower wrote into its bag, here an
    operator's forged answer for another unit's CSR from a rogue CA, was
    trusted as soon as leader settings named that unit, although the hook
    that made it leader failed and never replaced its bag."""
    replay(charm, tmp_path, [
        lambda s: s.deploy(units=2), lambda s: s.add_unit(), lambda s: s.settle(),
        lambda s: s.poke(i=0, j=1, forge=True), lambda s: s.move_leader(i=1, fail=True)])


def test_a_leader_publishes_the_certificate_it_holds(charm, tmp_path):
    """Found by the model. The leader goes; its successor, in its first hook
    (-departed for the old leader, whose bag it does not read), answers
    everyone again. Leadership moves on before unit 2 ran a hook: 2 inherited
    the answer to itself it never took, and published it while it kept
    using the certificate it had."""
    replay(charm, tmp_path, [
        lambda s: s.deploy(units=2), lambda s: s.add_unit(), lambda s: s.settle(),
        lambda s: s.remove_unit(i=0), lambda s: s.deliver(picks=[5]),
        lambda s: s.move_leader(i=1, fail=False)])


def test_a_former_leaders_bag_is_no_forgery(charm, tmp_path):
    """Found by the model. A former leader's bag holds its answers until its
    next hook. A unit that ran no hook during that leader's term (its agent
    was down) knows it only as a follower, and logs that it forges
    certificates: here 0, leading again after 1's term, and 2, following 0
    again after 1's term."""
    replay(charm, tmp_path, [
        lambda s: s.deploy(units=1), lambda s: s.add_unit(), lambda s: s.add_unit(),
        lambda s: s.settle(), lambda s: s.stall(i=0), lambda s: s.move_leader(i=1, fail=False),
        lambda s: s.settle(), lambda s: s.move_leader(i=0, fail=False)])
    replay(charm, tmp_path, [
        lambda s: s.deploy(units=1), lambda s: s.add_unit(), lambda s: s.add_unit(),
        lambda s: s.settle(), lambda s: s.stall(i=2), lambda s: s.move_leader(i=1, fail=False),
        lambda s: s.settle(), lambda s: s.move_leader(i=0, fail=False), lambda s: s.stall(i=0),
        lambda s: s.stall(i=1), lambda s: s.settle()])


def test_removing_the_leader_reissues_no_certificate(charm, tmp_path):
    """Found exploring with the model. The successor of a removed leader may
    run -departed for it before leader-elected (jujusim's order; Juju
    promises none): in that hook the old leader is no longer in
    relation-list, so its answers were not carried over and every unit got a
    new certificate (and restarted its services), though Juju still lets the
    successor read the old leader's bag."""
    state = TlsModel(charm, str(tmp_path))
    try:
        state.deploy(units=1)
        state.add_unit()
        state.add_unit()
        state.settle()
        held = {unit: state.model.kv(unit)[KV_SERVER_CERT] for unit in state.model.units}
        state.remove_unit(i=0)
        state.settle()
        changed = [unit for unit in state.model.units if state.model.kv(unit)[KV_SERVER_CERT] != held[unit]]
        assert not changed, f'new certificates for {changed}'
    finally:
        state.teardown()


def test_a_departed_units_settings_stay_readable(charm, tmp_path):
    """Juju keeps relation settings for the lifetime of the relation ("the
    unit settings are guaranteed to persist for the lifetime of the relation,
    regardless of the lifetime of the unit": RelationUnit.ReadSettings in
    juju/state/relationunit.go), so a unit that has not yet run -departed for
    a removed peer still reads its bag. jujusim made the bag unreadable once
    the removed unit ran its last hook, and the peer's hooks failed in
    relation-get."""
    with Model(charm, RELATION, executor='inprocess', workdir=str(tmp_path)) as model:
        model.set_config(**{'tls-dir': str(tmp_path / 'tls')})
        first, second = model.add_unit(), model.add_unit()
        model.settle()
        model.queue(first, 'update-status')
        model.remove_unit(second)
        while any(unit == second for unit, _, _ in model.pending()):
            model.run(second)
        record = model.run(first)
        assert record.hook == 'update-status' and record.ok, record.error
