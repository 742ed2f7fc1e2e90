"""Build the example layers into charms with charm-tools, offline, once per session.

End-to-end tests deploy what a charm author would deploy: an example layer
(``examples/<name>``: tls-example by default, or easyrsa-example) built by
``charm-build`` with this checkout as ``interface:tls``. So the build itself
is under test too: that charm-build finds the interface locally, that
interface.yaml keeps tests and tooling out of the charm, and that
charm-proof has nothing to complain about.

Builds are cached per (example, relation name, digest of every input),
because a test session asks for the same charm many times and must not
rebuild it each time.
The cache lives in ``$TLS_EXAMPLE_BUILD_CACHE`` when set (to share it between
sessions), else in ``<workdir>/charm-builds``.
"""
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / 'examples'
DEFAULT_EXAMPLE = 'tls-example'
CACHE_ENV = 'TLS_EXAMPLE_BUILD_CACHE'
BUILD_TIMEOUT = 300  # seconds; a build takes well under one

# Variables that would make charm-build look for layers or interfaces
# somewhere other than the directory we give it.
_FOREIGN_ENV = ('CHARM_LAYERS_DIR', 'LAYER_PATH', 'INTERFACE_PATH',
                'CHARM_INTERFACES_DIR', 'JUJU_REPOSITORY', 'CHARM_BUILD_DIR')
# Never inputs of a build: VCS data and caches that tools drop in the tree.
_NOT_INPUTS = {'.git', '.tox', '.pytest_cache', '.ruff_cache', '.hypothesis',
               '__pycache__', '.venv', 'venv', 'build'}

log = logging.getLogger(__name__)


class BuildError(RuntimeError):
    """charm-build or charm-proof failed; the message carries their output."""


def build_charm(workdir, relation_name='tls', strict=True, example=DEFAULT_EXAMPLE, source=None):
    """Return the directory of the built charm of ``examples/<example>``,
    or of the layer in directory ``source`` (a variant a test made; its
    directory name stands for ``example`` in the cache key).

    ``relation_name`` renames the peer relation in metadata.yaml, proving the
    layer does not depend on its relation being called ``tls``. With
    ``strict`` (the default) any charm-proof warning fails the build: the
    examples are clean, so a warning is a regression. Errors always fail.
    """
    layer = Path(source).resolve() if source else EXAMPLES / example
    example = layer.name
    charm_name = _charm_name(layer)
    cache_root = Path(os.environ.get(CACHE_ENV) or Path(workdir) / 'charm-builds').resolve()
    if cache_root == REPO or REPO in cache_root.parents:
        # interface:tls is the checkout itself, so charm-build would copy
        # earlier builds kept inside it into hooks/relations/tls/.
        raise ValueError('build cache {} must be outside the repository'.format(cache_root))
    digest = source_digest(relation_name, example, extra=layer if source else None)
    key = '{}-{}-{}'.format(example, relation_name, digest[:16])
    final = cache_root / key
    charm = final / charm_name
    if (final / 'build.json').exists():
        return charm

    cache_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix='.build-{}-'.format(key), dir=str(cache_root)))
    try:
        result = _build(scratch, layer, charm_name, relation_name, strict)
        try:
            # Atomic publish: a concurrent session either sees nothing or a
            # finished build, and the loser of a race just drops its copy.
            os.rename(str(result), str(final))
        except OSError:
            if not (final / 'build.json').exists():
                raise
    finally:
        shutil.rmtree(str(scratch), ignore_errors=True)
    return charm


def build_info(charm_dir):
    """What was recorded about a build: seconds taken, proof output, command."""
    return json.loads((Path(charm_dir).parent / 'build.json').read_text())


def source_digest(relation_name, example=DEFAULT_EXAMPLE, extra=None):
    """SHA-256 over every input of a build (and the layer in directory
    ``extra``, when it is not one of the examples).

    Deliberately broad (the whole checkout but VCS data and caches, this
    module included) so a cached charm is never stale; a spurious rebuild
    costs about a second.
    """
    h = hashlib.sha256()
    h.update('example={}\nrelation={}\n'.format(example, relation_name).encode())
    h.update('charm-tools={}\n'.format(_charm_tools_version()).encode())
    for top in (REPO, Path(extra)) if extra else (REPO,):
        _digest_tree(h, top)
    return h.hexdigest()


