"""Emulator files side: shapes vs graph-samples, paging, delta round trips
across every mutation kind, downloads (302, Range), uploads, versions."""
import base64
import hashlib
import json
import os
import sys


from emu_helpers import all_pages, delta_round, q, same_shape, sample

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
import quickxor  # noqa: E402


def lib(emu, truth=None):
    """(drive id, truth prefix) of the first team site's library."""
    truth = truth or emu.truth()
    for d in truth["drives"]:
        if d["path"].endswith("/sites/Marketing/Documents"):
            return d["id"], d["path"]
    raise AssertionError("no Marketing library in %s" % truth["drives"])


def fetch(emu, url, headers=None):
    st, h, body = emu.request("GET", url, auth=False, headers=headers)
    return st, h, body


# --------------------------------------------------------------------------
# shapes


def test_site_shapes(emulator):
    allsites = emulator.get_json("/sites/getAllSites")
    same_shape(allsites, sample("sites-getallsites.json"),
               missing_ok=("@odata.nextLink",))
    root = [s for s in allsites["value"] if s["webUrl"] ==
            "https://contoso.sharepoint.com"][0]
    assert root["siteCollection"]["root"] == {}
    same_shape(emulator.get_json("/sites?search=*"),
               sample("sites-search.json"))
    site = emulator.get_json("/sites/root")
    same_shape(site, sample("site-get.json"))
    by_path = emulator.get_json("/sites/contoso.sharepoint.com:/sites/"
                                "Marketing")
    same_shape(by_path, sample("site-get.json"))
    assert by_path["webUrl"] == "https://contoso.sharepoint.com/sites/" \
        "Marketing"
    assert emulator.get_json("/sites/" + by_path["id"])["id"] == \
        by_path["id"]
    drives = emulator.get_json("/sites/%s/drives" % by_path["id"])
    assert drives["value"][0]["driveType"] == "documentLibrary"
    assert "group" in drives["value"][0]["owner"]  # a group's team site
    drives = emulator.get_json("/sites/root/drives")
    same_shape(drives, sample("drives-list.json"))


def test_drive_and_item_shapes(emulator):
    did, _ = lib(emulator)
    d = emulator.get_json("/users/%s/drive" % emulator.admin_user)
    same_shape(d, sample("drive-get.json"))
    assert emulator.get_json("/drives/" + d["id"])["id"] == d["id"]
    root = emulator.get_json("/drives/%s/root" % did)
    same_shape(root, sample("driveitem-get-root.json"))
    assert root["root"] == {}
    assert "path" not in root["parentReference"]
    kids = emulator.get_json("/drives/%s/root/children" % did)
    want = sample("driveitem-children.json")
    files = [c for c in kids["value"] if "file" in c]
    folders = [c for c in kids["value"] if "folder" in c]
    same_shape(files[0], want["value"][0])
    same_shape(folders[0], want["value"][1])
    f = files[0]
    assert len(f["file"]["hashes"]["quickXorHash"]) == 28
    assert f["parentReference"]["path"] == "/drive/root:"
    assert f["parentReference"]["id"] == root["id"]
    assert f["eTag"] != f["cTag"]
    assert isinstance(f["size"], int)
    assert f["@microsoft.graph.downloadUrl"].startswith(emulator.files_url)


def test_user_drive_and_missing_mysite(emulator):
    t = emulator.truth()
    with_drive = [u for u in t["users"] if u["has_onedrive"]]
    without = [u for u in t["users"] if not u["has_onedrive"]]
    assert with_drive and without
    d = emulator.get_json("/users/%s/drive" % with_drive[0]["id"])
    assert d["driveType"] == "business"
    st, _, body = emulator.request("GET", "/users/%s/drive" %
                                   without[0]["userPrincipalName"])
    assert st == 404
    assert json.loads(body)["error"]["message"] == "User's mysite not found."


def test_select_and_unknown_property(emulator):
    did, _ = lib(emulator)
    r = emulator.get_json("/drives/%s/root/children?$select=id,name,size"
                          % did)
    for c in r["value"]:
        assert set(c) - {"@odata.etag"} <= {"id", "name", "size"}
        assert "@microsoft.graph.downloadUrl" not in c
    st, _, body = emulator.request("GET", "/drives/%s/root/children?$select="
                                   "id,bogus" % did)
    assert st == 400


