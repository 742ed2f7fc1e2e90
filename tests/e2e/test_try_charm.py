"""``tox -e try`` (tests/try_charm.py) on the examples and on two broken
variants of examples/minimal, each built by charm-build.

Each example passes, with options it supports: minimal re-keys a unit
whose key file is deleted and renews 70 days later, tls-example rotates its
CA through ca-generation, easyrsa-example (whose leader never calls set_ca
and issues its own certificate without the relation) re-keys every unit
through key-generation. The variants fail with a clear last line:

* a signer that issues each certificate for a fresh key instead of the
  CSR's: set_cert refuses every certificate, so no unit gets one;
* units that ask for a certificate for a key they throw away: the layer
  delivers certificates it has every reason to accept, and only the tool's
  own check (is a key in the unit's files the certificate's key?) fails them.

And tls-example's emergency CA rotation fails on the handshakes the tool
runs after every hook of a rotation.
"""
import shutil

import pytest
import try_charm
from support.build import EXAMPLES, build_charm

# (example, units, the tool's options for it): three units where the time
# goes to one phase, two where it goes to a second (each costs ~0.5 s a hook).
PASSING = [
    ('minimal', 3, ['--rekey', '--advance-days', '70']),
    ('tls-example', 2, ['--rotate-ca', 'ca-generation=1']),
    ('easyrsa-example', 2, ['--rekey', 'key-generation=1']),
]
# (variant, the text in minimal.py it replaces, its replacement, the reason the tool gives)
FRESH_KEY = 'ec.generate_private_key(ec.SECP256R1())'
BROKEN = [
    ('wrong-key-signer',
     [('name(unit), csr.public_key(), ca_key', f'name(unit), {FRESH_KEY}.public_key(), ca_key')],
     'has no certificate'),
    ('key-thrown-away',
     [('tls.set_csr(csr_for(own_key()))', f'tls.set_csr(csr_for({FRESH_KEY}))'),
      ('if spki(x509.load_pem_x509_certificate(', 'if False and spki(x509.load_pem_x509_certificate(')],
     "no private key in its files is its certificate's key"),
]


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / 'e2e-build'


@pytest.mark.parametrize('example,units,options', PASSING, ids=[p[0] for p in PASSING])
def test_each_example_passes(example, units, options, workdir, tmp_path, capsys):
    charm = build_charm(workdir, example=example)
    status = try_charm.main([str(charm), '--units', str(units), '--keep', str(tmp_path), *options])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.splitlines()[-1] == f'OK: {units} units, every check passed'
    checks = 1 + len([o for o in options if o.startswith('--')])  # after deploying and each option
    assert out.count(': ok, TLSv1') == units * (units - 1) * checks, out
    if '--advance-days' in options:
        assert 'renewed: minimal/0, minimal/1, minimal/2' in out


@pytest.mark.parametrize('variant,patches,reason', BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_variant_of_minimal_fails(variant, patches, reason, workdir, tmp_path, capsys):
    layer = tmp_path / f'minimal-{variant}'
    shutil.copytree(str(EXAMPLES / 'minimal'), str(layer))
    module = layer / 'reactive' / 'minimal.py'
    code = module.read_text()
    for old, new in patches:
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    module.write_text(code)
    charm = build_charm(workdir, source=layer)

    status = try_charm.main([str(charm), '--units', '2', '--keep', str(tmp_path / 'run')])
    last = capsys.readouterr().out.splitlines()[-1]
    assert status == 1
    assert last.startswith('FAIL: minimal/0') and reason in last, last


def test_a_charm_it_cannot_try_is_refused_in_one_line(tmp_path, capsys):
    assert try_charm.main([str(tmp_path)]) == 2
    assert capsys.readouterr().out == f'FAIL: {tmp_path} is not a built charm: it has no metadata.yaml\n'


def test_an_option_the_charm_does_not_have_is_refused_before_deploying(workdir, tmp_path, capsys):
    charm = build_charm(workdir, example='minimal')
    assert try_charm.main([str(charm), '--keep', str(tmp_path), '--rotate-ca', 'ca-generation=1']) == 2
    assert capsys.readouterr().out.splitlines()[-1] == \
        'FAIL: ca-generation is not a config option of the charm (it has tls-dir)'
    assert not list(tmp_path.glob('*/unit-*')), 'it deployed'


def test_a_rotation_that_breaks_handshakes_fails(workdir, tmp_path, capsys):
    """tls-example's emergency rotation drops the old CA at once, so units
    that have their new certificate and units that have not yet cannot
    talk: the handshakes after each hook catch it, though every unit ends
    with a working certificate."""
    charm = build_charm(workdir, example='tls-example')
    status = try_charm.main([str(charm), '--units', '2', '--keep', str(tmp_path),
                             '--config', 'ca-emergency=true', '--rotate-ca', 'ca-generation=1'])
    out = capsys.readouterr().out
    assert status == 1
    assert out.splitlines()[-1].startswith('FAIL: --rotate-ca broke '), out.splitlines()[-1]
    assert 'mTLS tls-example/0 (as tls-example-0) <- tls-example/1: ok' in out.split('after --rotate-ca')[1]
