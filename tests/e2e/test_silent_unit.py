"""A CA rotation with one unit's agent down, end to end (issue: no silent
unit stalls a renewal): the example charm, real hook processes, real
handshakes between the units' own files after every hook.

tls-example/2's agent is down (its hooks wait in its queue) when the
operator rotates the CA. The leader waits for its acknowledgement, then,
ROTATION_WAIT later, goes on without it: the two live units get
certificates from the new CA and keep talking to each other all along.
When tls-example/2 comes back it trusts both CAs, gets its certificate, and
the old CA retires: it is in no unit's ca.pem, and every two units talk.
"""
from pathlib import Path

import pytest
from support import pki
from support.build import build_charm
from support.deployment import Deployment

import peers

DOWN = 'tls-example/2'


@pytest.fixture
def app(tmp_path_factory, tmp_path):
    deployment = Deployment(build_charm(tmp_path_factory.getbasetemp() / 'e2e-build'), 'tls', tmp_path)
    deployment.deploy(3)
    yield deployment
    deployment.model.close()


def run_all_but(app, down):
    """Run every queued hook but ``down``'s, one at a time; after each, the
    live units complete mutual TLS with their own files, both ways."""
    m = app.model
    while any(unit != down for unit, _, _ in m.pending()):
        m.run(next(unit for unit, _, _ in m.pending() if unit != down))
        live = [unit for unit in m.units if unit != down]
        for server in live:
            for client in live:
                if server != client:
                    app.handshake(server, client)


def ca_pems(app):
    return {unit: (pki.unit_dir(app.tls_dir, unit) / 'ca.pem').read_text() for unit in app.model.units}


def test_a_rotation_goes_on_without_a_silent_unit_and_it_rejoins_cleanly(app):
    m = app.model
    old_ca = m.leader_settings['ca-cert']
    m.set_config(**{'ca-generation': m.config['ca-generation'] + 1})
    run_all_but(app, DOWN)
    assert peers.CA_NEXT_KEY in m.app_bag(), 'phase 1 waits for the silent unit'
    m.advance_clock(seconds=peers.ROTATION_WAIT)
    m.queue(m.leader, 'update-status')  # Juju runs one every few minutes
    run_all_but(app, DOWN)
    new_ca = m.leader_settings['ca-cert']
    assert m.app_bag()[peers.CA_KEY] == new_ca and m.app_bag()[peers.CA_PREVIOUS_KEY] == old_ca
    for unit in m.units:
        if unit != DOWN:
            assert pki.check_unit(app.tls_dir, unit, new_ca, now=app.now()), unit
    assert ca_pems(app)[DOWN] == old_ca  # it ran nothing: still its old files
    m.settle()  # its agent is back
    for server in m.units:
        for client in m.units:
            if server != client:
                app.handshake(server, client)
    assert set(ca_pems(app).values()) == {new_ca}, 'the old CA is retired everywhere'
    assert peers.CA_PREVIOUS_KEY not in m.app_bag()
    app.check_relation_data({}, ca=new_ca)
    assert Path(pki.unit_dir(app.tls_dir, DOWN) / 'cert.pem').exists()