def test_children_paging_with_top(emulator):
    did, _ = lib(emulator)
    full = emulator.get_json("/drives/%s/root/children" % did)["value"]
    paged, _ = all_pages(emulator, "/drives/%s/root/children?$top=2" % did)
    assert len(full) > 2
    assert [c["id"] for c in paged] == [c["id"] for c in full]


def test_get_by_path_with_special_names(emulator):
    t = emulator.truth()
    did, prefix = lib(emulator, t)
    for f in t["files"]:
        if f["path"].startswith(prefix + "/") and f["size"] > 0:
            rel = f["path"][len(prefix) + 1:]
            it = emulator.get_json("/drives/%s/root:/%s" % (did, q(rel)))
            assert it["id"] == f["id"]
            assert it["file"]["hashes"]["quickXorHash"] == f["quickXorHash"]
            assert it["size"] == f["size"]


# --------------------------------------------------------------------------
# downloads


def test_content_302_and_full_download_matches_truth(emulator):
    t = emulator.truth()
    did, prefix = lib(emulator, t)
    f = max((x for x in t["files"] if x["drive"] == did),
            key=lambda x: x["size"])
    emulator.reset_stats()
    st, h, _ = emulator.request("GET", "/drives/%s/items/%s/content" %
                                (did, f["id"]))
    assert st == 302
    loc = h["location"]
    assert loc.startswith(emulator.files_url)
    st, h, body = fetch(emulator, loc)
    assert st == 200 and len(body) == f["size"]
    assert hashlib.sha256(body).hexdigest() == f["sha256"]
    assert quickxor.quickxor_b64(body) == f["quickXorHash"]
    s = emulator.stats()
    assert s["files_authorization_seen"] == 0
    assert s["bytes_downloaded"] >= f["size"]
    # Authorization sent to the files host is recorded
    emulator.request("GET", loc)
    assert emulator.stats()["files_authorization_seen"] == 1


def test_range_requests(emulator):
    t = emulator.truth()
    did, _ = lib(emulator, t)
    f = max((x for x in t["files"] if x["drive"] == did),
            key=lambda x: x["size"])
    it = emulator.get_json("/drives/%s/items/%s" % (did, f["id"]))
    url = it["@microsoft.graph.downloadUrl"]
    _, _, whole = fetch(emulator, url)
    size = len(whole)
    st, h, body = fetch(emulator, url, {"Range": "bytes=10-99"})
    assert st == 206 and body == whole[10:100]
    assert h["content-range"] == "bytes 10-99/%d" % size
    st, h, body = fetch(emulator, url, {"Range": "bytes=%d-" % (size - 5)})
    assert st == 206 and body == whole[-5:]
    st, h, body = fetch(emulator, url, {"Range": "bytes=-7"})
    assert st == 206 and body == whole[-7:]
    st, h, _ = fetch(emulator, url, {"Range": "bytes=%d-" % size})
    assert st == 416 and h["content-range"] == "bytes */%d" % size


def test_download_url_tampering_rejected(emulator):
    t = emulator.truth()
    did, _ = lib(emulator, t)
    f = [x for x in t["files"] if x["drive"] == did][0]
    url = emulator.get_json("/drives/%s/items/%s" % (
        did, f["id"]))["@microsoft.graph.downloadUrl"]
    head, tok = url.split("tempauth=")
    raw, mac = tok.split(".")
    payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) %
                                                               4)))
    payload["x"] += 100000
    forged = base64.urlsafe_b64encode(json.dumps(
        payload, separators=(",", ":")).encode()).decode().rstrip("=")
    st, _, _ = fetch(emulator, head + "tempauth=" + forged + "." + mac)
    assert st == 401
    st, _, _ = fetch(emulator, url)
    assert st == 200


def test_download_url_expires(emulator_factory):
    emu = emulator_factory(scale=0, download_url_lifetime=30)
    try:
        t = emu.truth()
        f = t["files"][0]
        url = emu.get_json("/drives/%s/items/%s" % (
            f["drive"], f["id"]))["@microsoft.graph.downloadUrl"]
        assert fetch(emu, url)[0] == 200
        emu.knobs(clock_skew=60)
        assert fetch(emu, url)[0] == 401
    finally:
        emu.stop()


