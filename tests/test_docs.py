"""The docs hold together and say what the code does.

- Every heading the README had before it was cut down for charm authors is
  still a heading, in the README or in a file the README links to.
- Every relative link in README.md, CONTRIBUTING.md and docs/*.md resolves
  to a file, and a ``#fragment`` to a heading of that file.
- The README's API table lists exactly TlsPeers' public methods, with their
  signatures.
- The README's build recipe is the one tests/support/build.py runs, and the
  charm-tools behaviour the README and docs/design.md describe is the
  installed charm-tools' (read from its source, or run on a temporary
  directory, never over the network).
"""
import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / 'README.md'
DESIGN = REPO / 'docs' / 'design.md'
DOCS = [README, REPO / 'CONTRIBUTING.md', *sorted((REPO / 'docs').glob('*.md'))]

#: The README's headings before it was reorganized (issue 18), frozen.
OLD_HEADINGS = (
    'interface-tls', 'Try it', 'Use it in a charm', 'States', 'API',
    'A consumer, complete', 'Renewal and expiry', 'Wire format',
    'What PEM the layer takes', 'CA rotation', 'Leadership changes',
    'Juju rules the layer relies on', 'Upgrading from the original layer',
    'Consumers written for the original layer', 'What it costs',
    'How long a deployment takes', 'Guarantees', 'Testing', 'License',
)
#: Old headings whose section lives on under another name, and why.
RENAMED = {
    # The README shows the core of a consumer; the complete ones are the
    # examples it links.
    'A consumer, complete': 'Consumer',
}
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```.*?^```', re.S | re.M)


def headings(path):
    """The text of every markdown heading in ``path``, code blocks excluded."""
    text = FENCE.sub('', path.read_text())
    return [m.group(1).strip() for m in re.finditer(r'^#{1,6} (.+)$', text, re.M)]


def slug(heading):
    """GitHub's anchor for ``heading``."""
    text = heading.strip().lower().replace('`', '')
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def links(path):
    """Every link target in ``path``, code blocks excluded."""
    return LINK.findall(FENCE.sub('', path.read_text()))


def relative(target):
    return not re.match(r'^[a-z][a-z0-9+.-]*:', target)


def linked_docs(path):
    """The markdown files ``path`` links to, resolved."""
    found = set()
    for target in links(path):
        file = target.split('#')[0]
        if relative(target) and file.endswith('.md'):
            found.add((path.parent / file).resolve())
    return found


def test_every_old_readme_heading_is_in_the_readme_or_a_file_it_links():
    present = set(headings(README))
    for doc in linked_docs(README):
        present |= set(headings(doc))
    missing = [h for h in OLD_HEADINGS if RENAMED.get(h, h) not in present]
    assert missing == []


def test_the_readme_links_the_docs_the_old_sections_moved_to():
    assert {REPO / 'docs' / name for name in ('design.md', 'guarantees.md', 'cost.md')} \
        | {REPO / 'CONTRIBUTING.md'} <= linked_docs(README)


def test_the_readme_stays_short():
    assert len(README.read_text().splitlines()) <= 250


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in links(doc):
        if not relative(target):
            continue
        file, _, fragment = target.partition('#')
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif fragment and path.suffix == '.md' and fragment not in map(slug, headings(path)):
            broken.append(target)
    assert broken == []


def test_the_link_checker_catches_a_broken_link_and_anchor(tmp_path):
    doc = tmp_path / 'doc.md'
    doc.write_text('# Top\n\n[a](doc.md#top) [b](nowhere.md) [c](#no-such-heading)\n'
                   '```\n[not a link](inside-code.md)\n```\n')
    assert links(doc) == ['doc.md#top', 'nowhere.md', '#no-such-heading']
    assert slug('Part 3: how long, `x`') == 'part-3-how-long-x'


def public_methods():
    """{name: signature} of TlsPeers' public methods, as the README writes them."""
    tree = ast.parse((REPO / 'peers.py').read_text())
    cls, = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == 'TlsPeers']
    found = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith('_'):
            args = [a.arg for a in node.args.args[1:]]
            defaults = [ast.unparse(d) for d in node.args.defaults]
            shown = args[:len(args) - len(defaults)] + [
                f'{a}={d}' for a, d in zip(args[len(args) - len(defaults):], defaults)]
            found[node.name] = f'{node.name}({", ".join(shown)})'
    return found


