"""Demo (``tox -e demo``): three units of the example charm get day-long
certificates from their leader, then two of them complete a mutual-TLS
handshake; then 17 simulated hours pass and the layer renews every
certificate; then the CA is rotated. During the renewal and the rotation,
every two units complete mutual TLS after every hook, at the hooks' time.

It builds examples/tls-example with charm-build, deploys three units on
jujusim with real hook processes, prints what every hook did, then proves the
result with the same checks as the end-to-end tests. It prints the result
first (what was shown, and whether every check passed), then the details: the
timeline and the checks. The output is stable from run to run (keys are
random, so values are described, not printed; only the total wall time and
the certificates' expiry date vary) so that two runs can be diffed. Exits 1
if any check fails. ``--keep DIR`` builds and deploys in DIR and leaves it
there: the built charm, and each unit's charm directory and TLS files.
"""
import argparse
import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

from cryptography import x509

# Run as a script, without pytest's conftest.py: make tests/ and the
# checkout (peers.py) importable as it does.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
# charms.reactive 1.5.3 imports pkg_resources, which warns on import; it is
# the framework's, nothing the demo shows.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

from support import pki  # noqa: E402
from support.build import build_charm  # noqa: E402
from support.deployment import Deployment  # noqa: E402

from peers import CERT_AVAILABLE, CREATE_CSR, SIGN_CSR  # noqa: E402

UNITS = 3
LIFETIME_HOURS = 24  # the example's certificate-hours: renewed from hour 16 on
LATER_HOURS = LIFETIME_HOURS * 2 // 3 + 1  # when the demo runs update-status again
LAYER_STATES = (CREATE_CSR, SIGN_CSR, CERT_AVAILABLE)
LOUD = ('WARNING', 'ERROR', 'CRITICAL')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--keep', metavar='DIR', type=Path,
                        help='build and deploy in DIR and keep everything there')
    args = parser.parse_args(argv)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = str(args.keep.resolve())
        else:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix='tls-demo-'))
        print('Building examples/tls-example with charm-build (interface:tls = this checkout), '
              f'then deploying {UNITS} units on jujusim ...', flush=True)
        details = io.StringIO()
        with contextlib.redirect_stdout(details):
            problems, records, app = play(workdir)
    calls = sum(sum(r.calls.values()) for r in records)
    print(summary(app, records, problems))
    print(f'{len(records)} hooks, {calls} hook tool calls; '
          f'wall time {time.monotonic() - started:.1f} s')
    if args.keep:
        print(f'Kept in {workdir}:\n  the built charm  {app.charm}\n'
              f'  the units        {app.model.workdir}/unit-*/charm\n'
              f'  their TLS files  {app.tls_dir}/')
    print('\nDetails\n\n' + details.getvalue(), end='')
    return 1 if problems else 0


def play(workdir):
    """Build, deploy, renew and rotate in ``workdir``, printing the details;
    return (problems, hook records, the deployment)."""
    charm = build_charm(workdir)
    print(f'Deploying {UNITS} units on jujusim: every hook is a process running the built '
          'charm;\nonly the hook tools (relation-get, leader-set ...) are simulated.\n')
    app = Deployment(charm, 'tls', workdir)
    app.charm = charm
    with app.model:
        app.model.set_config(**{'certificate-hours': LIFETIME_HOURS})
        app.deploy(UNITS)
        records = app.records()
        print_timeline(records, app.model.leader)
        problems = prove(app, records)
        for step in (renew, rotate):
            app.begin()
            problems += step(app)
            records += app.records()
    return problems, records, app


def summary(app, records, problems):
    """What the demo showed, and whether every check passed: the result first."""
    pairs = UNITS * (UNITS - 1)
    lines = [
        f'\nResult: {"FAILED" if problems else "all checks passed"}',
        f'  - {UNITS} units of the example charm each got a certificate for their own key, '
        "signed by the leader's CA, and two of them completed mutual TLS",
        f'  - {LATER_HOURS} simulated hours later the layer had every '
        f'certificate renewed; {pairs} handshakes after every hook',
        f'  - the CA was rotated; {pairs} handshakes after every hook, none broken',
        f'  - {sum(not r.ok for r in records)} hooks failed',
    ]
    if problems:
        lines.append('\nWhat failed:\n' + '\n'.join('  ' + p for p in problems))
    return '\n'.join(lines) + '\n'


