"""The README's figures are the code's: its cost tables are the benchmark's,
and the sizes of the test tables it quotes are those tables' sizes.

``tox -e bench`` (benchmarks/converge.py) writes each table of the README's
"What it costs" between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``,
and the same table between the same markers in docs/cost.md, from the same
runs. A table edited by hand, or left from an older run while docs/cost.md
was regenerated, no longer matches, and these tests say which: they compare
the text, so any changed figure shows.
"""
import re
from pathlib import Path

from support.corpus import SPECS
from test_hostile import MALFORMED

REPO = Path(__file__).resolve().parents[1]
README = REPO / 'README.md'
COST = REPO / 'docs' / 'cost.md'
#: The tables the benchmark writes into the README.
TABLES = ('deploy', 'operations', 'convergence')
MARKED = re.compile(r'<!-- bench:([\w-]+) -->\n(.*?)\n<!-- /bench:\1 -->', re.S)


def marked_tables(text):
    """{name: table} of every table between a pair of markers in ``text``."""
    return dict(MARKED.findall(text))


def differences(readme, cost):
    """The names of the README's marked tables that are not, to the
    character, the table between the same markers in ``cost``."""
    theirs = marked_tables(cost)
    return [name for name, table in marked_tables(readme).items() if theirs.get(name) != table]


def test_the_readme_marks_each_table_once_with_closed_markers():
    readme = README.read_text()
    assert sorted(marked_tables(readme)) == sorted(TABLES)
    for name in TABLES:
        assert readme.count(f'<!-- bench:{name} -->') == 1, name
        assert readme.count(f'<!-- /bench:{name} -->') == 1, name


def test_every_marked_readme_table_is_the_one_in_docs_cost_md():
    assert differences(README.read_text(), COST.read_text()) == []


def test_a_changed_figure_is_caught():
    readme, cost = README.read_text(), COST.read_text()
    for name, table in marked_tables(readme).items():
        digit = re.search(r'\d(?=\D*$)', table)  # the table's last figure, its last digit
        changed = table[:digit.start()] + str((int(digit.group()) + 1) % 10) + table[digit.end():]
        assert differences(readme.replace(table, changed), cost) == [name]


def test_a_table_missing_from_docs_cost_md_is_caught():
    readme, cost = README.read_text(), COST.read_text()
    assert differences(readme, cost.replace('<!-- bench:', '<!-- was:')) == list(TABLES)


def test_the_readme_counts_the_hostile_and_corpus_tables_as_they_are():
    """The Guarantees section quotes how many malformed classes every bad
    input is tried with, and how many real tools' outputs the corpus holds."""
    readme = README.read_text()
    assert f'Malformed input ({len(MALFORMED)} named classes' in readme
    assert f'({len(SPECS)} items made by the tools at test time)' in readme
