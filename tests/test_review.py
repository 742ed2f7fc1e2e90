"""An outside review's reproductions: each xfail(strict=True) test shows a
problem in the layer as it stands (the suite stays green; a fix turns it
into an XPASS, which fails, so the marker must then go)."""
import subprocess
import sys

import pytest
from support import pki

import peers
from peers import CA_AVAILABLE, CA_KEY, CA_NEXT_KEY, CA_ROUND_KEY


def app(drv):
    return drv.model.app_bag()


@pytest.mark.xfail(strict=True, reason='the leader writes a 13-digit ca_round that _ROUND rejects; '
                   'followers then ack with their recorded round and the rotation never ends')
def test_review_a_round_past_twelve_digits_never_ends_the_rotation(make):
    drv = make(units=2)
    drv.model.poke_app({CA_ROUND_KEY: '999999999999'})  # a valid round, 12 digits
    drv.settle()
    old, new = drv.ca, pki.make_ca('new CA')
    drv.use_ca(new)
    drv.run('drv/0', 'update-status')
    drv.settle()
    assert app(drv)[CA_KEY] == new.pem and CA_NEXT_KEY not in app(drv)


@pytest.mark.xfail(strict=True, reason='README: set_cert takes a certificate from a CA '
                   '"published or being rotated to"; the code takes only ca')
def test_review_set_cert_with_a_certificate_from_the_ca_being_rotated_to(make):
    drv = make(units=2)
    drv.control('drv/0', sign=False)
    new = pki.make_ca('new CA')
    drv.call('drv/0', 'set_ca', new.pem)
    assert app(drv)[CA_NEXT_KEY] == new.pem
    csr = drv.model.bag('drv/1')['csr']
    drv.call('drv/0', 'set_cert', 'drv/1', pki.sign(new, csr))


@pytest.mark.xfail(strict=True, reason='set_ca in install returns quietly and the CA is never '
                   'published: decide() sees no leader where the relation is refused')
def test_review_set_ca_in_install_is_lost(make):
    drv = make(units=1, sign=False, settle=False)
    drv.schedule('drv/0', 'install', 'set_ca', [drv.ca.pem])
    drv.settle()
    outcome = [e for e in drv.log('drv/0', 'call')]
    assert outcome and 'error' not in outcome[0]
    assert app(drv).get(CA_KEY) == drv.ca.pem


def run_all_but(drv, down, rounds=6):
    """Run every queued hook of every unit but ``down`` (its agent is down)."""
    for _ in range(rounds):
        for unit in drv.model.units:
            if unit != down:
                drv.run_queued(unit)


@pytest.mark.xfail(strict=True, reason='_pending lists nothing while ca_next is published: one unit '
                   'that runs no hook holds phase 1 forever, and with it every renewal (the '
                   "leader's own included): certificates expire")
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
