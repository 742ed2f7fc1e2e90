"""Proof that a unit ended up with working TLS material, and in-memory PKI fixtures.

End-to-end scenarios end with these checks rather than by comparing strings:
a unit is done when the files it wrote form a key/certificate pair signed by
the application's CA and naming the unit, and when two units can actually
complete a mutual-TLS handshake with them. The fixture helpers make CAs,
keys, CSRs and certificates in memory for unit tests of the layer.
"""
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections import namedtuple
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HANDSHAKE_TIMEOUT = 10.0  # seconds, for every blocking step of a handshake
X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL's x509_vfy.h; the ssl module has no name for it

CA = namedtuple('CA', 'key cert pem')


class HandshakeError(AssertionError):
    """The mutual-TLS handshake failed; the message says on which side and why."""


# --- checks on what a unit wrote -------------------------------------------

def unit_dir(tls_dir, unit):
    """Where the example charm keeps a unit's files: unit name with / -> -."""
    return Path(tls_dir) / unit.replace('/', '-')


def check_unit(tls_dir, unit, ca_pem=None, now=None):
    """Assert that a unit's key.pem/cert.pem are a valid pair from the CA; return the cert.

    ``ca_pem`` is the CA the test expects (the leader's); None trusts the
    unit's own ca.pem. When the unit has a ca.pem it must be that CA, since
    the unit verifies its peers with it.
    """
    udir = unit_dir(tls_dir, unit)
    key_path, cert_path, ca_path = udir / 'key.pem', udir / 'cert.pem', udir / 'ca.pem'
    for path in (key_path, cert_path):
        assert path.is_file(), '{}: {} missing'.format(unit, path)
    mode = stat.S_IMODE(key_path.stat().st_mode)
    assert mode & 0o077 == 0, '{}: key.pem is mode {:o}, readable by others'.format(unit, mode)

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert public_der(cert.public_key()) == public_der(key.public_key()), \
        '{}: cert.pem does not belong to key.pem'.format(unit)

    if ca_pem is None:
        assert ca_path.is_file(), '{}: no CA given and no ca.pem'.format(unit)
        ca_pem = ca_path.read_bytes()
    ca = _load_cert(ca_pem)
    if ca_path.is_file():
        assert x509.load_pem_x509_certificate(ca_path.read_bytes()) == ca, \
            '{}: ca.pem is not the expected CA'.format(unit)
    assert cert.issuer == ca.subject, '{}: issued by {}, not {}'.format(
        unit, cert.issuer.rfc4514_string(), ca.subject.rfc4514_string())
    assert verify_signature(ca, cert), '{}: cert.pem is not signed by the CA'.format(unit)

    now = now or utc_now()
    before, after = validity(cert)
    assert before <= now <= after, '{}: valid {} .. {}, now is {}'.format(
        unit, before, after, now)

    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    assert cns == [unit], '{}: subject CN is {}'.format(unit, cns)
    dns = sans(cert, x509.DNSName)
    assert unit.replace('/', '-') in dns, '{}: SANs {} do not name it'.format(unit, dns)
    return cert