def test_the_readme_api_table_lists_exactly_the_public_methods():
    text = README.read_text()
    section = text[text.index('\n## API\n'):]
    section = section[:section.index('\n## ', 1)]
    rows = re.findall(r'^\| `(\w+\([^`]*\))` \|', section, re.M)
    assert sorted(rows) == sorted(public_methods().values())


# The build recipe and charm-tools' behaviour.

def readme_build_section():
    text = README.read_text()
    section = text[text.index('\n## Build it\n'):]
    return section[:section.index('\n## ', 1)]


def test_the_readme_build_recipe_is_the_one_the_tests_run(tmp_path, monkeypatch):
    """The README clones this repository as ``tls`` into the directory
    CHARM_INTERFACES_DIR names and runs charm-build with --hide-metrics and
    -o; tests/support/build.py, which builds the examples offline for every
    end-to-end test, does the same (it links the checkout instead of cloning
    it). Its charm-build call is captured, not run."""
    from support import build

    recipe = re.search(r'```sh\n(.*?)```', readme_build_section(), re.S).group(1)
    clone, run = recipe.strip().split('\n')
    interfaces = re.search(r'mkdir -p (\S+) ', clone).group(1)
    assert clone.endswith(f' {interfaces}/tls')
    assert run.startswith(f'CHARM_INTERFACES_DIR={interfaces} charm-build --hide-metrics -o ')

    calls = []

    def fake_run(cmd, env, cwd):
        calls.append((cmd, env))
        return subprocess.CompletedProcess(cmd, 1, stdout='captured, not run')

    monkeypatch.setattr(build, '_run', fake_run)
    with pytest.raises(build.BuildError):
        build._build(tmp_path, build.EXAMPLES / build.DEFAULT_EXAMPLE, 'tls-example', 'tls', True)
    (cmd, env), = calls
    assert Path(cmd[0]).name == 'charm-build'
    assert '--hide-metrics' in cmd and '-o' in cmd
    assert (Path(env['CHARM_INTERFACES_DIR']) / 'tls').resolve() == REPO


# charm-tools 3.0.9 reads a file:// index entry with path's deprecated .text().
@pytest.mark.filterwarnings('ignore:.text is deprecated:DeprecationWarning')
def test_charm_tools_finds_interface_tls_as_the_readme_says(tmp_path, monkeypatch):
    """Run charm-tools' own lookup on temporary directories: the local
    directory named by CHARM_INTERFACES_DIR (``tls`` or ``interface-tls`` in
    it) wins over any index; INTERFACE_PATH counts only when the first is
    unset; without a local copy a file:// index given with --layer-index is
    asked, and its ``repo`` is what gets built."""
    from charmtools.build import fetchers

    fetcher = fetchers.InterfaceFetcher
    for name in ('CHARM_INTERFACES_DIR', 'INTERFACE_PATH', 'JUJU_REPOSITORY'):
        monkeypatch.delenv(name, raising=False)
    index = tmp_path / 'index'
    (index / 'interfaces').mkdir(parents=True)
    (index / 'interfaces' / 'tls.json').write_text(json.dumps({'repo': 'https://example.invalid/mine'}))
    monkeypatch.setattr(fetchers.LayerFetcher, 'LAYER_INDEXES', list(fetchers.LayerFetcher.LAYER_INDEXES))
    monkeypatch.setattr(fetchers.LayerFetcher, 'NO_LOCAL_LAYERS', False)
    fetchers.LayerFetcher.set_layer_indexes(f'{index.as_uri()}/')  # no DEFAULT: no network

    for dirname in ('tls', 'interface-tls'):
        interfaces = tmp_path / f'interfaces-{dirname}'
        (interfaces / dirname).mkdir(parents=True)
        monkeypatch.setenv('CHARM_INTERFACES_DIR', str(interfaces))
        assert str(fetcher.can_fetch('interface:tls')['path']) == str(interfaces / dirname)

    monkeypatch.setenv('CHARM_INTERFACES_DIR', str(tmp_path / 'mistyped'))
    monkeypatch.setenv('INTERFACE_PATH', str(tmp_path / 'interfaces-tls'))
    assert fetcher.can_fetch('interface:tls')['repo'] == 'https://example.invalid/mine'
    monkeypatch.delenv('CHARM_INTERFACES_DIR')
    assert str(fetcher.can_fetch('interface:tls')['path']) == str(tmp_path / 'interfaces-tls' / 'tls')

    assert fetchers.LayerFetcher.ENVIRON == 'CHARM_LAYERS_DIR'
    assert fetchers.LayerFetcher._DEFAULT_LAYER_INDEXES == ['https://juju.github.io/layer-index/']


