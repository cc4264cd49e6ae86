"""Format readers on planted files (no Spark): every record is a doc, a quarantine row or a counted skip."""

import gzip
import io
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import realdata
from mixlake.config import SourceConfig
from mixlake.ingest.readers import make_doc_id, read_records


def src(fmt: str, **kw) -> SourceConfig:
    return SourceConfig(name="s", path="", format=fmt, **kw)


def kinds(records) -> Counter:
    return Counter((r.kind, r.reason) for r in records)


PLANTED = [
    b'{"id": 1, "text": "good one", "url": "u1", "lang": "en"}',
    b'{"id": 2, "text": "broken',
    b'{"id": 3, "text": "caf\xe9"}',
    b'{"id": 4, "text": "  "}',
    b'{"id": 5, "body": "x"}',
    b'[1, 2]',
    b'',
    b'{"id": 6, "text": 42}',
    b'{"id": 7, "text": "good two"}',
]


def test_jsonl_planted_bad_records(tmp_path):
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(gzip.compress(b"\n".join(PLANTED) + b"\n"))
    recs = list(read_records(str(p), "a.jsonl.gz", src("jsonl"), 16))
    assert kinds(recs) == Counter({("doc", None): 2, ("quarantine", "malformed_json"): 1,
                                   ("quarantine", "invalid_utf8"): 1, ("quarantine", "empty_text"): 1,
                                   ("quarantine", "missing_text_field"): 1, ("quarantine", "not_a_json_object"): 1,
                                   ("quarantine", "text_not_a_string"): 1})
    docs = [r for r in recs if r.kind == "doc"]
    assert docs[0].source_id == "1" and docs[0].url == "u1" and json.loads(docs[0].meta) == {"lang": "en"}
    assert docs[0].offset == 1 and docs[1].offset == 9  # line numbers; the blank line is not a record
    bad = next(r for r in recs if r.reason == "invalid_utf8")
    assert bad.raw == PLANTED[2][:16]  # raw bytes kept, truncated to max_raw_bytes


def test_jsonl_truncated_gzip_keeps_records_before_the_cut(tmp_path):
    lines = [json.dumps({"id": i, "text": f"document number {i} " * 20}).encode() for i in range(200)]
    blob = gzip.compress(b"\n".join(lines) + b"\n")
    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(blob[: len(blob) // 2])
    recs = list(read_records(str(p), "t.jsonl.gz", src("jsonl"), 64))
    k = kinds(recs)
    assert k[("quarantine", "corrupt_compression:EOFError")] == 1
    assert 0 < k[("doc", None)] < 200
    assert recs[-1].kind == "quarantine"


def test_jsonl_zstd(tmp_path):
    p = tmp_path / "z.jsonl.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "a"}\n{"text": "b"}\n'))
    recs = list(read_records(str(p), "z.jsonl.zst", src("jsonl"), 64))
    assert [r.text for r in recs] == ["a", "b"]
    assert all(r.source_id is None for r in recs)
    # no id: the position keys the doc_id
    assert recs[0].doc_id == make_doc_id("s", None, "z.jsonl.zst", 1) != recs[1].doc_id


def test_text_separator_and_whole_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"one\nline\n%\ntwo\n%\n%\nthree\xff\n")
    recs = list(read_records(str(p), "f", src("text", separator="%"), 64))
    assert [(r.kind, r.text) for r in recs] == [("doc", "one\nline"), ("doc", "two"), ("quarantine", None)]
    assert recs[2].reason == "invalid_utf8"
    assert recs[1].offset == len(b"one\nline\n%\n")
    whole = list(read_records(str(p), "f", src("text"), 64))
    assert len(whole) == 1 and whole[0].reason == "invalid_utf8"
    (tmp_path / "g").write_text("a whole document\n")
    assert [r.text for r in read_records(str(tmp_path / "g"), "g", src("text"), 64)] == ["a whole document"]


def test_parquet_row_groups(tmp_path):
    rows = [{"id": f"r{i}", "text": f"text {i}" if i != 3 else "", "title": f"t{i}"} for i in range(10)]
    p = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p, row_group_size=4)
    all_recs = list(read_records(str(p), "x.parquet", src("parquet"), 64))
    assert kinds(all_recs) == Counter({("doc", None): 9, ("quarantine", "empty_text"): 1})
    part = list(read_records(str(p), "x.parquet", src("parquet"), 64, row_groups=[1]))
    assert [r.offset for r in part] == [4, 5, 6, 7]
    assert json.loads(all_recs[0].meta) == {"title": "t0"}


def test_warc_sample_pages(tmp_path):
    import numpy as np

    from mixlake.sample.generate import _html_page, _warc_bytes

    html = _html_page("A Title", "First paragraph here.\n\nSecond paragraph there.", np.random.default_rng(0))
    blob = _warc_bytes([("https://x.example/1", html, 1), ("https://x.example/2", html, 2)])
    p = tmp_path / "c.warc.gz"
    p.write_bytes(blob)
    recs = list(read_records(str(p), "c.warc.gz", src("warc"), 64))
    assert kinds(recs) == Counter({("doc", None): 2, ("skip", "warc_request_record"): 2})
    doc = next(r for r in recs if r.kind == "doc")
    assert "First paragraph here." in doc.text and "All rights reserved" not in doc.text
    assert doc.url == "https://x.example/1" and doc.source_id.startswith("<urn:uuid:")
    t = tmp_path / "t.warc.gz"
    t.write_bytes(blob[: int(len(blob) * 0.8)])
    k = kinds(read_records(str(t), "t.warc.gz", src("warc"), 64))
    assert k[("doc", None)] == 1 and sum(v for (kind, _), v in k.items() if kind == "quarantine") == 1


@pytest.mark.parametrize("name,expect_docs,expect_quarantine", [
    ("warcio/example.warc.gz", 1, 0),
    ("warcio/example-bad.warc.gz.bad", 0, 1),
    ("warcio/example-trunc.warc", 0, 1),
    ("warcio/example-wrong-chunks.warc.gz", 0, 2),
    ("resiliparse/warcfile.warc.gz", 16, 0),
    ("dolma/sample-0000.warc.gz", 22, 0),
])
def test_real_warc_fixtures(name, expect_docs, expect_quarantine):
    path = realdata("warc") / name
    recs = list(read_records(str(path), name, src("warc"), 64))
    k = Counter(r.kind for r in recs)
    assert k["doc"] == expect_docs
    assert k["quarantine"] == expect_quarantine
    assert all(r.text.strip() for r in recs if r.kind == "doc")


def test_real_wet_fixture():
    path = realdata("warc") / "commoncrawl-whirlwind" / "whirlwind.warc.wet.gz"
    recs = list(read_records(str(path), "w", src("wet"), 64))
    docs = [r for r in recs if r.kind == "doc"]
    assert len(docs) == 1 and len(docs[0].text) > 100 and docs[0].url.startswith("http")


def test_unreadable_file_is_quarantined(tmp_path):
    recs = list(read_records(str(tmp_path / "missing.jsonl"), "missing.jsonl", src("jsonl"), 64))
    assert len(recs) == 1 and recs[0].kind == "quarantine" and recs[0].reason.startswith("unreadable_file")


def test_raw_bytes_bounded():
    big = io.BytesIO()
    big.write(b"x" * 10)
    assert len(big.getvalue()) == 10
