"""interface:tls: the PEM and DER reader of peers.py, with nothing but the
standard library (charms carry no ``cryptography`` for an interface layer).

It reads PEM as RFC 7468 describes it and walks just enough DER to check a
CSR's or a certificate's structure and to find what the layer compares:
public keys, names, key identifiers, validity. docs/design.md ("What PEM the
layer takes") says what it takes and what it refuses, and why.
"""
import base64
import binascii
import calendar
import hashlib
import re
import textwrap
import time
from typing import NamedTuple, Optional, Tuple

CSR_LABEL = 'CERTIFICATE REQUEST'
CERT_LABEL = 'CERTIFICATE'
MAX_PEM_CHARS = 64 * 1024  # far above any real chain; no peer makes units parse megabytes

# PEM as RFC 7468 reads it: its line breaks, encapsulation boundaries and
# the labels that mean a CSR or a certificate (the legacy ones of section 5.1
# and 7, which keytool, certreq and older OpenSSL still write, included).
_LINE_BREAK = re.compile(r'\r\n|\r|\n')
_BOUNDARY = re.compile(r'-----(BEGIN|END) ([^\r\n]*?)-----')
_LABELS = {'CERTIFICATE REQUEST': CSR_LABEL, 'NEW CERTIFICATE REQUEST': CSR_LABEL,
           'CERTIFICATE': CERT_LABEL, 'X509 CERTIFICATE': CERT_LABEL,
           'X.509 CERTIFICATE': CERT_LABEL}
# Binary junk, never explanatory text: C0 controls but tab and line breaks.
_CONTROL = re.compile(r'[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]')
_DER_SEQUENCE = 0x30
_DER_INTEGER = 0x02
_DER_EXPLICIT_0 = 0xA0
_DER_UTC_TIME = 0x17
_DER_GENERALIZED_TIME = 0x18
_DER_OID = 0x06
_DER_EXPLICIT_3 = 0xA3
_DER_IMPLICIT_0 = 0x80
# DER object identifiers: id-ecPublicKey (RFC 5480), subjectKeyIdentifier,
# authorityKeyIdentifier and basicConstraints (RFC 5280).
_EC_PUBLIC_KEY = bytes.fromhex('06072a8648ce3d0201')
_SUBJECT_KEY_ID = bytes.fromhex('0603551d0e')
_AUTHORITY_KEY_ID = bytes.fromhex('0603551d23')
_BASIC_CONSTRAINTS = bytes.fromhex('0603551d13')
_DER_BOOLEAN = 0x01
_UNCOMPRESSED_POINT = 0x04


class Cert(NamedTuple):
    """What the layer compares of one certificate, read from its DER once."""
    der: bytes
    key: bytes  # SubjectPublicKeyInfo
    issuer: bytes
    subject: bytes
    not_before: float  # POSIX seconds
    not_after: float
    authority_key_id: Optional[bytes]
    subject_key_id: Optional[bytes]
    ca: Optional[bool]  # basicConstraints' cA, None without the extension

    def may_issue(self):
        """Whether it may be a CA: its basicConstraints says so, or, with
        none (X.509 v1, keytool's default), it is self-issued."""
        return self.ca or (self.ca is None and self.issuer == self.subject)


class Certificates(NamedTuple):
    """Certificate(s) as PEM in normal form, read once: the SHA-256 of
    their DER (what an acknowledgement names) and each one's fields, the
    leaf (or a bundle's first CA) first."""
    pem: str
    digest: str
    certs: Tuple[Cert, ...]

    def expiry(self):
        """notAfter of the leaf (or first CA), in POSIX seconds."""
        return self.certs[0].not_after

    def earliest_expiry(self):
        """The first notAfter of all of them: when a bundle stops working."""
        return min(cert.not_after for cert in self.certs)

    def lifetime_passed(self, now):
        """How much of the leaf's lifetime has passed at ``now``: 0 at
        notBefore, 1 at notAfter."""
        leaf = self.certs[0]
        return (now - leaf.not_before) / max(leaf.not_after - leaf.not_before, 1)

    def issued_under(self, ca):
        """Whether ``ca`` (Certificates) issued the leaf, or a certificate
        of the chain that follows the leaf and that it issued."""
        issued = self.certs[0]
        for _ in self.certs:  # up the chain, to one of the CA's certificates
            if any(issued_by(issued, issuer) for issuer in ca.certs):
                return True
            issued = next((cert for cert in self.certs[1:] if issued_by(issued, cert)), self.certs[0])
        return False


