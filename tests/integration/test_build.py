"""The build produced what the README promises."""
import os

from conftest import BUILD


def test_unit_programs_built():
    tests = BUILD / "tests"
    names = sorted(p.name for p in tests.iterdir() if p.is_file()
                   and os.access(p, os.X_OK))
    assert "test_util" in names
