"""The smallest consumer of interface:tls that is safe to copy; every helper is here.

Each unit keeps its key in <tls-dir>/<app>-<n>/key.pem (0600) and sends only a CSR. The
leader keeps a CA in leader settings (readable by every unit, as in tls-example: a real
charm keeps the key in a secret store) and names each certificate after the unit the
layer pairs the CSR with, never after what the CSR asks for: it uses only the CSR's key.
"""
import datetime
import ipaddress
import os
import time
from pathlib import Path

from charmhelpers.core import hookenv
from charms.reactive import when
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


@when('create certificate signing request')
def request_certificate(tls):
    tls.set_csr(csr_for(own_key()))
    hookenv.status_set('waiting', 'waiting for a certificate from the leader')


@when('sign certificate signing request')
def sign_requests(tls):
    if not hookenv.is_leader():
        return
    ca_key, ca_cert = leader_ca()
    tls.set_ca(text(ca_cert))  # the same CA again is a no-op
    for unit, csr_pem in tls.get_csr_map().items():
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        if not csr.is_signature_valid:  # refused, not left pending: its unit is told why
            tls.refuse_csr(unit, 'its signature does not verify')
            continue
        sans = [x509.DNSName(unit.replace('/', '-')), x509.DNSName('localhost'),
                x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]
        try:
            tls.set_cert(unit, text(issue(name(unit), csr.public_key(), ca_key, ca_cert, sans)))
        except ValueError as error:  # one bad answer must not hold up the others
            hookenv.log(f'not signing the CSR of {unit}: {error}', hookenv.WARNING)


@when('certificate signing request refused')
def refused(tls):  # the operator decides: a new key (delete key.pem) makes a new CSR
    hookenv.status_set('blocked', 'the leader refused this unit\'s CSR: ' + tls.get_refusal())


@when('signed certificate available')
def install_certificate(tls):
    cert_pem, key = tls.get_signed_cert(), own_key()  # leaf first, then any chain
    if spki(x509.load_pem_x509_certificate(cert_pem.encode()).public_key()) != spki(
            key.public_key()):  # key.pem was replaced: ask for a certificate for the new key
        return tls.set_csr(csr_for(key))
    write(unit_dir() / 'cert.pem', cert_pem)
    if tls.get_ca() is None:  # a leader that never calls set_ca: there is nothing to trust
        return hookenv.status_set('blocked', 'certificate installed, but no CA to trust')
    hookenv.status_set('active', 'certificate valid until ' + tls.get_signed_cert_expiry())


@when('ca certificate available')  # again on each change of the CAs to trust, certificate or not
def install_ca(tls):
    write(unit_dir() / 'ca.pem', tls.get_ca())


def own_key():
    path = unit_dir() / 'key.pem'
    if not path.exists():
        write(path, secret(ec.generate_private_key(ec.SECP256R1())), mode=0o600)
    return serialization.load_pem_private_key(path.read_bytes(), None)


def csr_for(key):
    """Made once per key: ECDSA signs differently each time, and a new CSR is a re-key."""
    path = unit_dir() / 'csr.pem'
    if not (path.exists() and spki(x509.load_pem_x509_csr(path.read_bytes()).public_key())
            == spki(key.public_key())):
        builder = x509.CertificateSigningRequestBuilder().subject_name(name(hookenv.local_unit()))
        write(path, text(builder.sign(key, hashes.SHA256())))
    return path.read_text()


def leader_ca():
    ca = hookenv.leader_get()
    if not (ca.get('ca-key') and ca.get('ca-cert')):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(name(hookenv.service_name() + ' CA'), key.public_key(), key, None)
        ca = {'ca-key': secret(key), 'ca-cert': text(cert)}
        hookenv.leader_set(ca)
    return (serialization.load_pem_private_key(ca['ca-key'].encode(), None),
            x509.load_pem_x509_certificate(ca['ca-cert'].encode()))


def issue(subject, public_key, ca_key, ca_cert, sans=None):
    """A 90-day server+client certificate naming ``sans``; a 10-year CA without them."""
    now = datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).public_key(public_key)
               .issuer_name(ca_cert.subject if ca_cert else subject)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))  # peers' clocks lag
               .not_valid_after(now + datetime.timedelta(days=3650 if sans is None else 90))
               .add_extension(x509.BasicConstraints(ca=sans is None, path_length=0 if sans is None
                                                    else None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if sans is None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    return builder.sign(ca_key, hashes.SHA256())


def unit_dir():
    udir = Path(hookenv.config('tls-dir')) / hookenv.local_unit().replace('/', '-')
    udir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return udir


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def text(cert_or_csr):
    return cert_or_csr.public_bytes(PEM).decode()


def secret(key):
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def write(path, content, mode=0o644):
    """Atomically, with ``mode`` from the start; an unchanged file is left alone."""
    if path.exists() and path.read_text() == content:
        return
    tmp = path.with_name(path.name + '.tmp')
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), 'w') as f:
        f.write(content)
    os.replace(str(tmp), str(path))