class Request(NamedTuple):
    """A CSR as PEM in normal form, read once: the SHA-256 of its DER
    (immune to line breaks, so re-encoding a CSR is not a re-key) and its
    public key, which the certificate answering it must carry."""
    pem: str
    digest: str
    key: bytes


def certificates(text):
    """``text`` read as one or more certificates; ValueError says why not."""
    ders = _pem_ders(text, CERT_LABEL, many=True)
    certs = []
    for der in ders:
        fields = _signed_fields(der, CERT_LABEL)
        certs.append(Cert(der, der[fields[-1][1]:fields[-1][3]], *_names(der), *_validity(der),
                          *_extensions(der)))
    return Certificates(_pem(CERT_LABEL, ders), _sha256(ders), tuple(certs))


def authorities(text):
    """``text`` read as CA certificate(s), each one that may issue
    (Cert.may_issue); ValueError says why not."""
    read = certificates(text)
    if not all(cert.may_issue() for cert in read.certs):
        raise ValueError('a certificate in it is not a CA certificate: its basicConstraints do not say '
                         'CA, or it has none and is not self-signed')
    return read


def request(text):
    """``text`` read as exactly one CSR; ValueError says why not."""
    ders = _pem_ders(text, CSR_LABEL)
    return Request(_pem(CSR_LABEL, ders), _sha256(ders), _public_key(ders[0], CSR_LABEL))


def issued_by(leaf, ca):
    """Whether ``leaf`` (a Cert) names ``ca`` (a Cert) as its issuer: the
    issuer is the CA's subject and, where both have one, the authority key
    identifier the CA's subject key identifier (a new CA may keep the name)."""
    authority, subject = leaf.authority_key_id, ca.subject_key_id
    return leaf.issuer == ca.subject and not (authority and subject and authority != subject)


def _sha256(ders):
    return hashlib.sha256(b''.join(ders)).hexdigest()


def _normalize(text, label, many=False):
    """Validate ``text`` as PEM of ``label`` blocks and return it in one
    canonical form (64-column base64, one trailing newline)."""
    return _pem(label, _pem_ders(text, label, many))


def _pem(label, ders):
    return ''.join('-----BEGIN {0}-----\n{1}\n-----END {0}-----\n'.format(
        label, '\n'.join(textwrap.wrap(base64.b64encode(der).decode('ascii'), 64))) for der in ders)


def _pem_ders(text, label, many=False):
    """The DER of each ``label`` block in ``text``; ValueError says what is
    wrong.

    Read as RFC 7468 says, since tools write it so (docs/design.md, "What PEM the
    layer takes"): text around blocks is explanation (easy-rsa's dumps,
    pkcs12's Bag Attributes), CRLF ends lines, legacy labels count. Refused:
    private keys anywhere; a block of another kind (guessing which was meant
    is how a wrong certificate gets in); unpaired boundaries; bad DER."""
    if not isinstance(text, str):
        raise ValueError(f'expected PEM text, got {type(text).__name__}')
    if len(text) > MAX_PEM_CHARS:
        raise ValueError(f'{len(text)} characters, more than the {MAX_PEM_CHARS} allowed')
    if 'PRIVATE KEY' in text:
        raise ValueError('it contains a private key, which must never leave its unit')
    if _CONTROL.search(text):
        raise ValueError('it contains control characters')
    blocks = _pem_blocks(text)
    if not blocks:
        raise ValueError(f'no PEM {label} block')
    if len(blocks) > 1 and not many:
        raise ValueError(f'{len(blocks)} PEM blocks where exactly one {label} is expected')
    ders = []
    for found, body in blocks:
        if _LABELS.get(found) != label:
            raise ValueError(f'a PEM {found} block where {label} is expected')
        try:
            der = base64.b64decode(''.join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f'the {label} block is not valid base64') from None
        _signed_fields(der, label)
        if label == CERT_LABEL:
            _validity(der)
        else:
            _check_csr_key(der)
        ders.append(der)
    return ders