def mtls_handshake(tls_dir, server_unit, client_unit, server_hostname='localhost',
                   timeout=HANDSHAKE_TIMEOUT, at=None):
    """Run a real mutual-TLS exchange between two units' files on 127.0.0.1.

    The server requires a client certificate, the client checks the server's
    host name, and each side trusts only its own ca.pem: exactly what two
    peers of a deployed application would do. Returns the peer subjects, TLS
    version and cipher; raises HandshakeError (with both sides' errors) when
    any step fails. Every blocking step is bounded by ``timeout``.

    ``at`` (a datetime) runs the exchange at a simulated time: OpenSSL, which
    only knows the real clock, checks chains, signatures and names, and
    ``_check_times`` then checks each side's validity and that of the CA
    that issued it at ``at``, as OpenSSL would have then.
    """
    sdir, cdir = unit_dir(tls_dir, server_unit), unit_dir(tls_dir, client_unit)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_cert_chain(str(sdir / 'cert.pem'), str(sdir / 'key.pem'))
    server_ctx.load_verify_locations(cafile=str(sdir / 'ca.pem'))

    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    client_ctx.load_cert_chain(str(cdir / 'cert.pem'), str(cdir / 'key.pem'))
    client_ctx.load_verify_locations(cafile=str(cdir / 'ca.pem'))
    if at is not None:
        for ctx in (server_ctx, client_ctx):
            ctx.verify_flags |= X509_V_FLAG_NO_CHECK_TIME

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.settimeout(timeout)
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    server = {}

    def serve():
        """Accept one client, check it, answer 'pong' to its 'ping'."""
        try:
            conn, _ = listener.accept()
            conn.settimeout(timeout)
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                server['peer'] = _subject_cn(tls.getpeercert())
                server['der'] = tls.getpeercert(binary_form=True)
                if _recv_exactly(tls, 4) == b'ping':
                    tls.sendall(b'pong')
        except Exception as exc:  # reported to the caller, with the client's
            server['error'] = exc

    thread = threading.Thread(target=serve, name='mtls-server', daemon=True)
    thread.start()
    client = {}
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=timeout) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                tls.sendall(b'ping')
                # With TLS 1.3 the server judges the client certificate after
                # the client's handshake is done: only this read tells.
                reply = _recv_exactly(tls, 4)
                client.update(peer=_subject_cn(tls.getpeercert()), version=tls.version(),
                              cipher=tls.cipher()[0], reply=reply,
                              der=tls.getpeercert(binary_form=True))
    except Exception as exc:
        client['error'] = exc
    finally:
        thread.join(timeout)
        listener.close()
    if thread.is_alive():
        server.setdefault('error', TimeoutError('server thread still running'))
    if 'error' in client or 'error' in server or client.get('reply') != b'pong':
        raise HandshakeError('mTLS {} (server) <- {} (client) failed: client: {!r}; '
                             'server: {!r}'.format(server_unit, client_unit,
                                                   client.get('error', client.get('reply')),
                                                   server.get('error')))
    if at is not None:
        _check_times(at, client['der'], cdir / 'ca.pem', f'{server_unit} (server)')
        _check_times(at, server['der'], sdir / 'ca.pem', f'{client_unit} (client)')
    return {'server': client['peer'], 'client': server['peer'],
            'version': client['version'], 'cipher': client['cipher']}


def _check_times(at, peer_der, ca_path, who):
    """Raise HandshakeError unless the certificate a side presented, and a CA
    of the verifier's bundle that signed it, are both valid at ``at``."""
    cert = x509.load_der_x509_certificate(peer_der)
    before, after = validity(cert)
    if not before <= at <= after:
        raise HandshakeError(f'{who}: certificate valid {before} .. {after}, not at {at}')
    issuers = [ca for ca in x509.load_pem_x509_certificates(ca_path.read_bytes())
               if ca.subject == cert.issuer and verify_signature(ca, cert)]
    if not any(validity(ca)[0] <= at <= validity(ca)[1] for ca in issuers):
        raise HandshakeError(f'{who}: no CA that signed its certificate is valid at {at}')


# --- small certificate helpers ----------------------------------------------

def public_der(public_key):
    """Canonical bytes of a public key, for comparing keys."""
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def csr_digest(csr_pem):
    """Hex SHA-256 of a PEM CSR's DER, as the leader publishes it in
    ``<unit>_csr_sha256``; None if the text is not a CSR. The tests' one
    way to compute it, independent of the layer's."""
    try:
        csr = x509.load_pem_x509_csr((csr_pem or '').encode())
    except ValueError:
        return None
    return hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()


def cert_der(pem):
    """DER of a PEM certificate; None if the text is not one."""
    try:
        return x509.load_pem_x509_certificate((pem or '').encode()).public_bytes(
            serialization.Encoding.DER)
    except ValueError:
        return None


