"""The docs' figures are the code's: the cost tables are the benchmark's, the
formulas the README quotes are the ones the benchmark checks, and the sizes of
the test tables docs/guarantees.md quotes are those tables' sizes.

``tox -e bench`` (benchmarks/converge.py) writes docs/cost.md below a marker
line, keeping the hand-written text above it. Its three summary tables stand
between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` there and
nowhere else. Each summary table repeats figures of the detailed tables the
same run wrote beside it, so a summary figure edited by hand, or a table left
from an older run, no longer agrees with them, and these tests say which.
"""
import importlib.util
import re
from pathlib import Path

import pytest
from support.corpus import SPECS
from test_hostile import MALFORMED

REPO = Path(__file__).resolve().parents[1]
README = REPO / 'README.md'
COST = REPO / 'docs' / 'cost.md'
GUARANTEES = REPO / 'docs' / 'guarantees.md'
#: The summary tables the benchmark writes into docs/cost.md.
TABLES = ('deploy', 'operations', 'convergence')
MARKED = re.compile(r'<!-- bench:([\w-]+) -->\n(.*?)\n<!-- /bench:\1 -->', re.S)

_SPEC = importlib.util.spec_from_file_location('converge', REPO / 'benchmarks' / 'converge.py')
converge = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(converge)

#: Summary column: the column of a detailed table (of the same run and N)
#: that holds the same figure.
SAME_AS = {
    'hooks': 'hooks', 'floor': 'floor', 'wire format 1': 'wire format 1',
    'tool calls': 'tool calls', "the layer's": "layer's",
    'controller round trips': 'round trips',
    'most calls in one follower hook': 'most calls in one follower hook',
    'most calls in one leader hook': 'most calls in one leader hook',
    'certificates signed / needed': 'certs issued / needed',
    'writes that changed nothing': 'redundant writes',
    'wall s, in-process': 'wall s, in-process',
}


def marked_tables(text):
    """{name: table} of every table between a pair of markers in ``text``."""
    return dict(MARKED.findall(text))


def tables(text):
    """Every markdown table in ``text``, as (header, rows), cells stripped."""
    found, lines = [], text.split('\n')
    for i, line in enumerate(lines):
        if line.startswith('|') and i + 1 < len(lines) and lines[i + 1].startswith('|---'):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith('|'):
                    break
                rows.append(cells(row))
            found.append((cells(line), rows))
    return found


def cells(line):
    return [cell.strip() for cell in line.strip().strip('|').split('|')]


def details(text):
    """{(run, N): {column: figure}} from the detailed tables (those whose
    first column is ``run``); a column's first occurrence in a table counts."""
    by_run = {}
    for header, rows in tables(text):
        if header[0] != 'run':
            continue
        for row in rows:
            figures = by_run.setdefault((row[0], row[1]), {})
            for column, value in zip(header, row):
                figures.setdefault(column, value)
    return by_run


def disagreements(text):
    """The names of the summary tables in ``text`` that are missing or that
    disagree with the detailed tables, the critical paths or the bottleneck
    sentence of the same report; each with the first figure found wrong."""
    found = []
    summaries, detail = marked_tables(text), details(text)
    for name in TABLES:
        if name not in summaries:
            found.append((name, 'missing'))
            continue
        (header, rows), = tables(summaries[name])
        check = {'deploy': _deploy_row, 'operations': _operations_row,
                 'convergence': _convergence_row}[name]
        for row in rows:
            wrong = check(dict(zip(header, row)), detail, text)
            if wrong:
                found.append((name, wrong))
                break
    return found


def _same(row, figures, run):
    for column, detail_column in SAME_AS.items():
        if column in row and figures.get(detail_column) != row[column]:
            return f'{run} N={row.get("N")}: {column} {row[column]} against {figures.get(detail_column)}'
    return None


def _deploy_row(row, detail, _text):
    n = int(row['N'])
    wrong = _same(row, detail.get(('deploy', row['N']), {}), 'deploy')
    for column, total in (('tool calls / N²', 'tool calls'), ("the layer's / N²", "the layer's")):
        if wrong is None and row[column] != f'{int(row[total]) / n / n:.1f}':
            wrong = f'deploy N={n}: {column} {row[column]}'
    return wrong


def _operations_row(row, detail, _text):
    return _same(row, detail.get((row['operation'], row['N']), {}), row['operation'])


