"""Emulator start-up, TLS, control API and Graph error shapes."""
import json
import os
import ssl
import urllib.request


def test_ready_file_fields(emulator):
    for k in ("graph_url", "login_url", "files_url", "control_url",
              "ca_file", "tenant_id", "tenant_domain", "apps", "admin_user",
              "pid"):
        assert k in emulator.ready, k
    assert emulator.graph_url.startswith("https://127.0.0.1:")
    assert emulator.files_url.startswith("https://127.0.0.2:")
    assert emulator.control_url.startswith("http://127.0.0.1:")
    assert not emulator.graph_url.endswith("/v1.0")
    assert os.path.exists(emulator.ca_file)
    assert emulator.pid == emulator.proc.pid


def test_health(emulator):
    h = emulator.control("GET", "/health")
    assert h["ok"] is True
    assert h["tenant_id"] == emulator.tenant_id


def test_tls_verifies_with_test_ca(emulator):
    ctx = ssl.create_default_context(cafile=emulator.ca_file)
    for url in (emulator.graph_url, emulator.files_url):
        try:
            urllib.request.urlopen(url + "/v1.0/", context=ctx, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code in (400, 401, 404)
    # and it is not trusted without the test CA
    try:
        urllib.request.urlopen(emulator.graph_url + "/v1.0/", timeout=10,
                               context=ssl.create_default_context())
        assert False, "TLS accepted without the test CA"
    except urllib.error.URLError as e:
        assert "CERTIFICATE_VERIFY_FAILED" in str(e)


def test_no_token_is_401_with_graph_error_shape(emulator):
    st, hdrs, body = emulator.request("GET", "/sites/root", auth=False)
    assert st == 401
    err = json.loads(body)["error"]
    assert err["code"] == "InvalidAuthenticationToken"
    assert err["message"] == "Access token is empty."
    inner = err["innerError"]
    assert set(inner) >= {"date", "request-id", "client-request-id"}
    assert hdrs["request-id"] == inner["request-id"]


def test_client_request_id_echoed(emulator):
    st, hdrs, body = emulator.request(
        "GET", "/sites/root", auth=False,
        headers={"client-request-id": "11111111-2222-3333-4444-555555555555"})
    assert hdrs["client-request-id"] == "11111111-2222-3333-4444-555555555555"
    assert json.loads(body)["error"]["innerError"]["client-request-id"] == \
        "11111111-2222-3333-4444-555555555555"


def test_factory_gives_separate_processes(emulator_factory, emulator):
    other = emulator_factory(scale=0, seed=2)
    try:
        assert other.graph_url != emulator.graph_url
        assert other.control("GET", "/health")["ok"]
    finally:
        other.stop()
    assert not other.alive()


def test_alpn_offers_h2_and_http11(emulator):
    import socket
    import urllib.parse
    for url in (emulator.graph_url, emulator.files_url):
        u = urllib.parse.urlsplit(url)
        for proto in ("h2", "http/1.1"):
            ctx = ssl.create_default_context(cafile=emulator.ca_file)
            ctx.set_alpn_protocols([proto])
            with socket.create_connection((u.hostname, u.port), 10) as s:
                with ctx.wrap_socket(s, server_hostname=u.hostname) as t:
                    assert t.selected_alpn_protocol() == proto
