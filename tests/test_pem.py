"""The layer's PEM reading, called directly: no hooks, milliseconds a test.

``peers._normalize`` is what every value goes through, whichever way it
travels (``set_csr``, ``set_cert``, ``set_ca``, a peer's bag). The tables are
the ones tests/test_hostile.py sends through real hooks; here each is checked
against both kinds of value, plus the rules that are judgement calls
(README, "Wire format"): they are written down here first.
"""
import base64

import pytest
from e2e import pki
from test_hostile import MALFORMED, ODD_BUT_VALID, Material, armor, der

import peers

CSR = peers.CSR_LABEL
CERT = peers.CERT_LABEL


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
        peers._normalize(MALFORMED[case](material[label]), label, many=label == CERT)


@pytest.mark.parametrize('label', [CSR, CERT])
@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID))
def test_odd_but_valid_gives_the_normal_form(material, label, case):
    good = material[label].good
    assert peers._normalize(ODD_BUT_VALID[case](good), label) == good


def test_normal_form(material):
    """Blocks alone, the modern label, 64 columns, one trailing newline."""
    pem = 'Explanation\r\n' + armor('NEW CERTIFICATE REQUEST', der(material[CSR].good), 76) + '\r\n\r\n'
    lines = peers._normalize(pem, CSR).split('\n')
    assert lines[0] == '-----BEGIN CERTIFICATE REQUEST-----'
    assert lines[-2:] == ['-----END CERTIFICATE REQUEST-----', '']
    assert all(len(line) == 64 for line in lines[1:-3]) and 0 < len(lines[-3]) <= 64
    assert base64.b64decode(''.join(lines[1:-2])) == der(material[CSR].good)


def test_explanatory_text_between_the_blocks_of_a_chain(material):
    leaf, ca = material[CERT].good, pki.make_ca('intermediate').pem
    text = 'subject=CN = app/1\n' + leaf + 'Bag Attributes\n    friendlyName: x\n' + ca + 'the end'
    assert peers._normalize(text, CERT, many=True) == leaf + ca


@pytest.mark.parametrize('other', ['X509 CRL', 'TRUSTED CERTIFICATE', 'PUBLIC KEY', 'PKCS7'])
def test_a_block_of_another_kind_among_certificates_is_refused(material, other):
    """Another block is not explanatory text: a chain holding one is refused
    whole, naming it, rather than guessing which blocks were meant."""
    text = material[CERT].good + armor(other, der(material[CERT].good))
    with pytest.raises(ValueError, match=f'a PEM {other} block where CERTIFICATE is expected'):
        peers._normalize(text, CERT, many=True)


@pytest.mark.parametrize('where', ['before', 'after'])
def test_private_key_words_anywhere_are_refused(material, where):
    """Even outside a block: the text is a key file or came with one."""
    note = 'key: see the RSA PRIVATE KEY in key.pem\n'
    text = note + material[CSR].good if where == 'before' else material[CSR].good + note
    with pytest.raises(ValueError, match='private key'):
        peers._normalize(text, CSR)


def test_one_csr_only(material):
    with pytest.raises(ValueError, match='2 PEM blocks where exactly one CERTIFICATE REQUEST'):
        peers._normalize(material[CSR].good * 2, CSR)


def test_the_size_cap_counts_explanatory_text(material):
    good = material[CSR].good
    padded = good + 'x' * (peers.MAX_PEM_CHARS - len(good))
    assert peers._normalize(padded, CSR) == good
    with pytest.raises(ValueError, match='more than the'):
        peers._normalize(padded + 'x', CSR)


def test_the_digest_ignores_the_spelling(material):
    """A CSR re-sent with its text dump, CRLF and the legacy label is the
    same CSR: not a re-key, and its answers still bind to it."""
    good = material[CSR].good
    odd = 'Certificate Request:\r\n' + good.replace('\n', '\r\n').replace(' CERT', ' NEW CERT')
    assert peers._digest(odd) == peers._digest(good)


@pytest.mark.parametrize('value', [None, 42, b'-----BEGIN CERTIFICATE-----'])
def test_not_text_is_refused(value):
    with pytest.raises(ValueError, match='expected PEM text'):
        peers._normalize(value, CERT)
