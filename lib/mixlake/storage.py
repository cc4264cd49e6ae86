"""Where files live: local paths, mounted paths (``dbfs:/`` → ``/dbfs/``) and S3 (``s3://`` / ``s3a://``).

Spark reads and writes Delta tables through Hadoop's S3A connector (``hadoop-aws``, added to the session's jars when
a configured path is on S3); ``s3://`` is mapped to S3A too, so one URI works everywhere. Everything Python touches
directly — source files read by ingest tasks, MDS shards written by executor tasks, the report, ``streams.yaml`` —
goes through ``pyarrow.fs`` with the same settings (the ``storage`` config group). ``streaming`` reads MDS streams
with boto3, so :func:`streaming_env` exports the endpoint and credentials for it.

Credentials come from ``storage.s3.access_key``/``secret_key``/``session_token`` or, when those are null, from the
standard ``AWS_*`` environment variables of the driver. They are resolved on the driver and travel to executors
inside task closures and Spark's Hadoop configuration (which Spark redacts in its UI and logs); they are never
written to the runs table or the report (masked by key name).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

from pyarrow import fs as pafs

from mixlake.errors import SourceReadError

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


@dataclass
class S3Config:
    """``storage.s3``: an S3 API endpoint (AWS, MinIO, moto, ...)."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:9000; null: AWS (or $AWS_ENDPOINT_URL)
    region: str = "us-east-1"
    path_style: bool | None = None  # null: path-style when an endpoint is set (MinIO, moto), virtual-host on AWS
    access_key: str | None = None  # null: $AWS_ACCESS_KEY_ID
    secret_key: str | None = None  # null: $AWS_SECRET_ACCESS_KEY
    session_token: str | None = None  # null: $AWS_SESSION_TOKEN
    max_attempts: int = 3  # per request of pyarrow's S3 client (AWS standard retries); then the Spark task fails

    def resolved(self) -> S3Config:
        """Nulls filled from the driver's environment (so that executors elsewhere get the same settings)."""
        env = os.environ.get
        return replace(self, endpoint=self.endpoint or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"),
                       access_key=self.access_key or env("AWS_ACCESS_KEY_ID"),
                       secret_key=self.secret_key or env("AWS_SECRET_ACCESS_KEY"),
                       session_token=self.session_token or env("AWS_SESSION_TOKEN"))

    @property
    def use_path_style(self) -> bool:
        return self.path_style if self.path_style is not None else bool(self.endpoint)

    def __repr__(self) -> str:  # never print secrets
        return f"S3Config(endpoint={self.endpoint!r}, region={self.region!r}, path_style={self.path_style!r})"


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEMES)


