"""The layer's PEM reading, called directly: no hooks, milliseconds a test.

``pem._normalize`` is what every value goes through, whichever way it
travels (``set_csr``, ``set_cert``, ``set_ca``, a peer's bag). The tables are
the ones tests/test_hostile.py sends through real hooks; here each is checked
against both kinds of value, plus the rules that are judgement calls
(docs/design.md, "What PEM the layer takes"): they are written down here first.
"""
import base64
import datetime

import pytest
from cryptography import x509
from support import pki
from test_hostile import MALFORMED, ODD_BUT_VALID, Material, armor, der

import pem

CSR = pem.CSR_LABEL
CERT = pem.CERT_LABEL


@pytest.fixture(scope='module')
def material():
    """{label: Material} for a CSR and for a certificate."""
    ca = pki.make_ca()
    key = pki.key_pem(pki.make_key())
    csr = pki.make_csr(pki.make_key(), 'app/1')
    return {CSR: Material(csr, ca.pem, key), CERT: Material(pki.sign(ca, csr), csr, key)}


@pytest.mark.parametrize('label', [CSR, CERT])
@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_malformed_is_refused(material, label, case):
    with pytest.raises(ValueError):
        pem._normalize(MALFORMED[case](material[label]), label, many=label == CERT)


@pytest.mark.parametrize('label', [CSR, CERT])
@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID))
def test_odd_but_valid_gives_the_normal_form(material, label, case):
    good = material[label].good
    assert pem._normalize(ODD_BUT_VALID[case](good), label) == good


def test_normal_form(material):
    """Blocks alone, the modern label, 64 columns, one trailing newline."""
    text = 'Explanation\r\n' + armor('NEW CERTIFICATE REQUEST', der(material[CSR].good), 76) + '\r\n\r\n'
    lines = pem._normalize(text, CSR).split('\n')
    assert lines[0] == '-----BEGIN CERTIFICATE REQUEST-----'
    assert lines[-2:] == ['-----END CERTIFICATE REQUEST-----', '']
    assert all(len(line) == 64 for line in lines[1:-3]) and 0 < len(lines[-3]) <= 64
    assert base64.b64decode(''.join(lines[1:-2])) == der(material[CSR].good)


def test_explanatory_text_between_the_blocks_of_a_chain(material):
    leaf, ca = material[CERT].good, pki.make_ca('intermediate').pem
    text = 'subject=CN = app/1\n' + leaf + 'Bag Attributes\n    friendlyName: x\n' + ca + 'the end'
    assert pem._normalize(text, CERT, many=True) == leaf + ca


@pytest.mark.parametrize('other', ['X509 CRL', 'TRUSTED CERTIFICATE', 'PUBLIC KEY', 'PKCS7'])
def test_a_block_of_another_kind_among_certificates_is_refused(material, other):
    """Another block is not explanatory text: a chain holding one is refused
    whole, naming it, rather than guessing which blocks were meant."""
    text = material[CERT].good + armor(other, der(material[CERT].good))
    with pytest.raises(ValueError, match=f'a PEM {other} block where CERTIFICATE is expected'):
        pem._normalize(text, CERT, many=True)


@pytest.mark.parametrize('where', ['before', 'after'])
def test_private_key_words_anywhere_are_refused(material, where):
    """Even outside a block: the text is a key file or came with one."""
    note = 'key: see the RSA PRIVATE KEY in key.pem\n'
    text = note + material[CSR].good if where == 'before' else material[CSR].good + note
    with pytest.raises(ValueError, match='private key'):
        pem._normalize(text, CSR)


def test_one_csr_only(material):
    with pytest.raises(ValueError, match='2 PEM blocks where exactly one CERTIFICATE REQUEST'):
        pem._normalize(material[CSR].good * 2, CSR)


def test_the_size_cap_counts_explanatory_text(material):
    good = material[CSR].good
    padded = good + 'x' * (pem.MAX_PEM_CHARS - len(good))
    assert pem._normalize(padded, CSR) == good
    with pytest.raises(ValueError, match='more than the'):
        pem._normalize(padded + 'x', CSR)


def test_the_digest_ignores_the_spelling(material):
    """A CSR re-sent with its text dump, CRLF and the legacy label is the
    same CSR: not a re-key, and its answers still bind to it."""
    good = material[CSR].good
    odd = 'Certificate Request:\r\n' + good.replace('\n', '\r\n').replace(' CERT', ' NEW CERT')
    assert pem.request(odd).digest == pem.request(good).digest


@pytest.mark.parametrize('value', [None, 42, b'-----BEGIN CERTIFICATE-----'])
def test_not_text_is_refused(value):
    with pytest.raises(ValueError, match='expected PEM text'):
        pem._normalize(value, CERT)


@pytest.mark.parametrize('start', ['1999-01-02T03:04:05', '2049-12-31T23:59:59', '2050-01-01T00:00:00',
                                   '2051-06-07T08:09:10'])
def test_validity_is_read_in_both_time_forms(material, start):
    """RFC 5280 4.1.2.5: UTCTime through 2049 (a two-digit year of 50 or
    more is 19YY), GeneralizedTime from 2050 on; cryptography writes both."""
    begins = datetime.datetime.fromisoformat(start).replace(tzinfo=datetime.timezone.utc)
    cert = pki.sign(pki.make_ca(), material[CSR].good, days=10, not_before=begins)
    ends = begins + datetime.timedelta(days=10)
    assert pem._validity(der(cert)) == (begins.timestamp(), ends.timestamp())


@pytest.mark.parametrize('case', ['no Z', 'letters for digits', 'a month 13'])
def test_a_validity_that_is_not_a_utc_time_is_refused(material, case):
    data = der(material[CERT].good)
    # The notBefore UTCTime's 13 characters, YYMMDDHHMMSSZ, found by value:
    # its tag and length alone may also occur in the random serial number.
    begins = x509.load_der_x509_certificate(data).not_valid_before_utc
    at = data.index(b'\x17\x0d' + begins.strftime('%y%m%d%H%M%SZ').encode()) + 2
    text = {'no Z': data[at:at + 12] + b'0', 'letters for digits': b'AB' + data[at + 2:at + 13],
            'a month 13': data[at:at + 2] + b'13' + data[at + 4:at + 13]}[case]
    with pytest.raises(ValueError, match='validity'):
        pem._normalize(armor(CERT, data[:at] + text + data[at + 13:]), CERT, many=True)
