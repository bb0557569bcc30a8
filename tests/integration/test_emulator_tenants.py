"""Tenant shapes: the edge-case tenant and the scale-1 demo tenant."""
import json
import time
import unicodedata

import pytest

from emu_helpers import all_pages, q


@pytest.fixture(scope="module")
def edge(emulator_factory):
    emu = emulator_factory(tenant="edge")
    yield emu
    emu.stop()


def edge_drive(emu):
    for d in emu.get_json("/sites/root/drives")["value"]:
        if d["name"] == "Edge Cases":
            return d["id"]
    raise AssertionError("no Edge Cases library")


def test_edge_names_round_trip_by_path(edge):
    did = edge_drive(edge)
    kids, _ = all_pages(edge, "/drives/%s/root/children?$top=5" % did)
    names = [k["name"] for k in kids]
    assert "caf\u00e9.txt" in names and "cafe\u0301.txt" in names
    assert unicodedata.normalize("NFC", "cafe\u0301.txt") == "caf\u00e9.txt"
    assert any(n.endswith("...") for n in names)
    assert any(len(n) == 255 for n in names)
    for k in kids:
        it = edge.get_json("/drives/%s/root:/%s" % (did, q(k["name"])))
        assert it["id"] == k["id"], k["name"]


def test_edge_empty_file_deep_tree_and_package(edge):
    did = edge_drive(edge)
    z = edge.get_json("/drives/%s/root:/zero.bin" % did)
    assert z["size"] == 0
    assert z["file"]["hashes"]["quickXorHash"] == \
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    st, _, body = edge.request("GET", z["@microsoft.graph.downloadUrl"],
                               auth=False)
    assert st == 200 and body == b""
    path = "/".join("d%02d" % i for i in range(30)) + "/bottom.txt"
    assert edge.get_json("/drives/%s/root:/%s" % (did, path))["size"] == 5
    nb = edge.get_json("/drives/%s/root:/Team%%20Notebook" % did)
    assert nb["package"] == {"type": "oneNote"} and "folder" not in nb
    users = edge.get_json("/users?$select=id,accountEnabled,mail")["value"]
    assert any(u["accountEnabled"] is False and u["mail"] is None
               for u in users)


def test_edge_invalid_names_rejected(edge):
    did = edge_drive(edge)
    for bad in ("a:b", "what?", "pipe|", "..", "x" * 256):
        st, _, body = edge.request("POST", "/drives/%s/root/children" % did,
                                   body={"name": bad, "folder": {}})
        assert st == 400, bad


def test_scale1_demo_tenant(emulator_factory):
    t0 = time.time()
    emu = emulator_factory(scale=1)
    try:
        started = time.time() - t0
        assert started < 30
        sites, _ = all_pages(emu, "/sites/getAllSites")
        team = [s for s in sites if not s["isPersonalSite"]]
        personal = [s for s in sites if s["isPersonalSite"]]
        assert len(team) >= 9 and personal
        assert any(emu.get_json("/sites/%s/sites" % s["id"])["value"]
                   for s in team)
        users = emu.get_json("/users?$select=id,mail")["value"]
        assert len(users) >= 5
        assert any(u["mail"] is None for u in users)
        nodrive = 0
        for u in users:
            st, _, body = emu.request("GET", "/users/%s/drive" % u["id"])
            if st == 404:
                nodrive += 1
                assert json.loads(body)["error"]["message"] == \
                    "User's mysite not found."
        assert nodrive >= 1
        mk = emu.get_json("/sites/contoso.sharepoint.com:/sites/Marketing")
        d = emu.get_json("/sites/%s/drive" % mk["id"])
        wide = emu.get_json("/drives/%s/root:/Wide%%20folder" % d["id"])
        assert wide["folder"]["childCount"] >= 1000
        kids, _ = all_pages(emu, "/drives/%s/items/%s/children" % (
            d["id"], wide["id"]))
        assert len(kids) == wide["folder"]["childCount"]
        big = emu.get_json("/drives/%s/root:/Scans" % d["id"])
        assert big["size"] > 100 << 20
    finally:
        emu.stop()
