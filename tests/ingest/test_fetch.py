"""fetch() against a real HTTP server on 127.0.0.1 and real files: caps, deadlines, redirects, refusals."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from digest.config import FetchSettings
from digest.errors import FeedError
from digest.ingest import transport
from digest.ingest.fetch import SAMPLES_DIR, StopRequested, fetch
from tests.drip_server import BODY_DRIP, HEADERS_DRIP, TLS_DRIP, DripServer
from tests.http_server import LocalHttpServer, QuietHandler

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
FEED = (FIXTURES / "arxiv_rss_legacy_rdf_hep-ex_2018-05-23_excerpt.xml").read_bytes()
ETAG = '"rdf-v1"'
LAST_MODIFIED = "Wed, 23 May 2018 20:30:00 GMT"
CAP = 20_000
SETTINGS = FetchSettings(
    connect_timeout_s=1, read_timeout_s=1, deadline_s=5, max_bytes=CAP, allow_private=True, user_agent="digest-test/1"
)


class Handler(QuietHandler):
    seen_headers: list[dict[str, str]] = []

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}) and status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Handler.seen_headers.append(dict(self.headers.items()))
        route = getattr(self, "route_" + self.path.strip("/").replace("-", "_").replace(".", "_"), None)
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            route()

    def route_feed_xml(self) -> None:
        if self.headers.get("If-None-Match") == ETAG or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
            self._send(304, headers={"ETag": ETAG})
            return
        self._send(200, FEED, {"ETag": ETAG, "Last-Modified": LAST_MODIFIED, "Content-Type": "application/rss+xml"})

    def route_gzip(self) -> None:
        self._send(200, gzip.compress(FEED), {"Content-Encoding": "gzip"})

    def route_gzip_bomb(self) -> None:
        bomb = gzip.compress(b"\0" * 5_000_000)  # ~5 KB on the wire, 5 MB inflated
        self._send(200, bomb, {"Content-Encoding": "gzip"})

    def route_slow(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(100):  # one byte every 50 ms: each read is quick, the whole is not
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.05)

    def route_big_declared(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(CAP * 50))
        self.end_headers()
        self.wfile.write(b"x" * 1000)

    def route_big_undeclared(self) -> None:
        self.send_response(200)  # HTTP/1.0, no Content-Length: the body ends when the server closes
        self.end_headers()
        for _ in range(20):
            self.wfile.write(b"y" * 8192)

    def route_redirect_ok(self) -> None:
        self._send(301, headers={"Location": "/feed.xml"})

    def route_redirect_file(self) -> None:
        self._send(302, headers={"Location": "file:///etc/passwd"})

    def route_redirect_js(self) -> None:
        self._send(302, headers={"Location": "javascript:alert(1)"})

    def route_loop(self) -> None:
        self._send(302, headers={"Location": "/loop"})

    def route_server_error(self) -> None:
        self.send_error(503)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a socket tries to connect to. Anything outside loopback is refused here (a fault
    injected in the socket layer), so a test can check the refused path without sending any traffic."""
    seen: list[str] = []

    def guard(real: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            if isinstance(address, tuple):
                seen.append(str(address[0]))
                if not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
                    raise ConnectionRefusedError(f"test guard: no traffic to {address[0]}")
            return real(sock, address)
        return connect

    monkeypatch.setattr(socket.socket, "connect", guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(socket.socket.connect_ex))
    return seen


class StubResolver:
    """socket.getaddrinfo for the names given: each lookup of a name gets its next answer (the last one
    repeats); other names go to the real resolver."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.calls.append(name)
        rounds = self.answers[name]
        addrs = rounds[min(self.calls.count(name), len(rounds)) - 1]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port), 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in addrs]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[list[str]]]], StubResolver]:
    def install(answers: dict[str, list[list[str]]]) -> StubResolver:
        stub = StubResolver(answers)
        monkeypatch.setattr(socket, "getaddrinfo", stub)
        return stub
    return install


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with LocalHttpServer(Handler) as local:
        yield local.base


# --- HTTP ------------------------------------------------------------------------------------------


def test_200_returns_bytes_and_validators(server: str) -> None:
    got = fetch(f"{server}/feed.xml", settings=SETTINGS)
    assert got.content == FEED
    assert (got.status, got.not_modified, got.etag, got.last_modified) == (200, False, ETAG, LAST_MODIFIED)
    assert Handler.seen_headers[-1]["User-Agent"] == "digest-test/1"


def test_conditional_get_gives_not_modified(server: str) -> None:
    by_etag = fetch(f"{server}/feed.xml", settings=SETTINGS, etag=ETAG)
    assert Handler.seen_headers[-1]["If-None-Match"] == ETAG
    by_date = fetch(f"{server}/feed.xml", settings=SETTINGS, last_modified=LAST_MODIFIED)
    assert Handler.seen_headers[-1]["If-Modified-Since"] == LAST_MODIFIED
    for got in (by_etag, by_date):
        assert got.not_modified and got.content is None and got.status == 304
        assert got.etag == ETAG
    assert by_date.last_modified == LAST_MODIFIED  # kept when the 304 does not repeat it


def test_404_names_the_location(server: str) -> None:
    with pytest.raises(FeedError, match=r"/missing: HTTP 404 Not Found$"):
        fetch(f"{server}/missing", settings=SETTINGS)
    with pytest.raises(FeedError, match=r"HTTP 503 Service Unavailable"):
        fetch(f"{server}/server-error", settings=SETTINGS)


def test_gzip_body_is_inflated(server: str) -> None:
    assert fetch(f"{server}/gzip", settings=SETTINGS).content == FEED


def test_gzip_bomb_stops_at_the_cap(server: str) -> None:
    with pytest.raises(FeedError, match=f"decompresses to more than the {CAP}-byte limit"):
        fetch(f"{server}/gzip-bomb", settings=SETTINGS)


def test_slow_trickle_hits_the_total_deadline(server: str) -> None:
    settings = SETTINGS.model_copy(update={"deadline_s": 0.5})
    start = time.monotonic()
    with pytest.raises(FeedError, match=r"/slow: took longer than the 0.5s deadline"):
        fetch(f"{server}/slow", settings=settings)
    # Each byte came well within the 1 s read timeout: only the total deadline can have stopped it.
    assert time.monotonic() - start < 2


def test_declared_length_over_the_cap_is_refused_before_reading(server: str) -> None:
    with pytest.raises(FeedError, match=f"response is {CAP * 50} bytes, more than the {CAP}-byte limit"):
        fetch(f"{server}/big-declared", settings=SETTINGS)


def test_undeclared_length_over_the_cap_is_cut_while_streaming(server: str) -> None:
    with pytest.raises(FeedError, match=f"more than the {CAP}-byte limit"):
        fetch(f"{server}/big-undeclared", settings=SETTINGS)


def test_redirect_is_followed_and_final_url_reported(server: str) -> None:
    got = fetch(f"{server}/redirect-ok", settings=SETTINGS)
    assert got.content == FEED and got.location == f"{server}/feed.xml"


@pytest.mark.parametrize(
    ("route", "reason"),
    [("redirect-file", "refusing URL scheme 'file'"), ("redirect-js", "invalid URL or redirect target")],
)
def test_redirect_to_another_scheme_is_refused(server: str, route: str, reason: str) -> None:
    with pytest.raises(FeedError, match=f"/{route}: {reason}"):
        fetch(f"{server}/{route}", settings=SETTINGS)


def test_redirect_loop_stops(server: str) -> None:
    with pytest.raises(FeedError, match="more than 5 redirects"):
        fetch(f"{server}/loop", settings=SETTINGS)


def test_server_that_never_answers_times_out() -> None:
    # A listening socket nobody accepts on: the kernel completes the handshake, no reply ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        settings = SETTINGS.model_copy(update={"read_timeout_s": 0.3})
        start = time.monotonic()
        with pytest.raises(FeedError, match="timed out reading"):
            fetch(f"http://127.0.0.1:{silent.getsockname()[1]}/feed", settings=settings)
        assert time.monotonic() - start < 2


def test_connection_refused_is_a_feed_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FeedError, match=f"127.0.0.1:{port}/x: network error"):
        fetch(f"http://127.0.0.1:{port}/x", settings=SETTINGS)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "10.1.2.3", "0.0.0.0"])
def test_default_settings_refuse_private_addresses(server: str, host: str) -> None:
    port = server.rsplit(":", 1)[1]
    with pytest.raises(FeedError, match=r"refusing .*private, loopback or reserved address.*fetch.allow_private"):
        fetch(f"http://{host}:{port}/feed.xml", settings=FetchSettings())


@pytest.mark.parametrize("host", ["169.254.169.254", "[fe80::1]", "[fd00:ec2::254]", "[::ffff:169.254.169.254]"])
@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_addresses_are_refused_even_when_private_ones_are_allowed(
    connects: list[str], host: str, allow_private: bool
) -> None:
    settings = SETTINGS.model_copy(update={"allow_private": allow_private})
    with pytest.raises(FeedError, match=r"refusing .*: a link-local or cloud metadata address, never fetched"):
        fetch(f"http://{host}/latest/meta-data/", settings=settings)
    assert connects == []


def test_redirect_from_a_public_host_to_loopback_is_refused(server: str) -> None:
    # Fault injection: a "public" server (an injected transport on a public IP literal) that redirects
    # to our loopback server. The second hop must be checked, not just the first.
    def public_redirector(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": f"{server}/feed.xml"})

    before = len(Handler.seen_headers)
    with pytest.raises(FeedError, match=r"refusing 127\.0\.0\.1"):
        fetch("http://93.184.215.14/feed", settings=FetchSettings(), transport=httpx.MockTransport(public_redirector))
    assert len(Handler.seen_headers) == before  # the loopback server was never asked


# --- locations that are not http(s) ----------------------------------------------------------------


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://example.org/feed.xml", "javascript:alert(1)"])
def test_other_schemes_are_refused(location: str) -> None:
    with pytest.raises(FeedError, match=r"unsupported URL scheme") as err:
        fetch(location, settings=SETTINGS)
    assert location in str(err.value)


def test_builtin_sample_is_read() -> None:
    got = fetch("builtin:arxiv-cs-2024-11-28.xml", settings=FetchSettings())
    assert got.content == (SAMPLES_DIR / "arxiv-cs-2024-11-28.xml").read_bytes()
    assert got.content.startswith(b"<?xml") and got.status is None and not got.not_modified


@pytest.mark.parametrize("name", ["../config.py", "..", "sub/x.xml", "", "..\\x"])
def test_builtin_must_be_a_plain_file_name(name: str) -> None:
    with pytest.raises(FeedError, match="plain file name"):
        fetch(f"builtin:{name}", settings=FetchSettings())


def test_local_file_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"
    with pytest.raises(FeedError, match=f"^{missing}: file not found$"):
        fetch(str(missing), settings=SETTINGS)
    with pytest.raises(FeedError, match=f"^{tmp_path}: is a directory"):
        fetch(str(tmp_path), settings=SETTINGS)
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * (CAP + 1))
    with pytest.raises(FeedError, match=f"{big}: file is {CAP + 1} bytes, more than the {CAP}-byte limit"):
        fetch(str(big), settings=SETTINGS)


def test_local_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    got = fetch(str(path), settings=SETTINGS)
    assert got.content == FEED and got.location == str(path)


def test_gzip_file_is_decompressed_within_the_cap(tmp_path: Path) -> None:
    good = tmp_path / "feed.xml.gz"
    good.write_bytes(gzip.compress(FEED))
    assert fetch(str(good), settings=SETTINGS).content == FEED
    bomb = tmp_path / "bomb.xml.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 1_000_000))
    assert bomb.stat().st_size < CAP
    with pytest.raises(FeedError, match=f"decompresses to more than the {CAP}-byte limit"):
        fetch(str(bomb), settings=SETTINGS)
    broken = tmp_path / "broken.xml.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(FeedError, match=f"{broken}: not a valid gzip file"):
        fetch(str(broken), settings=SETTINGS)


# --- the whole request under the deadline, however the bytes arrive ----------------------------------

# Read and connect timeouts far longer than the deadline: only the deadline can end these fetches.
DRIP_SETTINGS = SETTINGS.model_copy(update={"connect_timeout_s": 10, "read_timeout_s": 10, "deadline_s": 1.5})


@pytest.mark.parametrize(
    ("prefix", "scheme"),
    [(HEADERS_DRIP, "http"), (BODY_DRIP, "http"), (None, "https"), (TLS_DRIP, "https")],
    ids=["headers-drip", "body-drip", "tls-never-answers", "tls-handshake-drip"],
)
def test_a_drip_fails_at_the_deadline(prefix: bytes | None, scheme: str) -> None:
    with DripServer(prefix, interval=0.3) as drip:
        start = time.monotonic()
        with pytest.raises(FeedError, match=r"/feed\.xml: took longer than the 1\.5s deadline$"):
            fetch(f"{scheme}://127.0.0.1:{drip.port}/feed.xml", settings=DRIP_SETTINGS)
        elapsed = time.monotonic() - start
        assert drip.accepted == 1
    # Every byte came well within the 10 s read timeout: the deadline stopped it, on time.
    assert 1.4 < elapsed < 2.5


def test_a_stop_request_ends_a_dripping_fetch_within_a_moment() -> None:
    stop = threading.Event()
    settings = DRIP_SETTINGS.model_copy(update={"deadline_s": 60})
    with DripServer(HEADERS_DRIP, interval=0.3) as drip:
        timer = threading.Timer(0.5, stop.set)
        timer.start()
        start = time.monotonic()
        with pytest.raises(StopRequested):
            fetch(drip.url, settings=settings, stop=stop)
        assert time.monotonic() - start < 1.5
        assert drip.closed_by_client.wait(2)  # the connection was closed, not left dripping
        timer.cancel()


def test_a_stop_request_before_the_fetch_fetches_nothing(server: str) -> None:
    stop = threading.Event()
    stop.set()
    before = len(Handler.seen_headers)
    with pytest.raises(StopRequested):
        fetch(f"{server}/feed.xml", settings=SETTINGS, stop=stop)
    assert len(Handler.seen_headers) == before


# --- the connection goes to the address that was vetted (DNS rebinding) ------------------------------


def _public_except(private: str) -> Callable[[Any, bool], str | None]:
    """Fault injection for rebinding on loopback alone: every address passes for public but one."""
    def policy(addr: Any, allow_private: bool) -> str | None:
        return "a private, loopback or reserved address (test policy)" if str(addr) == private else None
    return policy


def test_a_rebinding_name_is_connected_to_the_address_that_was_vetted(
    server: str, connects: list[str], dns: Callable[..., StubResolver], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(server.rsplit(":", 1)[1])
    monkeypatch.setattr(transport, "refusal", _public_except("127.0.0.2"))
    # The name answers 127.0.0.1 ("public") first and 127.0.0.2 ("private") to any later lookup.
    resolver = dns({"feeds.test": [["127.0.0.1"], ["127.0.0.2"]]})
    with DripServer(None, host="127.0.0.2", port=port) as rebound:
        got = fetch(f"http://feeds.test:{port}/feed.xml", settings=FetchSettings())
        assert rebound.accepted == 0
    assert got.content == FEED
    assert connects == ["127.0.0.1"] and resolver.calls == ["feeds.test"]  # one lookup, one connection
    assert Handler.seen_headers[-1]["Host"] == f"feeds.test:{port}"


@pytest.mark.parametrize("answer", [["127.0.0.2"], ["127.0.0.1", "127.0.0.2"]], ids=["private", "one-of-two-private"])
def test_a_name_with_a_refused_address_is_never_connected_to(
    server: str, connects: list[str], dns: Callable[..., StubResolver], monkeypatch: pytest.MonkeyPatch,
    answer: list[str],
) -> None:
    port = int(server.rsplit(":", 1)[1])
    monkeypatch.setattr(transport, "refusal", _public_except("127.0.0.2"))
    dns({"feeds.test": [answer, ["127.0.0.1"]]})
    with pytest.raises(FeedError, match=r"refusing feeds\.test \(127\.0\.0\.2\): a private"):
        fetch(f"http://feeds.test:{port}/feed.xml", settings=FetchSettings())
    assert connects == []


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "fe80::1"])
def test_a_name_for_a_metadata_address_is_refused_even_with_allow_private(
    connects: list[str], dns: Callable[..., StubResolver], address: str
) -> None:
    dns({"metadata.test": [[address]]})
    with pytest.raises(FeedError, match=r"refusing metadata\.test .*: a link-local or cloud metadata address"):
        fetch("http://metadata.test/latest/meta-data/", settings=SETTINGS)  # allow_private: true
    assert connects == []


def test_https_to_the_vetted_address_keeps_the_name_for_sni_and_certificate(
    connects: list[str], dns: Callable[..., StubResolver]
) -> None:
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    resolver = dns({"feeds.test": [["127.0.0.1"], ["127.0.0.2"]], "other.test": [["127.0.0.1"]]})
    asked: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("feeds.test").configure_cert(server_context)
    server_context.sni_callback = lambda _sock, sni, _ctx: asked.append(sni)  # type: ignore[assignment,misc]
    for name in ("feeds.test", "other.test"):
        asked.clear()
        with LocalHttpServer(Handler, ssl_context=server_context) as server:
            url = f"https://{name}:{server.port}/feed.xml"
            if name == "feeds.test":
                got = fetch(url, settings=SETTINGS, ssl_context=client_context)
                assert got.content == FEED and asked == ["feeds.test"]
                assert Handler.seen_headers[-1]["Host"] == f"feeds.test:{server.port}"
            else:  # the certificate is for feeds.test: checked against the name, not the pinned address
                with pytest.raises(FeedError, match="certificate verify failed"):
                    fetch(url, settings=SETTINGS, ssl_context=client_context)
                assert asked == ["other.test"]
    assert connects == ["127.0.0.1", "127.0.0.1"] and resolver.calls == ["feeds.test", "other.test"]


# --- passwords in feed URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["missing", "redirect-file"])
def test_a_password_in_the_url_is_masked_in_errors(server: str, path: str) -> None:
    url = server.replace("http://", "http://reader:s3cret-pw@") + f"/{path}"
    with pytest.raises(FeedError) as err:
        fetch(url, settings=SETTINGS)
    assert "s3cret-pw" not in str(err.value) and "reader:***@127.0.0.1" in str(err.value)


def test_a_password_in_a_refused_or_late_url_is_masked() -> None:
    with pytest.raises(FeedError) as refused:
        fetch("http://reader:s3cret-pw@10.1.2.3/feed", settings=FetchSettings())
    with DripServer(HEADERS_DRIP) as drip, pytest.raises(FeedError) as late:
        fetch(f"http://reader:s3cret-pw@127.0.0.1:{drip.port}/feed", settings=DRIP_SETTINGS)
    for err in (refused, late):
        assert "s3cret-pw" not in str(err.value) and "reader:***@" in str(err.value)