def print_timeline(records, leader):
    print(f'Timeline ({leader} is the leader; values are described, not shown)')
    digests = {}  # CSR digest -> unit, to name what a <unit>_csr_sha256 refers to
    had_cert = set()  # units whose certificate is available
    for r in records:
        remote = f'  (remote {r.remote})' if r.remote else ''
        if r.app_change:
            remote = '  (the application bag changed)'
        status = '' if r.ok else '  FAILED'
        print(f'{r.seq:3}  {r.unit:14} {r.hook}{remote}{status}')
        states = [s for s in LAYER_STATES if s in r.flags]
        print(f'       states     {", ".join(states) or "-"}')
        if CERT_AVAILABLE in r.flags and r.unit not in had_cert:
            had_cert.add(r.unit)
            print(f"       delivered  {r.unit}'s certificate, now in its unitdata")
        for key, value in r.relation_written.items():
            if key == 'csr' and value:
                digests[pki.csr_digest(value)] = r.unit
        for label, written in (('unit bag', r.relation_written), ('app bag', r.app_written),
                               ('leader', r.leader_written)):
            if written:
                print(f'       {label:10} ' + '\n                  '.join(
                    f'{key} = {describe(value, digests)}' for key, value in sorted(written.items())))


def describe(value, digests):
    """A stable, short description of a relation or leader settings value."""
    if value is None:
        return '(deleted)'
    if 'PRIVATE KEY' in value:
        return '<private key, not shown>'
    if value.startswith('-----BEGIN CERTIFICATE REQUEST'):
        csr = x509.load_pem_x509_csr(value.encode())
        return f'<CSR for {csr.subject.rfc4514_string()}>'
    if value.startswith('-----BEGIN CERTIFICATE'):
        cert = x509.load_pem_x509_certificate(value.encode())
        if cert.subject == cert.issuer:
            return f'<CA certificate {cert.subject.rfc4514_string()}>'
        return f'<certificate for {cert.subject.rfc4514_string()}, ' \
               f'issued by {cert.issuer.rfc4514_string()}>'
    if value in digests:
        return f"<SHA-256 of {digests[value]}'s CSR>"
    return value if len(value) <= 40 else value[:37] + '...'


def prove(app, records):
    """Print each unit's certificate and an mTLS handshake; return what failed."""
    model, tls_dir = app.model, app.tls_dir
    problems = [f'{r.unit} {r.hook} failed:\n{r.error}' for r in records if not r.ok]
    problems += [f'{r.unit} {r.hook} logged {level}: {message}'
                 for r in records for level, message in r.logs if level in LOUD]
    ca = model.leader_settings['ca-cert']
    print('\nCertificates (each checked: matches the unit\'s key.pem, chains to the CA in '
          'leader settings, names the unit)')
    certs = {}
    for unit in model.units:
        try:
            cert = certs[unit] = pki.check_unit(tls_dir, unit, ca_pem=ca)
        except AssertionError as error:
            problems.append(str(error))
            continue
        if CERT_AVAILABLE not in model.flags(unit):
            problems.append(f'{unit}: {CERT_AVAILABLE!r} is not raised')
        hours = (pki.validity(cert)[1] - pki.validity(cert)[0]).total_seconds() / 3600
        print(f'  {unit}{" (leader)" if unit == model.leader else ""}\n'
              f'    subject  {cert.subject.rfc4514_string()}\n'
              f'    SANs     {", ".join(str(name) for name in pki.sans(cert))}\n'
              f'    issuer   {cert.issuer.rfc4514_string()}\n'
              f'    expiry   {pki.validity(cert)[1]:%Y-%m-%d %H:%M} UTC ({hours:.0f} hours, '
              'backdated 5 minutes)\n'
              '    key      cert.pem matches key.pem: yes')
    try:
        app.check_relation_data(certs, ca=ca)
    except AssertionError as error:
        problems.append(f'the relation data is not as the layer documents it: {error}')
    else:
        print("\nRelation data: each unit's bag holds its CSR and nothing else of the layer's; "
              'the application\nbag holds the CA and each certificate above with the SHA-256 '
              'of the CSR it answers')
    server, client = model.leader, model.units[-1]
    print(f'\nMutual TLS on 127.0.0.1: {server} serves, {client} connects; each side presents '
          'its certificate\nand trusts only its own ca.pem; the client checks the host name')
    try:
        result = app.handshake(server, client)
    except (pki.HandshakeError, OSError) as error:  # OSError: files missing or unusable
        problems.append(f'mTLS {server} <- {client}: {error!r}')
    else:
        print(f'  {result["version"]}, cipher {result["cipher"]}\n'
              f'  server presented {result["server"]}, client presented {result["client"]}')
        if (result['server'], result['client']) != (server, client):
            problems.append(f'handshake peers are {result}, expected {server} and {client}')
    return problems


