"""Format readers: one raw file (or a slice of one) → a stream of records, never an exception.

Each reader yields :class:`Record` values of three kinds:

* ``doc`` — a document (text plus id/url/meta),
* ``quarantine`` — an input record that could not become a document, with a ``reason`` and its raw bytes
  (truncated to ``max_raw_bytes``): malformed JSON, invalid UTF-8, empty text, a truncated gzip/WARC, ...
* ``skip`` — an input record that is not a document by design, with a ``reason`` (WARC request/metadata records,
  non-HTML responses). Skips are counted in the per-file accounting, not stored.

So for every file: records read = documents + quarantined + skipped. A reader stops at an unrecoverable error
(truncated compression) after emitting one quarantine record for it; everything before it is kept. A WARC/WET
reader resynchronises on the next record after a bad one (the skipped bytes are one quarantine row).

What one record may cost is bounded: a record (JSONL line, text block, Parquet text, WARC payload) longer than
``max_doc_bytes`` is quarantined as ``too_large`` with its first ``max_raw_bytes`` kept, without holding more of it
than the bound; JSON nested deeper than the decoder's recursion limit is ``json_too_deep``; any other exception
raised while decoding one record is ``decode_error:<type>``. Text leaves ingest as valid Unicode: code points that
cannot be UTF-8 (lone surrogates, legal in JSON as ``"\ud800"``) are replaced with U+FFFD and the record is counted
as ``repaired`` in ``ingest_files``.

Transient versus corrupt: storage faults (network, throttling, a vanished file) reach a reader as
:class:`~mixlake.errors.SourceReadError` from :func:`mixlake.storage.open_input` and are never caught here — the
Spark task fails and is retried. Everything else that goes wrong inside bytes that were read is the file's own
corruption and becomes a quarantine row.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

import pyarrow as pa

from mixlake.config import SourceConfig
from mixlake.errors import SourceReadError
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
    repaired: bool = False  # invalid code points in text/meta/ids were replaced with U+FFFD


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
    head = f.peek(4)[:4]
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if head[:4] == ZSTD_MAGIC:
        return io.BufferedReader(_ZstdStream(f))
    return f


class _ZstdStream(io.RawIOBase):
    """Decompressed zstd (any number of frames) that raises ``EOFError`` when the input ends inside a frame.

    ``zstandard``'s ``stream_reader`` returns a clean end of stream for a file cut in the middle of a frame — the
    records after the cut would vanish without a trace; a ``decompressobj`` per frame tells whether it finished.
    """

    def __init__(self, f: IO[bytes]) -> None:
        import zstandard

        super().__init__()
        self._f = f
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._d = self._new()
        self._started = False  # the current frame has received input
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            chunk = self._f.read(1 << 16)
            if not chunk:
                if self._started and not self._d.eof:
                    raise EOFError("zstd stream ends inside a frame (truncated)")
                return 0
            out = []
            while chunk:
                self._started = True
                out.append(self._d.decompress(chunk))
                chunk = self._d.unused_data if self._d.eof else b""
                if self._d.eof:
                    self._d, self._started = self._new(), False
            self._buf = b"".join(out)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            super().close()


# Corruption of a compressed stream that was read: a truncated stream (EOFError), bad deflate data, a bad header or
# CRC or garbage after the last member (BadGzipFile). A bare OSError is not here: that is what storage faults look like.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile)
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


def valid_unicode(s: str) -> tuple[str, bool]:
    """``s`` with every code point that cannot be encoded as UTF-8 (lone surrogates) replaced by U+FFFD, and whether
    anything was replaced. Surrogate pairs split into two code points are joined back."""
    if s.isascii():
        return s, False
    try:
        s.encode("utf-8")
        return s, False
    except UnicodeEncodeError:
        return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace"), True


def _doc_or_empty(src: SourceConfig, relpath: str, offset: int, text: str, source_id: str | None,
                  url: str | None, meta: str | None, raw: _Raw, raw_bytes: bytes) -> Record:
    text, r1 = valid_unicode(text)
    repaired = r1
    if meta is not None:
        meta, r = valid_unicode(meta)
        repaired |= r
    if source_id is not None:
        source_id, r = valid_unicode(source_id)
        repaired |= r
    if url is not None:
        url, r = valid_unicode(url)
        repaired |= r
    if not text.strip():
        return Record("quarantine", offset, source_id=source_id, url=url, reason="empty_text", raw=raw(raw_bytes))
    return Record("doc", offset, doc_id=make_doc_id(src.name, source_id, relpath, offset), source_id=source_id,
                  url=url, text=text, meta=meta, repaired=repaired)


def _too_large(offset: int, raw: _Raw, prefix: bytes, source_id: str | None = None,
               url: str | None = None) -> Record:
    return Record("quarantine", offset, source_id=source_id, url=url, reason="too_large", raw=raw(prefix))


def _jsonl_record(body: bytes, lineno: int, src: SourceConfig, relpath: str, exclude: set[str], raw: _Raw) -> Record:
    try:
        s = body.decode("utf-8")
    except UnicodeDecodeError:
        return Record("quarantine", lineno, reason="invalid_utf8", raw=raw(body))
    try:
        obj = json.loads(s)
    except RecursionError:
        return Record("quarantine", lineno, reason="json_too_deep", raw=raw(body))
    except ValueError:
        return Record("quarantine", lineno, reason="malformed_json", raw=raw(body))
    if not isinstance(obj, dict):
        return Record("quarantine", lineno, reason="not_a_json_object", raw=raw(body))
    source_id = _id_str(obj.get(src.id_field)) if src.id_field else None
    url = _id_str(obj.get(src.url_field)) if src.url_field else None
    if src.text_field not in obj:
        return Record("quarantine", lineno, source_id=source_id, url=url, reason="missing_text_field", raw=raw(body))
    text = obj[src.text_field]
    if not isinstance(text, str):
        return Record("quarantine", lineno, source_id=source_id, url=url, reason="text_not_a_string", raw=raw(body))
    return _doc_or_empty(src, relpath, lineno, text, source_id, url, _meta_json(obj, exclude), raw, body)


def _isolated(make: Any, offset: int, raw: _Raw, body: bytes) -> Record:
    """One record's decoding; whatever it raises is that record's problem, never the file's or the job's."""
    try:
        return make()
    except RecursionError:
        return Record("quarantine", offset, reason="json_too_deep", raw=raw(body))
    except SourceReadError:
        raise
    except Exception as e:  # per-record isolation: that record is quarantined with the error's type
        return Record("quarantine", offset, reason=f"decode_error:{type(e).__name__}", raw=raw(body))


def _read_line(f: IO[bytes], max_bytes: int) -> tuple[bytes, bool]:
    """(line, fits): a line of at most ``max_bytes`` bytes (plus its newline); a longer one returns its prefix and
    ``False``, and the rest of it is consumed in 1 MiB steps, never held whole."""
    line = f.readline(max_bytes + 2)
    if len(line) <= max_bytes or (line.endswith(b"\n") and len(line.rstrip(b"\r\n")) <= max_bytes):
        return line, True
    if not line.endswith(b"\n"):
        while True:
            chunk = f.readline(1 << 20)
            if not chunk or chunk.endswith(b"\n"):
                break
    return line[:max_bytes], False


def read_jsonl(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
               s3: S3Config | None = None, max_doc_bytes: int = 10_000_000) -> Iterator[Record]:
    """JSON Lines (plain, .gz, .zst); one object per line. Blank lines are not records."""
    raw = _Raw(max_raw_bytes)
    exclude = {src.text_field, src.id_field or "", src.url_field or ""}
    lineno = 0
    with open_decompressed(path, s3) as f:
        while True:
            try:
                line, fits = _read_line(f, max_doc_bytes)
            except DECOMPRESSION_ERRORS as e:
                yield Record("quarantine", lineno + 1, reason=f"corrupt_compression:{type(e).__name__}", raw=None)
                return
            if not line:
                return
            lineno += 1
            if not fits:
                yield _too_large(lineno, raw, line)
                continue
            body = line.rstrip(b"\r\n")
            if lineno == 1 and body.startswith(b"\xef\xbb\xbf"):  # a byte-order mark opening the file
                body = body[3:]
            if not body.strip():
                continue
            yield _isolated(lambda b=body, n=lineno: _jsonl_record(b, n, src, relpath, exclude, raw), lineno, raw, body)


def read_text(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
              s3: S3Config | None = None, max_doc_bytes: int = 10_000_000) -> Iterator[Record]:
    """Plain text: one document per file, or per block between lines matching ``separator`` (e.g. ``%`` lines)."""
    raw = _Raw(max_raw_bytes)
    sep = re.compile(src.separator.encode()) if src.separator else None
    buf: list[bytes] = []
    size = 0  # bytes of the current block (kept only up to max_doc_bytes)
    start = 0
    pos = 0

    def decode(block: bytes, offset: int) -> Record:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return Record("quarantine", offset, reason="invalid_utf8", raw=raw(block))
        return _doc_or_empty(src, relpath, offset, text.strip("\n"), None, None, None, raw, block)

    def emit() -> Record:
        block = b"".join(buf)
        if size > max_doc_bytes:
            return _too_large(start, raw, block)
        return _isolated(lambda: decode(block, start), start, raw, block)

    with open_decompressed(path, s3) as f:
        while True:
            try:
                line = f.readline(1 << 20)
            except DECOMPRESSION_ERRORS as e:
                if size:
                    yield emit()
                yield Record("quarantine", pos, reason=f"corrupt_compression:{type(e).__name__}")
                return
            if not line:
                break
            if sep is not None and line.endswith(b"\n") and sep.fullmatch(line.rstrip(b"\r\n")):
                if size:
                    yield emit()
                buf, size = [], 0
                pos += len(line)
                start = pos
                continue
            size += len(line)
            if size <= max_doc_bytes + 1:  # keep what the record may be, and no more
                buf.append(line)
            pos += len(line)
    if size:
        yield emit()
    elif sep is None:
        yield Record("quarantine", 0, reason="empty_text", raw=b"")


# What pyarrow raises for a Parquet file's own damage (bad magic, a cut footer, undecodable pages); storage faults
# arrive as SourceReadError instead (see mixlake.storage.parquet_file).
PARQUET_ERRORS: tuple[type[BaseException], ...] = (pa.ArrowException, OSError, ValueError, EOFError)


def _parquet_row(obj: dict[str, Any], offset: int, src: SourceConfig, relpath: str, exclude: set[str], raw: _Raw,
                 body: bytes, max_doc_bytes: int) -> Record:
    source_id = _id_str(obj.get(src.id_field)) if src.id_field else None
    url = _id_str(obj.get(src.url_field)) if src.url_field else None
    text = obj.get(src.text_field)
    if not isinstance(text, str):
        return Record("quarantine", offset, source_id=source_id, url=url,
                      reason="missing_text_field" if text is None else "text_not_a_string", raw=raw(body))
    if len(text) > max_doc_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > max_doc_bytes:
        return _too_large(offset, raw, text[:raw.max].encode("utf-8", "replace"), source_id, url)
    return _doc_or_empty(src, relpath, offset, text, source_id, url, _meta_json(obj, exclude), raw, body)


def read_parquet(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
                 row_groups: list[int] | None = None, s3: S3Config | None = None,
                 max_doc_bytes: int = 10_000_000) -> Iterator[Record]:
    """Parquet: one document per row; ``row_groups`` selects a slice of the file (one reader task each)."""

    raw = _Raw(max_raw_bytes)
    exclude = {src.text_field, src.id_field or "", src.url_field or ""}
    try:
        pf = parquet_file(path, s3)
    except PARQUET_ERRORS as e:
        yield Record("quarantine", 0, reason=f"unreadable_parquet:{type(e).__name__}", raw=raw(str(e).encode()))
        return
    with pf:
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
            except PARQUET_ERRORS as e:
                n = pf.metadata.row_group(g).num_rows
                for i in range(n):
                    yield Record("quarantine", base + i, reason=f"unreadable_row_group:{type(e).__name__}")
                continue
            for i, obj in enumerate(rows):
                offset = base + i
                try:
                    body = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)[:max_raw_bytes].encode(
                        "utf-8", "replace")
                except (RecursionError, ValueError):
                    body = b""
                yield _isolated(lambda o=obj, off=offset, b=body: _parquet_row(o, off, src, relpath, exclude, raw, b,
                                                                                max_doc_bytes), offset, raw, body)


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


def _read_body(rec: Any, it: Any, src: SourceConfig, max_doc_bytes: int) -> tuple[bytes, int, str | None]:
    """(payload — at most ``max_doc_bytes + 1`` bytes of it, record offset, problem or None); the offset is only
    known once the record is read."""
    body = rec.content_stream().read(max_doc_bytes + 1)
    offset = it.get_record_offset()  # reads the rest of the record, so a too-large one is skipped, not held
    if len(body) > max_doc_bytes:
        return body, offset, "too_large"
    return body, offset, _digest_problem(rec) if src.verify_digests else None


@dataclass(frozen=True)
class _WarcFailure:
    """Where (and why) reading stopped."""

    start: int  # file offset of the record warcio (or zlib, for a gzip member) could not read
    error: BaseException | None = None


def _warc_records(f: IO[bytes], base: int, relpath: str, src: SourceConfig, raw: _Raw,
                  max_doc_bytes: int) -> Iterator[Record | _WarcFailure]:
    """Records of the WARC/WET in ``f`` from file offset ``base``; ends with a :class:`_WarcFailure` when warcio
    cannot read a record (the caller resynchronises)."""
    from warcio.archiveiterator import ArchiveIterator

    f.seek(base)
    last_end = base  # warcio's offsets are positions in the file (it starts from f.tell())
    seen = False
    it = ArchiveIterator(f, arc2warc=True, check_digests=True)
    while True:
        offset = last_end
        try:
            if seen:  # the previous record has been read to its end by now
                end = it.get_record_offset() + it.get_record_length()
                if end <= last_end:  # warcio lost its place in a damaged stream: resynchronise from what we know
                    raise ValueError(f"warcio reported a record ending at {end}, before {last_end}")
                last_end = offset = end
            rec = next(it)
            seen = True
            rtype = rec.rec_type
            record_id = rec.rec_headers.get_header("WARC-Record-ID")
            url = rec.rec_headers.get_header("WARC-Target-URI")
            if src.format == "wet":
                if rtype != "conversion":
                    yield Record("skip", it.get_record_offset(), reason=f"warc_{rtype}_record")
                    continue
                body, offset, bad = _read_body(rec, it, src, max_doc_bytes)
                if bad:
                    yield Record("quarantine", offset, source_id=record_id, url=url, reason=bad, raw=raw(body))
                    continue

                def wet_doc(body: bytes = body, offset: int = offset, record_id: str = record_id,
                            url: str = url) -> Record:
                    try:
                        text = body.decode("utf-8")
                    except UnicodeDecodeError:
                        return Record("quarantine", offset, source_id=record_id, url=url, reason="invalid_utf8",
                                      raw=raw(body))
                    return _doc_or_empty(src, relpath, offset, text, record_id, url, None, raw, body)

                yield _isolated(wet_doc, offset, raw, body)
                continue
            if rtype not in ("response", "resource"):
                yield Record("skip", it.get_record_offset(), reason=f"warc_{rtype}_record")
                continue
            if rtype == "response" and rec.http_headers is not None:
                ctype = (rec.http_headers.get_header("Content-Type") or "").lower()
                status = rec.http_headers.get_statuscode() or ""
            else:
                ctype = (rec.rec_headers.get_header("Content-Type") or "").lower()
                status = "200"
            if "html" not in ctype:
                yield Record("skip", it.get_record_offset(), reason="warc_non_html_response")
                continue
            if not str(status).startswith("2"):
                yield Record("skip", it.get_record_offset(), reason="warc_non_2xx_response")
                continue
            body, offset, bad = _read_body(rec, it, src, max_doc_bytes)
            warc_date = rec.rec_headers.get_header("WARC-Date")
        except StopIteration:
            # warcio ends silently on a gzip member cut short: bytes left after the last whole record mean the
            # file was truncated.
            f.seek(last_end)
            tail = f.read(max(raw.max, 64))
            if tail.strip(b"\x00\r\n \t"):
                yield Record("quarantine", last_end, reason="warc_truncated_tail", raw=raw(tail))
            return
        except SourceReadError:
            raise
        except Exception as e:  # a malformed record (warcio has many error types): resynchronise
            yield _WarcFailure(offset, e)
            return
        if bad:
            yield Record("quarantine", offset, source_id=record_id, url=url, reason=bad, raw=raw(body))
            continue

        def html_doc(body: bytes = body, offset: int = offset, record_id: str = record_id, url: str = url,
                     ctype: str = ctype, warc_date: str = warc_date) -> Record:
            try:
                text = html_to_text(body, src.html_extractor)
            except SourceReadError:
                raise
            except Exception as e:  # an extractor failing on one page quarantines that page
                return Record("quarantine", offset, source_id=record_id, url=url,
                              reason=f"html_extraction_failed:{type(e).__name__}", raw=raw(body))
            meta = json.dumps({"content_type": ctype, "warc_date": warc_date}, sort_keys=True)
            return _doc_or_empty(src, relpath, offset, text, record_id, url, meta, raw, body)

        yield _isolated(html_doc, offset, raw, body)


def _next_record_start(f: IO[bytes], start: int, gzipped: bool) -> int | None:
    """File offset of the next place a WARC record may start at or after ``start``: a gzip member header for
    per-record gzip (``.warc.gz``), a ``WARC/1.`` line for uncompressed WARC; None at the end of the file."""
    pattern = GZIP_MEMBER_MAGIC if gzipped else b"\nWARC/1."
    skip = 0 if gzipped else 1
    f.seek(start - skip if not gzipped and start > 0 else start)
    pos = f.tell()
    carry = b""
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return None
        data = carry + chunk
        i = data.find(pattern)
        if i >= 0:
            return pos - len(carry) + i + skip
        carry = data[-(len(pattern) - 1):]
        pos += len(chunk)


GZIP_MEMBER_MAGIC = b"\x1f\x8b\x08"  # gzip magic + deflate
_CHUNK = 1 << 16
_SPOOL_BYTES = 64 << 20  # a decompressed member larger than this goes to a temporary file


@dataclass
class _GzipMember:
    """One gzip member of a ``.warc.gz``: where it starts and ends in the file, its decompressed bytes, and
    whether it is whole (``complete``: zlib reached the member's end and its CRC-32 and length matched) or
    ``corrupt`` (zlib rejected it); neither means the file ended inside it (truncated)."""

    start: int
    end: int
    data: IO[bytes]
    complete: bool
    corrupt: bool


def _gzip_members(f: IO[bytes], start: int) -> Iterator[_GzipMember]:
    """The gzip members of ``f`` from ``start``, each decompressed and checked by zlib (CRC-32 and length) before
    anything reads it — a damaged member is never half-parsed. After a corrupt member the caller moves on with
    :func:`_next_record_start` (``f`` is left wherever; each call seeks)."""
    import tempfile

    f.seek(start)
    pending = b""  # bytes read past the previous member's end
    pos = start
    while True:
        data = pending
        while len(data) < len(GZIP_MEMBER_MAGIC):
            more = f.read(_CHUNK)
            if not more:
                break
            data += more
        if not data:
            return
        if not data.startswith(GZIP_MEMBER_MAGIC):
            if not (data + f.read(_CHUNK)).strip(b"\x00\r\n \t"):
                return  # padding after the last member
            yield _GzipMember(pos, pos, io.BytesIO(), complete=False, corrupt=True)
            return
        out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 — closed by the consumer
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        consumed = 0
        corrupt = False
        while True:
            try:
                out.write(d.decompress(data))
            except zlib.error:
                corrupt = True
                break
            if d.eof:
                pending = d.unused_data
                consumed += len(data) - len(pending)
                break
            consumed += len(data)
            data = f.read(_CHUNK)
            if not data:
                break
        out.seek(0)
        member = _GzipMember(pos, pos + consumed, out, complete=d.eof, corrupt=corrupt)
        yield member
        if corrupt:
            return  # the caller resynchronises
        pos = member.end
        if not member.complete:
            return  # the file ended inside this member


def _skipping_bad_regions(read_from: Callable[[int], Iterator[Record | _WarcFailure]],
                          bad_row: Callable[[_WarcFailure], Record],
                          resume: Callable[[int], int | None]) -> Iterator[Record]:
    """The records of ``read_from(0)``; when it reports a failure, ``bad_row`` of it (one row per bad region: failures
    with no record between them are one region, e.g. a false resync point inside it) and reading goes on from
    ``resume(failure.start + 1)`` — until ``resume`` finds no further place to start."""
    pos = 0
    pending: Record | None = None  # the bad region being skipped, reported once the reader is back in step
    while True:
        failure: _WarcFailure | None = None
        for item in read_from(pos):
            if isinstance(item, _WarcFailure):
                failure = item
                break
            if pending is not None:
                yield pending
                pending = None
            yield item
        if failure is None:
            if pending is not None:
                yield pending
            return
        if pending is None:
            pending = bad_row(failure)
        nxt = resume(failure.start + 1)
        if nxt is None:
            yield pending
            return
        pos = nxt


def _plain_warc(f: IO[bytes], relpath: str, src: SourceConfig, raw: _Raw, max_doc_bytes: int) -> Iterator[Record]:
    """An uncompressed WARC/WET: records in order; after a record warcio cannot read, resynchronise on the next
    ``WARC/1.`` line (the skipped bytes are one ``warc_read_error:<type>`` row)."""

    def bad_row(failure: _WarcFailure) -> Record:
        f.seek(failure.start)
        head = f.read(raw.max + 64)
        start = failure.start + len(head) - len(head.lstrip(b"\r\n"))  # past the previous record's CRLFs
        return Record("quarantine", start, reason=f"warc_read_error:{type(failure.error).__name__}",
                      raw=raw(head.lstrip(b"\r\n")))

    yield from _skipping_bad_regions(lambda base: _warc_records(f, base, relpath, src, raw, max_doc_bytes), bad_row,
                                     lambda start: _next_record_start(f, start, gzipped=False))


def _member_records(f: IO[bytes], pos: int, relpath: str, src: SourceConfig, raw: _Raw,
                    max_doc_bytes: int) -> Iterator[Record | _WarcFailure]:
    """The records of the gzip members from ``pos`` on, each member parsed as an uncompressed WARC; ends with a
    :class:`_WarcFailure` at the first member zlib rejects."""
    for member in _gzip_members(f, pos):
        if not member.complete and not member.corrupt and _next_record_start(f, member.start + 1, True):
            # the file "ended inside" a member, but another gzip header follows: damage made zlib read on
            # into the next members — a corrupt member, not a cut file
            member.corrupt = True
        if member.corrupt:
            yield _WarcFailure(member.start)
            return
        with member.data:
            truncation_seen = False
            for rec in _plain_warc(member.data, relpath, src, raw, max_doc_bytes):
                truncation_seen |= rec.reason in ("warc_truncated_tail", "warc_truncated_record")
                yield replace(rec, offset=member.start + rec.offset)
        if not member.complete and not truncation_seen:  # cut inside the gzip header or trailer
            f.seek(member.start)
            yield Record("quarantine", member.start, reason="warc_truncated_tail", raw=raw(f.read(raw.max)))


def _gzipped_warc(f: IO[bytes], relpath: str, src: SourceConfig, raw: _Raw,
                  max_doc_bytes: int) -> Iterator[Record]:
    """A ``.warc.gz``, read one gzip member at a time: a whole member is parsed as an uncompressed WARC (offsets: the
    member's offset in the file plus the record's position inside the member — for per-record gzip, the member
    offset that CDX indexes use); a member zlib rejects is skipped whole, the reader resynchronises on the next gzip
    header, and the bad region is one ``warc_corrupt_gzip_member`` row; a member cut short by the end of the file
    has its whole records read and its tail reported as truncated."""

    def bad_row(failure: _WarcFailure) -> Record:
        f.seek(failure.start)
        return Record("quarantine", failure.start, reason="warc_corrupt_gzip_member", raw=raw(f.read(raw.max)))

    yield from _skipping_bad_regions(lambda pos: _member_records(f, pos, relpath, src, raw, max_doc_bytes), bad_row,
                                     lambda start: _next_record_start(f, start, gzipped=True))


def read_warc(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
              s3: S3Config | None = None, max_doc_bytes: int = 10_000_000) -> Iterator[Record]:
    """WARC (HTML responses → main text) and WET (``conversion`` records taken as they are), via warcio.

    A ``.warc.gz`` is read member by member (:func:`_gzipped_warc`): zlib checks each member's CRC before warcio sees
    its bytes, a damaged member is one ``warc_corrupt_gzip_member`` row and the reader goes on at the next gzip header
    (WARC 1.1 recommends one member per record, as Common Crawl writes them); a file gzipped as one stream is one
    member. In an uncompressed WARC, after a record warcio cannot read the reader resynchronises on the next
    ``WARC/1.`` line; the skipped bytes are one ``warc_read_error:<type>`` row at the bad record's offset.
    """
    raw = _Raw(max_raw_bytes)
    with open_input(path, s3) as f:
        if f.peek(2)[:2] == GZIP_MAGIC or path.endswith(".gz"):  # the name too: the first member may be the bad one
            yield from _gzipped_warc(f, relpath, src, raw, max_doc_bytes)
        else:
            yield from _plain_warc(f, relpath, src, raw, max_doc_bytes)


def read_records(path: str, relpath: str, src: SourceConfig, max_raw_bytes: int,
                 row_groups: list[int] | None = None, s3: S3Config | None = None,
                 max_doc_bytes: int = 10_000_000) -> Iterator[Record]:
    """Dispatch on ``src.format``. Storage faults propagate as :class:`~mixlake.errors.SourceReadError`."""
    if src.format == "jsonl":
        yield from read_jsonl(path, relpath, src, max_raw_bytes, s3, max_doc_bytes)
    elif src.format == "text":
        yield from read_text(path, relpath, src, max_raw_bytes, s3, max_doc_bytes)
    elif src.format == "parquet":
        yield from read_parquet(path, relpath, src, max_raw_bytes, row_groups, s3, max_doc_bytes)
    elif src.format in ("warc", "wet"):
        yield from read_warc(path, relpath, src, max_raw_bytes, s3, max_doc_bytes)
    else:  # validated at compose; kept for direct callers
        raise ValueError(f"unknown format {src.format!r}")
