"""Helpers for the emulator tests (shape comparison with graph-samples,
delta and paging walkers)."""
import json
import pathlib
import urllib.parse

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "emulator" / \
    "graph-samples"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def same_shape(got, want, path="$", missing_ok=()):
    """Every key of WANT is in GOT with the same JSON type (recursively;
    lists compare their first elements; null in WANT matches anything)."""
    if want is None:
        return
    assert jtype(got) == jtype(want), "%s: %s is %s, sample has %s" % (
        path, json.dumps(got)[:80], jtype(got), jtype(want))
    if isinstance(want, dict):
        for k, v in want.items():
            if k in missing_ok:
                continue
            assert k in got, "%s: missing key '%s' (have %s)" % (
                path, k, sorted(got))
            same_shape(got[k], v, path + "." + k, missing_ok)
    elif isinstance(want, list) and want and got:
        same_shape(got[0], want[0], path + "[0]", missing_ok)


def all_pages(emu, url):
    """Follows @odata.nextLink -> (all values, last page)."""
    out = []
    while True:
        page = emu.get_json(url)
        out.extend(page["value"])
        if "@odata.nextLink" not in page:
            return out, page
        url = page["@odata.nextLink"]


def delta_round(emu, url):
    """One delta round -> (items, deltaLink, pages)."""
    items = []
    pages = 0
    while True:
        page = emu.get_json(url)
        pages += 1
        items.extend(page["value"])
        if "@odata.deltaLink" in page:
            assert "@odata.nextLink" not in page
            return items, page["@odata.deltaLink"], pages
        url = page["@odata.nextLink"]


def q(path):
    return urllib.parse.quote(path)


def h2_get(emu, url, timeout=30):
    """GET URL over HTTP/2 (python3-h2, TLS with the emulator's CA), one
    stream -> {"status", "headers", "body", "reset" (RST_STREAM error code
    or None), "closed" (the connection ended before the stream did: True
    after a TLS close_notify, "reset" when cut off without one)}."""
    import socket
    import ssl

    import h2.config
    import h2.connection
    import h2.events

    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((u.hostname, u.port or 443),
                                   timeout=timeout)
    sock = ctx.wrap_socket(raw, server_hostname=u.hostname,
                           suppress_ragged_eofs=False)
    out = {"status": None, "headers": {}, "body": b"", "reset": None,
           "closed": False}
    try:
        assert sock.selected_alpn_protocol() == "h2"
        c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        c.initiate_connection()
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                             (":authority", u.netloc),
                             (":path", u.path + ("?" + u.query
                                                 if u.query else ""))],
                       end_stream=True)
        sock.sendall(c.data_to_send())
        done = False
        while not done:
            try:
                data = sock.recv(1 << 16)
            except (ConnectionResetError, ssl.SSLEOFError):
                out["closed"] = "reset"  # no TLS close_notify: cut off
                break
            if not data:
                out["closed"] = True
                break
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    out["headers"] = dict(ev.headers)
                    out["status"] = int(out["headers"][":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    out["body"] += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length,
                                                ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    out["reset"] = int(ev.error_code)
                    done = True
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    out["closed"] = True
                    done = True
            pending = c.data_to_send()
            if pending:
                sock.sendall(pending)
    finally:
        sock.close()
    return out
