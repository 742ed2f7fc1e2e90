"""benchmarks/hook_cpu.py's claim, on a small deployment: no hook parses a
PEM twice, whatever it does (deploying, a re-key, a CA rotation, a renewal
round). The benchmark holds it at N = 50; here N = 3 keeps it quick."""
import sys
from pathlib import Path

from support.build import build_charm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
import hook_cpu  # noqa: E402


def test_no_hook_parses_a_pem_twice(tmp_path_factory, tmp_path):
    charm = build_charm(tmp_path_factory.getbasetemp() / 'e2e-build')
    rows = hook_cpu.measure(charm, 3, tmp_path)
    assert {r[0] for r in rows} == {'deploy', *hook_cpu.STEPS}
    assert max(r[3] for r in rows if r[1]) > 3, 'the leader parsed the CSRs it signs'
    assert hook_cpu.parsed_twice(rows) == 0


def test_parsed_twice_counts_a_block_decoded_again():
    once = ('deploy', True, 'install', 2, 2, 2, 0.0)
    again = ('deploy', True, 'install', 3, 2, 3, 0.0)
    assert hook_cpu.parsed_twice([once]) == 0 and hook_cpu.parsed_twice([once, again]) == 2
