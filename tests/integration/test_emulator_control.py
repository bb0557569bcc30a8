"""Emulator control API: faults, knobs, stats; $batch; directory."""
import hashlib
import http.client
import json
import time
import urllib.parse

import pytest
from conftest import EmulatorError
from emu_helpers import all_pages, h2_get, same_shape, sample


@pytest.fixture(autouse=True)
def _no_faults_left(emulator):
    """A failed test must not leave its fault rules to the next one."""
    yield
    emulator.control("POST", "/faults", {"clear": True})


def test_fault_429_integer_and_fractional_retry_after(emulator):
    emulator.fault(path_regex=r"/sites/root$", status=429,
                   retry_after="2.128", count=1)
    emulator.fault(path_regex=r"/sites/root$", status=429, retry_after=3,
                   count=1)
    st, h, body = emulator.request("GET", "/sites/root")
    assert st == 429 and h["retry-after"] == "2.128"
    same_shape(json.loads(body), sample("error-429.json"))
    st, h, _ = emulator.request("GET", "/sites/root")
    assert st == 429 and h["retry-after"] == "3"
    st, _, _ = emulator.request("GET", "/sites/root")
    assert st == 200
    assert emulator.stats()["throttled"] >= 2


def test_fault_503_and_509(emulator):
    emulator.fault(path_regex=r"/drives$", status=503, retry_after=1,
                   count=1)
    emulator.fault(path_regex=r"/drives$", status=509, count=1)
    site = emulator.get_json("/sites/root")
    st, h, body = emulator.request("GET", "/sites/%s/drives" % site["id"])
    assert st == 503 and h["retry-after"] == "1"
    assert json.loads(body)["error"]["code"] == "activityLimitReached"
    st, h, body = emulator.request("GET", "/sites/%s/drives" % site["id"])
    assert st == 509 and "retry-after" not in h
    err = json.loads(body)["error"]
    assert err["code"] == "activityLimitReached"
    assert err["innerError"]["code"] == "throttledRequest"
    assert emulator.request("GET", "/sites/%s/drives" % site["id"])[0] == 200


def test_fault_403_activity_limit_and_overrides(emulator):
    emulator.reset_stats()
    emulator.fault(path_regex=r"/sites/root$", status=403, retry_after=2,
                   count=1)
    emulator.fault(path_regex=r"/sites/root$", status=429, retry_after=41,
                   code="activityLimitReached", inner_code="throttledRequest",
                   message="The request has been throttled", count=1)
    emulator.fault(path_regex=r"/sites/root$", status=500, count=1)
    st, h, body = emulator.request("GET", "/sites/root")
    assert st == 403 and h["retry-after"] == "2"
    err = json.loads(body)["error"]
    assert err["code"] == "activityLimitReached"
    assert err["message"] == "The request has been throttled"
    assert err["innerError"]["code"] == "throttledRequest"
    assert err["innerError"]["request-id"] == h["request-id"]
    st, h, body = emulator.request("GET", "/sites/root")
    err = json.loads(body)["error"]
    assert st == 429 and h["retry-after"] == "41"
    assert (err["code"], err["innerError"]["code"]) == (
        "activityLimitReached", "throttledRequest")
    st, _, body = emulator.request("GET", "/sites/root")
    assert st == 500
    assert json.loads(body)["error"]["code"] == "generalException"
    assert emulator.request("GET", "/sites/root")[0] == 200
    assert emulator.stats()["throttled"] == 2
    with pytest.raises(EmulatorError):
        emulator.fault(path_regex="x", status=418)


@pytest.mark.parametrize("status", [429, 503, 509, 403])
def test_client_waits_out_throttling_faults(emulator, status):
    """engine/graph (test_graphcli) retries each throttling answer the
    emulator can give, after its Retry-After."""
    from test_graph import run
    emulator.reset_stats()
    emulator.fault(path_regex=r"^/v1\.0/organization$", status=status,
                   retry_after=1, count=1)
    _, tail, _ = run(emulator, "org", check=False)
    got = [e["status"] for e in emulator.stats()["log"]
           if e["path"] == "/v1.0/organization"]
    assert got == [status, 200], got
    assert tail["rc"] == 0


