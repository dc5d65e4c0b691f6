"""The README's Python Store API example runs as written."""

from tests.readme_blocks import README
from tests.readme_blocks import readme_blocks


def test_readme_has_the_tagged_examples():
    assert {"python", "curl", "boto3", "awscli"} <= set(readme_blocks())


def test_python_store_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = readme_blocks()["python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert "b'bytes'" in capsys.readouterr().out
