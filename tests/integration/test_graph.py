"""engine/graph (and engine/http over HTTP/2) against the emulator.

The driver is build/tests/test_graphcli (tests/unit/test_graphcli.c); each
command prints one JSON object per line, the last one {"rc", "stats"}.
"""
import hashlib
import json
import os
import pathlib
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
DRIVER = BUILD / "tests" / "test_graphcli"

ESTALE, EPROTO, EEXIST, EACCES, ENOENT, EPERM = 116, 71, 17, 13, 2, 1


def run(emu, *args, opts=(), token=None, timeout=120, check=True):
    if not DRIVER.exists():
        pytest.fail("%s is missing: run 'make' first" % DRIVER)
    cmd = [str(DRIVER), "--ca", emu.ca_file, "--base", emu.graph_url,
           "--token", token or emu.token()] + list(opts) + \
        [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert "AddressSanitizer" not in p.stderr, p.stderr
    assert "runtime error" not in p.stderr, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert lines, "no output (exit %d): %s" % (p.returncode, p.stderr)
    tail = lines[-1]
    if check:
        assert tail["rc"] == 0, "%s -> %s\n%s" % (args, lines[-2:],
                                                   p.stderr[-3000:])
    return lines[:-1], tail, p.stderr


def of(lines, kind):
    return [x for x in lines if x.get("type") == kind]


@pytest.fixture(scope="module")
def emu(emulator):
    emulator.knobs(page_size=None)
    return emulator


@pytest.fixture(scope="module")
def site_drive(emu):
    res, _, _ = run(emu, "sites")
    site = [s for s in of(res, "site") if not s["personal"]][0]
    res, _, _ = run(emu, "drives", "site", site["id"])
    return site, of(res, "drive")[0]


def truth_files(emu, drive_id):
    return [f for f in emu.truth()["files"] if f["drive"] == drive_id]


def test_graph_directory_and_http2(emu):
    res, tail, _ = run(emu, "org")
    assert of(res, "org")[0]["default_domain"] == emu.tenant_domain
    res, tail, _ = run(emu, "users")
    users = of(res, "user")
    assert users and all(u["id"] for u in users)
    assert tail["stats"]["h2"] == tail["stats"]["requests"] >= 1
    res, _, _ = run(emu, "groups")
    assert of(res, "end")[0]["count"] == len(of(res, "group"))


def test_graph_delta_pages_and_changes(emu, site_drive):
    _, drive = site_drive
    emu.knobs(page_size=3)
    try:
        res, tail, _ = run(emu, "delta", drive["id"])
    finally:
        emu.knobs(page_size=None)
    end = of(res, "end")[0]
    items = of(res, "item")
    assert end["pages"] >= 2 and end["delta_link"]
    files = {i["id"]: i for i in items if i["kind"] == 1}
    truth = truth_files(emu, drive["id"])
    assert sorted(files) == sorted(f["id"] for f in truth)
    for f in truth:
        assert files[f["id"]]["size"] == f["size"]
        assert files[f["id"]]["quickxor"] == f["quickXorHash"]
    # a change shows up in the next round, nothing else
    victim = truth[0]
    emu.mutate(op="modify_file", drive=drive["id"], id=victim["id"],
               size=1234)
    res2, _, _ = run(emu, "delta", drive["id"], end["delta_link"])
    changed = [i for i in of(res2, "item") if i["kind"] == 1]
    assert [i["id"] for i in changed] == [victim["id"]]
    assert changed[0]["size"] == 1234
    assert of(res2, "end")[0]["delta_link"]


def children_calls(emu):
    return [e for e in emu.stats()["log"] if e["path"].endswith("/children")]


def test_graph_children_read_ahead(emu, site_drive):
    """A pager reading ahead asks for each next page while the current one
    is worked through: the same items as the plain pager, one request a
    page, none twice.  A throttled page ahead is waited for and retried; a
    failing one fails the pager when it is reached.  A pager left before
    its end wasted only the page asked for ahead."""
    _, drive = site_drive
    emu.knobs(page_size=2)
    try:
        res, _, _ = run(emu, "children", drive["id"], "root")
    finally:
        emu.knobs(page_size=None)
    want = [i["id"] for i in of(res, "item")]
    assert len(want) >= 5, "the library root needs 5 items for 3 pages"
    pages = (len(want) + 1) // 2

    emu.reset_stats()
    res, _, _ = run(emu, "children-ahead", drive["id"], "root", 2)
    assert [i["id"] for i in of(res, "item")] == want
    assert of(res, "end")[0]["pages"] == pages
    calls = children_calls(emu)
    assert len(calls) == pages, calls
    tokens = [e["query"] for e in calls]
    assert len(set(tokens)) == pages and "skiptoken" not in tokens[0]

    emu.reset_stats()
    emu.fault(path_regex=r"/children\?.*skiptoken", status=429,
              retry_after="0.1", count=1)
    res, tail, _ = run(emu, "children-ahead", drive["id"], "root", 2)
    assert [i["id"] for i in of(res, "item")] == want
    assert tail["stats"]["throttled"] == 1
    assert len(children_calls(emu)) == pages + 1

    emu.reset_stats()
    emu.fault(path_regex=r"/children\?.*skiptoken", status=403, count=1)
    res, tail, _ = run(emu, "children-ahead", drive["id"], "root", 2,
                       check=False)
    assert tail["rc"] == -EPERM
    assert [i["id"] for i in of(res, "item")] == want[:2]
    assert of(res, "error")[0]["message"].startswith("list children: ")

    emu.reset_stats()
    res, _, _ = run(emu, "children-ahead", drive["id"], "root", 2, 1)
    assert [i["id"] for i in of(res, "item")] == want[:1]
    assert len(children_calls(emu)) <= 2


def test_graph_delta_expired_token_is_estale(emu, site_drive):
    _, drive = site_drive
    res, _, _ = run(emu, "delta", drive["id"])
    link = of(res, "end")[0]["delta_link"]
    emu.knobs(expire_delta_tokens=True)
    res, tail, _ = run(emu, "delta", drive["id"], link, check=False)
    assert tail["rc"] == -ESTALE
    assert "delta token expired" in of(res, "error")[0]["message"]


def test_graph_download_redirect_without_authorization(emu, site_drive):
    _, drive = site_drive
    f = max(truth_files(emu, drive["id"]), key=lambda x: x["size"])
    emu.reset_stats()
    res, tail, _ = run(emu, "download", drive["id"], f["id"])
    d = of(res, "download")[0]
    assert d["sha256"] == f["sha256"] and d["quickxor"] == f["quickXorHash"]
    assert tail["stats"]["redirects"] == 1
    st = emu.stats()
    assert st["files_authorization_seen"] == 0
    log = [e for e in st["log"] if e["method"] == "GET"]
    assert any(e["host"] == "graph" and e["path"].endswith("/content")
               and e["had_authorization"] for e in log)
    assert any(e["host"] == "files" and not e["had_authorization"]
               for e in log)


def test_graph_download_url_and_range(emu, site_drive):
    _, drive = site_drive
    f = max(truth_files(emu, drive["id"]), key=lambda x: x["size"])
    assert f["size"] > 3000
    res, _, _ = run(emu, "item", drive["id"], f["id"])
    url = of(res, "item")[0]["download_url"]
    assert url.startswith(emu.files_url)
    emu.reset_stats()
    res, _, _ = run(emu, "download", drive["id"], f["id"], url, 1000, 2000)
    part = of(res, "download")[0]
    assert part["bytes"] == 2000
    log = [e for e in emu.stats()["log"] if e["host"] == "files"]
    assert log[-1]["range"] == "bytes=1000-2999"
    assert log[-1]["status"] == 206 and not log[-1]["had_authorization"]
    # the range equals the same bytes of the whole file
    res, _, _ = run(emu, "download", drive["id"], f["id"], url, 0, 1000)
    head = of(res, "download")[0]
    res, _, _ = run(emu, "download", drive["id"], f["id"], url, 3000, 0)
    tail_part = of(res, "download")[0]
    assert head["bytes"] + part["bytes"] + tail_part["bytes"] == f["size"]


@pytest.mark.parametrize("status,ra", [(429, "1.5"), (503, "1"), (429, "2")])
def test_graph_throttling_waits_retry_after(emu, status, ra):
    emu.control("POST", "/faults", {"clear": True})
    emu.fault(path_regex=r"/v1\.0/users\?", status=status, retry_after=ra,
              count=1)
    emu.reset_stats()
    t0 = time.monotonic()
    res, tail, _ = run(emu, "users")
    took = time.monotonic() - t0
    assert of(res, "user")
    assert tail["stats"]["throttled"] == 1 and tail["stats"]["retries"] == 1
    assert tail["stats"]["waited_ms"] >= float(ra) * 1000
    assert took >= float(ra)
    log = [e for e in emu.stats()["log"] if e["path"] == "/v1.0/users"]
    assert [e["status"] for e in log] == [status, 200]
    assert log[1]["time"] - log[0]["time"] >= float(ra) - 0.05
    assert log[0]["client_request_id"] == log[1]["client_request_id"]


@pytest.mark.parametrize("opts", [("--http1",), ("--low-speed", "2")],
                         ids=["http1-close", "h2-stalled-stream"])
def test_graph_dropped_connection_is_retried(emu, site_drive, opts):
    # over HTTP/1.1 the emulator closes the connection; over HTTP/2 it
    # leaves the stream stalled, which the low-speed limit catches
    _, drive = site_drive
    f = max(truth_files(emu, drive["id"]), key=lambda x: x["size"])
    emu.control("POST", "/faults", {"clear": True})
    emu.fault(path_regex=r"download\.aspx", drop_after_bytes=1000, count=1)
    res, tail, _ = run(emu, "download", drive["id"], f["id"],
                       opts=("--backoff", "50") + opts)
    d = of(res, "download")[0]
    assert d["sha256"] == f["sha256"]
    assert tail["stats"]["retries"] >= 1


def test_graph_bad_token_is_eacces_with_remedy(emu):
    res, tail, _ = run(emu, "users", token="not-a-token", check=False)
    assert tail["rc"] == -EACCES
    assert "m365-connect test" in of(res, "error")[0]["message"]


def test_graph_not_found_names_the_operation(emu, site_drive):
    _, drive = site_drive
    res, tail, _ = run(emu, "item", drive["id"], "NOPE", check=False)
    assert tail["rc"] == -ENOENT
    e = of(res, "error")[0]
    assert e["message"].startswith("read the item: not found")
    assert e["request_id"]


def test_graph_mail_folders_delta_and_mime(emu):
    upn = emu.admin_user
    emu.knobs(page_size=2)
    try:
        res, _, _ = run(emu, "folders", upn, "-", "hidden")
    finally:
        emu.knobs(page_size=None)
    folders = of(res, "mail_folder")
    names = [f["display_name"] for f in folders]
    assert "Inbox" in names
    assert of(res, "end")[0]["pages"] >= 2
    inbox = [f for f in folders if f["display_name"] == "Inbox"][0]
    truth = [m for m in emu.truth()["messages"] if m["mailbox"] == upn
             and m["folder_path"] == "Inbox"]
    res, tail, _ = run(emu, "mdelta", upn, inbox["id"])
    msgs = of(res, "message")
    assert sorted(m["subject"] for m in msgs) == \
        sorted(m["subject"] for m in truth)
    assert of(res, "end")[0]["delta_link"]
    byid = {m["id"]: m for m in truth}
    m = msgs[0]
    res, _, _ = run(emu, "mime", upn, m["id"])
    d = of(res, "download")[0]
    if m["id"] in byid:
        assert d["sha256"] == byid[m["id"]]["sha256"]
    assert d["bytes"] > 0


def test_graph_upload_session_with_resume(emu, site_drive, tmp_path):
    _, drive = site_drive
    data = os.urandom(327680 * 3 + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    emu.reset_stats()
    res, tail, _ = run(emu, "upload", drive["id"], "root", "big.bin", src,
                       327680, 2)
    up = of(res, "upload")[0]
    assert up["done"] and up["parts"] == 4
    assert of(res, "resume")[0]["next"] == 327680 * 2
    item = of(res, "item")[0]
    assert item["size"] == len(data)
    t = [f for f in truth_files(emu, drive["id"]) if f["id"] == item["id"]]
    assert t and t[0]["sha256"] == hashlib.sha256(data).hexdigest()
    st = emu.stats()
    assert st["files_authorization_seen"] == 0


def test_graph_small_upload_folder_and_conflict(emu, site_drive, tmp_path):
    _, drive = site_drive
    res, _, _ = run(emu, "mkdir", drive["id"], "root", "restored")
    folder = of(res, "item")[0]
    assert folder["kind"] == 2
    res, tail, _ = run(emu, "mkdir", drive["id"], "root", "restored",
                       check=False)
    assert tail["rc"] == -EEXIST
    assert "conflict policy" in of(res, "error")[0]["message"]
    src = tmp_path / "a+b c.txt"
    src.write_bytes(b"hello restore\n")
    res, _, _ = run(emu, "put-small", drive["id"], folder["id"], src.name,
                    src)
    item = of(res, "item")[0]
    assert item["name"] == "a+b c.txt" and item["size"] == 14
    res, _, _ = run(emu, "item-path", drive["id"], "/restored/a+b c.txt")
    assert of(res, "item")[0]["id"] == item["id"]


def test_graph_batch(emu):
    res, tail, _ = run(emu, "batch", "/users", "/groups", "/organization")
    items = of(res, "batch")
    assert [i["status"] for i in items] == [200, 200, 200]
    assert json.loads(items[0]["body"])["value"]


def test_graph_message_create_and_move(emu, tmp_path):
    upn = emu.admin_user
    res, _, _ = run(emu, "folders", upn)
    inbox = [f for f in of(res, "mail_folder")
             if f["display_name"] == "Inbox"][0]
    body = {"subject": "restored 1", "body": {"contentType": "text",
                                              "content": "x"},
            "singleValueExtendedProperties": [
                {"id": "Integer 0x0E07", "value": "1"},
                {"id": "SystemTime 0x0E06", "value": "2018-09-09T03:15:08Z"}]}
    js = tmp_path / "m.json"
    js.write_text(json.dumps(body))
    res, _, _ = run(emu, "msg-json", upn, inbox["id"], js)
    m = of(res, "message")[0]
    assert m["subject"] == "restored 1" and not m["is_draft"]
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"From: a@b.example\r\nTo: c@d.example\r\n"
                    b"Subject: mime one\r\nMIME-Version: 1.0\r\n\r\nhi\r\n")
    res, _, _ = run(emu, "msg-mime", upn, eml)
    draft = of(res, "message")[0]
    assert draft["is_draft"]
    res, _, _ = run(emu, "msg-move", upn, draft["id"], inbox["id"])
    moved = of(res, "message")[0]
    assert moved["parent_folder_id"] == inbox["id"]


def test_graph_expired_download_url_is_eacces(emu, site_drive):
    _, drive = site_drive
    f = max(truth_files(emu, drive["id"]), key=lambda x: x["size"])
    res, _, _ = run(emu, "item", drive["id"], f["id"])
    url = of(res, "item")[0]["download_url"]
    bad = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    res, tail, _ = run(emu, "download", drive["id"], f["id"], bad,
                       check=False)
    assert tail["rc"] == -EACCES
    msg = of(res, "error")[0]["message"]
    assert "pre-authenticated URL was refused" in msg
    assert "m365-connect" not in msg


def test_graph_batch_retries_only_throttled_items(emu):
    emu.control("POST", "/faults", {"clear": True})
    emu.fault(path_regex=r"^/v1\.0/groups", status=429, retry_after="1.2",
              count=1)
    emu.reset_stats()
    t0 = time.monotonic()
    res, tail, _ = run(emu, "batch", "/users", "/groups")
    assert time.monotonic() - t0 >= 1.2
    items = of(res, "batch")
    assert [i["status"] for i in items] == [200, 200]
    log = emu.stats()["log"]
    assert len([e for e in log if e["path"] == "/v1.0/$batch"]) == 2
    assert len([e for e in log if e["path"] == "/v1.0/users"]) == 1
    assert [e["status"] for e in log if e["path"] == "/v1.0/groups"] == \
        [429, 200]


def test_graph_upload_session_cancel(emu, site_drive, tmp_path):
    _, drive = site_drive
    src = tmp_path / "c.bin"
    src.write_bytes(os.urandom(327680 * 2))
    res, tail, _ = run(emu, "upload", drive["id"], "root", "c.bin", src,
                       327680, 1, "cancel", check=False)
    assert of(res, "cancel")[0]["rc"] == 0
    assert tail["rc"] == -ENOENT  # the session is gone
    assert not [f for f in truth_files(emu, drive["id"])
                if f["path"].endswith("/c.bin")]


def test_graph_message_delta_page_size(emu):
    upn = emu.admin_user
    res, _, _ = run(emu, "folders", upn)
    inbox = [f for f in of(res, "mail_folder")
             if f["display_name"] == "Inbox"][0]
    emu.reset_stats()
    res, _, _ = run(emu, "mdelta", upn, inbox["id"], opts=("--mail-page",
                                                            "2"))
    end = of(res, "end")[0]
    # Prefer: odata.maxpagesize=2 was honoured: at most 2 per page
    assert end["count"] >= 3 and end["pages"] >= (end["count"] + 1) // 2
    log = [e for e in emu.stats()["log"] if "/messages/delta" in e["path"]]
    assert len(log) == end["pages"]


def test_graph_upload_replayed_fragment_resyncs(emu, site_drive, tmp_path):
    _, drive = site_drive
    data = os.urandom(327680 * 3 + 7)
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    emu.reset_stats()
    res, tail, _ = run(emu, "upload", drive["id"], "root", "r.bin", src,
                       327680, 2, "replay")
    puts = [e["status"] for e in emu.stats()["log"]
            if e["host"] == "files" and e["method"] == "PUT"]
    assert puts == [202, 202, 416, 202, 201]
    rp = of(res, "replay")[0]
    assert rp["rc"] == 0 and rp["next"] == 327680 * 2
    item = of(res, "item")[0]
    t = [f for f in truth_files(emu, drive["id"]) if f["id"] == item["id"]]
    assert t and t[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_graph_expired_token_is_refreshed_once(emu):
    emu.reset_stats()
    res, tail, _ = run(emu, "users", opts=("--stale", "expired-token"))
    assert of(res, "user")
    log = [e["status"] for e in emu.stats()["log"]
           if e["path"] == "/v1.0/users"]
    assert log == [401, 200]


def test_graph_http2_multiplexes_on_one_connection(emu):
    res, tail, _ = run(emu, "get", emu.graph_url + "/v1.0/organization",
                       "threads", "8", "count", "4")
    assert all(r["status"] == 200 and r["http_version"] == 2 for r in res)
    st = tail["stats"]
    assert st["requests"] == 32 and st["h2"] == 32
    assert st["inflight_max"] >= 2
    assert st["connects"] == 1
    res, tail, _ = run(emu, "get", emu.graph_url + "/v1.0/organization",
                       "threads", "4", "count", "2", opts=("--http1",))
    assert all(r["http_version"] == 11 for r in res)
    assert tail["stats"]["connects"] >= 2  # no multiplexing on 1.1
