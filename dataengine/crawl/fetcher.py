"""One HTTP GET done carefully: guarded connections, timeouts, retries with capped backoff, bounded bodies.

urllib3, because it exposes what a crawler needs and a browser-like client hides: the connection (so the
SSRF guard checks the address actually connected to), streaming with content decoding (gzip, deflate and
brotli) so a body is cut at ``max_body_bytes`` after decompression, and no automatic retries or redirects
(the crawler decides both: a redirect is a new URL with its own robots and scope checks).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import connection
from urllib3.util.request import ACCEPT_ENCODING

from dataengine.config import CrawlConfig
from dataengine.crawl.guard import AddressGuard, BlockedAddress, DnsFailure
from dataengine.crawl.urls import DEFAULT_PORTS

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1"
MAX_POOLS = 256  # hosts with an open keep-alive connection, least recently used closed first


class FetchError(Exception):
    """A request that got no HTTP response: ``reason`` is the counted failure (timeout, dns_failure...)."""

    def __init__(self, reason: str, detail: str, retryable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.retryable = reason, detail, retryable


@dataclass
class Response:
    url: str
    status: int
    reason: str
    version: str  # "HTTP/1.1"
    headers: list[tuple[str, str]]  # as received (Content-Encoding included: ``body`` is decoded)
    request_headers: list[tuple[str, str]]
    request_line: str
    body: bytes = b""
    body_read: bool = True  # False: a 2xx of a content type not on the allow-list, left unread
    truncated: bool = False  # the body was longer than the limit and was cut
    ip: str = ""
    attempts: int = 1
    started: float = 0.0  # wall-clock time the request started

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), "")

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ('' when the server sent none)."""
        return self.header("Content-Type").split(";", 1)[0].strip().lower()


