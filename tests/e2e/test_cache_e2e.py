"""The read cache under the real service: its counters on /metrics are the
sum over every gunicorn worker, whichever worker answers the scrape."""

from __future__ import annotations

import hashlib
import re

import requests


def test_cache_counters_are_summed_across_workers(server_factory, tmp_path):
    server = server_factory(
        workers=2,
        config=f"""
[cache]
enabled = true
path = "{tmp_path}/cache"
max_size = "64MiB"
""",
    )
    server.start()
    assert len(server.worker_pids()) == 2
    data = b"cached through two workers" * 1000
    h = hashlib.sha384(data).hexdigest()
    assert requests.put(f"{server.url}/v1/blobs/{h}", data=data, timeout=30).ok
    n = 20
    for _ in range(n):  # a new connection each time, so both workers answer
        with requests.Session() as session:
            got = session.get(f"{server.url}/v1/blobs/{h}", timeout=30)
            assert got.content == data
    for _ in range(5):  # whichever worker answers, it reports every read
        with requests.Session() as session:
            text = session.get(f"{server.url}/metrics", timeout=30).text
        opened = sum(
            float(v)
            for v in re.findall(
                r"blobstore_cache_(?:hits|misses)_total\{[^}]*\} (\S+)", text
            )
        )
        assert opened == n, text
        # (The size/entries gauges are each worker's view, rescanned every
        # minute, so they are not summed and may lag another worker's fill.)
