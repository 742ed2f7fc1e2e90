"""The PKI checks catch what they exist to catch.

End-to-end scenarios trust check_unit and mtls_handshake to tell a working
unit from a broken one, so each check is shown passing on good material and
failing on the specific fault it guards against.
"""
import datetime
import os

import pytest
from support.pki import (
    HandshakeError,
    check_unit,
    make_ca,
    make_csr,
    make_key,
    mtls_handshake,
    sign,
    unit_dir,
    utc_now,
    write_unit,
)

UNITS = ('app/0', 'app/1')


@pytest.fixture
def ca():
    return make_ca('app CA')


@pytest.fixture
def tls_dir(tmp_path, ca):
    """Two units laid out as the example charm leaves them."""
    for unit in UNITS:
        key = make_key()
        write_unit(tmp_path, unit, key, sign(ca, make_csr(key, unit)), ca.pem)
    return tmp_path


def test_unit_dir_replaces_slash(tmp_path):
    assert unit_dir(tmp_path, 'my-app/12') == tmp_path / 'my-app-12'


def test_check_unit_accepts_good_units(tls_dir, ca):
    for unit in UNITS:
        cert = check_unit(tls_dir, unit, ca.pem)
        assert cert.subject.rfc4514_string() == 'CN={}'.format(unit)
    # None means: trust the unit's own ca.pem.
    check_unit(tls_dir, 'app/0')


def test_check_unit_rejects_cert_for_another_key(tmp_path, ca):
    key = make_key()
    write_unit(tmp_path, 'app/0', key,
               sign(ca, make_csr(key, 'app/0'), public_key=make_key().public_key()), ca.pem)
    with pytest.raises(AssertionError, match='does not belong'):
        check_unit(tmp_path, 'app/0', ca.pem)


def test_check_unit_rejects_other_ca(tmp_path, ca):
    other = make_ca('app CA')  # same name, different key: only the signature tells
    key = make_key()
    write_unit(tmp_path, 'app/0', key, sign(other, make_csr(key, 'app/0')), ca.pem)
    with pytest.raises(AssertionError, match='not signed by the CA'):
        check_unit(tmp_path, 'app/0', ca.pem)


def test_check_unit_rejects_wrong_ca_file(tls_dir):
    with pytest.raises(AssertionError, match='ca.pem is not the expected CA'):
        check_unit(tls_dir, 'app/0', make_ca().pem)


def test_check_unit_rejects_expired(tmp_path, ca):
    key = make_key()
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=100)
    write_unit(tmp_path, 'app/0', key, sign(ca, make_csr(key, 'app/0'), not_before=long_ago),
               ca.pem)
    with pytest.raises(AssertionError, match='valid'):
        check_unit(tmp_path, 'app/0', ca.pem)


def test_check_unit_rejects_other_units_cert(tmp_path, ca):
    key = make_key()
    write_unit(tmp_path, 'app/1', key, sign(ca, make_csr(key, 'app/0')), ca.pem)
    with pytest.raises(AssertionError, match='CN'):
        check_unit(tmp_path, 'app/1', ca.pem)


def test_check_unit_rejects_readable_key(tls_dir, ca):
    os.chmod(str(unit_dir(tls_dir, 'app/0') / 'key.pem'), 0o644)
    with pytest.raises(AssertionError, match='mode 644'):
        check_unit(tls_dir, 'app/0', ca.pem)


def test_mtls_handshake_between_units(tls_dir):
    result = mtls_handshake(tls_dir, 'app/0', 'app/1')
    assert result['server'] == 'app/0'
    assert result['client'] == 'app/1'
    assert result['version'] in ('TLSv1.2', 'TLSv1.3')
    assert result['cipher']
    assert mtls_handshake(tls_dir, 'app/1', 'app/0', server_hostname='127.0.0.1')['server'] \
        == 'app/1'


@pytest.mark.parametrize('server,client', [('app/0', 'rogue/0'), ('rogue/0', 'app/0')])
def test_mtls_handshake_rejects_other_ca(tls_dir, server, client):
    """A unit whose cert (and trust) come from another CA is refused either way round."""
    other = make_ca('app CA')
    key = make_key()
    write_unit(tls_dir, 'rogue/0', key, sign(other, make_csr(key, 'rogue/0')), other.pem)
    with pytest.raises(HandshakeError):
        mtls_handshake(tls_dir, server, client, timeout=5)


def test_mtls_handshake_checks_hostname(tls_dir):
    with pytest.raises(HandshakeError, match='(?i)hostname|match'):
        mtls_handshake(tls_dir, 'app/0', 'app/1', server_hostname='db.example')


def days_from_now(days):
    return utc_now() + datetime.timedelta(days=days)


def test_mtls_handshake_at_a_simulated_time_checks_validity_then(tls_dir):
    """Certificates signed for 90 days: fine at day 80, refused at day 91
    although OpenSSL's real clock would still accept them."""
    assert mtls_handshake(tls_dir, 'app/0', 'app/1', at=days_from_now(80))['server'] == 'app/0'
    with pytest.raises(HandshakeError, match='app/0 \\(server\\): certificate valid'):
        mtls_handshake(tls_dir, 'app/0', 'app/1', at=days_from_now(91))
    with pytest.raises(HandshakeError, match='not at'):
        mtls_handshake(tls_dir, 'app/0', 'app/1', at=days_from_now(-1))


def test_mtls_handshake_at_a_simulated_time_needs_a_ca_valid_then(tmp_path):
    short = make_ca('app CA', days=30)
    for unit in UNITS:
        key = make_key()
        write_unit(tmp_path, unit, key, sign(short, make_csr(key, unit)), short.pem)
    mtls_handshake(tmp_path, 'app/0', 'app/1', at=days_from_now(29))
    with pytest.raises(HandshakeError, match='no CA that signed'):
        mtls_handshake(tmp_path, 'app/0', 'app/1', at=days_from_now(31))


def test_mtls_handshake_at_a_simulated_time_still_checks_the_chain(tls_dir):
    other = make_ca('app CA')
    key = make_key()
    write_unit(tls_dir, 'rogue/0', key, sign(other, make_csr(key, 'rogue/0')), other.pem)
    with pytest.raises(HandshakeError, match='(?i)verif'):
        mtls_handshake(tls_dir, 'app/0', 'rogue/0', timeout=5, at=days_from_now(1))
