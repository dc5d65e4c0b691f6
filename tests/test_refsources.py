"""External GC roots: files of hashes and MongoDB collection fields."""

import io

import mongomock
import pytest

from blobstore.errors import BadParams
from blobstore.refsources import FileRefSource
from blobstore.refsources import MongoRefSource
from blobstore.refsources import hashes_in
from blobstore.refsources import ref_source_from_config
from tests.helpers import hash_of

H1, H2, H3 = hash_of(b"1"), hash_of(b"2"), hash_of(b"3")


def test_file_source_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "refs.txt"
    path.write_text(f"# pinned by the release job\n{H1}\n\n  {H2}  \n")
    assert list(FileRefSource(str(path)).hashes()) == [H1, H2]


def test_file_source_reads_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{H3}\n"))
    assert list(FileRefSource("-").hashes()) == [H3]


def test_missing_file_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(FileRefSource(str(tmp_path / "absent")).hashes())


def test_mongo_source_follows_dotted_paths_arrays_and_indexes():
    client = mongomock.MongoClient()
    coll = client.charmstore.resources
    coll.insert_many(
        [
            {"blob": {"hash": H1}},
            {"blob": [{"hash": H2}, {"hash": H3}]},
            {"other": "no blob"},
        ]
    )
    coll2 = client.charmstore.multipart
    coll2.insert_one({"index": {"hashes": [H1, H2]}})
    coll2.insert_one({"index": bytes.fromhex(H3 + H1)})  # the reference's compact form
    src = MongoRefSource("", "charmstore", "resources", "blob.hash", client=client)
    assert sorted(src.hashes()) == sorted([H1, H2, H3])
    src2 = MongoRefSource("", "charmstore", "multipart", "index", client=client)
    assert sorted(src2.hashes()) == sorted([H1, H2, H3, H1])
    assert "charmstore.resources:blob.hash" in src.describe()


def test_hashes_in_ignores_values_of_other_shapes():
    assert list(hashes_in([None, 42, b"short", {"no": "hashes"}])) == []


def test_config_errors_name_the_problem():
    with pytest.raises(BadParams, match="unknown type 'redis'"):
        ref_source_from_config({"type": "redis"})
    with pytest.raises(BadParams, match="needs 'field'"):
        ref_source_from_config(
            {"type": "mongodb", "uri": "x", "database": "d", "collection": "c"}
        )
    assert isinstance(
        ref_source_from_config({"type": "file", "path": "-"}), FileRefSource
    )


@pytest.mark.parametrize(
    "uri", ["localhost:27017", "http://mongo/", "mongodb://host:notaport/"]
)
def test_mongo_source_refuses_a_bad_uri_at_once(uri):
    with pytest.raises(BadParams, match="mongodb uri"):
        ref_source_from_config(
            {
                "type": "mongodb",
                "uri": uri,
                "database": "d",
                "collection": "c",
                "field": "f",
            }
        )


def test_mongo_source_connects_only_when_read(monkeypatch):
    # Every server worker builds the configured sources; only GC reads them.
    made = []
    monkeypatch.setattr(
        "pymongo.MongoClient",
        lambda *a, **kw: made.append(a) or mongomock.MongoClient(),
    )
    src = ref_source_from_config(
        {
            "type": "mongodb",
            "uri": "mongodb://artifacts.example:27017/",
            "database": "d",
            "collection": "c",
            "field": "f",
        }
    )
    assert made == []
    assert list(src.hashes()) == []
    assert made == [("mongodb://artifacts.example:27017/",)]