def renew(app):
    """Let 17 of the certificates' 24 hours pass, then run update-status on
    every unit and what follows, hook by hook; return what failed."""
    model = app.model
    held = app.certificates()
    model.advance_clock(hours=LATER_HOURS)
    print(f'\nRenewal: {LATER_HOURS} simulated hours later (past two thirds of {LIFETIME_HOURS} hours), '
          'update-status runs\non every unit; after every hook, every unit serves every other '
          'over mutual TLS')
    for unit in model.units:
        model.queue(unit, 'update-status')
    problems = run_with_handshakes(app)
    renewed = app.certificates()
    for unit in model.units:
        try:
            cert = pki.check_unit(app.tls_dir, unit, now=app.now())
        except AssertionError as error:
            problems.append(f'after the renewal: {error}')
            continue
        if renewed[unit] == held[unit]:
            problems.append(f'{unit}: its certificate was not renewed')
        print(f'  {unit:14} renewed, valid until {pki.validity(cert)[1]:%Y-%m-%d %H:%M} UTC')
    return problems


def rotate(app):
    """Bump ca-generation and run the rotation hook by hook, with mutual TLS
    between every two units after each; return what failed."""
    model = app.model
    print('\nCA rotation (juju config tls-example ca-generation=1): after every hook, every '
          'unit serves\nevery other over mutual TLS with the files it has')
    model.set_config(**{'ca-generation': model.config['ca-generation'] + 1})
    problems = run_with_handshakes(app)
    try:
        app.check_relation_data(app.certificates(), ca=model.leader_settings['ca-cert'])
        for unit in model.units:
            pki.check_unit(app.tls_dir, unit, now=app.now())
            ca_pem = (pki.unit_dir(app.tls_dir, unit) / 'ca.pem').read_text()
            assert ca_pem == model.leader_settings['ca-cert'], f'{unit} still trusts the old CA'
    except AssertionError as error:
        problems.append(f'after the rotation: {error}')
    else:
        print('  every unit now holds a certificate from the new CA, and the old CA is retired from '
              'every ca.pem')
    return problems


def run_with_handshakes(app):
    """Run the queued hooks one by one; after each, every unit serves every
    other over mutual TLS at the hooks' time. Return what failed."""
    model = app.model
    problems = []
    while model.pending():
        record = model.run(model.pending()[0][0])
        if record is None:
            continue
        failed = []
        for server in model.units:
            for client in model.units:
                if server != client:
                    try:
                        app.handshake(server, client)
                    except (pki.HandshakeError, OSError):
                        failed.append(f'{client}->{server}')
        pairs = len(model.units) * (len(model.units) - 1)
        print(f'  {record.unit:14} {record.hook:26} {pairs - len(failed)}/{pairs} handshakes')
        problems += [f'after {record.unit} {record.hook}: mTLS {pair} failed' for pair in failed]
        problems += [f'{record.unit} {record.hook} failed:\n{record.error}'] if not record.ok else []
    return problems


if __name__ == '__main__':
    sys.exit(main())
