"""Format readers: one raw file (or a slice of one) → a stream of records, never an exception.

Each reader yields :class:`Record` values of three kinds:

* ``doc`` — a document (text plus id/url/meta),
* ``quarantine`` — an input record that could not become a document, with a ``reason`` and its raw bytes
  (truncated to ``max_raw_bytes``): malformed JSON, invalid UTF-8, empty text, a truncated gzip/WARC, ...
* ``skip`` — an input record that is not a document by design, with a ``reason`` (WARC request/metadata records,
  non-HTML responses). Skips are counted in the per-file accounting, not stored.

So for every file: records read = documents + quarantined + skipped. A reader stops at an unrecoverable error
(truncated compression) after emitting one quarantine record for it; everything before it is kept.

``offset`` is where the record starts: the 1-based line number for JSONL, the byte offset (in the decompressed
stream) for text files, the byte offset of the WARC record (in the file as stored) for WARC/WET, and the row index
for Parquet.

Pure Python and Spark-free, so each reader is unit-testable on a file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from mixlake.config import SourceConfig
from mixlake.storage import S3Config, open_input, parquet_file

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Record:
    kind: str  # doc | quarantine | skip
    offset: int
    doc_id: str | None = None
    source_id: str | None = None
    url: str | None = None
    text: str | None = None
    meta: str | None = None
    reason: str | None = None
    raw: bytes | None = None


def make_doc_id(source: str, source_id: str | None, relpath: str, offset: int) -> str:
    """Deterministic 128-bit document id (32 hex chars).

    Keyed by the record's own id when it has one (stable across re-crawls and file moves), else by its position
    (file path relative to the source's glob root, and offset). Never by content: exact duplicates must keep
    distinct ids so that dedup can see them.
    """
    key = f"id:{source_id}" if source_id is not None else f"pos:{relpath}:{offset}"
    return hashlib.sha256(f"{source}\x1f{key}".encode()).hexdigest()[:32]


def open_decompressed(path: str, s3: S3Config | None = None) -> IO[bytes]:
    """Open ``path`` (local or a URI) for binary reading, transparently decompressing gzip and zstd (by magic bytes)."""
    f = open_input(path, s3)
    head = f.peek(4)[:4] if hasattr(f, "peek") else b""
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if head[:4] == ZSTD_MAGIC:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader)  # type: ignore[arg-type]
    return f


DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
try:  # zstandard raises its own error type on a truncated/corrupt frame
    import zstandard as _zstd

    DECOMPRESSION_ERRORS = (*DECOMPRESSION_ERRORS, _zstd.ZstdError)
except ImportError:  # pragma: no cover
    pass


class _Raw:
    def __init__(self, max_raw_bytes: int) -> None:
        self.max = max_raw_bytes

    def __call__(self, b: bytes | None) -> bytes | None:
        return None if b is None else bytes(b[: self.max])


def _meta_json(obj: dict[str, Any], exclude: set[str]) -> str | None:
    rest = {k: v for k, v in obj.items() if k not in exclude}
    if not rest:
        return None
    return json.dumps(rest, sort_keys=True, ensure_ascii=False, default=str)


def _id_str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)


def _doc_or_empty(src: SourceConfig, relpath: str, offset: int, text: str, source_id: str | None,
                  url: str | None, meta: str | None, raw: _Raw, raw_bytes: bytes) -> Record:
    if not text.strip():
        return Record("quarantine", offset, source_id=source_id, url=url, reason="empty_text", raw=raw(raw_bytes))
    return Record("doc", offset, doc_id=make_doc_id(src.name, source_id, relpath, offset), source_id=source_id,
                  url=url, text=text, meta=meta)


def read_jsonl(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
               s3: S3Config | None = None) -> Iterator[Record]:
    """JSON Lines (plain, .gz, .zst); one object per line. Blank lines are not records."""
    raw = _Raw(max_raw_bytes)
    exclude = {src.text_field, src.id_field or "", src.url_field or ""}
    lineno = 0
    with open_decompressed(path, s3) as f:
        while True:
            try:
                line = f.readline()
            except DECOMPRESSION_ERRORS as e:
                yield Record("quarantine", lineno + 1, reason=f"corrupt_compression:{type(e).__name__}", raw=None)
                return
            if not line:
                return
            lineno += 1
            body = line.rstrip(b"\r\n")
            if not body.strip():
                continue
            try:
                s = body.decode("utf-8")
            except UnicodeDecodeError:
                yield Record("quarantine", lineno, reason="invalid_utf8", raw=raw(body))
                continue
            try:
                obj = json.loads(s)
            except ValueError:
                yield Record("quarantine", lineno, reason="malformed_json", raw=raw(body))
                continue
            if not isinstance(obj, dict):
                yield Record("quarantine", lineno, reason="not_a_json_object", raw=raw(body))
                continue
            source_id = _id_str(obj.get(src.id_field)) if src.id_field else None
            url = _id_str(obj.get(src.url_field)) if src.url_field else None
            if src.text_field not in obj:
                yield Record("quarantine", lineno, source_id=source_id, url=url, reason="missing_text_field",
                             raw=raw(body))
                continue
            text = obj[src.text_field]
            if not isinstance(text, str):
                yield Record("quarantine", lineno, source_id=source_id, url=url, reason="text_not_a_string",
                             raw=raw(body))
                continue
            yield _doc_or_empty(src, relpath, lineno, text, source_id, url, _meta_json(obj, exclude), raw, body)


def read_text(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
              s3: S3Config | None = None) -> Iterator[Record]:
    """Plain text: one document per file, or per block between lines matching ``separator`` (e.g. ``%`` lines)."""
    raw = _Raw(max_raw_bytes)
    sep = re.compile(src.separator.encode()) if src.separator else None
    buf: list[bytes] = []
    start = 0
    pos = 0

    def emit(block: bytes, offset: int) -> Record:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return Record("quarantine", offset, reason="invalid_utf8", raw=raw(block))
        return _doc_or_empty(src, relpath, offset, text.strip("\n"), None, None, None, raw, block)

    with open_decompressed(path, s3) as f:
        while True:
            try:
                line = f.readline()
            except DECOMPRESSION_ERRORS as e:
                if buf:
                    yield emit(b"".join(buf), start)
                yield Record("quarantine", pos, reason=f"corrupt_compression:{type(e).__name__}")
                return
            if not line:
                break
            if sep is not None and sep.fullmatch(line.rstrip(b"\r\n")):
                if buf:
                    yield emit(b"".join(buf), start)
                buf = []
                pos += len(line)
                start = pos
                continue
            buf.append(line)
            pos += len(line)
    if buf:
        yield emit(b"".join(buf), start)
    elif sep is None:
        yield Record("quarantine", 0, reason="empty_text", raw=b"")


def read_parquet(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
                 row_groups: list[int] | None = None, s3: S3Config | None = None) -> Iterator[Record]:
    """Parquet: one document per row; ``row_groups`` selects a slice of the file (one reader task each)."""

    raw = _Raw(max_raw_bytes)
    exclude = {src.text_field, src.id_field or "", src.url_field or ""}
    try:
        pf = parquet_file(path, s3)
    except Exception as e:
        yield Record("quarantine", 0, reason=f"unreadable_parquet:{type(e).__name__}", raw=None)
        return
    groups = row_groups if row_groups is not None else list(range(pf.num_row_groups))
    if src.text_field not in pf.schema_arrow.names:
        n = sum(pf.metadata.row_group(g).num_rows for g in groups)
        first = sum(pf.metadata.row_group(g).num_rows for g in range(min(groups))) if groups else 0
        for i in range(n):
            yield Record("quarantine", first + i, reason="missing_text_field")
        return
    for g in groups:
        base = sum(pf.metadata.row_group(i).num_rows for i in range(g))
        try:
            rows = pf.read_row_group(g).to_pylist()
        except Exception as e:
            n = pf.metadata.row_group(g).num_rows
            for i in range(n):
                yield Record("quarantine", base + i, reason=f"unreadable_row_group:{type(e).__name__}")
            continue
        for i, obj in enumerate(rows):
            offset = base + i
            source_id = _id_str(obj.get(src.id_field)) if src.id_field else None
            url = _id_str(obj.get(src.url_field)) if src.url_field else None
            text = obj.get(src.text_field)
            body = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
            if not isinstance(text, str):
                yield Record("quarantine", offset, source_id=source_id, url=url,
                             reason="missing_text_field" if text is None else "text_not_a_string", raw=raw(body))
                continue
            yield _doc_or_empty(src, relpath, offset, text, source_id, url, _meta_json(obj, exclude), raw, body)


def html_to_text(html: bytes, extractor: str) -> str:
    """Main text of an HTML page with the configured extractor (see README "HTML extraction" for the choice)."""
    if extractor == "trafilatura":
        import trafilatura
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        return trafilatura.extract(bytes_to_str(html, detect_encoding(html)), include_comments=False) or ""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(bytes_to_str(html, detect_encoding(html)))
    return extract_plain_text(tree, main_content=True, alt_texts=False, links=False)


def _digest_problem(rec: Any) -> str | None:
    """A record whose WARC-Block-Digest fails, or cannot be checked because the record ended early (truncated)."""
    if not rec.rec_headers.get_header("WARC-Block-Digest"):
        return None  # nothing to check against
    passed = rec.digest_checker.passed
    if passed is False:
        return "warc_digest_mismatch"
    if passed is None:
        return "warc_truncated_record"
    return None


def _read_body(rec: Any, it: Any, src: SourceConfig) -> tuple[bytes, int, str | None]:
    """(payload, record offset, digest problem or None); the offset is only known once the record is read."""
    body = rec.content_stream().read()
    offset = it.get_record_offset()
    return body, offset, _digest_problem(rec) if src.verify_digests else None


def read_warc(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
              s3: S3Config | None = None) -> Iterator[Record]:
    """WARC (HTML responses → main text) and WET (``conversion`` records taken as they are), via warcio."""
    from warcio.archiveiterator import ArchiveIterator

    raw = _Raw(max_raw_bytes)
    offset = 0
    last_end = 0
    seen = False
    with open_input(path, s3) as f:
        it = ArchiveIterator(f, arc2warc=True, check_digests=True)
        while True:
            try:
                if seen:  # the previous record has been read to its end by now
                    last_end = it.get_record_offset() + it.get_record_length()
                rec = next(it)
                seen = True
                rtype = rec.rec_type
                record_id = rec.rec_headers.get_header("WARC-Record-ID")
                url = rec.rec_headers.get_header("WARC-Target-URI")
                if src.format == "wet":
                    if rtype != "conversion":
                        offset = it.get_record_offset()  # note: reads the record to its end
                        yield Record("skip", offset, reason=f"warc_{rtype}_record")
                        continue
                    body, offset, bad = _read_body(rec, it, src)
                    if bad:
                        yield Record("quarantine", offset, source_id=record_id, url=url, reason=bad, raw=raw(body))
                        continue
                    try:
                        text = body.decode("utf-8")
                    except UnicodeDecodeError:
                        yield Record("quarantine", offset, source_id=record_id, url=url, reason="invalid_utf8",
                                     raw=raw(body))
                        continue
                    yield _doc_or_empty(src, relpath, offset, text, record_id, url, None, raw, body)
                    continue
                if rtype not in ("response", "resource"):
                    offset = it.get_record_offset()
                    yield Record("skip", offset, reason=f"warc_{rtype}_record")
                    continue
                if rtype == "response" and rec.http_headers is not None:
                    ctype = (rec.http_headers.get_header("Content-Type") or "").lower()
                    status = rec.http_headers.get_statuscode() or ""
                else:
                    ctype = (rec.rec_headers.get_header("Content-Type") or "").lower()
                    status = "200"
                if "html" not in ctype:
                    offset = it.get_record_offset()
                    yield Record("skip", offset, reason="warc_non_html_response")
                    continue
                if not str(status).startswith("2"):
                    offset = it.get_record_offset()
                    yield Record("skip", offset, reason="warc_non_2xx_response")
                    continue
                body, offset, bad = _read_body(rec, it, src)
                if bad:
                    yield Record("quarantine", offset, source_id=record_id, url=url, reason=bad, raw=raw(body))
                    continue
            except StopIteration:
                # warcio ends silently on a gzip member cut short: bytes left after the last whole record mean the
                # file was truncated.
                f.seek(last_end)
                tail = f.read(max(max_raw_bytes, 64))
                if tail.strip(b"\x00\r\n \t"):
                    yield Record("quarantine", last_end, reason="warc_truncated_tail", raw=raw(tail))
                return
            except Exception as e:  # truncated/malformed record: warcio cannot resynchronise, stop this file here
                yield Record("quarantine", offset, reason=f"warc_read_error:{type(e).__name__}",
                             raw=raw(str(e).encode()))
                return
            try:
                text = html_to_text(body, src.html_extractor)
            except Exception as e:
                yield Record("quarantine", offset, source_id=record_id, url=url,
                             reason=f"html_extraction_failed:{type(e).__name__}", raw=raw(body))
                continue
            meta = json.dumps({"content_type": ctype, "warc_date": rec.rec_headers.get_header("WARC-Date")},
                              sort_keys=True)
            yield _doc_or_empty(src, relpath, offset, text, record_id, url, meta, raw, body)


def read_records(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
                 row_groups: list[int] | None = None, s3: S3Config | None = None) -> Iterator[Record]:
    """Dispatch on ``src.format``; a file that cannot even be opened becomes one quarantine record."""
    try:
        if src.format == "jsonl":
            yield from read_jsonl(path, relpath, src, max_raw_bytes, s3)
        elif src.format == "text":
            yield from read_text(path, relpath, src, max_raw_bytes, s3)
        elif src.format == "parquet":
            yield from read_parquet(path, relpath, src, max_raw_bytes, row_groups, s3)
        elif src.format in ("warc", "wet"):
            yield from read_warc(path, relpath, src, max_raw_bytes, s3)
        else:  # validated earlier; kept for direct callers
            raise ValueError(f"unknown format {src.format!r}")
    except OSError as e:
        yield Record("quarantine", 0, reason=f"unreadable_file:{type(e).__name__}", raw=str(e).encode()[:max_raw_bytes])