def _convergence_row(row, detail, text):
    n = row['N']
    if detail.get(('deploy', n), {}).get('hooks') != row['hooks']:
        return f'convergence N={n}: hooks {row["hooks"]}'
    path = re.search(rf'^- N={n}: \S+, (\d+) hooks \(.*\), ([\d.]+) s$', text, re.M)
    if not path or path.groups() != (row['critical path: hooks'], row['concurrent s, 20 ms']):
        return f'convergence N={n}: critical path {row["critical path: hooks"]} hooks, ' \
               f'{row["concurrent s, 20 ms"]} s'
    busy = re.search(rf'([\d.]+) s against ([\d.]+) s at N={n}\b', text)
    if not busy or busy.groups() != (row['leader busy s, no settings cache'], row['leader busy s']):
        return f'convergence N={n}: leader busy {row["leader busy s"]} s'
    uncached = re.search(rf'deployment at N={n} would take ([\d.]+) s instead of ([\d.]+) s', text)
    if uncached and uncached.groups() != (row['concurrent s, no settings cache'],
                                          row['concurrent s, 20 ms']):
        return f'convergence N={n}: concurrent, no settings cache {row["concurrent s, no settings cache"]} s'
    return None


def test_docs_cost_md_marks_each_table_once_with_closed_markers():
    cost = COST.read_text()
    assert sorted(marked_tables(cost)) == sorted(TABLES)
    for name in TABLES:
        assert cost.count(f'<!-- bench:{name} -->') == 1, name
        assert cost.count(f'<!-- /bench:{name} -->') == 1, name


def test_the_tables_live_only_in_docs_cost_md():
    for path in [README, REPO / 'CONTRIBUTING.md', *sorted((REPO / 'docs').glob('*.md'))]:
        if path != COST:
            assert '<!-- bench:' not in path.read_text(), path


def test_every_summary_table_agrees_with_the_runs_it_summarizes():
    assert disagreements(COST.read_text()) == []


def test_a_changed_figure_is_caught():
    cost = COST.read_text()
    for name, table in marked_tables(cost).items():
        digit = re.search(r'\d(?=\D*$)', table)  # the table's last figure, its last digit
        changed = table[:digit.start()] + str((int(digit.group()) + 1) % 10) + table[digit.end():]
        assert [found for found, _ in disagreements(cost.replace(table, changed))] == [name]


def test_a_changed_figure_in_the_first_row_is_caught():
    cost = COST.read_text()
    for name, table in marked_tables(cost).items():
        head, separator, first, rest = table.split('\n', 3)
        hooks = cells(first)[cells(head).index('hooks')]
        changed_row = first.replace(f'| {hooks} |', f'| {int(hooks) + 1} |', 1)
        changed = '\n'.join([head, separator, changed_row, rest])
        assert [found for found, _ in disagreements(cost.replace(table, changed))] == [name]


def test_a_missing_or_unclosed_table_is_caught():
    cost = COST.read_text()
    for name in TABLES:
        unclosed = cost.replace(f'<!-- /bench:{name} -->', '')
        assert (name, 'missing') in disagreements(unclosed)


def test_the_benchmark_writes_below_the_marker_and_keeps_the_text_above(tmp_path):
    """converge.write_cost on a small fake cost.md: the hand-written head
    stays, the old report goes, a file without the marker line is refused."""
    path = tmp_path / 'cost.md'
    path.write_text(f'# Costs\n\nBy hand.\n\n{converge.GENERATED}\n\nold report\n')
    report = converge.marked('deploy', '| N |\n|---:|\n| 2 |') + '\n'
    converge.write_cost(path, report)
    assert path.read_text() == f'# Costs\n\nBy hand.\n\n{converge.GENERATED}\n\n{report}'
    assert marked_tables(path.read_text()) == {'deploy': '| N |\n|---:|\n| 2 |'}

    fresh = tmp_path / 'fresh.md'
    converge.write_cost(fresh, report)
    assert fresh.read_text() == f'{converge.GENERATED}\n\n{report}'

    path.write_text('# Costs\n\nBy hand, no marker.\n')
    with pytest.raises(RuntimeError):
        converge.write_cost(path, report)
    assert path.read_text() == '# Costs\n\nBy hand, no marker.\n'


def test_docs_cost_md_has_the_benchmarks_marker_once():
    assert COST.read_text().count(converge.GENERATED + '\n') == 1


def test_the_readme_quotes_the_formulas_the_benchmark_checks():
    """The README's cost summary names each formula as the benchmark's
    HOOK_FORMULAS spells it, and docs/cost.md's list of checked claims says
    the same."""
    readme, cost = ' '.join(README.read_text().split()), COST.read_text()
    quoted = {'deploy': 'Deploying N units costs exactly Juju\'s floor, {}',
              're-key': 'a re-key costs {}', 'CA rotation': 'a routine CA rotation {}',
              'renewal': 'a renewal round {}'}
    for name, phrase in quoted.items():
        formula = converge.HOOK_FORMULAS[name][1]
        assert phrase.format(formula) in readme, name
        assert formula in cost, name


def test_the_guarantees_count_the_hostile_and_corpus_tables_as_they_are():
    """The Guarantees quote how many malformed classes every bad input is
    tried with, and how many real tools' outputs the corpus holds."""
    guarantees = GUARANTEES.read_text()
    assert f'Malformed input ({len(MALFORMED)} named classes' in guarantees
    assert f'({len(SPECS)} items made by the tools at test time)' in guarantees
