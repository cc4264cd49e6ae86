"""mixlake.storage on the local filesystem (the S3 side runs against a real moto server in test_s3.py)."""

from __future__ import annotations

import pytest

from mixlake import storage


@pytest.mark.parametrize("pattern,path,matches", [
    ("b/web/*.jsonl.gz", "b/web/x.jsonl.gz", True),
    ("b/web/*.jsonl.gz", "b/web/sub/x.jsonl.gz", False),  # * stays within one directory, as in glob
    ("b/**/*.gz", "b/web/sub/x.gz", True),
    ("b/**/*.gz", "b/x.gz", True),
    ("b/w?b/*", "b/web/a", True),
    ("b/[wx]eb/*", "b/web/a", True),
    ("b/[!w]eb/*", "b/web/a", False),
])
def test_object_store_globs_follow_glob_rules(pattern, path, matches):
    assert bool(storage._glob_regex(pattern).fullmatch(path)) is matches


def test_local_glob_root_and_files(tmp_path):
    (tmp_path / "web" / "sub").mkdir(parents=True)
    for name in ("web/a.jsonl", "web/b.jsonl", "web/sub/c.jsonl", "web/notes.txt"):
        (tmp_path / name).write_text("x")
    root, files = storage.glob_files(f"{tmp_path}/web/*.jsonl")
    assert root == f"{tmp_path}/web"
    assert [f for f, _, _ in files] == [f"{tmp_path}/web/a.jsonl", f"{tmp_path}/web/b.jsonl"]
    root, files = storage.glob_files(f"{tmp_path}/web/**/*.jsonl")
    assert len(files) == 3 and all(size == 1 for _, size, _ in files)
    root, files = storage.glob_files(f"{tmp_path}/web")  # a directory: the files directly in it
    assert root == f"{tmp_path}/web" and len(files) == 3
    root, files = storage.glob_files(f"file:{tmp_path}/web/a.jsonl")  # one file: its directory is the root
    assert root == f"{tmp_path}/web" and len(files) == 1


def test_publish_versioned_switches_by_one_file(tmp_path, monkeypatch):
    stream = f"{tmp_path}/stream"
    storage.write_text(f"{tmp_path}/staged/part-00000/shard", "old")
    storage.publish_versioned(f"{tmp_path}/staged", stream, "v-1", "index.json", b"-> v-1/part-00000/shard")
    assert storage.list_files(stream) == ["index.json", "v-1/part-00000/shard"]
    # a crash after the new version is in place but before the switch: the old index and all its files stand
    storage.write_text(f"{tmp_path}/staged/part-00000/shard", "new")
    real = storage.write_bytes

    def crash(uri, data, s3=None):
        raise OSError("crash before the switch")

    monkeypatch.setattr(storage, "write_bytes", crash)
    with pytest.raises(OSError):
        storage.publish_versioned(f"{tmp_path}/staged", stream, "v-2", "index.json", b"-> v-2/part-00000/shard")
    assert storage.read_bytes(f"{stream}/index.json") == b"-> v-1/part-00000/shard"
    assert storage.read_bytes(f"{stream}/v-1/part-00000/shard") == b"old"
    monkeypatch.setattr(storage, "write_bytes", real)
    storage.write_text(f"{tmp_path}/staged/part-00000/shard", "new")
    storage.publish_versioned(f"{tmp_path}/staged", stream, "v-2", "index.json", b"-> v-2/part-00000/shard")
    assert storage.list_files(stream) == ["index.json", "v-2/part-00000/shard"]  # the old version is gone
    assert sorted(storage.listdir(str(tmp_path))) == ["stream"]  # nothing staged or temporary left behind
    stream = f"{tmp_path}/stream"
    storage.rmtree(f"{tmp_path}/stream")
    storage.rmtree(f"{tmp_path}/stream")  # absent: no error
    assert not storage.exists(f"{tmp_path}/stream")
