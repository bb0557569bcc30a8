"""engine/http against a small scripted HTTPS server (HTTP/1.1, test CA).

The driver is build/tests/test_graphcli (tests/unit/test_graphcli.c).  The
server here scripts the failures precisely (429/503 with and without
Retry-After, truncated bodies, redirects to a second host that records the
Authorization header, ranges, uploads), independent of the emulator; the
emulator tests (HTTP/2, Graph) live in test_graph*.py.
"""
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import pathlib
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
DRIVER = BUILD / "tests" / "test_graphcli"

BLOB = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 20))


def make_ca(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name)
          .issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("127.0.0.2"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(
        serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.hits = []      # dicts: t, host, method, path, auth, range
        self.counters = {}  # id -> times seen


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without NODELAY
        # every response waits ~40 ms for the client's delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,
                                   1)

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        st = self.server.state
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.server.server_address[0]
        with st.lock:
            key = q.get("id", u.path)
            n = st.counters.get(key, 0)
            st.counters[key] = n + 1
            st.hits.append({"t": time.monotonic(), "host": host,
                            "method": self.command, "path": u.path,
                            "auth": self.headers.get("Authorization"),
                            "range": self.headers.get("Range"),
                            "crid": self.headers.get("client-request-id"),
                            "len": len(body)})
        times = int(q.get("n", 0))
        if u.path == "/ok":
            return self._send(200, b"hello", [("request-id", "rid-1")])
        if u.path == "/throttle":
            if n < times:
                hdrs = [("Retry-After", q["ra"])] if "ra" in q else []
                return self._send(int(q.get("status", 429)),
                                  b'{"error":{"code":"TooManyRequests"}}',
                                  hdrs)
            return self._send(200, b"done")
        if u.path == "/trunc":
            if n < times:
                self.send_response(200)
                self.send_header("Content-Length", str(len(BLOB)))
                self.end_headers()
                self.wfile.write(BLOB[:100000])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            return self._send(200, BLOB)
        if u.path == "/redirect":
            other = self.server.other_url
            return self._send(302, b"", [
                ("Location", other + "/files/blob?sig=secret")])
        if u.path == "/files/blob":
            rng = self.headers.get("Range")
            if rng and "norange" not in q and rng.startswith("bytes="):
                a, b = rng[6:].split("-")
                a = int(a)
                b = int(b) if b else len(BLOB) - 1
                return self._send(206, BLOB[a:b + 1], [
                    ("Content-Range", "bytes %d-%d/%d" % (a, b, len(BLOB)))])
            return self._send(200, BLOB * int(q.get("mult", 1)))
        if u.path.endswith("/v1.0/users"):
            # page 1 links to page 2 on the same host, or (under /evil)
            # to the other host, which must be refused
            me = "https://%s:%d" % self.server.server_address
            nxt = (self.server.other_url if u.path.startswith("/evil")
                   else me) + "/v1.0/users?page=2"
            if q.get("page") == "2":
                page = {"value": [{"id": "u2"}]}
            else:
                page = {"value": [{"id": "u1"}], "@odata.nextLink": nxt}
            return self._send(200, json.dumps(page).encode())
        if u.path == "/upload":
            return self._send(201, json.dumps({
                "len": len(body),
                "sha256": hashlib.sha256(body).hexdigest()}).encode())
        if u.path == "/slow":
            time.sleep(float(q.get("s", 3)))
            return self._send(200, b"late")
        if u.path == "/status":
            return self._send(int(q["code"]), b'{"error":{"code":"x"}}')
        return self._send(404, b"no")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that drop connections on purpose are expected


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    if not DRIVER.exists():
        pytest.fail("%s is missing: run 'make' first" % DRIVER)
    d = tmp_path_factory.mktemp("mini")
    make_ca(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    state = State()
    servers = []
    for addr in ("127.0.0.1", "127.0.0.2"):
        s = Server((addr, 0), Handler)
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
        s.state = state
        servers.append(s)
    urls = ["https://%s:%d" % s.server_address for s in servers]
    servers[0].other_url = urls[1]
    servers[1].other_url = urls[0]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()

    class Mini:
        pass
    m = Mini()
    m.url, m.files_url, m.ca, m.state = urls[0], urls[1], str(d / "ca.pem"), \
        state
    yield m
    for s in servers:
        s.shutdown()


def run(mini, *args, opts=(), timeout=60):
    cmd = [str(DRIVER), "--ca", mini.ca, "--token", "tok-123"] + \
        list(opts) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert lines, "no output: %s" % p.stderr
    assert "AddressSanitizer" not in p.stderr, p.stderr
    assert "runtime error" not in p.stderr, p.stderr
    return lines[:-1], lines[-1], p.stderr


def test_http_get_ok_sends_request_id(mini):
    res, tail, _ = run(mini, "get", mini.url + "/ok")
    assert res[0]["status"] == 200 and res[0]["rc"] == 0
    assert res[0]["bytes"] == 5
    assert res[0]["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert res[0]["http_version"] == 11
    hit = [h for h in mini.state.hits if h["path"] == "/ok"][-1]
    assert hit["crid"] == res[0]["client_request_id"]
    assert hit["auth"] == "Bearer tok-123"
    assert tail["stats"]["requests"] == 1


def test_http_tls_verification_fails_with_wrong_ca(mini):
    p = subprocess.run([str(DRIVER), "--ca", "/etc/ssl/certs/ca-certificates"
                        ".crt", "get", mini.url + "/ok"],
                       capture_output=True, text=True, timeout=60)
    last = json.loads(p.stdout.splitlines()[-1])
    assert last["rc"] == -1  # -EPERM
    assert p.returncode == 1


def test_http_retry_after_fractional_is_waited(mini):
    res, tail, err = run(mini, "get",
                         mini.url + "/throttle?n=1&ra=1.5&id=ra1")
    r = res[0]
    assert r["status"] == 200 and r["attempts"] == 2
    assert r["elapsed_ms"] >= 1500
    assert r["waited_ms"] >= 1500
    assert tail["stats"]["throttled"] == 1 and tail["stats"]["retries"] == 1
    hits = [h for h in mini.state.hits if h["path"] == "/throttle"
            and "ra1" in str(mini.state.counters)]
    assert len([h for h in hits]) >= 2


def test_http_retry_after_fences_other_requests_to_host(mini):
    # thread 0 is throttled for 2 s at t=0; thread 1 starts at t=0.4 and
    # must not reach the server before the fence ends
    t0 = time.monotonic()
    res, tail, _ = run(mini, "get", mini.url + "/throttle?n=1&ra=2&id=fence",
                       "threads", "2", "delay", "400")
    assert all(r["status"] == 200 for r in res)
    hits = [h for h in mini.state.hits if h["path"] == "/throttle"
            and h["t"] >= t0]
    assert len(hits) == 3
    first = hits[0]["t"]
    later = [h["t"] - first for h in hits[1:]]
    assert min(later) >= 1.9, later
    waited = sorted(r["waited_ms"] for r in res)
    assert waited[0] >= 1400  # the fenced one waited without a 429 itself
    assert tail["stats"]["throttled"] == 1


def test_http_503_without_retry_after_backs_off(mini):
    res, tail, _ = run(mini, "get",
                       mini.url + "/throttle?n=2&status=503&id=u503",
                       opts=("--backoff", "100"))
    assert res[0]["status"] == 200 and res[0]["attempts"] == 3
    assert tail["stats"]["retries"] == 2


def test_http_gives_up_after_max_retries(mini):
    res, tail, _ = run(mini, "get",
                       mini.url + "/throttle?n=10&status=503&id=many",
                       opts=("--backoff", "20", "--retries", "2"))
    assert res[0]["rc"] == 0 and res[0]["status"] == 503
    assert res[0]["attempts"] == 3


@pytest.mark.parametrize("sink", [False, True])
def test_http_truncated_body_is_retried(mini, sink):
    extra = ["sink"] if sink else []
    res, tail, _ = run(mini, "get", mini.url + "/trunc?n=1&id=tr%d" % sink,
                       *extra, opts=("--backoff", "50"))
    r = res[0]
    assert r["rc"] == 0 and r["status"] == 200
    assert r["sha256"] == hashlib.sha256(BLOB).hexdigest()
    assert r["bytes"] == len(BLOB)
    assert r["attempts"] == 2
    if sink:
        assert r["resets"] == 1


def test_http_redirect_never_carries_authorization(mini):
    res, tail, _ = run(mini, "get", mini.url + "/redirect", "follow",
                       "sink")
    r = res[0]
    assert r["status"] == 200
    assert r["sha256"] == hashlib.sha256(BLOB).hexdigest()
    assert r["url"].startswith(mini.files_url)
    hits = [h for h in mini.state.hits if h["path"] in ("/redirect",
                                                        "/files/blob")]
    assert hits[-2]["path"] == "/redirect" and hits[-2]["auth"]
    assert hits[-1]["path"] == "/files/blob" and hits[-1]["auth"] is None
    assert tail["stats"]["redirects"] == 1


def test_http_redirect_not_followed_without_flag(mini):
    res, _, _ = run(mini, "get", mini.url + "/redirect")
    assert res[0]["status"] == 302


def test_http_range_goes_through_redirect(mini):
    res, _, _ = run(mini, "get", mini.url + "/redirect", "follow", "sink",
                    "range", "1000-1999")
    r = res[0]
    assert r["status"] == 206 and r["bytes"] == 1000
    assert r["sha256"] == hashlib.sha256(BLOB[1000:2000]).hexdigest()
    assert r["content_range"] == "bytes 1000-1999/%d" % len(BLOB)


def test_http_streamed_upload(mini):
    size = 5 * 1024 * 1024 + 17
    res, tail, _ = run(mini, "put", mini.url + "/upload", str(size))
    body = json.loads(res[0]["body"])
    assert res[0]["status"] == 201
    assert body["len"] == size
    assert body["sha256"] == hashlib.sha256(b"x" * size).hexdigest()
    assert tail["stats"]["bytes_out"] == size


def test_http_overall_deadline(mini):
    t0 = time.monotonic()
    res, tail, _ = run(mini, "get", mini.url + "/slow?s=5",
                       opts=("--deadline", "700"))
    assert res[0]["rc"] == -110  # -ETIMEDOUT
    assert time.monotonic() - t0 < 4


def test_http_parallel_requests_bounded(mini):
    res, tail, _ = run(mini, "get", mini.url + "/slow?s=0.3", "threads",
                       "8", opts=("--max-inflight", "3"))
    assert all(r["status"] == 200 for r in res) and len(res) == 8
    assert tail["stats"]["inflight_max"] == 3


@pytest.mark.parametrize("norange", [False, True])
@pytest.mark.parametrize("sink", [False, True])
def test_http_range_fields_exact_even_when_ignored(mini, norange, sink):
    url = mini.url + "/redirect" if not norange else \
        mini.files_url + "/files/blob?norange=1"
    extra = ["sink"] if sink else []
    res, _, _ = run(mini, "get", url, "follow", "roff", "300000", "rlen",
                    "70000", *extra)
    r = res[0]
    assert r["status"] == (200 if norange else 206)
    assert r["bytes"] == 70000
    assert r["sha256"] == hashlib.sha256(BLOB[300000:370000]).hexdigest()
    res, _, _ = run(mini, "get", url, "follow", "roff", "1000000", *extra)
    assert res[0]["sha256"] == hashlib.sha256(BLOB[1000000:]).hexdigest()


def test_http_slow_sink_pauses_the_transfer(mini):
    # a consumer slower than the network: the hand-over buffer fills, the
    # transfer is paused and resumed, and every byte arrives once, in order
    res, tail, _ = run(mini, "get", mini.files_url + "/files/blob?mult=6",
                       "sink", "slow", "30", "threads", "2")
    for r in res:
        assert r["rc"] == 0 and r["bytes"] == 6 * len(BLOB)
        assert r["sha256"] == hashlib.sha256(BLOB * 6).hexdigest()
        assert r["writes"] >= 6  # at most 1 MiB per hand-over


def test_http_ignored_range_with_slow_sink_is_exact(mini):
    # a 200 to a range request is trimmed here; a slow consumer pauses the
    # transfer and libcurl hands the paused block over again: the trimming
    # must count it once, or the range ends early (a short body, rc 0)
    want = BLOB * 6
    res, tail, _ = run(mini, "get", mini.files_url +
                       "/files/blob?mult=6&norange=1", "sink", "slow", "30",
                       "roff", "100000", "rlen", "5000000")
    r = res[0]
    assert r["rc"] == 0 and r["status"] == 200
    assert r["bytes"] == 5000000
    assert r["sha256"] == hashlib.sha256(want[100000:5100000]).hexdigest()
    assert r["writes"] >= 5  # it did pause: at most 1 MiB per hand-over
    assert tail["stats"]["short_bodies"] == 0


def test_http_h2_range_with_slow_sink_is_exact(emulator):
    # the emulator over HTTP/2: a 206 to a ranged download of tens of MiB
    # into a consumer slower than the network pauses often; every byte of
    # the range must arrive (before the fix: ~450 KB short, rc 0)
    files = emulator.truth()["files"]
    folder = files[0]["path"].rsplit("/", 1)[0]
    made = emulator.mutate(op="create_file", path=folder + "/h2-big.bin",
                           size=24 << 20)
    url = emulator.get_json("/v1.0/drives/%s/items/%s" % (
        made["drive"], made["id"]))["@microsoft.graph.downloadUrl"]
    cmd = [str(DRIVER), "--ca", emulator.ca_file, "--token", "x", "get",
           url, "sink", "slow", "20", "roff", "1000", "rlen", "20000000",
           "threads", "2"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert len(lines) == 3, p.stderr
    st, _, whole = emulator.request("GET", url, auth=False)
    assert st == 200 and len(whole) == 24 << 20
    for r in lines[:2]:
        assert r["rc"] == 0 and r["status"] == 206
        assert r["http_version"] == 2
        assert r["bytes"] == 20000000
        assert r["sha256"] == \
            hashlib.sha256(whole[1000:20001000]).hexdigest()
        assert r["writes"] >= 10  # it paused: at most 1 MiB a hand-over
    assert lines[2]["stats"]["short_bodies"] == 0


def test_graph_next_link_only_to_the_same_host(mini):
    res, tail, _ = run(mini, "users", opts=("--base", mini.url))
    assert [r["id"] for r in res if r.get("type") == "user"] == ["u1", "u2"]
    assert [r for r in res if r.get("type") == "end"][0]["pages"] == 2
    # a nextLink to another host: refused (-EPROTO), nothing sent there
    n = len(mini.state.hits)
    res, tail, _ = run(mini, "users", opts=("--base", mini.url + "/evil"))
    assert tail["rc"] == -71
    assert [r for r in res if r.get("type") == "error"][0]["rc"] == -71
    assert all(h["host"] == "127.0.0.1" for h in mini.state.hits[n:])


def test_http_sink_error_aborts_the_transfer(mini):
    # the consumer fails (disk full) while the transfer is paused: the
    # request ends at once with the sink's error, no retry
    t0 = time.monotonic()
    res, tail, _ = run(mini, "get", mini.files_url + "/files/blob?mult=20",
                       "sink", "slow", "20", "failafter", "2000000")
    assert res[0]["rc"] == -28  # -ENOSPC
    assert res[0]["attempts"] == 1
    assert time.monotonic() - t0 < 5


def test_http_fence_beyond_deadline_fails_fast(mini):
    t0 = time.monotonic()
    res, tail, _ = run(mini, "get", mini.url + "/throttle?n=1&ra=30&id=dl",
                       opts=("--deadline", "1500"))
    assert res[0]["rc"] == 0 and res[0]["status"] == 429
    assert time.monotonic() - t0 < 3


def test_http_body_cap(mini):
    res, tail, _ = run(mini, "get", mini.files_url + "/files/blob", "cap",
                       "100000")
    assert res[0]["rc"] == -7  # -E2BIG, not retried
    assert res[0]["attempts"] == 1
    res, tail, _ = run(mini, "get", mini.files_url + "/files/blob", "cap",
                       str(len(BLOB)))
    assert res[0]["rc"] == 0 and res[0]["bytes"] == len(BLOB)
