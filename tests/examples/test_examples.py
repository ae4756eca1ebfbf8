import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_answers() -> None:
    module = runpy.run_path(str(EXAMPLES / "quickstart.py"))
    assert "Paris" in module["main"]()