# --------------------------------------------------------------------------
# delta


def apply_delta(state, items):
    for it in items:
        if "deleted" in it:
            state.pop(it["id"], None)
        else:
            state[it["id"]] = it


def tree_paths(state, root_id):
    out = {}
    for iid, it in state.items():
        if iid == root_id:
            continue
        parts = [it["name"]]
        p = it["parentReference"].get("id")
        while p != root_id:
            parent = state[p]
            parts.append(parent["name"])
            p = parent["parentReference"]["id"]
        out["/".join(reversed(parts))] = it
    return out


def check_against_truth(emu, did, prefix, state, root_id):
    t = emu.truth()
    paths = tree_paths(state, root_id)
    want_files = {f["path"][len(prefix) + 1:]: f for f in t["files"]
                  if f["drive"] == did}
    want_folders = {p[len(prefix) + 1:] for p in t["folders"]
                    if p.startswith(prefix + "/")}
    got_files = {p: it for p, it in paths.items() if "file" in it}
    got_folders = {p for p, it in paths.items() if "folder" in it}
    assert set(got_files) == set(want_files)
    assert got_folders == want_folders
    for p, f in want_files.items():
        assert got_files[p]["file"]["hashes"]["quickXorHash"] == \
            f["quickXorHash"], p
        assert got_files[p]["size"] == f["size"], p
        assert got_files[p]["id"] == f["id"]


def test_delta_round_trip_across_mutations(emulator):
    emulator.knobs(page_size=7)
    try:
        t = emulator.truth()
        did, prefix = lib(emulator, t)
        items, link, pages = delta_round(emulator,
                                         "/drives/%s/root/delta" % did)
        assert pages > 2
        seen = set()
        root_id = None
        for it in items:  # parents before children
            if "root" in it:
                root_id = it["id"]
            else:
                assert it["parentReference"]["id"] in seen
            seen.add(it["id"])
        state = {}
        apply_delta(state, items)
        check_against_truth(emulator, did, prefix, state, root_id)

        files = sorted(f["path"] for f in t["files"] if f["drive"] == did)
        folders = sorted(p for p in t["folders"]
                         if p.startswith(prefix + "/"))
        deep = [p for p in folders if p.count("/") > prefix.count("/") + 1]
        gone = deep[-1]
        moved_folder = [p for p in folders if p != gone and
                        not gone.startswith(p + "/") and
                        not p.startswith(gone + "/")][0]
        files = [f for f in files if not f.startswith(gone + "/")]
        mod = emulator.truth()["files"]
        target = [f for f in mod if f["path"] == files[0]][0]
        emulator.mutate(op="create_folder", path=prefix + "/New stuff")
        emulator.mutate(op="create_file", path=prefix + "/New stuff/new.txt",
                        content="zanzibar-quartz fresh")
        emulator.mutate(op="modify_file", path=files[0], size=4321)
        emulator.mutate(op="rename", path=files[1], new_name="renamed ü.txt")
        emulator.mutate(op="move", path=files[2], dest=prefix + "/New stuff")
        emulator.mutate(op="delete", path=files[3])
        emulator.mutate(op="delete", path=gone)  # folder with contents
        emulator.mutate(op="move", path=moved_folder,
                        dest=prefix + "/New stuff")
        # and a change through Graph itself
        st, _, _ = emulator.request(
            "PUT", "/drives/%s/root:/%s:/content" % (did, q("via graph.txt")),
            body=b"hello from graph")
        assert st == 201

        items2, link2, _ = delta_round(emulator, link)
        ids = {i["id"] for i in items2}
        assert target["id"] in ids
        assert len(items2) < len(items)
        assert any("deleted" in i for i in items2)
        for i in items2:
            if "deleted" in i:
                assert i["deleted"] == {"state": "deleted"}
        apply_delta(state, items2)
        check_against_truth(emulator, did, prefix, state, root_id)
        after = {i["id"]: i for i in items2}[target["id"]]
        assert after["cTag"] != target["cTag"]

        # rename only: eTag changes, cTag does not
        f = [x for x in emulator.truth()["files"] if x["drive"] == did][0]
        emulator.mutate(op="rename", id=f["id"], new_name="only renamed.txt")
        items3, link3, _ = delta_round(emulator, link2)
        got = {i["id"]: i for i in items3}[f["id"]]
        assert got["cTag"] == f["cTag"] and got["eTag"] != f["eTag"]
        apply_delta(state, items3)
        check_against_truth(emulator, did, prefix, state, root_id)

        # nothing changed: empty round
        items4, _, _ = delta_round(emulator, link3)
        assert items4 == []
    finally:
        emulator.knobs(page_size=None)