def test_batch_item_403_activity_limit(emulator):
    emulator.fault(path_regex=r"/organization", status=403, retry_after=3,
                   count=1)
    st, _, body = emulator.request("POST", "/$batch", body={"requests": [
        {"id": "a", "method": "GET", "url": "/organization"},
        {"id": "b", "method": "GET", "url": "/organization"}]})
    res = {r["id"]: r for r in json.loads(body)["responses"]}
    assert st == 200
    assert res["a"]["status"] == 403
    assert res["a"]["headers"]["Retry-After"] == "3"
    assert res["a"]["body"]["error"]["code"] == "activityLimitReached"
    assert res["b"]["status"] == 200


def test_fault_drop_connection_after_bytes(emulator):
    t = emulator.truth()
    f = max(t["files"], key=lambda x: x["size"])
    url = emulator.get_json("/drives/%s/items/%s" % (
        f["drive"], f["id"]))["@microsoft.graph.downloadUrl"]
    emulator.fault(path_regex=r"download\.aspx", drop_after_bytes=1000,
                   count=1)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port,
                                       context=emulator.ssl, timeout=30)
    conn.request("GET", u.path + "?" + u.query)
    r = conn.getresponse()
    assert r.status == 200
    assert int(r.getheader("content-length")) == f["size"]
    try:
        got = r.read()
        assert len(got) < f["size"]
    except http.client.IncompleteRead as e:
        assert len(e.partial) == 1000
    conn.close()
    # the next download is whole again
    st, _, body = emulator.request("GET", url, auth=False)
    assert st == 200 and len(body) == f["size"]
    log = [e for e in emulator.stats()["log"] if e.get("dropped")]
    assert log and log[-1]["bytes"] == 1000


@pytest.mark.parametrize("mode", [None, "reset", "close", "rst"])
def test_fault_drop_over_http2(emulator, mode):
    """Over HTTP/2 the cut-off body ends with RST_STREAM INTERNAL_ERROR (or
    the connection closes, drop_mode "close", or is reset, "rst"), never a
    stalled stream."""
    f = max(emulator.truth()["files"], key=lambda x: x["size"])
    url = emulator.get_json("/drives/%s/items/%s" % (
        f["drive"], f["id"]))["@microsoft.graph.downloadUrl"]
    rule = {"path_regex": r"download\.aspx", "drop_after_bytes": 1000,
            "count": 1}
    if mode:
        rule["drop_mode"] = mode
    emulator.fault(**rule)
    got = h2_get(emulator, url)
    assert got["status"] == 200
    assert int(got["headers"]["content-length"]) == f["size"]
    assert len(got["body"]) == 1000, len(got["body"])
    if mode == "close":
        assert got["closed"] is True and got["reset"] is None
    elif mode == "rst":
        assert got["closed"] == "reset" and got["reset"] is None
    else:
        assert got["reset"] == 2 and not got["closed"]  # INTERNAL_ERROR
    # the next download is whole again, over HTTP/2 too
    again = h2_get(emulator, url)
    assert again["status"] == 200 and again["reset"] is None
    assert hashlib.sha256(again["body"]).hexdigest() == f["sha256"]


@pytest.mark.parametrize("mode,http1", [
    ("reset", False), ("close", False), ("rst", False), ("rst", True)])
def test_client_recovers_from_drop_at_once(emulator, mode, http1):
    """engine/http without a low-speed limit: the stream reset, closed or
    reset connection is seen at once and the download retried."""
    from test_graph import of, run
    f = max(emulator.truth()["files"], key=lambda x: x["size"])
    emulator.fault(path_regex=r"download\.aspx", drop_after_bytes=1000,
                   drop_mode=mode, count=1)
    # a stalled stream would hold the client for its 60 s low-speed limit:
    # the driver would be killed at 50 s (a generous bound otherwise)
    res, tail, _ = run(emulator, "download", f["drive"], f["id"],
                       opts=("--backoff", "50") + (("--http1",) if http1
                                                   else ()), timeout=50)
    assert of(res, "download")[0]["sha256"] == f["sha256"]
    assert tail["stats"]["retries"] >= 1
    assert (tail["stats"]["h2"] == 0) == http1
    assert [e for e in emulator.stats()["log"] if e.get("dropped")]


def test_fault_drop_mode_is_checked(emulator):
    with pytest.raises(EmulatorError):
        emulator.fault(path_regex="x", drop_after_bytes=1, drop_mode="later")