def _digest_tree(h, top):
    """Feed the files under ``top`` (paths relative to it) into the hash ``h``."""
    for root, dirs, files in os.walk(str(top)):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_INPUTS)
        for name in sorted(files):
            if name.endswith('.pyc'):
                continue
            path = Path(root) / name
            rel = path.relative_to(top).as_posix()
            h.update(rel.encode() + b'\0')
            if path.is_symlink():
                h.update(b'link:' + os.readlink(str(path)).encode())
            else:
                h.update(str(path.stat().st_mode & 0o111).encode())
                h.update(path.read_bytes())
            h.update(b'\0')


def _build(scratch, source, charm_name, relation_name, strict):
    """Run charm-build and charm-proof on a copy of the layer ``source`` in
    scratch; return the result dir."""
    layer = scratch / 'layers' / charm_name
    shutil.copytree(str(source), str(layer),
                    ignore=shutil.ignore_patterns(*_NOT_INPUTS, '*.pyc'))
    if relation_name != 'tls':
        _rename_relation(layer / 'metadata.yaml', relation_name)

    interfaces = scratch / 'interfaces'
    interfaces.mkdir()
    (interfaces / 'tls').symlink_to(REPO, target_is_directory=True)

    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env['CHARM_INTERFACES_DIR'] = str(interfaces)
    result = scratch / 'result'
    result.mkdir()
    out = scratch / 'out'
    cmd = [_tool('charm-build'), '--hide-metrics', '-C', str(scratch / 'cache'),
           '-o', str(out), str(layer)]
    started = time.monotonic()
    build = _run(cmd, env, cwd=scratch)
    seconds = round(time.monotonic() - started, 2)
    charm = out / charm_name
    # charm-build exits with charm-proof's code: 100 means warnings only.
    if build.returncode not in ((0,) if strict else (0, 100)) or not charm.is_dir():
        raise BuildError('charm-build exited {}:\n{}'.format(build.returncode, build.stdout))

    proof = _run([_tool('charm-proof'), str(charm)], env, cwd=scratch)
    findings = [line.strip() for line in proof.stdout.splitlines()
                if line.strip()[:2] in ('E:', 'W:')]
    errors = [f for f in findings if f.startswith('E:')]
    if errors or (strict and findings) or proof.returncode >= (100 if strict else 200):
        raise BuildError('charm-proof on {} exited {}:\n{}'.format(
            charm, proof.returncode, proof.stdout))

    shutil.move(str(charm), str(result / charm_name))
    info = {'seconds': seconds, 'command': cmd, 'charm': charm_name,
            'relation_name': relation_name,
            'charm_build_output': build.stdout, 'proof_output': proof.stdout}
    (result / 'build.json').write_text(json.dumps(info, indent=2))
    log.info('built %s (relation %s) in %.2fs', charm_name, relation_name, seconds)
    return result


def _charm_name(layer):
    """The charm's name from the layer's metadata.yaml: charm-build writes
    the charm to a directory of that name."""
    if not (layer / 'metadata.yaml').is_file():
        raise ValueError('{} is not an example layer: it has no metadata.yaml'.format(layer))
    return yaml.safe_load((layer / 'metadata.yaml').read_text())['name']


def _rename_relation(metadata, relation_name):
    """Rename the tls peer relation, keeping its definition."""
    meta = yaml.safe_load(metadata.read_text())
    meta['peers'] = {relation_name: meta['peers'].pop('tls')}
    metadata.write_text(yaml.safe_dump(meta, sort_keys=False))


def _run(cmd, env, cwd):
    """Run a charm-tools command with its output merged, never hanging."""
    try:
        return subprocess.run(cmd, env=env, cwd=str(cwd), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=BUILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildError('{} timed out after {}s:\n{}'.format(
            cmd[0], BUILD_TIMEOUT, exc.output)) from exc


def _tool(name):
    """A charm-tools command: the one next to this Python first, then PATH.

    Next to sys.executable comes first so a venv's charm-tools is used even
    when the venv is not activated.
    """
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise BuildError('{} not found: pip install charm-tools (see tests/requirements.txt)'
                         .format(name))
    return found


def _charm_tools_version():
    """Installed charm-tools version, part of the cache key."""
    try:
        from importlib.metadata import version
        return version('charm-tools')
    except Exception:  # not installed: the build reports it
        return 'unknown'
