"""Example use of the tls interface layer: peers get certificates from their leader.

The interface layer only carries certificate signing requests (CSRs) and
certificates between the units. This charm layer does the cryptography:

* every unit makes its own private key, which never leaves the unit, and
  publishes a CSR for it;
* the leader keeps a small certificate authority (CA) and answers each CSR
  with a certificate for the unit the layer says it is from: the subject and
  names come from that unit name, only the public key from the CSR;
* every unit writes key.pem, cert.pem and ca.pem into its own directory,
  ``<tls-dir>/<unit name with / replaced by ->/``.

All state lives in files, unit data and leader settings, never in module
globals: handlers run once per hook in a fresh process, and test harnesses may
run the hooks of many units in one process.
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

# Backdate certificates a little so peers whose clocks lag still accept them.
CLOCK_SKEW = datetime.timedelta(minutes=5)


# --- handlers ---------------------------------------------------------------

@when('create certificate signing request')
def create_csr(tls):
    """Publish a CSR for this unit's key (making the key on first use)."""
    publish_csr(tls, rekey=False)
    hookenv.status_set('waiting', 'waiting for a certificate from the leader')


@when('sign certificate signing request')
def sign_csrs(tls):
    """Leader: answer every waiting CSR, its own included, from the shared CA."""
    if not hookenv.is_leader():  # the layer raises this on the leader only
        return
    ca_key, ca_cert = ensure_ca()
    # Publishing an unchanged CA is a no-op; after a leader change this is
    # the same CA as before, because it lives in leader settings.
    give_ca(tls, ca_cert)
    for unit, csr_pem in tls.get_csr_map().items():
        try:
            cert = issue_certificate(ca_key, ca_cert, unit, csr_pem)
        except ValueError as err:
            # Refused, not left pending (which would re-run this handler in
            # every hook): the layer tells the unit why.
            tls.refuse_csr(unit, str(err))
            continue
        tls.set_cert(unit, pem(cert))


@when('certificate signing request refused')
def csr_refused(tls):
    """The leader refused this unit's CSR. Asking again with the same key
    would only be refused again, so the unit waits for its operator: a new
    key-generation makes a new key and CSR (install_certificate does that
    only for a unit that has a certificate)."""
    hookenv.status_set('blocked', 'CSR refused by the leader ({}); change key-generation '
                       'for a new key'.format(tls.get_refusal()))
    if read_generation(unit_dir()) != hookenv.config('key-generation'):
        publish_csr(tls, rekey=True)


@when('signed certificate available')
def publish_current_ca(tls):
    """Leader: keep the CA of the current ca-generation published.

    Bumping ca-generation makes ensure_ca() create a new CA; giving it to
    the layer starts a rotation, after which the layer asks for every
    certificate again, under the new CA.
    """
    if hookenv.is_leader():
        give_ca(tls, ensure_ca()[1])


def give_ca(tls, ca_cert):
    """Give the layer the CA to issue under. With ca-emergency set, a new
    CA replaces the old one at once instead of in a rotation (the old key
    is compromised): handshakes between units fail until each has its new
    certificate."""
    tls.set_ca(pem(ca_cert), emergency=hookenv.config('ca-emergency'))


@when('signed certificate available')
def install_certificate(tls):
    """Write cert.pem/ca.pem for the key they belong to, or re-key first.

    This state stays raised, so the handler runs in every hook, including
    config-changed: that is where a new key-generation is noticed.
    """
    cert_pem = tls.get_signed_cert()
    if not cert_pem:
        return
    udir = unit_dir()
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key_file = key_file_for(udir, cert)
    if key_file == udir / 'key.pem' and (udir / 'key.pem.next').exists():
        # A re-key whose hook failed: files are not rolled back with the
        # hook, so its new key and CSR are on disk but were never published.
        publish_csr(tls, rekey=False)
        return
    if read_generation(udir) != hookenv.config('key-generation') or key_file is None:
        # A new CSR makes the layer clear this state until its certificate
        # arrives; meanwhile key.pem and cert.pem stay a working pair.
        publish_csr(tls, rekey=True)
        return
    if key_file.name == 'key.pem.next':
        # The certificate for a re-key arrived: the new key goes live with it.
        os.replace(str(key_file), str(udir / 'key.pem'))
    write_if_changed(udir / 'cert.pem', pem(cert))
    ca_pem = tls.get_ca()
    if ca_pem:
        write_if_changed(udir / 'ca.pem', ca_pem)
    hookenv.status_set('active', 'certificate valid until {:%Y-%m-%d}'.format(
        not_after(cert)))


@when('ca certificate available')
def install_ca(tls):
    """Write ca.pem whenever the CAs to trust change, with or without a
    certificate: a unit between a re-key and its answer must trust a new
    CA before its peers present certificates from it."""
    write_if_changed(unit_dir() / 'ca.pem', tls.get_ca())


# --- unit side: key and CSR -------------------------------------------------

def unit_dir():
    """This unit's directory; unit names contain '/', so it becomes '-'."""
    udir = Path(hookenv.config('tls-dir')) / hookenv.local_unit().replace('/', '-')
    udir.mkdir(parents=True, exist_ok=True)
    return udir