def _pem_blocks(text):
    """(label, base64 body) of each PEM block in ``text``, skipping the
    text around them. A boundary must be a line of its own; one anywhere
    else, or left open, means the text is not PEM, not that it explains."""
    blocks, label, body = [], None, []
    for number, line in enumerate(_LINE_BREAK.split(text), 1):
        boundary = _BOUNDARY.fullmatch(line.strip(' \t'))
        if boundary is None:
            if '-----BEGIN' in line or '-----END' in line:
                raise ValueError(f'line {number}: a PEM boundary that is not a line of its own')
            if label is not None:
                body.append(line)
        elif label is None and boundary.group(1) == 'BEGIN':
            label, body = boundary.group(2), []
        elif label is not None and boundary.groups() == ('END', label):
            blocks.append((label, ''.join(body)))
            label = None
        else:
            raise ValueError(f'line {number}: -----{boundary.group(1)} {boundary.group(2)}----- '
                             f'does not pair up with the line before it')
    if label is not None:
        raise ValueError(f'the PEM {label} block has no END line')
    return blocks


def _public_key(der, label):
    """The DER SubjectPublicKeyInfo of a CSR or certificate: what binds a
    certificate to its CSR."""
    _, head, _, tail = _signed_fields(der, label)[-1]
    return der[head:tail]


def _check_csr_key(der):
    """ValueError for an EC key in an encoding a CA does not echo back: a
    compressed point, or explicit curve parameters. The CA writes the key
    uncompressed with its curve's name, and a certificate whose key is not
    the CSR's, byte for byte, is refused: the CSR has to be refused first."""
    _, _, start, end = _signed_fields(der, CSR_LABEL)[-1]
    parts = _der_children(der, start, end)
    algorithm = _der_children(der, *parts[0][2:]) if parts and parts[0][0] == _DER_SEQUENCE else []
    if not algorithm or der[algorithm[0][1]:algorithm[0][3]] != _EC_PUBLIC_KEY:
        return
    if len(algorithm) != 2 or algorithm[1][0] != _DER_OID:
        raise ValueError('its EC key has explicit curve parameters, which a CA replaces by the '
                         "curve's name: make the CSR from a key of a named curve")
    point = der[parts[-1][2] + 1:parts[-1][3]]
    if not point or point[0] != _UNCOMPRESSED_POINT:
        raise ValueError('its EC key is a compressed point, which a CA writes uncompressed: '
                         'make the CSR from a key in uncompressed form')


def _extensions(der):
    """(authority key identifier, subject key identifier, CA) of a DER
    certificate: each identifier None where it has none (or an unreadable
    one); CA True or False as its basicConstraints says (False where that
    is unreadable), None without it. An unreadable extension costs only
    what it would have said."""
    values = {}
    try:
        _, _, start, end = _der_children(der, *_der_element(der, 0, len(der))[1:])[0]
        for tag, _, first, last in _der_children(der, start, end):
            if tag == _DER_EXPLICIT_3:
                _, _, first, last = _der_children(der, first, last)[0]
                for _, _, begin, stop in _der_children(der, first, last):
                    parts = _der_children(der, begin, stop)
                    values[der[parts[0][1]:parts[0][3]]] = parts[-1][2:]
    except (ValueError, IndexError):
        return None, None, False

    def read(oid, take, unreadable=None):
        """``take`` of the DER element extension ``oid`` holds."""
        if oid not in values:
            return None
        try:
            return take(_der_children(der, *values[oid])[0])
        except (ValueError, IndexError):
            return unreadable
    return (read(_AUTHORITY_KEY_ID, lambda e: next((der[s:x] for tag, _, s, x in _der_children(der, *e[2:])
                                                    if tag == _DER_IMPLICIT_0), None)),
            read(_SUBJECT_KEY_ID, lambda e: der[e[2]:e[3]]),
            read(_BASIC_CONSTRAINTS, lambda e: _ca_flag(der, e), unreadable=False))