def test_delta_latest_timestamp_and_resync(emulator):
    did, prefix = lib(emulator)
    page = emulator.get_json("/drives/%s/root/delta?token=latest" % did)
    assert page["value"] == [] and "@odata.deltaLink" in page
    emulator.mutate(op="create_file", path=prefix + "/after latest.txt",
                    size=10)
    items, _, _ = delta_round(emulator, page["@odata.deltaLink"])
    assert "after latest.txt" in [i.get("name") for i in items]
    # timestamp token
    items, _, _ = delta_round(emulator, "/drives/%s/root/delta?token=%s" % (
        did, q("2000-01-01T00:00:00Z")))
    assert len(items) > 5
    # expiry -> 410 resyncRequired with Location
    emulator.knobs(expire_delta_tokens=True)
    st, h, body = emulator.request("GET", page["@odata.deltaLink"])
    assert st == 410
    err = json.loads(body)["error"]
    assert err["code"] == "resyncRequired"
    assert err["innerError"]["code"] == "resyncChangesApplyDifferences"
    assert h["location"].endswith("/v1.0/drives/%s/root/delta" % did)
    items, _, _ = delta_round(emulator, h["location"])
    assert any("root" in i for i in items)
    # a garbage token also gives 410
    st, _, _ = emulator.request("GET", "/drives/%s/root/delta?token=abc" %
                                did)
    assert st == 410


def test_delta_page_shapes(emulator):
    did, _ = lib(emulator)
    emulator.knobs(page_size=3)
    try:
        first = emulator.get_json("/drives/%s/root/delta" % did)
        same_shape(first, sample("drive-delta-page.json"),
                   missing_ok=("deleted",))
        items, link, _ = delta_round(emulator, first["@odata.nextLink"])
        last = emulator.get_json(link)
        assert "@odata.deltaLink" in last
    finally:
        emulator.knobs(page_size=None)


# --------------------------------------------------------------------------
# uploads


def session(emu, did, path, body=None):
    st, _, resp = emu.request(
        "POST", "/drives/%s/root:/%s:/createUploadSession" % (did, q(path)),
        body=body or {})
    assert st == 200, resp
    j = json.loads(resp)
    same_shape(j, sample("upload-session-create.json"))
    return j["uploadUrl"]


def put_frag(emu, url, data, start, total, auth=False):
    return emu.request("PUT", url, body=data, auth=auth, headers={
        "Content-Range": "bytes %d-%d/%d" % (start, start + len(data) - 1,
                                             total)})


def test_upload_session_ok(emulator):
    did, prefix = lib(emulator)
    data = os.urandom(3 * 327680 + 1234)
    url = session(emulator, did, "big upload.bin")
    st, _, body = put_frag(emulator, url, data[:327680], 0, len(data))
    assert st == 202
    j = json.loads(body)
    same_shape(j, sample("upload-session-202.json"))
    assert j["nextExpectedRanges"] == ["327680-"]
    # not a multiple of 320 KiB
    st, _, _ = put_frag(emulator, url, data[327680:327680 + 1000], 327680,
                        len(data))
    assert st == 400
    # overlap
    st, _, body = put_frag(emulator, url, data[0:327680], 0, len(data))
    assert st == 416
    # out of order (gap)
    st, _, _ = put_frag(emulator, url, data[655360:983040], 655360,
                        len(data))
    assert st == 416
    # status
    st, _, body = emulator.request("GET", url, auth=False)
    same_shape(json.loads(body), sample("upload-session-status.json"))
    # Authorization header on the upload URL is refused
    st, _, _ = put_frag(emulator, url, data[327680:655360], 327680,
                        len(data), auth=True)
    assert st == 401
    st, _, _ = put_frag(emulator, url, data[327680:983040], 327680,
                        len(data))
    assert st == 202
    st, _, body = put_frag(emulator, url, data[983040:], 983040, len(data))
    assert st == 201, body
    it = json.loads(body)
    same_shape(it, sample("upload-session-complete-201.json"))
    assert it["size"] == len(data)
    assert it["file"]["hashes"]["quickXorHash"] == \
        quickxor.quickxor_b64(data)
    t = emulator.truth()
    f = [x for x in t["files"] if x["id"] == it["id"]][0]
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    # the session is gone
    st, _, _ = emulator.request("GET", url, auth=False)
    assert st == 404


