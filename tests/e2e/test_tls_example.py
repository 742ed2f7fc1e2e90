"""End-to-end scenarios: the example charm, built by charm-build, on jujusim.

Hooks run as real processes (the subprocess executor: one process per hook,
fake hook tools on PATH), so what runs is the built charm's
``hooks/relations/tls/peers.py`` exactly as a unit would run it. Every
scenario ends the same way (:meth:`Deployment.check`): every live unit holds a
key and a certificate for it that chains to the CA the leader published and
names the unit, ``signed certificate available`` is raised, the application
bag holds the CA and every unit's certificate with the digest of its CSR
(wire format 2: a unit's own bag holds only its CSR), two units complete a
mutual-TLS handshake, no hook failed but the injected failures and nothing
was logged at WARNING or above but what the scenario expects.

A subprocess hook costs about 0.3 s, so the scenarios on ``tls`` share one
deployment and play one after another (3 units, 6, 5, a leader change, a
re-key, a new CA ...). Each test still states only its own change; run alone
(``-k``), a test first plays the scenarios listed before it in ``SHARED``
(see ``e2e/deployment.py``).
"""
import pytest
from cryptography import x509
from support import pki
from support.build import build_charm
from support.deployment import Deployment as BaseDeployment
from support.deployment import play_up_to, writes

from peers import CERT_AVAILABLE, CERT_KEY, CREATE_CSR, CSR_DIGEST_KEY, KV_CA, KV_SERVER_CERT, SIGN_CSR

LAYER_STATES = (CREATE_CSR, SIGN_CSR, CERT_AVAILABLE)


class Deployment(BaseDeployment):
    """A model of the example charm, and the checks every scenario ends with."""

    def check(self, failed=(), warnings=(), poked=()):
        """Assert the end state every scenario must reach; return {unit: certificate}.

        ``failed`` and ``warnings`` are as for :meth:`check_hooks`, ``poked``
        as for :meth:`check_relation_data`.
        """
        m = self.model
        self.check_hooks(failed, warnings)
        ca_pem = m.leader_settings['ca-cert']
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        certs = {}
        for unit in m.units:
            certs[unit] = pki.check_unit(self.tls_dir, unit, ca_pem=ca)
            kv = m.kv(unit)
            assert x509.load_pem_x509_certificate(kv[KV_CA].encode()) == ca, unit
            assert x509.load_pem_x509_certificate(
                kv[KV_SERVER_CERT].encode()) == certs[unit], unit
            assert [s for s in LAYER_STATES if s in m.flags(unit)] == [CERT_AVAILABLE], unit
        # Every unit, the leader too, is answered in the application bag.
        self.check_relation_data(certs, ca=ca_pem, poked=poked)
        followers = [u for u in m.units if u != m.leader]
        client = (followers or [m.leader])[-1]
        result = self.handshake(m.leader, client)
        assert (result['server'], result['client']) == (m.leader, client)
        return certs


@pytest.fixture(scope='module')
def charm_for(tmp_path_factory):
    """The built example charm for a relation name; the build is cached per session."""
    workdir = tmp_path_factory.getbasetemp() / 'e2e-build'
    return lambda relation='tls': build_charm(workdir, relation_name=relation)


@pytest.fixture(scope='module')
def shared(charm_for, tmp_path_factory):
    deployment = Deployment(charm_for(), 'tls', tmp_path_factory.mktemp('shared'))
    yield deployment
    deployment.model.close()


@pytest.fixture
def app(request, shared):
    """The shared deployment with every scenario before this test in SHARED played on it."""
    return play_up_to(shared, SHARED, request.function)


@pytest.fixture
def fresh(charm_for, tmp_path):
    """A deployment of its own, for the scenarios that cannot share."""
    def make(relation='tls', **kwargs):
        deployment = Deployment(charm_for(relation), relation, tmp_path, **kwargs)
        made.append(deployment)
        return deployment
    made = []
    yield make
    for deployment in made:
        deployment.model.close()


# --- scenarios on one shared deployment, in this order ----------------------

def test_deploy_three_units(app):
    app.deploy(3)
    assert app.model.units == ['tls-example/0', 'tls-example/1', 'tls-example/2']
    app.check()


def test_scale_from_three_to_six(app):
    app.scale_out_keeps_certificates(3)
    assert len(app.model.units) == 6


