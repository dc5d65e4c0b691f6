"""api/openapi.yaml stays true: a valid OpenAPI document listing exactly the
routes and methods the app serves, and the access levels the resources
declare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from falcon import inspect
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

import blobstore_api
from blobstore.config import Token
from blobstore.errors import BadParams
from blobstore.errors import NotFound
from blobstore.units import parse_duration
from blobstore_api.app import create_native_app
from tests.api.conftest import make_settings
from tests.api.conftest import make_store

SPEC_PATH = Path(blobstore_api.__file__).parent / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def spec_routes(spec) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def app_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for route in inspect.inspect_routes(app):
        # "{name:path}" in Falcon is "{name}" in OpenAPI.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for method in route.methods:
            if not method.internal:  # Falcon's default OPTIONS and 405s
                routes.add((path, method.method))
    return routes


def test_spec_is_valid_openapi(spec):
    validate(spec)


def test_spec_and_app_have_the_same_routes(spec, store, settings):
    app = create_native_app(store, settings)
    served, documented = app_routes(app), spec_routes(spec)
    assert served - documented == set(), "served but not in openapi.yaml"
    assert documented - served == set(), "in openapi.yaml but not served"


def test_security_matches_the_service(spec, make_client):
    # With tokens configured, only operations documented as public
    # ("security: []") answer a request without one.
    client = make_client(settings=make_settings((Token("t" * 20, "admin"),)))
    sample = {"{hash}": "0" * 96, "{id}": "x", "{n}": "0", "{name}": "a/b"}
    for path, method in sorted(spec_routes(spec)):
        operation = spec["paths"][path][method.lower()]
        url = path
        for template, value in sample.items():
            url = url.replace(template, value)
        result = client.simulate_request(method, url)
        public = operation.get("security") == []
        assert (result.status_code != 401) == public, (method, path)


# -- the ref name pattern ----------------------------------------------------------


@pytest.fixture(scope="module")
def ref_name_pattern(spec):
    (param,) = spec["paths"]["/v1/refs/{name}"]["parameters"]
    return re.compile(param["schema"]["pattern"])


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    with make_store(tmp_path_factory.mktemp("ref-names")) as store:
        yield store


def service_accepts(store, name: str) -> bool:
    try:
        store.get_ref(name)
    except BadParams:
        return False
    except NotFound:
        return True
    raise AssertionError("an empty store found a ref")


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "releases/1.0",
        ".hidden",
        "a/.b",
        "...",
        "a/.../b",
        "%2E%2E",
        "ü/名前",
        "a b",
        "\x80\x9f",  # C1 characters are not refused
        "",
        "/",
        "/a",
        "a/",
        "a//b",
        ".",
        "..",
        "./a",
        "a/.",
        "a/../b",
        "a\x00b",
        "tab\there",
        "new\nline",
        "del\x7f",
    ],
)
def test_ref_name_pattern_matches_the_service(ref_name_pattern, empty_store, name):
    assert bool(ref_name_pattern.search(name)) == service_accepts(empty_store, name)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    name=st.text(
        st.sampled_from(["a", "é", ".", "/", "\x00", "\x1f", "\x7f", "\x85", " "]),
        max_size=12,
    )
)
def test_ref_name_pattern_agrees_on_any_short_name(ref_name_pattern, empty_store, name):
    # Short names, so the byte limit (which the pattern leaves out) is never
    # what decides.
    assert bool(ref_name_pattern.search(name)) == service_accepts(empty_store, name)


# -- the duration pattern ------------------------------------------------------------


def duration_parses(text: str) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.sampled_from([*"0159.", *"smhdMSx", " ", "\t", "-"]), max_size=10)
)
def test_duration_pattern_is_the_parsers_grammar(spec, text):
    # Zero matches and parses (the service then refuses it as not positive,
    # as the schema's description says).
    pattern = re.compile(spec["components"]["schemas"]["Duration"]["pattern"])
    assert bool(pattern.search(text)) == duration_parses(text)