def publish_csr(tls, rekey):
    """Send a CSR for the unit's newest key, reusing the stored CSR if still right.

    Reusing matters: ECDSA signatures are randomised, so a freshly made CSR
    always differs, and the layer treats a different CSR as a request for a
    new certificate.
    """
    udir = unit_dir()
    generation = hookenv.config('key-generation')
    key = read_key(udir / 'key.pem.next') or read_key(udir / 'key.pem')
    if key is None or rekey or read_generation(udir) != generation:
        key = ec.generate_private_key(ec.SECP256R1())
        # The first key goes live at once; a re-key waits in key.pem.next so
        # that key.pem keeps matching cert.pem until the new certificate comes.
        key_path = udir / ('key.pem.next' if (udir / 'key.pem').exists() else 'key.pem')
        write_private(key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode())
        write_if_changed(udir / 'key-generation', str(generation))
    names = wanted_names()
    csr_path = udir / 'csr.pem'
    csr = None
    if csr_path.exists():
        csr = x509.load_pem_x509_csr(csr_path.read_bytes())
        if not (same_key(csr.public_key(), key.public_key())
                and set(san_list(csr)) == set(names)):
            csr = None
    if csr is None:
        unit = hookenv.local_unit()
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unit)]))
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .sign(key, hashes.SHA256()))
        write_if_changed(csr_path, pem(csr))
    tls.set_csr(pem(csr))


def wanted_names():
    """SANs this unit asks for: unit_names() and its private address. The
    leader grants unit_names() only (see issue_certificate)."""
    names = unit_names(hookenv.local_unit())
    address = hookenv.unit_private_ip()
    if address:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:  # some providers give a host name
            names.append(x509.DNSName(address))
    # Deduplicate but keep the order, so a rebuilt CSR does not churn.
    return list(dict.fromkeys(names))


def key_file_for(udir, cert):
    """Which of this unit's key files the certificate belongs to (or None)."""
    for name in ('key.pem', 'key.pem.next'):
        key = read_key(udir / name)
        if key is not None and same_key(key.public_key(), cert.public_key()):
            return udir / name
    return None


# --- leader side: the CA ----------------------------------------------------

def ensure_ca():
    """Load the CA from leader settings, making it on first use.

    Leader settings survive a change of leader, so a new leader signs with the
    same CA and existing certificates stay valid. Beware: leader settings are
    readable by every unit of the application, so every unit could read this
    CA key. A real charm might keep it in a secrets store (Juju secrets, Vault).
    """
    settings = hookenv.leader_get()
    key_pem, cert_pem = settings.get('ca-key'), settings.get('ca-cert')
    generation = str(hookenv.config('ca-generation'))
    if key_pem and cert_pem and settings.get('ca-generation') == generation:
        return (serialization.load_pem_private_key(key_pem.encode(), password=None),
                x509.load_pem_x509_certificate(cert_pem.encode()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, '{} CA'.format(hookenv.local_unit().split('/')[0]))])
    now = utcnow()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    hookenv.leader_set({
        'ca-key': key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        'ca-cert': pem(cert),
        'ca-generation': generation,
    })
    return key, cert


def issue_certificate(ca_key, ca_cert, unit, csr_pem):
    """A server+client certificate for ``unit``, valid for certificate-hours.

    ``unit`` is the name the layer pairs the CSR with: Juju's name of the
    unit whose relation bag holds it. The subject (CN=<unit>) and the SANs
    (unit_names) come from it; of the CSR only the public key is used. A
    unit can put any name in its CSR, and its peers would trust a
    certificate naming another unit just as they trust that unit.
    """
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    if not csr.is_signature_valid:
        raise ValueError('CSR signature does not verify')
    now = utcnow()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unit)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(csr.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - CLOCK_SKEW)
               .not_valid_after(now + datetime.timedelta(
                   hours=hookenv.config('certificate-hours')))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False)
               .add_extension(x509.SubjectAlternativeName(unit_names(unit)), critical=False))
    return builder.sign(ca_key, hashes.SHA256())


def unit_names(unit):
    """The SANs of ``unit``'s certificate, all from its name: <app>-<n>
    (a unit name with / replaced by -), localhost and 127.0.0.1.

    No address: the leader knows a peer's address only from that peer's
    relation bag, which the peer itself can rewrite.
    """
    return [x509.DNSName(unit.replace('/', '-')),
            x509.DNSName('localhost'),
            x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]


# --- small helpers ----------------------------------------------------------

def utcnow():
    """Timezone-aware now; certificate validity is in UTC. From time.time(),
    the clock the layer reads, so a test that moves it moves both."""
    return datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc)


def not_after(cert):
    """Expiry date, on cryptography versions before and after the _utc API."""
    return getattr(cert, 'not_valid_after_utc', None) or cert.not_valid_after


def pem(obj):
    """PEM text of a certificate or CSR."""
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def san_list(csr_or_cert):
    """The subjectAltName entries, or [] when there are none."""
    try:
        ext = csr_or_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value)


def same_key(a, b):
    """Whether two public keys are the same key."""
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def read_key(path):
    """The private key in path, or None if there is no such file."""
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        return None


def read_generation(udir):
    """The key-generation the unit's newest key was made for (None if unknown)."""
    try:
        return int((udir / 'key-generation').read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_private(path, text):
    """Write a secret atomically, readable by its owner only from the start."""
    tmp = path.with_name(path.name + '.tmp')
    if tmp.exists():
        tmp.unlink()
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(str(tmp), str(path))


def write_if_changed(path, text):
    """Atomically write text unless the file already holds it.

    A trailing newline is normalised first, so PEM that differs only there
    does not count as a change (and does not restart services watching it).
    """
    text = text.rstrip('\n') + '\n'
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(str(tmp), str(path))
    return True