def test_upload_conflict_behaviours(emulator):
    did, prefix = lib(emulator)
    st, _, _ = emulator.request("PUT", "/drives/%s/root:/%s:/content" % (
        did, q("conf.txt")), body=b"one")
    assert st == 201
    # fail
    url = session(emulator, did, "conf.txt")
    st, _, body = put_frag(emulator, url, b"two", 0, 3)
    assert st == 409
    assert json.loads(body)["error"]["code"] == "nameAlreadyExists"
    # rename
    url = session(emulator, did, "conf.txt", {"item": {
        "@microsoft.graph.conflictBehavior": "rename"}})
    st, _, body = put_frag(emulator, url, b"two", 0, 3)
    assert st == 201 and json.loads(body)["name"] == "conf 1.txt"
    # replace -> 200 and a new version
    url = session(emulator, did, "conf.txt", {"item": {
        "@microsoft.graph.conflictBehavior": "replace"}})
    st, _, body = put_frag(emulator, url, b"three", 0, 5)
    assert st == 200
    it = json.loads(body)
    v = emulator.get_json("/drives/%s/items/%s/versions" % (did, it["id"]))
    same_shape(v, sample("driveitem-versions.json"))
    assert [x["id"] for x in v["value"]] == ["2.0", "1.0"]
    assert [x["size"] for x in v["value"]] == [5, 3]
    st, h, _ = emulator.request("GET", "/drives/%s/items/%s/versions/1.0/"
                                "content" % (did, it["id"]))
    assert st == 302
    assert fetch(emulator, h["location"])[2] == b"one"
    # by item id: replaces
    st, _, body = emulator.request(
        "POST", "/drives/%s/items/%s/createUploadSession" % (did, it["id"]),
        body={})
    url = json.loads(body)["uploadUrl"]
    st, _, body = put_frag(emulator, url, b"four!", 0, 5)
    assert st == 200 and json.loads(body)["id"] == it["id"]
    # delete a session
    url = session(emulator, did, "never.txt")
    st, _, _ = emulator.request("DELETE", url, auth=False)
    assert st == 204
    assert emulator.request("GET", url, auth=False)[0] == 404


def test_upload_session_expiry(emulator):
    did, _ = lib(emulator)
    url = session(emulator, did, "late.bin")
    emulator.knobs(clock_skew=7200)
    try:
        st, _, body = put_frag(emulator, url, b"x", 0, 1)
        assert st == 404
    finally:
        emulator.knobs(clock_skew=0)


def test_small_put_folder_create_and_409(emulator):
    did, prefix = lib(emulator)
    st, _, body = emulator.request("POST", "/drives/%s/root/children" % did,
                                   body={"name": "Restored", "folder": {}})
    assert st == 201
    folder = json.loads(body)
    st, _, body = emulator.request("POST", "/drives/%s/root/children" % did,
                                   body={"name": "restored", "folder": {},
                                         "@microsoft.graph.conflictBehavior":
                                         "fail"})
    assert st == 409
    assert json.loads(body)["error"]["code"] == "nameAlreadyExists"
    st, _, body = emulator.request(
        "PUT", "/drives/%s/items/%s:/%s:/content" % (did, folder["id"],
                                                     q("a #1.txt")),
        body=b"abc")
    assert st == 201
    it = json.loads(body)
    assert it["file"]["hashes"]["quickXorHash"] == \
        "YRDDGAAAAAAAAAAAAwAAAAAAAAA="
    st, _, body = emulator.request("PUT", "/drives/%s/items/%s/content" % (
        did, it["id"]), body=b"abcd")
    assert st == 200 and json.loads(body)["size"] == 4
    assert json.loads(body)["cTag"] != it["cTag"]
    assert emulator.truth()["files"] and prefix + "/Restored/a #1.txt" in [
        f["path"] for f in emulator.truth()["files"]]


