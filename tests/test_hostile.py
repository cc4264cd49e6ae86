"""A hostile corpus through the whole default pipeline (issue 14): every good record arrives, every bad one is a
quarantine row with its reason, per-file accounting holds, and no record stops the run.

The corpus is generated here (not stored): the two records that used to kill ingest (100,000-deep nesting, an
escaped lone surrogate), malformed and non-object JSON, non-string text, BOM + CRLF, no final newline, NUL bytes,
CJK/RTL/emoji, duplicate ids, a 30 MB single-line document (over ``ingest.max_doc_bytes``), a 2 MB word without
spaces and a 500,000-line document (under it: they must flow through quality, dedup, spans, tokens and MDS without
exhausting a worker), empty and zero-byte files, a truncated ``.zst``, a gzip with garbage after its stream, a
Parquet file cut in the middle and a WARC with a damaged record in the middle.
"""

from __future__ import annotations

import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import compose
from mixlake.delta import table_path
from mixlake.pipeline import run_pipeline

pytestmark = pytest.mark.slow

STAGES = "stages=[ingest,quality,dedup,spans,tokens,mix,write_mds,verify_mds,report]"


def _prose(rng: random.Random, n_words: int) -> str:
    words = ["the", "river", "crossed", "a", "valley", "where", "farmers", "grew", "wheat", "and", "barley", "in",
             "summer", "while", "children", "walked", "to", "school", "along", "old", "stone", "roads", "of", "town"]
    sents = []
    for _ in range(max(1, n_words // 12)):
        s = " ".join(rng.choice(words) for _ in range(12))
        sents.append(s[0].upper() + s[1:] + ".")
    return " ".join(sents)


def _write_corpus(d) -> dict[str, dict]:
    """Writes the files; returns {id: expectation} for the JSONL source (kind and reason)."""
    rng = random.Random(14)
    expect: dict[str, tuple[str, str | None]] = {}
    lines: list[bytes] = []

    def good(i: str, text: str) -> None:
        lines.append(json.dumps({"id": i, "text": text}, ensure_ascii=False).encode())
        expect[i] = ("doc", None)

    for k in range(40):
        good(f"ok{k}", _prose(rng, 120))
    good("cjk", "東京都の図書館では、毎週末に子供向けの読み聞かせ会が開かれています。" * 8)
    good("rtl", "هذا نص عربي طويل عن المكتبات العامة والقراءة في المدن الكبيرة. " * 10)
    good("emoji", ("Weekend plans 🎉🚴‍♀️ with friends, 🌍 travel notes and more. " * 10))
    good("nul", _prose(rng, 80).replace(" ", "\x00", 3))
    good("bigword", "The word follows: " + "".join(rng.choice("abcdefghij") for _ in range(2_000_000)) + " end.")
    good("manylines", "\n".join(f"l{i}" for i in range(500_000)))  # 4 MB: under max_doc_bytes
    lines.append(b'{"id": "deep", "text": "x", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    expect["deep"] = ("quarantine", "json_too_deep")
    lines.append(b'{"id": "surrogate", "text": "' + _prose(rng, 80).encode() + b' \\ud800 tail."}')
    expect["surrogate"] = ("doc", None)
    lines.append(b'{"id": "malformed", "text": "unterminated')
    lines.append(b'["not", "an", "object"]')
    lines.append(b'{"id": "nonstring", "text": 42}')
    expect["nonstring"] = ("quarantine", "text_not_a_string")
    rng.shuffle(lines)
    lines.insert(len(lines) // 2, json.dumps({"id": "huge", "text": "y" * 30_000_000}).encode())
    lines.append(json.dumps({"id": "ok0", "text": "a duplicate id"}).encode())  # later: duplicate_source_id
    (d / "jsonl").mkdir()
    (d / "jsonl" / "hostile.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines))  # BOM, CRLF, no final newline
    (d / "jsonl" / "zero.jsonl").write_bytes(b"")
    (d / "jsonl" / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    tail = [json.dumps({"id": f"z{k}", "text": _prose(rng, 60)}).encode() for k in range(400)]
    zst = zstandard.ZstdCompressor().compress(b"\n".join(tail) + b"\n")
    (d / "jsonl" / "truncated.jsonl.zst").write_bytes(zst[: len(zst) // 2])
    gz_docs = [json.dumps({"id": f"g{k}", "text": _prose(rng, 60)}).encode() for k in range(20)]
    (d / "jsonl" / "garbage-after.jsonl.gz").write_bytes(gzip.compress(b"\n".join(gz_docs) + b"\n") + b"GARBAGE" * 9)
    for k in range(20):
        expect[f"g{k}"] = ("doc", None)

    (d / "parquet").mkdir()
    pq.write_table(pa.table({"text": [_prose(rng, 60) for _ in range(200)]}), d / "parquet" / "good.parquet")
    pq.write_table(pa.table({"text": [_prose(rng, 60) for _ in range(200)]}), d / "parquet" / "cut.parquet")
    blob = (d / "parquet" / "cut.parquet").read_bytes()
    (d / "parquet" / "cut.parquet").write_bytes(blob[: len(blob) // 2])

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    starts = []
    for k in range(6):
        starts.append(buf.tell())
        html = f"<html><body><article><h1>Page {k}</h1><p>{_prose(rng, 150)}</p></article></body></html>".encode()
        hh = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(f"http://example.com/{k}", "response", payload=io.BytesIO(html),
                                            http_headers=hh))
    warc = bytearray(buf.getvalue())
    warc[starts[3] + 20: starts[3] + 60] = b"\xff" * 40
    (d / "warc").mkdir()
    (d / "warc" / "crawl.warc.gz").write_bytes(bytes(warc))
    return expect


def test_hostile_corpus_through_the_whole_pipeline(spark, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    expect = _write_corpus(src)
    lake = tmp_path / "lake"
    # the hostile source skips the quality rules, so its huge documents also go through dedup, spans, tokens, MDS
    cfg = compose(f"lake={lake}", "sample.enabled=false", STAGES, "budget.tokens=20000", "mds.select=all",
                  "mds.empty_source=skip",
                  f"+sources.hostile.path={src}/jsonl/*", "+sources.hostile.format=jsonl",
                  "+sources.hostile.id_field=id", "+sources.hostile.quality=false",
                  f"+sources.tables.path={src}/parquet/*.parquet", "+sources.tables.format=parquet",
                  f"+sources.crawl.path={src}/warc/*.warc.gz", "+sources.crawl.format=warc")
    results = run_pipeline(spark, cfg)
    assert [r.stage for r in results][-1] == "report"

    def table(name: str):
        return spark.read.format("delta").load(table_path(str(lake), name))

    docs = {r.source_id: r for r in table("documents").filter("source = 'hostile'").collect()}
    quarantine = table("quarantine").collect()
    for i, (kind, reason) in expect.items():
        if kind == "doc":
            assert i in docs, i
        else:
            assert i not in docs and any(q.reason == reason for q in quarantine), (i, reason)
    assert docs["surrogate"].text.endswith(" \ufffd tail.")
    assert docs["ok0"].text != "a duplicate id"
    assert len(docs["bigword"].text) > 2_000_000 and docs["manylines"].text.count("\n") == 499_999
    reasons = sorted((q.source, q.reason.split(":")[0]) for q in quarantine)
    assert reasons == sorted([
        ("hostile", "json_too_deep"), ("hostile", "malformed_json"), ("hostile", "not_a_json_object"),
        ("hostile", "text_not_a_string"), ("hostile", "duplicate_source_id"), ("hostile", "too_large"),
        ("hostile", "corrupt_compression"),  # the truncated .zst (its first records are documents)
        ("hostile", "corrupt_compression"),  # the garbage after the gzip stream (all 20 records before it kept)
        ("tables", "unreadable_parquet"), ("crawl", "warc_corrupt_gzip_member")])
    huge = next(q for q in quarantine if q.reason == "too_large")
    assert huge.raw == b'{"id": "huge", "text": "' + b"y" * (4096 - 24)
    # the crawl: the damaged record is skipped, the reader resynchronises, the 5 others are documents
    assert table("documents").filter("source = 'crawl'").count() == 5
    # every file: records read = documents + quarantined + skipped, against the tables' own rows
    files = table("ingest_files").collect()
    for f in files:
        assert f.records_read == f.documents + f.quarantined + f.skipped, f
        assert f.documents == table("documents").filter(f"file = '{f.file}'").count(), f.file
        assert f.quarantined == table("quarantine").filter(f"file = '{f.file}'").count(), f.file
    assert sum(f.repaired for f in files) == 1
    assert {f.file.rsplit("/", 1)[1] for f in files} >= {"hostile.jsonl", "zero.jsonl", "empty.jsonl.gz",
                                                          "truncated.jsonl.zst", "garbage-after.jsonl.gz",
                                                          "good.parquet", "cut.parquet", "crawl.warc.gz"}
    # and the huge survivors reach the end: MDS written and verified by the streaming reader
    assert [r.stage for r in results if r.stage in ("write_mds", "verify_mds")] == ["write_mds", "verify_mds"]
    (verify,) = [r for r in results if r.stage == "verify_mds"]
    streams = verify.details["streams"]
    assert "hostile" in streams and all(s["ok"] and not s["problems"] for s in streams.values())
    assert streams["hostile"]["samples"] > 1000  # the 2 MB word and the 500,000 lines are in the stream
