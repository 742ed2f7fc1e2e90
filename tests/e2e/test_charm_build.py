"""The example charms build offline with this checkout as interface:tls.

Checks what a deployed charm relies on: every hook Juju will run exists and is
executable, the interface module is this repository's peers.py byte for byte,
and nothing but the interface's runtime files reaches hooks/relations/tls/.
"""
import os

import pytest
import yaml
from support.build import REPO, build_charm, build_info

STANDARD_HOOKS = ('install', 'config-changed', 'start', 'update-status', 'leader-elected',
                  'leader-settings-changed', 'upgrade-charm')
RELATION_HOOKS = ('created', 'joined', 'changed', 'departed')
# Repository content that must never be copied into a charm.
NOT_SHIPPED = ('tests', 'examples', 'benchmarks', 'docs', 'CONTRIBUTING.md', '.ci', '.git',
               '.gitignore', 'tox.ini', '.pytest_cache', '.tox', '__pycache__')


# (example, relation name): tls-example also under another relation name.
BUILDS = [('tls-example', 'tls'), ('tls-example', 'cluster'), ('easyrsa-example', 'tls'),
          ('minimal', 'tls')]


@pytest.fixture(scope='module', params=BUILDS, ids=['-'.join(b) for b in BUILDS])
def built(request, tmp_path_factory):
    """(relation name, built charm dir); one build per example and name per session."""
    example, relation = request.param
    workdir = tmp_path_factory.getbasetemp() / 'e2e-build'
    return relation, build_charm(workdir, relation_name=relation, example=example)


def test_hooks_present_and_executable(built):
    rel, charm = built
    hooks = list(STANDARD_HOOKS) + ['{}-relation-{}'.format(rel, h) for h in RELATION_HOOKS]
    for hook in hooks:
        path = charm / 'hooks' / hook
        assert path.is_file(), hook
        assert os.access(str(path), os.X_OK), hook
        assert 'charms.reactive import main' in path.read_text(), hook
        compile(path.read_text(), str(path), 'exec')


def test_metadata_names_the_relation(built):
    rel, charm = built
    meta = yaml.safe_load((charm / 'metadata.yaml').read_text())
    assert meta['peers'] == {rel: {'interface': 'tls'}}


def test_interface_is_this_checkout(built):
    _, charm = built
    iface = charm / 'hooks' / 'relations' / 'tls'
    assert (iface / 'peers.py').read_bytes() == (REPO / 'peers.py').read_bytes()
    assert (iface / '__init__.py').is_file()
    shipped = {p.relative_to(iface).parts[0] for p in iface.rglob('*')}
    assert not shipped & set(NOT_SHIPPED), sorted(shipped)


def test_reactive_module_compiles(built):
    _, charm = built
    meta = yaml.safe_load((charm / 'metadata.yaml').read_text())
    module = charm / 'reactive' / '{}.py'.format(meta['name'].replace('-', '_'))
    compile(module.read_text(), str(module), 'exec')


def test_build_is_clean_and_recorded(built):
    _, charm = built
    info = build_info(charm)
    assert info['seconds'] < 60
    assert not [line for line in info['proof_output'].splitlines()
                if line.strip().startswith(('E:', 'W:'))]


def test_build_is_cached(built, tmp_path_factory):
    rel, charm = built
    workdir = tmp_path_factory.getbasetemp() / 'e2e-build'
    assert build_charm(workdir, relation_name=rel, example=charm.name) == charm