def test_remove_a_follower(app):
    app.remove_a_follower_keeps_certificates()


def test_leader_leaves_while_a_csr_is_pending(app):
    """The next leader signs the CSR the old one left pending, and keeps
    every answer the old one published: the application bag outlives it."""
    m = app.model
    old = m.leader
    certs = app.certificates()
    new = m.add_unit()
    while 'csr' not in m.bag(new):  # only the new unit's hooks: install, relation-created
        m.run(new)
    assert CERT_KEY.format(new) not in m.app_bag()
    m.remove_unit(old)
    m.settle()
    assert m.leader not in (old, None) and new in m.units and old not in m.units
    after = app.check()
    assert [u for u in certs if u != old and after[u] != certs[u]] == [], 're-issued on failover'


def test_rekey_from_config_changed(app):
    m = app.model
    keys, certs, new_keys, after = app.rekey_every_unit()
    for unit in m.units:
        assert new_keys[unit] != keys[unit], f'{unit} kept its key'
        assert after[unit] != certs[unit], f'{unit} kept its certificate'
        assert pki.public_der(after[unit].public_key()) == new_keys[unit]


def test_ca_rotation(app):
    """A routine rotation never breaks a handshake: after every hook, every
    two units complete mutual TLS with the files they have, both ways; and
    it ends with the old CA retired, in no unit's ca.pem."""
    m = app.model
    old_ca, certs = m.leader_settings['ca-cert'], app.certificates()
    hooks = app.rotate_ca_with_handshakes()
    assert m.leader_settings['ca-cert'] != old_ca and hooks >= 2 * len(m.units)
    after = app.check()  # checks every certificate against the new CA
    assert all(after[unit] != certs[unit] for unit in m.units)
    for unit in m.units:
        ca_pem = (pki.unit_dir(app.tls_dir, unit) / 'ca.pem').read_text()
        assert ca_pem == m.leader_settings['ca-cert'], f"{unit}'s ca.pem is not the new CA alone"


def test_leader_move_keeps_every_certificate(app):
    """The new leader inherits every answer, so no unit gets a new
    certificate (and restarts its service) only because leadership moved,
    and the move writes nothing: it costs the leadership hooks alone."""
    m = app.model
    old = m.leader
    certs, bag = app.certificates(), m.app_bag()
    m.move_leader(next(u for u in m.units if u != old))
    m.settle()
    after = app.check()
    assert [u for u in m.units if after[u] != certs[u]] == [], 're-issued on a leader move'
    assert writes(app.records()) == [] and m.app_bag() == bag
    # Juju has no leader-deposed hook: the old leader runs leader-settings-changed.
    assert sorted((r.unit, r.hook) for r in app.records()) == sorted(
        [(m.leader, 'leader-elected'), (old, 'leader-settings-changed')])


def test_failed_signing_hook_is_retried(app):
    """The leader's hook that signs a follower's new CSR fails once, after
    signing: its answer is discarded with it, and the retry signs again."""
    m = app.model
    follower = next(u for u in m.units if u != m.leader)
    certs = app.certificates()
    # A unit re-keys on its own when its key-generation file disagrees with the config.
    (pki.unit_dir(app.tls_dir, follower) / 'key-generation').write_text('-1')
    m.fail_next(m.leader, 'tls-relation-changed')
    m.queue(follower, 'update-status')
    m.settle()
    after = app.check(failed=[(m.leader, 'tls-relation-changed')])
    assert [r.attempt for r in app.records()
            if r.unit == m.leader and r.remote == follower] == [1, 2]
    assert after[follower] != certs[follower]
    assert all(after[unit] == certs[unit] for unit in m.units if unit != follower)


def test_forged_certificate_from_a_follower_is_ignored(app):
    """A follower offers another unit an answer in its own bag: the victim
    warns about it and keeps its certificate, however valid the forgery."""
    m = app.model
    victim, forger = [u for u in m.units if u != m.leader][:2]
    before = app.certificates()
    csr = m.bag(victim)['csr']
    forged = pki.sign(pki.make_ca('forger CA'), csr)  # the victim's key, another CA
    cert_key, digest_key = CERT_KEY.format(victim), CSR_DIGEST_KEY.format(victim)
    m.poke(forger, {cert_key: forged, digest_key: pki.csr_digest(csr)})
    m.settle()
    after = app.check(warnings=[(victim, cert_key, forger), (victim, digest_key, forger)],
                      poked=[(forger, cert_key), (forger, digest_key)])
    assert after == before
    assert m.bag(forger)[cert_key] == forged, 'the forgery stayed on offer all along'
    # Taking it back leaves nothing to warn about in later scenarios.
    app.begin()
    m.poke(forger, {cert_key: None, digest_key: None})
    m.settle()
    assert app.check() == before