def test_the_charm_tools_source_says_what_the_docs_quote():
    """The messages, names and rules the README and docs/design.md quote from
    charm-tools' build/builder.py."""
    import inspect

    from charmtools.build import builder

    fetch_dep = inspect.getsource(builder.Builder.fetch_dep)
    assert 'base.startswith("interface:")' in fetch_dep  # anything else is a layer
    plan = inspect.getsource(builder.Builder.plan_interfaces)
    assert '"Processing interface: %s%s"' in plan and '" (from %s)"' in plan
    assert 'startswith(self.cache_dir)' in plan
    assert '"Unable to locate {}. "' in inspect.getsource(builder.Fetched.fetch)
    assert str(builder.Builder.HOOK_TEMPLATE_FILE) == 'hooks/hook.template'
    assert "'At least one layer must provide %s'" in inspect.getsource(builder.Builder)
    text = README.read_text() + DESIGN.read_text()
    for quoted in ('Processing interface:', 'Unable to locate', 'CHARM_INTERFACES_DIR',
                   'INTERFACE_PATH', 'CHARM_LAYERS_DIR', 'JUJU_REPOSITORY',
                   'At least one layer must', 'provide hooks/hook.template'):
        assert quoted in ' '.join(text.split()), quoted


def test_the_examples_hook_template_is_as_long_as_the_readme_says():
    says = int(re.search(r'(\d+)-line `hooks/hook.template`', readme_build_section()).group(1))
    templates = sorted((REPO / 'examples').glob('*/hooks/hook.template'))
    assert templates
    for template in templates:
        assert len(template.read_text().splitlines()) == says, template


def test_an_includes_entry_that_is_a_path_builds_no_interface(tmp_path):
    """What the README warns of, run offline: an example whose layer.yaml
    includes this checkout by path instead of ``interface:tls`` builds, and
    charm-proof passes, but the layer's files are at the top of the charm
    and nothing is in hooks/relations/tls/."""
    from support import build

    layer = tmp_path / 'layer'
    shutil.copytree(str(build.EXAMPLES / build.DEFAULT_EXAMPLE), str(layer))
    (layer / 'layer.yaml').write_text(f"includes: ['{REPO}']\n")
    env = {k: v for k, v in os.environ.items() if k not in build._FOREIGN_ENV}
    out = tmp_path / 'out'
    result = build._run([build._tool('charm-build'), '--hide-metrics', '-C', str(tmp_path / 'cache'),
                         '-o', str(out), str(layer)], env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    charm = out / 'tls-example'
    assert (charm / 'peers.py').is_file() and (charm / 'pem.py').is_file()
    assert not (charm / 'hooks' / 'relations' / 'tls').exists()
    assert 'Processing interface' not in result.stdout


def test_every_test_the_docs_cite_exists():
    """A test a document names as its evidence is a test the suite runs."""
    defined = set(re.findall(r'^\s*def (test_\w+)', '\n'.join(
        path.read_text() for path in (REPO / 'tests').rglob('test_*.py')), re.M))
    modules = {path.stem for path in (REPO / 'tests').rglob('test_*.py')}
    cited = {name for doc in DOCS for name in re.findall(r'`(test_\w+)', doc.read_text())}
    assert sorted(cited - defined - modules) == []