def bundle_ders(pem):
    """DER of each certificate in PEM text holding one or more (None for a
    block that is not a certificate)."""
    end = '-----END CERTIFICATE-----'
    return [cert_der(block + end) for block in (pem or '').split(end) if block.strip()]


def trusts(bundle, cert):
    """Whether PEM ``cert`` verifies with one of the CAs in PEM ``bundle``
    (TLS peers check the signature, not only the issuer's name)."""
    leaf = _load_cert(cert)
    return any(verify_signature(x509.load_der_x509_certificate(der), leaf)
               for der in bundle_ders(bundle) if der)


def ca_digest(pem):
    """What names a CA bundle in the layer's messages and in ``ca_ack``: hex
    SHA-256 of its certificates' DER, in order; None unless every block is a
    certificate."""
    ders = bundle_ders(pem)
    return hashlib.sha256(b''.join(ders)).hexdigest() if ders and None not in ders else None


def ca_ack(from_pem, to_pem, rotation=2):
    """What a unit acknowledges a rotation in round ``rotation`` (the
    application bag's ``ca_round``: 1 from the first CA, so 2 for the first
    rotation), from one CA bundle to another, with (``ca_ack``): the
    number, then both digests, the issuing CA's first."""
    return f'{rotation}:{ca_digest(from_pem)}:{ca_digest(to_pem)}'


def public_key(pem):
    """The SubjectPublicKeyInfo DER of a PEM certificate or CSR; None if it is neither."""
    data = (pem or '').encode()
    try:
        loaded = (x509.load_pem_x509_csr(data) if b'CERTIFICATE REQUEST' in data
                  else x509.load_pem_x509_certificate(data))
    except ValueError:
        return None
    return public_der(loaded.public_key())


def verify_signature(ca_cert, cert):
    """Whether cert's signature verifies with the CA certificate's public key."""
    ca_key = ca_cert.public_key()
    try:
        if isinstance(ca_key, ec.EllipticCurvePublicKey):
            ca_key.verify(cert.signature, cert.tbs_certificate_bytes,
                          ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(ca_key, rsa.RSAPublicKey):
            ca_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                          cert.signature_hash_algorithm)
        else:
            ca_key.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        return False
    return True


def validity(cert):
    """(not before, not after) as aware UTC datetimes on any cryptography >= 3."""
    if hasattr(cert, 'not_valid_before_utc'):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return (cert.not_valid_before.replace(tzinfo=datetime.timezone.utc),
            cert.not_valid_after.replace(tzinfo=datetime.timezone.utc))


def sans(cert_or_csr, kind=None):
    """The SAN values (all, or only of one GeneralName kind); [] if none."""
    try:
        ext = cert_or_csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [n.value for n in ext.value if kind is None or isinstance(n, kind)]


def _load_cert(pem):
    """A certificate from PEM text, bytes, or an already loaded certificate."""
    if isinstance(pem, x509.Certificate):
        return pem
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def _subject_cn(peercert):
    """commonName from ssl's getpeercert() dict."""
    for rdn in peercert.get('subject', ()):
        for key, value in rdn:
            if key == 'commonName':
                return value
    return None


def _recv_exactly(tls, n):
    """Read n bytes (fewer only at EOF)."""
    data = b''
    while len(data) < n:
        chunk = tls.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# --- in-memory fixtures ------------------------------------------------------

def make_key():
    """An EC P-256 private key, as the example charm makes."""
    return ec.generate_private_key(ec.SECP256R1())


def openssl_ec_csr(unit, encoding):
    """A CSR for a new P-256 key, made by the openssl CLI from the key
    written by ``openssl ec`` in ``encoding``: 'compressed' (``-conv_form
    compressed``: the point compressed) or 'explicit' (``-param_enc
    explicit``: the curve's parameters instead of its name)."""
    option = {'compressed': ['-conv_form', 'compressed'], 'explicit': ['-param_enc', 'explicit']}[encoding]
    with tempfile.TemporaryDirectory() as tmp:
        named, key = os.path.join(tmp, 'named.pem'), os.path.join(tmp, 'key.pem')
        for argv in (['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', named],
                     ['ec', '-in', named, *option, '-out', key]):
            subprocess.run(['openssl', *argv], check=True, capture_output=True)
        subject = '/CN=' + unit.replace('/', '\\/')
        return subprocess.run(['openssl', 'req', '-new', '-key', key, '-subj', subject],
                              check=True, capture_output=True, text=True).stdout