def test_fault_latency(emulator):
    emulator.get_json("/organization")
    t0 = time.time()
    emulator.get_json("/organization")
    plain = time.time() - t0
    emulator.fault(path_regex=r"/organization", latency_ms=1500, count=1)
    t0 = time.time()
    emulator.get_json("/organization")
    assert time.time() - t0 >= 1.5
    t0 = time.time()
    emulator.get_json("/organization")
    assert time.time() - t0 < plain + 1.4  # consumed: no delay any more


def test_stats_counts_and_reset(emulator):
    emulator.reset_stats()
    emulator.request("GET", "/sites/root",
                     headers={"client-request-id": "abc-123"})
    emulator.request("GET", "/sites/root", auth=False)
    s = emulator.stats()
    assert s["total"] == 2
    assert s["by_status"]["200"] == 1 and s["by_status"]["401"] == 1
    assert s["log"][0]["client_request_id"] == "abc-123"
    assert s["log"][0]["had_authorization"] is True
    assert s["concurrent_max"] >= 1
    assert any("site_get" in k for k in s["by_route"])
    emulator.reset_stats()
    assert emulator.stats()["total"] == 0


def test_knob_page_size_applies_to_collections(emulator):
    emulator.knobs(page_size=1)
    try:
        page = emulator.get_json("/users")
        assert len(page["value"]) == 1 and "@odata.nextLink" in page
    finally:
        emulator.knobs(page_size=None)


def test_mutate_errors_are_reported(emulator):
    try:
        emulator.mutate(op="delete", path="sites/nowhere/x.txt")
        assert False, "expected an error"
    except Exception as e:
        assert "404" in str(e)
    try:
        emulator.mutate(op="no_such_op")
        assert False, "expected an error"
    except Exception as e:
        assert "400" in str(e)


# --------------------------------------------------------------------------
# $batch


def test_batch_dispatch_dependson_and_424(emulator):
    users = emulator.get_json("/users")["value"]
    st, _, body = emulator.request("POST", "/$batch", body={"requests": [
        {"id": "1", "method": "GET", "url": "/users/" + users[0]["id"]},
        {"id": "2", "method": "GET", "url": "/users/nobody@nowhere",
         "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/organization",
         "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/sites/root"}]})
    assert st == 200
    res = {r["id"]: r for r in json.loads(body)["responses"]}
    assert res["1"]["status"] == 200
    assert res["1"]["body"]["id"] == users[0]["id"]
    assert res["2"]["status"] == 404
    assert res["3"]["status"] == 424
    assert res["4"]["status"] == 200


def test_batch_per_item_429_and_limits(emulator):
    emulator.fault(path_regex=r"/organization", status=429,
                   retry_after="1.5", count=1)
    st, _, body = emulator.request("POST", "/$batch", body={"requests": [
        {"id": "a", "method": "GET", "url": "/organization"},
        {"id": "b", "method": "GET", "url": "/users?$top=1"}]})
    assert st == 200
    res = {r["id"]: r for r in json.loads(body)["responses"]}
    assert res["a"]["status"] == 429
    assert res["a"]["headers"]["Retry-After"] == "1.5"
    assert res["b"]["status"] == 200
    st, _, _ = emulator.request("POST", "/$batch", body={"requests": [
        {"id": str(i), "method": "GET", "url": "/organization"}
        for i in range(21)]})
    assert st == 400


def test_batch_responses_in_any_order(emulator):
    reqs = [{"id": str(i), "method": "GET", "url": "/organization"}
            for i in range(1, 21)]

    def order():
        st, _, body = emulator.request("POST", "/$batch",
                                       body={"requests": reqs})
        assert st == 200
        return [r["id"] for r in json.loads(body)["responses"]]

    got = order()
    assert sorted(got, key=int) == [r["id"] for r in reqs]
    assert got != [r["id"] for r in reqs]  # 1 in 20! to be in order
    emulator.knobs(batch_order="request")
    try:
        assert order() == [r["id"] for r in reqs]
    finally:
        emulator.knobs(batch_order="shuffle")