class _Guarded:
    """Connects to the address the guard approves instead of whatever DNS says at connect time."""

    def __init__(self, *args: object, guard: AddressGuard, **kwargs: object) -> None:
        self.guard = guard
        self.peer_ip = ""
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def _new_conn(self):  # type: ignore[no-untyped-def]
        ip, port = self.guard.resolve(self._dns_host, self.port)  # type: ignore[attr-defined]
        try:
            sock = connection.create_connection(
                (ip, port),
                self.timeout,  # type: ignore[attr-defined]
                source_address=self.source_address,  # type: ignore[attr-defined]
                socket_options=self.socket_options,  # type: ignore[attr-defined]
            )
        except TimeoutError as e:
            raise ConnectTimeoutError(self, f"connect to {ip}:{port} timed out") from e
        except OSError as e:
            raise NewConnectionError(self, f"connect to {ip}:{port}: {e}") from e
        self.peer_ip = ip
        return sock


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class Fetcher:
    """Thread-safe: one per worker, shared by the threads that each own a host."""

    def __init__(self, config: CrawlConfig, user_agent: str, guard: AddressGuard) -> None:
        self.config, self.user_agent, self.guard = config, user_agent, guard
        self._pools: OrderedDict[tuple[str, str, int], HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(
        self,
        url: str,
        pace: Callable[[], float] = time.time,
        content_types: list[str] | None = None,
        max_body: int | None = None,
    ) -> Response:
        """GET ``url``, retrying 5xx/429, timeouts and dropped connections with capped exponential backoff.

        ``pace`` runs before every attempt (the host's politeness delay) and returns the attempt's start time.
        The last response is returned whatever its status; ``FetchError`` when no attempt got one.
        """
        cfg = self.config
        for attempt in range(cfg.retries + 1):
            started = pace()
            last = attempt == cfg.retries
            try:
                response = self._once(url, content_types, max_body or cfg.max_body_bytes, started)
            except FetchError as e:
                if last or not e.retryable:
                    raise
                time.sleep(self._backoff(attempt))
                continue
            response.attempts = attempt + 1
            if response.status not in RETRY_STATUSES or last:
                return response
            time.sleep(max(self._backoff(attempt), min(_retry_after(response), cfg.backoff_cap)))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        return min(self.config.backoff * 2**attempt, self.config.backoff_cap)

    def _pool(self, scheme: str, host: str, port: int) -> HTTPConnectionPool:
        key = (scheme, host, port)
        with self._lock:
            pool = self._pools.pop(key, None)
            if pool is None:
                cls = _HTTPSPool if scheme == "https" else _HTTPPool
                pool = cls(host, port, maxsize=self.config.host_concurrency, block=False, guard=self.guard)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                self._pools.popitem(last=False)[1].close()
            return pool

    def _once(self, url: str, content_types: list[str] | None, max_body: int, started: float) -> Response:
        cfg = self.config
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [
            ("Host", parts.netloc),
            ("User-Agent", self.user_agent),
            ("Accept", ACCEPT),
            ("Accept-Encoding", ACCEPT_ENCODING),
        ]
        deadline = time.monotonic() + cfg.timeout
        try:
            pool = self._pool(parts.scheme, parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme])
            r = pool.urlopen(
                "GET",
                target,
                headers=dict(headers),
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=True,
                timeout=Timeout(connect=cfg.connect_timeout, read=cfg.timeout),
            )
        except BaseException as e:
            raise _failure(e) from e
        version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(r.version, "HTTP/1.1")
        response = Response(
            url=url,
            status=r.status,
            reason=r.reason or "",
            version=version,
            headers=list(r.headers.items()),
            request_headers=headers,
            request_line=f"GET {target} HTTP/1.1",
            ip=getattr(r.connection, "peer_ip", ""),
            started=started,
        )
        allowed = content_types is None or not response.content_type or response.content_type in content_types
        if 200 <= r.status < 300 and not allowed:
            response.body_read = False
            r.close()  # do not download what we will not keep
            r.release_conn()
            return response
        body = bytearray()
        complete = False
        try:
            for chunk in r.stream(1 << 16, decode_content=True):
                body += chunk
                if len(body) > max_body:
                    response.truncated = True
                    del body[max_body:]
                    break
                if time.monotonic() > deadline:
                    raise FetchError("timeout", f"body not complete after {cfg.timeout} s", retryable=True)
            else:
                complete = True
        except FetchError:
            raise
        except BaseException as e:
            raise _failure(e) from e
        finally:
            if not complete:
                r.close()  # a connection with unread bytes must not go back to the pool
            r.release_conn()
        response.body = bytes(body)
        return response


def _failure(e: BaseException) -> FetchError:
    """Map a client exception to a counted reason; only transient ones are retried."""
    if isinstance(e, FetchError):
        return e
    if isinstance(e, BlockedAddress):
        return FetchError("blocked_address", str(e), retryable=False)
    if isinstance(e, DnsFailure):
        return FetchError("dns_failure", str(e), retryable=False)
    if isinstance(e, NewConnectionError):  # a subclass of ConnectTimeoutError: test it first
        if isinstance(e.__cause__, ConnectionRefusedError):
            return FetchError("connection_refused", str(e), retryable=False)
        return FetchError("connection_error", str(e), retryable=True)
    if isinstance(e, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return FetchError("timeout", str(e), retryable=True)
    if isinstance(e, SSLError):
        return FetchError("tls_error", str(e), retryable=False)
    if isinstance(e, DecodeError):
        return FetchError("content_decoding_error", str(e), retryable=False)
    if isinstance(e, LocationValueError):
        return FetchError("invalid_url", str(e), retryable=False)
    if isinstance(e, ProtocolError | HTTPError | ConnectionError):
        return FetchError("connection_error", str(e), retryable=True)
    raise e


def _retry_after(response: Response) -> float:
    """Seconds from a Retry-After header (delta or HTTP date); 0 when absent or unreadable."""
    value = response.header("Retry-After").strip()
    if not value:
        return 0.0
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0
