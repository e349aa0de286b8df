"""Where a run's files live: a local directory or an object store, through ``pyarrow.fs``.

``resolve("scan-out")``, ``resolve("/mnt/results/scan")``, ``resolve("file:///tmp/x")``,
``resolve("s3://bucket/prefix")`` and ``resolve("gs://bucket/prefix")`` all give a
:class:`Location`; every artifact rayflavor writes (parts, checkpoints, manifests, tables)
goes through one, so ``--out``/``RUN`` may be any of them.

Endpoint and credentials come only from the standard environment variables that pyarrow and
polars already read -- ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, the
AWS profile and instance credentials; ``GOOGLE_APPLICATION_CREDENTIALS`` for GCS -- so any
S3-compatible store (MinIO, Ceph, a test server) works without rayflavor options.

**Atomicity.** A written file or object appears whole or not at all: locally it is written to a
temporary sibling (``.<name>.tmp-<pid>-<token>``), fsynced and moved into place with
``os.replace``; on an object store the bytes are assembled in memory and sent as one object (an
object becomes visible only when its upload completes). Renames are *not* atomic on object
stores, so rayflavor never renames there: its commit protocols use write-once object names plus
a small JSON object, written last, that says which objects are committed
(:mod:`rayflavor.storage.island_store`).

**Transient store errors** (an endpoint that does not answer, ``503 SlowDown``, other 5xx
answers, timeouts) are retried: pyarrow's own S3 retry strategy retries each request a few times,
and a location with ``retry_seconds > 0`` (:meth:`Location.with_retries`; a scan uses its
``store_retry_seconds`` setting) repeats the whole operation with exponential backoff (0.5 s
doubling to 15 s, with full jitter) until that many seconds have passed since the first failure.
Every operation rayflavor does is safe to repeat (whole-object PUTs of write-once names or of a
document replaced whole, GETs, LISTs, DELETEs).  Permanent errors (no such bucket, access denied,
a full local disk, a read-only file system) are never retried; local file systems are not retried
at all.

New local files honour the umask (mode ``0666 & ~umask``, like any file a shell creates), so
others on a shared cluster volume can read results when the umask allows it; a replaced file
keeps its mode.

>>> import tempfile
>>> root = resolve(tempfile.mkdtemp())
>>> (root / "a" / "b.json").write_json({"x": 1})
>>> (root / "a").list(), (root / "a" / "b.json").read_json()
(['b.json'], {'x': 1})
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import secrets
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rayflavor.messages import one_line

#: URI schemes rayflavor accepts for ``--out`` / ``RUN`` (besides plain local paths).
SCHEMES = ("file", "s3", "gs", "gcs")


class StorageError(ValueError):
    """A location that cannot be used: unsupported scheme, missing bucket, no access, unreachable."""


T = TypeVar("T")

#: substrings of pyarrow's S3/GCS error messages that mark an error worth retrying: the store did
#: not answer, throttled, or failed on its side (5xx); an answer such as NO_SUCH_BUCKET or
#: ACCESS_DENIED is permanent
TRANSIENT_MARKERS = ("NETWORK_CONNECTION", "SLOW_DOWN", "SERVICE_UNAVAILABLE", "INTERNAL_FAILURE", "THROTTLING",
                     "REQUEST_TIMEOUT", "REQUEST_TIME_TOO_SKEWED", "Timeout was reached", "curlCode: 7,",
                     "curlCode: 28,", "curlCode: 52,", "curlCode: 55,", "curlCode: 56,",
                     "HTTP response code: 500", "HTTP response code: 502", "HTTP response code: 503",
                     "HTTP response code: 504", "HTTP status 500)", "HTTP status 502)", "HTTP status 503)",
                     "HTTP status 504)", "Couldn't connect", "Could not connect", "Connection reset", "Broken pipe")
#: first pause and longest pause between attempts [s] (full jitter: a uniform draw below the cap)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 15.0


def is_transient(exc: BaseException) -> bool:
    """Whether a store error is worth retrying (module docstring): a connection that failed, a
    throttling or server-side (5xx) answer, a timeout.  Local OSErrors (ENOSPC, EROFS, ...) never are."""
    text = str(exc)
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and any(m in text for m in TRANSIENT_MARKERS)


def retry_transient(op: Callable[[], T], *, seconds: float, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> T:
    """``op()``, repeated after a transient store error (:func:`is_transient`) with exponential
    backoff (``BACKOFF_FIRST`` doubling up to ``BACKOFF_MAX`` seconds, full jitter) until
    ``seconds`` have passed since the first failure; then (or at once for a permanent error) the
    last error is raised.  ``seconds = 0``: one attempt."""
    start = None
    attempt = 0
    while True:
        try:
            return op()
        except OSError as exc:
            if seconds <= 0 or not is_transient(exc):
                raise
            now = clock()
            start = now if start is None else start
            left = start + seconds - now
            if left <= 0:
                raise
            # jittered, at least 50 ms, and never past the deadline (the last pause ends on it)
            pause = min(left, max(0.05, random.uniform(0.0, min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** attempt))))
            attempt += 1
            sleep(pause)


def _s3_filesystem() -> pafs.S3FileSystem:
    """An S3 file system configured from the standard environment (short timeouts, few retries,
    so an unreachable endpoint fails in seconds instead of minutes)."""
    kw: dict = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        if not rest:
            raise StorageError(f"AWS_ENDPOINT_URL={endpoint!r} is not a URL (use e.g. http://127.0.0.1:9000)")
        kw.update(endpoint_override=rest.rstrip("/"), scheme=scheme)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    return pafs.S3FileSystem(connect_timeout=5, request_timeout=60,
                             retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3), **kw)


def _one_line(exc: BaseException) -> str:
    text = one_line(exc)
    hints = (("NO_SUCH_BUCKET", "the bucket does not exist"),
             ("ACCESS_DENIED", "access denied: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"),
             ("INVALID_ACCESS_KEY_ID", "the access key is not valid (AWS_ACCESS_KEY_ID)"),
             ("SIGNATURE_DOES_NOT_MATCH", "the secret key does not match (AWS_SECRET_ACCESS_KEY)"),
             ("NETWORK_CONNECTION", "cannot reach the object store (check AWS_ENDPOINT_URL and the network)"),
             ("Could not resolve", "cannot resolve the object store's host (check AWS_ENDPOINT_URL)"))
    for key, hint in hints:
        if key in text:
            return hint
    return text


def split_uri(target: str | os.PathLike) -> tuple[str, str]:
    """``(scheme, path)`` of a local path or a URI: the one parser of every ``--out``, ``-o``,
    ``RUN`` and ``OUT`` rayflavor takes.

    * a plain path -> ``("", absolute path)`` (``~`` expanded, symbolic links resolved);
    * ``file:///PATH`` and ``file://localhost/PATH`` -> ``("", "/PATH")`` (RFC 8089; the path is
      percent-decoded); a ``file://`` URI naming another host is refused;
    * ``s3://bucket/prefix`` -> ``("s3", "bucket/prefix")``; ``gs://`` and ``gcs://`` -> ``("gs", ...)``.

    Raises :class:`StorageError` (one line) for an empty path, an unsupported scheme or a URI
    without a bucket.

    >>> split_uri("file://localhost/tmp/x"), split_uri("s3://bucket/run/")
    (('', '/tmp/x'), ('s3', 'bucket/run'))
    """
    s = os.fspath(target)
    if not s or not s.strip():
        raise StorageError("empty path")
    if "\0" in s:
        raise StorageError(f"{s!r}: a path cannot hold a NUL character")
    if "://" not in s:
        try:
            return "", str(Path(s).expanduser().resolve())
        except RuntimeError:  # "~user" of no such user, no home directory
            raise StorageError(f"{s}: cannot expand {s.split('/', 1)[0]!r} (no such user or home directory)") from None
    scheme, _, rest = s.partition("://")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise StorageError(f"{s}: unsupported URI scheme {scheme!r} (use a local path, file://, s3:// or gs://)")
    if scheme == "file":
        host, slash, path = rest.partition("/")
        if host.lower() not in ("", "localhost"):
            raise StorageError(f"{s}: a file:// URI names host {host!r}; use file:///PATH or file://localhost/PATH "
                               "(another machine's files are reached through a shared mount or an object store)")
        return "", str(Path("/" + unquote(path).lstrip("/")).resolve())
    path = rest.strip("/")
    if not path or rest.startswith("/"):
        raise StorageError(f"{s}: no bucket in the URI (use {scheme}://bucket/prefix)")
    return ("s3" if scheme == "s3" else "gs"), path


def resolve(target: str | os.PathLike) -> "Location":
    """The :class:`Location` of a local path or a URI (:func:`split_uri`).

    Raises :class:`StorageError` (one line) for an unsupported scheme or a malformed URI. Whether
    the bucket exists and is writable is checked by :meth:`Location.check_writable`.
    """
    scheme, path = split_uri(target)
    if not scheme:
        return Location(pafs.LocalFileSystem(), path, "")
    if scheme == "s3":
        return Location(_s3_filesystem(), path, "s3")
    try:
        fs = pafs.GcsFileSystem()
    except Exception as exc:  # noqa: BLE001 - pyarrow built without GCS, bad credentials file, ...
        raise StorageError(f"{os.fspath(target)}: {_one_line(exc)}") from None
    return Location(fs, path, "gs")


def _rebuild(uri: str, retry_seconds: float) -> "Location":
    return resolve(uri).with_retries(retry_seconds)


@dataclass(frozen=True)
class Location:
    """A file or directory on a local disk or an object store (see the module docstring).

    Pickles as its URI (the receiving process resolves it with its own environment), so Ray
    tasks and actors on other nodes get it cheaply and never carry credentials.

    ``retry_seconds``: how long an operation on an object store keeps retrying transient errors
    (module docstring; 0: pyarrow's per-request retries only, so a wrong endpoint fails in seconds).
    """

    fs: pafs.FileSystem
    path: str
    scheme: str  # "" for local
    retry_seconds: float = 0.0

    def __reduce__(self):
        return _rebuild, (self.uri, self.retry_seconds)

    def with_retries(self, seconds: float) -> "Location":
        """This location, retrying transient store errors for up to ``seconds`` per operation."""
        return replace(self, retry_seconds=float(seconds))

    def _retry(self, op: Callable[[], T]) -> T:
        if self.is_local or self.retry_seconds <= 0:
            return op()
        return retry_transient(op, seconds=self.retry_seconds)

    # ------------------------------------------------------------------ naming
    @property
    def uri(self) -> str:
        """What to print and store: a local absolute path, or ``s3://bucket/key``."""
        return self.path if not self.scheme else f"{self.scheme}://{self.path}"

    @property
    def is_local(self) -> bool:
        return not self.scheme

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> "Location":
        return replace(self, path=self.path.rstrip("/").rsplit("/", 1)[0])

    def __truediv__(self, name: str) -> "Location":
        name = str(name).strip("/")
        if not name or ".." in name.split("/"):
            raise StorageError(f"bad name {name!r} under {self.uri}")
        return replace(self, path=f"{self.path.rstrip('/')}/{name}")

    def __str__(self) -> str:
        return self.uri

    def local_path(self) -> Path:
        """The :class:`~pathlib.Path` of a local location (ValueError for an object store)."""
        if not self.is_local:
            raise ValueError(f"{self.uri} is not on a local file system")
        return Path(self.path)

    def polars_source(self) -> str:
        """A string ``polars.scan_parquet``/``read_parquet`` accept for this location."""
        return self.uri

    # ------------------------------------------------------------------ queries
    def _info(self) -> pafs.FileInfo:
        try:
            return self._retry(lambda: self.fs.get_file_info(self.path))
        except OSError as exc:
            raise StorageError(f"{self.uri}: {_one_line(exc)}") from None

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def size(self) -> int:
        return int(self._info().size or 0)

    def mtime(self) -> float | None:
        """Modification time [s since the epoch], when the store reports one."""
        t = self._info().mtime
        return None if t is None else t.timestamp()

    def list(self) -> list[str]:
        """Names of the direct children (files and directories), sorted; [] when absent."""
        try:
            infos = self._retry(lambda: self.fs.get_file_info(
                pafs.FileSelector(self.path, recursive=False, allow_not_found=True)))
        except OSError as exc:
            raise StorageError(f"{self.uri}: {_one_line(exc)}") from None
        return sorted(i.base_name for i in infos)

    # ------------------------------------------------------------------ reading
    def read_bytes(self) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.path) as f:
                return f.read()
        try:
            return self._retry(read)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if not self.exists():
                raise FileNotFoundError(f"{self.uri}: no such file") from None
            raise StorageError(f"{self.uri}: {_one_line(exc)}") from None

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def read_json(self):
        """The JSON document (strict: NaN/Infinity are refused)."""
        def reject(name):
            raise ValueError(f"non-standard JSON constant {name}")
        try:
            return json.loads(self.read_bytes(), parse_constant=reject)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StorageError(f"{self.uri}: not valid JSON ({one_line(exc)})") from None

    def read_parquet(self, columns: list[str] | None = None, filters=None) -> pa.Table:
        return self._retry(lambda: pq.read_table(self.path, filesystem=self.fs, columns=columns, filters=filters))

    def parquet_schema(self) -> pa.Schema:
        return self._retry(lambda: pq.read_schema(self.path, filesystem=self.fs))

    def parquet_metadata(self) -> pq.FileMetaData:
        """The Parquet footer (schema, row count), without reading the data pages."""
        return self._retry(lambda: pq.read_metadata(self.path, filesystem=self.fs))

    # ------------------------------------------------------------------ writing
    def write_bytes(self, payload: bytes) -> None:
        """Write ``payload`` so that it appears whole or not at all (module docstring)."""
        payload = bytes(payload)
        try:
            if self.is_local:
                _write_local(Path(self.path), payload)
            else:
                def put() -> None:
                    with self.fs.open_output_stream(self.path) as f:
                        f.write(payload)
                self._retry(put)
        except OSError as exc:
            raise StorageError(f"{self.uri}: {_one_line(exc)}") from None

    def upload_file(self, source: str | Path, *, chunk_bytes: int = 16 << 20) -> None:
        """Stream the local file ``source`` to this object-store location in one multipart upload:
        the object appears when the stream closes, after the last chunk, so a killed process
        leaves no object (an unfinished upload).  Not retried: a failed stream cannot resume."""
        try:
            out = self.fs.open_output_stream(self.path)
            with open(source, "rb") as src:
                while chunk := src.read(chunk_bytes):
                    out.write(chunk)
            out.close()
        except OSError as exc:
            raise StorageError(f"{self.uri}: {_one_line(exc)}") from None

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def write_json(self, obj) -> None:
        """Standard JSON (NaN and infinities refused), indented, sorted keys, newline-terminated."""
        self.write_text(json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")

    def write_parquet(self, table: pa.Table, compression: str = "zstd") -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression=compression)
        self.write_bytes(sink.getvalue())

    def mkdir(self) -> None:
        """Create the directory (local only; object stores have no directories)."""
        if self.is_local:
            try:
                Path(self.path).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"{self.uri}: cannot create the directory ({exc.strerror or exc})") from None

    def delete(self) -> None:
        """Remove a file or object (nothing when it is absent)."""
        try:
            self._retry(lambda: self.fs.delete_file(self.path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            if self.exists():
                raise StorageError(f"{self.uri}: {_one_line(exc)}") from None

    def delete_tree(self) -> None:
        """Remove a directory or prefix and everything under it (nothing when absent)."""
        try:
            if self.exists():
                self._retry(lambda: self.fs.delete_dir(self.path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"{self.uri}: {_one_line(exc)}") from None

    def check_writable(self) -> None:
        """Write and remove a small probe object under this directory; StorageError (one line)
        naming the problem (no such bucket, access denied, unreachable endpoint) otherwise."""
        if self.is_local:
            p = Path(self.path)
            if p.exists() and not p.is_dir():
                raise StorageError(f"{self.uri}: exists and is not a directory")
        probe = self / f".rayflavor-probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"probe")
        probe.delete()


def _temporary_prefix(name: str) -> str:
    """``.<name>.tmp-``, or ``.<16-hex hash of name>.tmp-`` when ``<pid>-<token>`` would not fit
    in a 255-byte file name."""
    prefix = f".{name}.tmp-"
    if len(prefix.encode()) + 40 > 255:
        prefix = f".{hashlib.sha1(name.encode()).hexdigest()[:16]}.tmp-"
    return prefix


def temporary_beside(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (``.<name>.tmp-<pid>-<token>``; a hash of the name
    when it is long), after removing the temporaries of ``path`` that a killed writer left
    (their pid is gone)."""
    prefix = _temporary_prefix(path.name)
    for stale in path.parent.glob(prefix + "*"):
        try:
            pid = int(stale.name[len(prefix):].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            stale.unlink(missing_ok=True)
    return path.parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"


def _write_local(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_file():
        raise StorageError(f"{path}: exists and is not a regular file")
    tmp = temporary_beside(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        try:
            os.chmod(fd, stat.S_IMODE(os.stat(path).st_mode))  # a replaced file keeps its mode
        except FileNotFoundError:
            pass
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["Location", "SCHEMES", "StorageError", "is_transient", "resolve", "retry_transient", "split_uri"]