def key_pem(key):
    """Unencrypted PKCS#8 PEM text of a private key."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def utc_now():
    """Now, from time.time() as the layer reads it, so that a test that sets
    the clock (conftest's ``clock``) makes certificates in its time."""
    return datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc)


def make_ca(name='test CA', key=None, days=3650, issuer=None):
    """A CA (basicConstraints CA=true) as CA(key, cert, pem): self-signed,
    or an intermediate issued by ``issuer`` (a CA), naming its key."""
    key = key or make_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = utc_now()
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=False, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=True,
                   crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if issuer:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return CA(key, cert, _pem(cert))


def unit_sans(unit, extra=()):
    """The SANs the example charm asks for: <app>-<n>, localhost, 127.0.0.1 (+extra)."""
    names = [x509.DNSName(unit.replace('/', '-')), x509.DNSName('localhost'),
             x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]
    for extra_name in extra:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(extra_name)))
        except ValueError:
            names.append(x509.DNSName(extra_name))
    return names


def make_csr(key, unit, names=None):
    """PEM CSR with CN=unit and the example charm's SANs (or ``names``)."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unit)]))
           .add_extension(x509.SubjectAlternativeName(
               unit_sans(unit) if names is None else names), critical=False)
           .sign(key, hashes.SHA256()))
    return _pem(csr)


def broken_signature_csr(unit):
    """A well-formed PEM CSR for ``unit`` whose signature does not verify
    (its last byte changed): one no CA can sign."""
    der = bytearray(x509.load_pem_x509_csr(make_csr(make_key(), unit).encode()).public_bytes(
        serialization.Encoding.DER))
    der[-1] ^= 1
    csr = x509.load_der_x509_csr(bytes(der))
    assert not csr.is_signature_valid
    return _pem(csr)


def sign(ca, csr, days=90, not_before=None, public_key=None, aki=True):
    """PEM certificate for a CSR (PEM or object), server+client like the
    example's leader issues, but with the subject and SANs copied from the
    CSR (the example takes them from the unit name, never the CSR). Tests
    make bad certificates with ``public_key`` (a key other than the CSR's),
    ``not_before`` and ``days`` (expired or not yet valid); without ``aki``
    the certificate names its issuer by name alone, as ``openssl x509
    -req`` with no extension file and many small signers do.
    """
    if isinstance(csr, (str, bytes)):
        csr = x509.load_pem_x509_csr(csr.encode() if isinstance(csr, str) else csr)
    start = not_before or (utc_now() - datetime.timedelta(minutes=5))
    builder = (x509.CertificateBuilder()
               .subject_name(csr.subject).issuer_name(ca.cert.subject)
               .public_key(public_key or csr.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False))
    if aki:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.key.public_key()), critical=False)
    names = _san_objects(csr)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _pem(builder.sign(ca.key, hashes.SHA256()))


def write_unit(tls_dir, unit, key, cert_pem, ca_pem):
    """Lay out a unit's files as the example charm does (key.pem mode 0600)."""
    udir = unit_dir(tls_dir, unit)
    udir.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(udir / 'key.pem'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(key_pem(key))
    (udir / 'cert.pem').write_text(cert_pem)
    (udir / 'ca.pem').write_text(ca_pem)
    return udir


def _san_objects(csr):
    """The CSR's SAN GeneralName objects, or []."""
    try:
        return list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _pem(obj):
    """PEM text of a certificate or CSR."""
    return obj.public_bytes(serialization.Encoding.PEM).decode()