def test_failed_rekey_hook_is_retried(app):
    """A follower's re-key hook fails once (after making its new key and CSR):
    the retry must still publish a CSR for the new key and end on it."""
    m = app.model
    follower = next(u for u in m.units if u != m.leader)
    keys = app.keys()
    m.fail_next(follower, 'config-changed')
    m.set_config(**{'key-generation': m.config['key-generation'] + 1})
    m.settle()
    app.check(failed=[(follower, 'config-changed')])
    new_keys = app.keys()
    assert [u for u in m.units if new_keys[u] == keys[u]] == [], 'units still on their old key'


SHARED = [test_deploy_three_units, test_scale_from_three_to_six, test_remove_a_follower,
          test_leader_leaves_while_a_csr_is_pending, test_rekey_from_config_changed,
          test_ca_rotation, test_leader_move_keeps_every_certificate,
          test_failed_signing_hook_is_retried,
          test_forged_certificate_from_a_follower_is_ignored, test_failed_rekey_hook_is_retried]


# --- scenarios with a deployment of their own --------------------------------

def test_relation_named_cluster(fresh):
    app = fresh('cluster')
    app.deploy(3)
    app.check()
    hooks = {r.hook for r in app.model.history}
    assert {'cluster-relation-joined', 'cluster-relation-changed'} <= hooks
    assert not any(h.startswith('tls-') for h in hooks)


def test_lone_unit(fresh):
    app = fresh()
    app.deploy(1)
    app.check()  # the handshake is the unit with itself


def test_renewal_across_months(fresh):
    """Time passes, at the update-status rate Juju keeps: every two months
    (past two thirds of the example's 90 days) the leader renews every
    certificate through the example's unchanged signing handler, each unit
    installs its new one, and every two units keep completing mutual TLS,
    at the hooks' time. No certificate is renewed twice in a window."""
    app = fresh()
    app.deploy(3)
    m = app.model
    held = app.certificates()
    for _ in range(3):
        m.advance_clock(days=61)
        for unit in m.units:
            m.queue(unit, 'update-status')
        app.begin()
        m.settle()
        app.check_hooks()
        renewed = app.certificates()
        for unit in m.units:
            assert renewed[unit] != held[unit], f'{unit} was not renewed'
            pki.check_unit(app.tls_dir, unit, now=app.now())
            for other in m.units:
                if other != unit:
                    assert app.handshake(unit, other)['server'] == unit
        signing = [r for r in app.records() if r.unit == m.leader and r.app_written]
        assert len(signing) == 1, [(r.hook, sorted(r.app_written)) for r in signing]
        held = renewed


@pytest.mark.parametrize('seed', [3])
def test_every_scenario_with_commits_lost_at_random(fresh, seed):
    """Juju commits a hook's relation settings after the hook exits 0, and
    can lose them then (an agent restart, an API error) while the unit's
    data, flags included, is already saved; it retries the hook. With a
    fifth of all commits lost (seeded, so a failure replays), a deployment,
    a re-key, the leader's removal and a CA rotation still end with every
    unit holding a working certificate, and no handshake breaks during the
    rotation."""
    app = fresh(commit_loss=0.2, seed=seed)
    m = app.model
    app.deploy(3)
    app.check()
    keys, _, new_keys, _ = app.rekey_every_unit()
    assert [u for u in m.units if new_keys[u] == keys[u]] == [], 'units still on their old key'
    old = m.leader
    m.remove_unit(old)
    m.settle()
    assert old not in m.units
    app.check()
    app.begin()
    old_ca = m.leader_settings['ca-cert']
    app.rotate_ca_with_handshakes()
    assert m.leader_settings['ca-cert'] != old_ca
    app.check()
    lost = [r for r in m.history if r.commit_lost]
    assert len(lost) >= 10 and len({r.hook for r in lost}) >= 3, 'too few commits were lost'