def is_local(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("dbfs:")


def streaming_uri(uri: str) -> str:
    """``s3a://b/k`` → ``s3://b/k`` (the scheme ``streaming`` and boto3 understand); other URIs unchanged."""
    for scheme in S3_SCHEMES:
        if uri.startswith(scheme):
            return "s3://" + uri[len(scheme):]
    return uri


def filesystem(uri: str, s3: S3Config | None = None) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for ``uri``."""
    if is_s3(uri):
        c = (s3 or S3Config()).resolved()
        kwargs: dict[str, Any] = {"region": c.region,
                                  "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=c.max_attempts)}
        if c.access_key:  # else pyarrow's default AWS credential chain (instance profiles, ~/.aws)
            kwargs.update(access_key=c.access_key, secret_key=c.secret_key, session_token=c.session_token)
        if c.endpoint:
            scheme, _, host = c.endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
            if not c.use_path_style:  # pyarrow uses path-style requests with an endpoint override unless forced
                kwargs["force_virtual_addressing"] = True
        return pafs.S3FileSystem(**kwargs), uri.split("://", 1)[1].rstrip("/")
    if uri.startswith("dbfs:"):
        return pafs.LocalFileSystem(), "/dbfs/" + uri[len("dbfs:"):].lstrip("/")
    if uri.startswith("file:"):
        uri = uri[len("file:"):]
        uri = "/" + uri.lstrip("/") if uri.startswith("//") else uri
    if "://" in uri:
        f, path = pafs.FileSystem.from_uri(uri)
        return f, path
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str, s3: S3Config | None = None) -> bool:
    f, p = filesystem(uri, s3)
    return f.get_file_info(p).type != pafs.FileType.NotFound


def read_bytes(uri: str, s3: S3Config | None = None) -> bytes:
    f, p = filesystem(uri, s3)
    with f.open_input_stream(p) as fh:
        return fh.read()


def write_bytes(uri: str, data: bytes, s3: S3Config | None = None) -> None:
    """Write a whole file so that readers see the old content or the new, never a part: on S3 one PUT, locally a
    temporary file beside it renamed over it."""
    f, p = filesystem(uri, s3)
    if not isinstance(f, pafs.LocalFileSystem):
        with f.open_output_stream(p) as fh:
            fh.write(data)
        return
    parent = os.path.dirname(p)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(p)}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, p)


def write_text(uri: str, text: str, s3: S3Config | None = None) -> None:
    write_bytes(uri, text.encode(), s3)


def makedirs(uri: str, s3: S3Config | None = None) -> None:
    """Local directories only (object stores have no directories; writing a key creates its prefix)."""
    f, p = filesystem(uri, s3)
    if isinstance(f, pafs.LocalFileSystem):
        f.create_dir(p, recursive=True)


def rmtree(uri: str, s3: S3Config | None = None) -> None:
    """Delete a directory (prefix) and everything under it; no error when it does not exist."""
    f, p = filesystem(uri, s3)
    if f.get_file_info(p).type != pafs.FileType.NotFound:
        f.delete_dir(p)


def delete_file(uri: str, s3: S3Config | None = None) -> None:
    """Delete one file; no error when it does not exist."""
    f, p = filesystem(uri, s3)
    with contextlib.suppress(FileNotFoundError):
        f.delete_file(p)


def tree_fingerprint(uri: str, s3: S3Config | None = None) -> str:
    """Hash of every file under ``uri`` — relative path, size, modification time — from one listing (no reads);
    ``"absent"`` when nothing is there. Changes when a file is added, removed, rewritten or truncated."""
    import hashlib

    f, p = filesystem(uri, s3)
    infos = f.get_file_info(pafs.FileSelector(p, recursive=True, allow_not_found=True))
    files = sorted((relative(i.path, p), i.size, i.mtime_ns) for i in infos if i.type == pafs.FileType.File)
    if not files:
        return "absent"
    h = hashlib.sha256()
    for rel, size, mtime in files:
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:16]


def list_files(uri: str, s3: S3Config | None = None) -> list[str]:
    """Every file under ``uri`` (recursive) as a sorted path relative to ``uri``; empty when it does not exist."""
    f, p = filesystem(uri, s3)
    infos = f.get_file_info(pafs.FileSelector(p, recursive=True, allow_not_found=True))
    return sorted(relative(i.path, p) for i in infos if i.type == pafs.FileType.File)


def relative(info_path: str, base: str) -> str:
    return info_path[len(base.rstrip("/")) + 1:]


def listdir(uri: str, s3: S3Config | None = None) -> list[str]:
    """Names directly under ``uri`` (files and directories/prefixes)."""
    f, p = filesystem(uri, s3)
    infos = f.get_file_info(pafs.FileSelector(p, recursive=False, allow_not_found=True))
    return sorted(i.base_name for i in infos)


def glob_files(pattern: str, s3: S3Config | None = None) -> tuple[str, list[tuple[str, int, int]]]:
    """(root, sorted [(uri, size, mtime_ns)] of the files matching ``pattern``).

    ``root`` is the directory before the first wildcard (relative paths under it name documents without ids). A
    directory means the files directly in it. Glob rules as in the standard library's ``glob`` with
    ``recursive=True`` (``*`` and ``?`` stay within one path component, ``**`` spans any number), on object stores too.
    """
    import glob as _glob

    f, path = filesystem(pattern, s3)
    prefix = pattern[: pattern.index("://") + 3] if is_s3(pattern) else ""
    if isinstance(f, pafs.LocalFileSystem):
        if os.path.isdir(path):
            path = os.path.join(path, "*")
        root = _wildcard_root(path)
        root = root if os.path.isdir(root) else os.path.dirname(root)
        out = []
        for p in sorted(_glob.glob(path, recursive=True)):
            if os.path.isfile(p):
                st = os.stat(p)
                out.append((p, st.st_size, st.st_mtime_ns))
        return root, out
    path = path.rstrip("/")
    root = _wildcard_root(path)
    if root == path:  # no wildcard: one object, or the objects directly under a prefix
        one = f.get_file_info(path)
        if one.type == pafs.FileType.File:
            return prefix + path.rsplit("/", 1)[0], [(prefix + one.path, int(one.size or 0), int(one.mtime_ns or 0))]
        path += "/*"
    regex = _glob_regex(path)
    infos = f.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    matched = [i for i in infos if i.type == pafs.FileType.File and regex.fullmatch(i.path)]
    return prefix + root, sorted((prefix + i.path, int(i.size or 0), int(i.mtime_ns or 0)) for i in matched)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``glob`` semantics as a regular expression: ``**/`` any directories, ``*``/``?``/``[...]`` within one."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1:j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def _wildcard_root(path: str) -> str:
    """The part of ``path`` before the first path component with a wildcard (the whole path when there is none)."""
    parts = path.split("/")
    root: list[str] = []
    for p in parts:
        if any(c in p for c in "*?["):
            break
        root.append(p)
    return "/".join(root) or "/"


class _SourceStream(io.RawIOBase):
    """A raw input stream whose filesystem faults surface as :class:`SourceReadError`.

    Everything layered above it (gzip, zstd, warcio, pyarrow's Parquet reader — which re-raises a Python file's own
    exception) reports *corrupt bytes* as ``OSError``/``EOFError``/``zlib.error``; a fault of the storage underneath is
    raised here, by the layer that saw it, as a different class, so no reader can quarantine a network blip.
    """

    def __init__(self, raw: Any, uri: str) -> None:
        super().__init__()
        self._raw = raw
        self._uri = uri

    def _fault(self, e: OSError, op: str) -> SourceReadError:
        return SourceReadError(f"{op} {self._uri}: {type(e).__name__}: {e}")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._raw.read(len(b))
        except OSError as e:
            raise self._fault(e, "read") from e
        n = len(data)
        b[:n] = data
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return self._raw.seek(offset, whence)
        except OSError as e:
            raise self._fault(e, "seek") from e

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def open_input(uri: str, s3: S3Config | None = None) -> IO[bytes]:
    """A buffered binary reader (with ``peek``) for a local or remote file; storage faults (also a file that
    vanished after listing) raise :class:`~mixlake.errors.SourceReadError`."""
    f, p = filesystem(uri, s3)
    try:
        if isinstance(f, pafs.LocalFileSystem):
            raw: Any = open(p, "rb", buffering=0)  # noqa: SIM115 - owned and closed by the returned reader
        else:
            raw = f.open_input_file(p)
    except OSError as e:
        raise SourceReadError(f"open {uri}: {type(e).__name__}: {e}") from e
    return io.BufferedReader(_SourceStream(raw, uri), buffer_size=1 << 20)


def parquet_file(uri: str, s3: S3Config | None = None) -> Any:
    """A ``pyarrow.parquet.ParquetFile`` (footer, row groups) over :func:`open_input`, so a storage fault is a
    :class:`~mixlake.errors.SourceReadError` and any other error is the file's own (corrupt, truncated)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(open_input(uri, s3))


def move_tree(src: str, dst: str, s3: S3Config | None = None) -> None:
    """Move directory ``src`` to ``dst`` (which must not exist): a rename locally, copy + delete on object stores."""
    f, ps = filesystem(src, s3)
    _, pd = filesystem(dst, s3)
    if isinstance(f, pafs.LocalFileSystem):
        f.move(ps, pd)
        return
    for rel in list_files(src, s3):
        f.copy_file(f"{ps}/{rel}", f"{pd}/{rel}")
    f.delete_dir(ps)


def remove(uri: str, s3: S3Config | None = None) -> None:
    """Delete a file or a directory tree; no error when it does not exist."""
    f, p = filesystem(uri, s3)
    kind = f.get_file_info(p).type
    if kind == pafs.FileType.Directory:
        f.delete_dir(p)
    elif kind == pafs.FileType.File:
        f.delete_file(p)


def publish_versioned(staged: str, target: str, version: str, pointer: str, pointer_bytes: bytes,
                      s3: S3Config | None = None) -> None:
    """Publish directory ``staged`` as ``target/<version>/`` and switch readers to it by replacing the one small
    file ``target/<pointer>`` (an MDS ``index.json`` whose basenames start with ``<version>/``).

    1. ``staged`` → ``target/<version>/`` — a new prefix, so the published version is untouched meanwhile (a
       version of the same name holds the same bytes by construction: it is named by its content);
    2. ``target/<pointer>`` replaced in one step — a rename locally, one PUT on an object store — so a reader opens
       either the old index (whose shards are all still there) or the new one (whose shards are all there already);
    3. everything else under ``target`` (earlier versions) deleted.

    A crash before 2 leaves the old version published and readable; after 2, at worst unreferenced old files that
    the next publish removes.
    """
    vdir = join(target, version)
    remove(vdir, s3)
    makedirs(target, s3)
    move_tree(staged, vdir, s3)
    write_bytes(join(target, pointer), pointer_bytes, s3)
    for name in listdir(target, s3):
        if name not in (pointer, version):
            remove(join(target, name), s3)


@contextlib.contextmanager
def streaming_env(s3: S3Config | None) -> Iterator[None]:
    """Environment for ``streaming``/boto3 to reach the configured S3 endpoint with the configured credentials."""
    c = (s3 or S3Config()).resolved()
    values = {"S3_ENDPOINT_URL": c.endpoint, "AWS_ACCESS_KEY_ID": c.access_key,
              "AWS_SECRET_ACCESS_KEY": c.secret_key, "AWS_SESSION_TOKEN": c.session_token,
              "AWS_DEFAULT_REGION": c.region}
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hadoop_s3a_conf(s3: S3Config) -> dict[str, str]:
    """Spark properties for Hadoop's S3A connector (``s3a://`` and, mapped onto it, ``s3://``)."""
    c = s3.resolved()
    conf = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": c.region,
        "spark.hadoop.fs.s3a.path.style.access": str(c.use_path_style).lower(),
    }
    if c.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = c.endpoint
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(c.endpoint.startswith("https")).lower()
    if c.access_key and c.secret_key:
        conf["spark.hadoop.fs.s3a.access.key"] = c.access_key
        conf["spark.hadoop.fs.s3a.secret.key"] = c.secret_key
        if c.session_token:
            conf["spark.hadoop.fs.s3a.session.token"] = c.session_token
            conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
                "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider")
    return conf
