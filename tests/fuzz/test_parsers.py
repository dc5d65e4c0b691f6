"""Fuzzing the parsers one by one (hypothesis, bounded): each either
returns a value or raises its one documented error, whatever it is given.

The HTTP-level fuzzers (test_native_http.py, test_s3_http.py) reach these
through the app; here each is driven directly, so hypothesis can search its
own input space densely: sizes and durations, Range headers, continuation
tokens, ref names, every configuration key, the aws-chunked decoder.
"""

from __future__ import annotations

import io
import json
import os

import pytest
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from blobstore import Store
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.config import load_settings
from blobstore.errors import BadParams
from blobstore.errors import ConfigError
from blobstore.units import parse_duration
from blobstore.units import parse_size
from blobstore_api.ranges import RangeNotSatisfiable
from blobstore_api.ranges import parse_range
from blobstore_api.s3.errors import S3Error
from blobstore_api.s3.tokens import continuation_token
from blobstore_api.s3.tokens import resume_after

EXAMPLES = int(os.environ.get("BLOBSTORE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["8M", "1.5KiB", "1h30m", "500ms", "-1", "1e9", "7d", " 3 ", "0"]),
)


@FUZZ
@given(scalars)
def test_sizes_and_durations_only_raise_value_error(value):
    for parse in (parse_size, parse_duration):
        try:
            parse(value)
        except ValueError as exc:
            assert "must be" in str(exc)


@FUZZ
@given(
    header=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda a, b: f"bytes={a}-{b}",
            st.one_of(st.integers(0, 2**70).map(str), st.text(max_size=5)),
            st.one_of(st.integers(0, 2**70).map(str), st.text(max_size=5)),
        ),
    ),
    size=st.integers(0, 2**40),
)
def test_range_is_a_range_inside_the_entity_or_nothing(header, size):
    try:
        selected = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if selected is not None:
        assert 0 <= selected.start <= selected.end < size
        assert selected.length == selected.end - selected.start + 1


@FUZZ
@given(st.text(max_size=60))
def test_tokens_round_trip_and_garbage_is_an_s3_error(text):
    assert resume_after(continuation_token(text)) == text
    try:
        resume_after(text)
    except S3Error as exc:
        assert exc.code == "InvalidArgument"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-refs")
    with Store(SQLiteCatalog(str(tmp / "c.db")), MemoryBackend()) as store:
        yield store


@FUZZ
@given(st.text(max_size=80))
# Found by atheris (tests/fuzz/atheris_targets.py ref_names): a lone
# surrogate raised UnicodeEncodeError, not BadParams. st.text never draws one.
@example(name="a\ud800")
@example(name="\udfff/b")
def test_ref_names_are_stored_exactly_or_refused_with_bad_params(store, name):
    target = store.put(io.BytesIO(b"target")).hash
    try:
        store.put_ref(name, target)
    except BadParams:
        return
    assert store.get_ref(name).hash == target
    store.delete_ref(name)


SECTIONS = {
    "": ["data_dir", "bogus"],
    "server": ["bind", "workers", "threads", "max_body_size", "timeout", "typo"],
    "catalog": ["type", "path", "uri"],
    "backend": ["type", "path", "drives", "parity"],
    "limits": ["min_part_size", "max_part_size", "max_parts", "max_upload_expiry"],
    "gc": ["grace", "ref_sources"],
    "auth": ["tokens"],
    "s3": ["enabled", "region", "credentials", "multipart_expiry"],
    "cache": ["enabled", "path", "max_size"],
}
toml_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.lists(
        st.dictionaries(
            st.sampled_from(["token", "access", "access_key", "secret_key"]),
            st.text(max_size=20),
            max_size=3,
        ),
        max_size=2,
    ),
)


def toml_value(value) -> str:
    """*value* as TOML (JSON's scalars, strings and arrays are TOML's too)."""
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(sorted(SECTIONS)),
        st.data(),
        max_size=3,
    ),
    st.data(),
)
def test_every_config_mistake_is_one_config_error_line(
    tmp_path_factory, sections, data
):
    lines = []
    for section in sorted(sections):  # the top level ("") comes first
        keys = data.draw(
            st.lists(st.sampled_from(SECTIONS[section]), max_size=3, unique=True)
        )
        if section:
            lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(data.draw(toml_values))}" for key in keys]
    path = tmp_path_factory.mktemp("fuzz-config") / "blobstore.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        load_settings(path, env={})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("config error: ") and "\n" not in message
