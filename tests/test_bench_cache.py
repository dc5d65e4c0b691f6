"""The read-cache benchmark scenario runs (small, so it cannot rot)."""

from bench.cache import measure
from blobstore.backends.local import LocalBackend


def test_cache_scenario_reports_every_row(tmp_path):
    remote = LocalBackend(tmp_path / "remote", fsync=False)
    rows = measure(remote, tmp_path / "cache", size=3 * 1024 * 1024, repeats=1)
    assert [label for label, _ in rows] == [
        "remote only",
        "cache miss (fills)",
        "cache hit, verified",
        "cache hit, plain file",
    ]
    assert all(rate > 0 for _, rate in rows)
    assert list(remote.list()) == []