# --------------------------------------------------------------------------
# generator


def test_quickxor_vectors():
    vec = {b"": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
           b"a": "YQAAAAAAAAAAAAAAAQAAAAAAAAA=",
           b"abc": "YRDDGAAAAAAAAAAAAwAAAAAAAAA=",
           b"Hello, World!": "SCgDG9jwBhaA4ApvnQMbyBACAAA=",
           b"The quick brown fox jumps over the lazy dog":
           "bMSlbysmxJL6S75XwfMcQZOpcr4=",
           bytes(range(160)): "/+EGLlnQi0dVs5OErXWhEnz5wg4=",
           bytes(i & 0xFF for i in range(1024)):
           "h7xr2dbCayZCQYR9KKhlwDuT4UI="}
    for data, want in vec.items():
        assert quickxor.quickxor_b64(data) == want
        assert quickxor.reference(data) == want
    blob = os.urandom(5000)
    h = quickxor.QuickXor()
    for i in range(0, len(blob), 333):
        h.update(blob[i:i + 333])
    assert h.b64() == quickxor.reference(blob)


def test_generator_is_deterministic(emulator, emulator_factory):
    other = emulator_factory(scale=0)  # fresh, unmutated, same seed
    third = emulator_factory(scale=0)
    try:
        a, b = other.truth(), third.truth()
        assert a["files"] == b["files"]
        assert a["folders"] == b["folders"]
        assert a["tenant_id"] == b["tenant_id"] == emulator.tenant_id
        d = emulator_factory(scale=0, seed=2).truth()
        assert d["files"] != a["files"]
        marked = [f for f in a["files"] if f["size"] > 0]
        assert len(a["files"]) >= 30 and marked
    finally:
        other.stop()
        third.stop()


def test_marker_word_present(emulator):
    t = emulator.truth()
    found = 0
    for f in t["files"]:
        if f["size"] and f["path"].endswith((".txt", ".md", ".csv", ".json",
                                             ".log", ".html", ".xml")):
            st, h, _ = emulator.request("GET", "/drives/%s/items/%s/content"
                                        % (f["drive"], f["id"]))
            _, _, body = fetch(emulator, h["location"])
            if b"zanzibar-quartz" in body:
                found += 1
    assert found >= 2


def test_select_on_sites_and_drives(emulator):
    r = emulator.get_json("/sites/getAllSites?$top=10&$select=id,webUrl,"
                          "displayName")
    for s in r["value"]:
        assert set(s) == {"id", "webUrl", "displayName"}
    d = emulator.get_json("/sites/root/drives?$select=id,name")
    assert all(set(x) == {"id", "name"} for x in d["value"])
    assert emulator.request("GET", "/sites/root?$select=nope")[0] == 400


def test_delta_exclude_parent(emulator):
    did, prefix = lib(emulator)
    link = emulator.get_json("/drives/%s/root/delta?token=latest" %
                             did)["@odata.deltaLink"]
    folders = [p for p in emulator.truth()["folders"]
               if p.startswith(prefix + "/") and p.count("/") >
               prefix.count("/") + 1]
    r = emulator.mutate(op="create_file", path=folders[0] + "/excl.txt",
                        size=3)
    both, _, _ = delta_round(emulator, link)
    assert r["id"] in [i["id"] for i in both]
    assert any("root" in i for i in both)  # ancestors included by default
    st, _, body = emulator.request("GET", link, headers={
        "Prefer": "deltaExcludeParent"})
    only = json.loads(body)["value"]
    assert [i["id"] for i in only] == [r["id"]]


def test_me_needs_delegated_token(emulator):
    st, _, body = emulator.request("GET", "/me/drive")
    assert st == 400
    assert "delegated" in json.loads(body)["error"]["message"]


def test_generated_content_hashes_match_bytes():
    import tenant
    for text in (False, True):
        for size in (0, 1, 65535, 65536, 3 * 65536 + 777, 5 * 65536):
            c = tenant.GenContent(4242, size, text, text)
            data = c.read()
            assert len(data) == size
            assert c.hashes() == (hashlib.sha256(data).hexdigest(),
                                  quickxor.quickxor_b64(data))
            if size > 100:
                assert c.read(50, 99) == data[50:99]