def _ca_flag(der, element):
    """basicConstraints' cA: its first field, a BOOLEAN, true (DEFAULT FALSE)."""
    fields = _der_children(der, *element[2:])[:1]
    return bool(fields) and fields[0][0] == _DER_BOOLEAN and der[fields[0][2]:fields[0][3]] != b'\x00'


def _validity(der):
    """(notBefore, notAfter) of a DER certificate, in POSIX seconds."""
    _, _, start, end = _signed_fields(der, CERT_LABEL)[3]
    times = _der_children(der, start, end)
    if len(times) != 2:
        raise ValueError('the certificate has no validity period')
    return tuple(_der_time(der, element) for element in times)


def _names(der):
    """The DER issuer and subject of a DER certificate."""
    fields = _signed_fields(der, CERT_LABEL)
    return tuple(der[head:tail] for _, head, _, tail in (fields[2], fields[4]))


def _signed_fields(der, label):
    """(tag, element start, value start, value end) of the fields of the
    signed part of a CSR or certificate, up to its public key. Walking just
    enough ASN.1 to find them checks the structure (a truncated or foreign
    blob fails here)."""
    kind = 'certificate request' if label == CSR_LABEL else 'certificate'
    tag, start, end = _der_element(der, 0, len(der))
    outer = _der_children(der, start, end) if tag == _DER_SEQUENCE and end == len(der) else []
    if len(outer) != 3 or outer[0][0] != _DER_SEQUENCE:
        raise ValueError(f'the DER is not a {kind}')
    fields = _der_children(der, outer[0][2], outer[0][3])
    if label == CSR_LABEL:
        expected = [_DER_INTEGER, _DER_SEQUENCE, _DER_SEQUENCE]
    else:
        if fields and fields[0][0] == _DER_EXPLICIT_0:
            fields = fields[1:]
        # serial, signature algorithm, issuer, validity, subject, key
        expected = [_DER_INTEGER] + [_DER_SEQUENCE] * 5
    if [field[0] for field in fields[:len(expected)]] != expected:
        raise ValueError(f'the DER is not a {kind}')
    return fields[:len(expected)]


def _der_time(der, element):
    """A DER UTCTime or GeneralizedTime in POSIX seconds; RFC 5280 allows
    only the forms that end in Z, to the second."""
    tag, _, start, end = element
    text = der[start:end].decode('ascii', 'replace')
    if tag == _DER_UTC_TIME and len(text) == 13:
        text = ('19' if text[:2] >= '50' else '20') + text
    elif tag != _DER_GENERALIZED_TIME or len(text) != 15:
        raise ValueError('the certificate validity is not a time in UTC')
    try:
        return calendar.timegm(time.strptime(text, '%Y%m%d%H%M%SZ'))
    except ValueError:
        raise ValueError('the certificate validity is not a time in UTC') from None


def _der_children(der, start, end):
    """(tag, element start, value start, value end) of each DER element in the range."""
    children = []
    while start < end:
        tag, value_start, value_end = _der_element(der, start, end)
        children.append((tag, start, value_start, value_end))
        start = value_end
    return children


def _der_element(der, start, end):
    if start + 2 > end:
        raise ValueError('truncated DER')
    tag, length = der[start], der[start + 1]
    start += 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 4 or start + size > end:
            raise ValueError('bad DER length')
        length = int.from_bytes(der[start:start + size], 'big')
        start += size
    if start + length > end:
        raise ValueError('truncated DER')
    return tag, start, start + length