def test_batch_download_gives_302(emulator):
    t = emulator.truth()
    f = t["files"][0]
    st, _, body = emulator.request("POST", "/$batch", body={"requests": [
        {"id": "1", "method": "GET", "url": "/drives/%s/items/%s/content" % (
            f["drive"], f["id"])}]})
    r = json.loads(body)["responses"][0]
    assert r["status"] == 302
    assert r["headers"]["Location"].startswith(emulator.files_url)


def _encoded_batch_targets(emulator):
    """(label, url, expected id) for batch items whose URLs need percent-
    encoding: a UPN (@), a mail id (+ / =) and a file name (% # + space)."""
    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    upn = emulator.admin_user
    msgs = [m for m in emulator.truth()["messages"] if m["mailbox"] == upn]
    msg = ([m for m in msgs if "/" in m["id"] or "+" in m["id"]] or msgs)[0]
    drive = emulator.get_json("/users/%s/drive" % q(upn))
    made = emulator.mutate(op="create_file", drive=drive["id"],
                           path="/50% a#b+c=d.txt", content="batch\n",
                           conflict="replace")
    user = emulator.get_json("/users/" + q(upn))
    return [("upn", "/users/" + q(upn), user["id"]),
            ("message", "/users/%s/messages/%s" % (q(upn), q(msg["id"])),
             msg["id"]),
            ("path", "/drives/%s/root:/%s" % (drive["id"],
                                               q("50% a#b+c=d.txt")),
             made["id"]),
            ("item", "/drives/%s/items/%s" % (drive["id"], q(made["id"])),
             made["id"])]


def test_batch_urls_with_percent_encoding(emulator):
    targets = _encoded_batch_targets(emulator)
    st, _, body = emulator.request("POST", "/$batch", body={"requests": [
        {"id": label, "method": "GET", "url": url}
        for label, url, _ in targets]})
    assert st == 200, body
    res = {r["id"]: r for r in json.loads(body)["responses"]}
    for label, url, want in targets:
        assert res[label]["status"] == 200, (url, res[label])
        assert res[label]["body"]["id"] == want, url
        # the same URL outside $batch gives the same answer
        assert emulator.get_json(url)["id"] == want


def test_batch_encoded_urls_through_the_client(emulator):
    """engine/graph's graph_batch() (driven by test_graphcli) passes
    percent-encoded item URLs through unchanged."""
    from test_graph import of, run
    targets = _encoded_batch_targets(emulator)
    res, _, _ = run(emulator, "batch", *[url for _, url, _ in targets])
    items = of(res, "batch")
    assert [i["status"] for i in items] == [200] * len(targets), items
    assert [json.loads(i["body"])["id"] for i in items] == \
        [want for _, _, want in targets]


# --------------------------------------------------------------------------
# directory


def test_users_paging_select_and_shape(emulator):
    allu, _ = all_pages(emulator, "/users?$top=1")
    assert len(allu) == len(emulator.truth()["users"])
    same_shape(emulator.get_json("/users/" + allu[0]["id"]),
               sample("user-get.json"))
    sel = emulator.get_json("/users?$select=id,displayName,"
                            "userPrincipalName,mail,accountEnabled,userType"
                            "&$top=999")
    for u in sel["value"]:
        assert set(u) == {"id", "displayName", "userPrincipalName", "mail",
                          "accountEnabled", "userType"}
    by_upn = emulator.get_json("/users/" + allu[0]["userPrincipalName"])
    assert by_upn["id"] == allu[0]["id"]
    st, _, body = emulator.request("GET", "/users/nobody@contoso.com")
    assert st == 404
    assert json.loads(body)["error"]["code"] == "Request_ResourceNotFound"


def test_groups_and_organization(emulator):
    g = emulator.get_json("/groups")
    same_shape(g, sample("groups-list.json"))
    org = emulator.get_json("/organization")["value"][0]
    assert org["id"] == emulator.tenant_id
    assert org["verifiedDomains"][0]["name"] == emulator.tenant_domain


def test_client_does_not_retry_a_plain_403(emulator):
    """A 403 without Retry-After is "access denied", not throttling: one
    request, and the call fails."""
    from test_graph import run
    emulator.reset_stats()
    emulator.fault(path_regex=r"^/v1\.0/organization$", status=403, count=1)
    _, tail, _ = run(emulator, "org", check=False)
    got = [e["status"] for e in emulator.stats()["log"]
           if e["path"] == "/v1.0/organization"]
    assert got == [403], got
    assert tail["rc"] != 0
