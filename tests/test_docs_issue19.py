"""What the docs say is true and portable (issue 19)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["docs/backends.md", "BENCHMARKS.md", "README.md", "docs/batch.md"])
def test_no_absolute_paths_outside_the_repository(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert not re.findall(r"(?<![\w.])/(?:work|tmp|root|home)/\S*", text)


def test_the_dask_snippet_has_a_main_guard():
    text = (ROOT / "docs/batch.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "LocalCluster" in b)
    assert 'if __name__ == "__main__":' in snippet
    assert snippet.index("__main__") < snippet.index("LocalCluster(")


def test_plotly_core_dependency_and_plot_extra_are_said_truthfully():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(d.startswith("plotly") for d in meta["dependencies"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "plotly is\na core dependency" in readme or "plotly is a core dependency" in readme
    assert 'pio.renderers.default = "notebook"' in readme


def test_seeds_case_figures_match_the_command(capsys):
    from allocator.cli import main

    assert (
        main(["counterfactual", str(ROOT / "data/hyperscaler.json"), "--seeds-case", "--json"]) == 0
    )
    g = json.loads(capsys.readouterr().out)["growth_last_period"]
    optimal, cloud = f"{100 * g['optimal']:.1f} %", f"{100 * g['counterfactual']:.1f} %"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    docs = (ROOT / "docs/analysis-explain-counterfactuals.md").read_text(encoding="utf-8")
    assert f"grows {optimal} in the last quarter" in readme.replace("\n", " ")
    assert f"| {optimal} | {cloud} |" in docs
    assert "5.1 %" not in readme + docs


def test_make_run_prints_the_page_address(monkeypatch, capsys):
    import uvicorn

    import api.__main__ as entry

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr(entry, "create_app", lambda settings: None)
    entry.main([])  # no command: serve
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/ " in out and "/docs" in out
