"""The sample corpus is deterministic and its ground truth is what the files contain."""

import gzip
import json

import pytest

from conftest import compose
from mixlake.sample.generate import BOILERPLATE_61, generate_sample
from mixlake.text import normalize


def _files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        generate_sample(compose("sample.scale=0.05", f"sample.dir={d}").sample)
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and len(fa) > 8
    assert all(fa[k] == fb[k] for k in fa)
    c = tmp_path / "c"
    generate_sample(compose("sample.scale=0.05", "sample.seed=99", f"sample.dir={c}").sample)
    assert _files(c)["wiki/part-00000.parquet"] != fa["wiki/part-00000.parquet"]


def _web_texts(sample_dir):
    texts = {}
    for p in sorted((sample_dir / "web").glob("part-0*.jsonl.gz")):
        for line in gzip.decompress(p.read_bytes()).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "text" in rec:
                texts[rec["id"]] = rec["text"]
    return texts


def test_ground_truth_matches_files(sample_dir, ground_truth):
    web = _web_texts(sample_dir)
    # near-duplicates span the Jaccard range dedup must handle
    js = [j for _, _, j, _ in ground_truth["near_duplicates"]]
    assert min(js) < 0.6 and max(js) > 0.9
    for a, b, _, _ in ground_truth["near_duplicates"]:
        assert web[a] != web[b]
    # exact duplicates are equal after normalisation (web copies of web docs)
    for group in ground_truth["exact_duplicates"]:
        if all(g.startswith("web-") for g in group):
            assert len({normalize(web[g]) for g in group}) == 1
    # the boilerplate sentence occurs exactly `count` times, in exactly the recorded documents
    (bp,) = ground_truth["boilerplate"]
    assert bp["text"] == BOILERPLATE_61 and bp["words"] == 61
    holders = sorted(k for k, t in web.items() if BOILERPLATE_61 in t)
    assert holders == sorted(bp["ids"]) and bp["count"] == len(holders) >= 50
    reasons = {r["reason"] for r in ground_truth["bad_records"]}
    assert {"malformed_json", "invalid_utf8", "empty_text", "missing_text_field", "corrupt_compression",
            "warc_truncated_record"} <= reasons
    assert set(ground_truth["low_quality"]) == {"menu", "lorem", "symbols", "javascript", "repeated_lines"}


def test_failed_shard_write_leaves_no_sample(tmp_path, monkeypatch):
    """A web shard's write fails in its compression thread: the error reaches the caller, no sample is declared
    complete, and an earlier sample in the same dir is left as it was."""
    import mixlake.sample.generate as gen

    d = tmp_path / "s"
    generate_sample(compose("sample.scale=0.05", f"sample.dir={d}").sample)
    before = _files(d)
    real = gen._write_gzip

    def full_disk(path, data):
        if path.endswith("part-00001.jsonl.gz"):
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(gen, "_write_gzip", full_disk)
    with pytest.raises(OSError, match="No space left"):
        generate_sample(compose("sample.scale=0.05", "sample.seed=99", f"sample.dir={d}").sample)
    assert _files(d) == before


def test_failed_source_waits_for_shard_writes(tmp_path, monkeypatch):
    """Making a later source fails while web shards are still being compressed: the error reaches the caller only
    once no compression thread is left writing into the temp dir (a retry would otherwise receive its files)."""
    import threading
    import time

    import mixlake.sample.generate as gen

    real = gen._write_gzip

    def slow(path, data):
        time.sleep(1.0)
        real(path, data)

    def broken_warc(pages):
        raise ValueError("warc writer broke")

    monkeypatch.setattr(gen, "_write_gzip", slow)
    monkeypatch.setattr(gen, "_warc_bytes", broken_warc)
    with pytest.raises(ValueError, match="warc writer broke"):
        generate_sample(compose("sample.scale=0.05", f"sample.dir={tmp_path / 's'}").sample)
    assert not [t for t in threading.enumerate() if t.name.startswith("mixlake-sample-gzip")]
    assert not (tmp_path / "s").exists()
