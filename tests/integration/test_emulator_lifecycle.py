"""Emulator: an admin deletes a library, a site, a user or a mailbox, or
moves files to another drive (control API /mutate), and Graph shows it."""
import json
import urllib.parse

import pytest
from conftest import EmulatorError
from emu_helpers import all_pages, delta_round


def q(s):
    return urllib.parse.quote(s, safe="")


def error_code(emu, url):
    st, _, body = emu.request("GET", url)
    return st, json.loads(body)["error"]["code"] if body else None


def team_site(emu):
    t = emu.truth()
    return [s for s in t["sites"] if not s["personal"] and s["parent"]
            is None and not s["webUrl"].rstrip("/").endswith(
                "sharepoint.com")][0]


@pytest.fixture
def emu(emulator_factory):
    """A fresh scale-0 emulator per test: these tests destroy things."""
    e = emulator_factory(scale=0)
    yield e
    e.stop()


def test_delete_drive_then_site(emu):
    site = team_site(emu)
    drives = emu.get_json("/sites/%s/drives" % site["id"])["value"]
    drive = drives[0]["id"]
    _, link, _ = delta_round(emu, "/drives/%s/root/delta" % drive)
    f = [x for x in emu.truth()["files"] if x["drive"] == drive][0]
    url = emu.get_json("/drives/%s/items/%s" % (
        drive, f["id"]))["@microsoft.graph.downloadUrl"]
    st, _, body = emu.request(
        "POST", "/drives/%s/root:/late.bin:/createUploadSession" % drive,
        body={"item": {}})
    assert st == 200, body
    upload = json.loads(body)["uploadUrl"]

    emu.mutate(op="delete_drive", drive=drive)
    assert error_code(emu, "/drives/" + drive) == (404, "itemNotFound")
    assert error_code(emu, "/drives/%s/items/%s" % (drive, f["id"])) == \
        (404, "itemNotFound")
    assert error_code(emu, link) == (404, "itemNotFound")
    left = emu.get_json("/sites/%s/drives" % site["id"])["value"]
    assert drive not in [d["id"] for d in left]
    assert emu.request("GET", url, auth=False)[0] == 404
    st, _, _ = emu.request("PUT", upload, body=b"x" * 10, auth=False,
                           headers={"Content-Range": "bytes 0-9/10"})
    assert st == 404
    t = emu.truth()
    assert drive not in [d["id"] for d in t["drives"]]
    assert not [x for x in t["files"] if x["drive"] == drive]
    with pytest.raises(EmulatorError):
        emu.mutate(op="delete_drive", drive=drive)

    group = [g for g in emu.get_json("/groups")["value"]
             if emu.request("GET", "/groups/%s/sites/root" % g["id"])[0] ==
             200]
    res = emu.mutate(op="delete_site", site=site["webUrl"])
    assert res["groups"] == [g["id"] for g in group]
    assert error_code(emu, "/sites/" + site["id"]) == (404, "itemNotFound")
    everything, _ = all_pages(emu, "/sites/getAllSites")
    assert site["id"] not in [s["id"] for s in everything]
    assert site["id"] not in [s["id"] for s in emu.get_json(
        "/sites?search=*")["value"]]
    # the team site was this group's: deleting a group-connected site
    # deletes the group
    assert group
    left = [x["id"] for x in emu.get_json("/groups")["value"]]
    for g in group:
        assert g["id"] not in left
        assert emu.request("GET", "/groups/" + g["id"])[0] == 404
        assert emu.request("GET", "/groups/%s/sites/root" % g["id"])[0] == \
            404
        assert emu.request("GET", "/groups/%s/drive" % g["id"])[0] == 404
    t = emu.truth()
    assert site["id"] not in [s["id"] for s in t["sites"]]
    assert not [d for d in t["drives"] if d["site"] == site["id"]]
    # the root site stays
    with pytest.raises(EmulatorError):
        emu.mutate(op="delete_site", site=emu.get_json("/sites/root")["id"])
    assert emu.get_json("/sites/root")["id"]


def test_delete_user_retains_then_loses_onedrive(emu):
    upn = emu.admin_user
    user = emu.get_json("/users/" + q(upn))
    drive = emu.get_json("/users/%s/drive" % q(upn))
    assert emu.get_json("/users/%s/mailFolders/inbox" % q(upn))["id"]
    _, link, _ = delta_round(emu, "/drives/%s/root/delta" % drive["id"])

    res = emu.mutate(op="delete_user", user=upn)
    assert res["drive"] == drive["id"]
    ids = [u["id"] for u in all_pages(emu, "/users")[0]]
    assert user["id"] not in ids
    assert error_code(emu, "/users/" + user["id"]) == (
        404, "Request_ResourceNotFound")
    assert emu.request("GET", "/users/%s/drive" % user["id"])[0] == 404
    st, code = error_code(emu, "/users/%s/mailFolders/inbox" % user["id"])
    assert st == 404 and code != "MailboxNotEnabledForRESTAPI"
    t = emu.truth()
    assert not [m for m in t["messages"] if m["mailbox"] == upn]
    assert upn not in [u["userPrincipalName"] for u in t["users"]]
    # the OneDrive is retained (as after a user deletion): still readable
    # by the app, still in getAllSites, its delta goes on
    assert emu.get_json("/drives/" + drive["id"])["id"] == drive["id"]
    items, link, _ = delta_round(emu, link)
    assert items == []
    personal = [s for s in all_pages(emu, "/sites/getAllSites")[0]
                if s.get("isPersonalSite")]
    assert personal

    emu.mutate(op="delete_drive", drive=drive["id"])
    assert error_code(emu, "/drives/" + drive["id"]) == (404, "itemNotFound")
    assert len([s for s in all_pages(emu, "/sites/getAllSites")[0]
                if s.get("isPersonalSite")]) == len(personal) - 1


def test_delete_user_with_onedrive(emu):
    upn = emu.admin_user
    drive = emu.get_json("/users/%s/drive" % q(upn))["id"]
    res = emu.mutate(op="delete_user", user=upn, onedrive="delete")
    assert res["drive"] is None
    assert error_code(emu, "/drives/" + drive) == (404, "itemNotFound")
    t = emu.truth()
    assert drive not in [d["id"] for d in t["drives"]]
    assert not [s for s in t["sites"] if s["personal"]]
    with pytest.raises(EmulatorError):
        emu.mutate(op="delete_user", user=upn)


def test_delete_mailbox_keeps_user(emu):
    upn = emu.admin_user
    n = len([m for m in emu.truth()["messages"] if m["mailbox"] == upn])
    assert n
    inbox = emu.get_json("/users/%s/mailFolders/inbox" % q(upn))["id"]
    _, link, _ = delta_round(emu, "/users/%s/mailFolders/%s/messages/delta"
                             % (q(upn), q(inbox)))
    emu.mutate(op="delete_mailbox", user=upn)
    assert error_code(emu, link) == (404, "MailboxNotEnabledForRESTAPI")
    assert emu.get_json("/users/" + q(upn))["userPrincipalName"] == upn
    assert error_code(emu, "/users/%s/mailFolders/inbox" % q(upn)) == (
        404, "MailboxNotEnabledForRESTAPI")
    assert emu.get_json("/users/%s/drive" % q(upn))["id"]
    t = emu.truth()
    assert not [m for m in t["messages"] if m["mailbox"] == upn]
    assert [u for u in t["users"] if u["userPrincipalName"] == upn][0][
        "has_mailbox"] is False
    with pytest.raises(EmulatorError):
        emu.mutate(op="delete_mailbox", user=upn)


def test_move_across_drives(emu):
    upn = emu.admin_user
    src = emu.get_json("/users/%s/drive" % q(upn))["id"]
    site = team_site(emu)
    dst = emu.get_json("/sites/%s/drive" % site["id"])["id"]
    folder = emu.mutate(op="create_folder", drive=src, path="/Moving")
    f = emu.mutate(op="create_file", drive=src, path="/Moving/a.txt",
                   content="across\n")
    _, src_link, _ = delta_round(emu, "/drives/%s/root/delta" % src)
    _, dst_link, _ = delta_round(emu, "/drives/%s/root/delta" % dst)
    before = [x for x in emu.truth()["files"] if x["id"] == f["id"]][0]

    res = emu.mutate(op="move", id=folder["id"], dest_drive=dst, dest="/")
    assert res["drive"] == dst and res["id"] != folder["id"]
    items, _, _ = delta_round(emu, src_link)
    gone = {i["id"] for i in items if "deleted" in i}
    assert {folder["id"], f["id"]} <= gone
    items, _, _ = delta_round(emu, dst_link)
    names = {i["name"]: i for i in items if "deleted" not in i}
    assert names["Moving"]["id"] == res["id"]
    moved = names["a.txt"]
    assert moved["parentReference"]["id"] == res["id"]
    assert moved["file"]["hashes"]["quickXorHash"] == before["quickXorHash"]
    after = [x for x in emu.truth()["files"] if x["id"] == moved["id"]][0]
    assert after["sha256"] == before["sha256"]
    assert after["lastModifiedDateTime"] == before["lastModifiedDateTime"]
    assert after["path"].endswith("/Moving/a.txt")
    assert emu.request("GET", "/drives/%s/items/%s" % (src, f["id"]))[0] == \
        404
