"""Control API (plain HTTP JSON on control_url, never on the Graph port):
/health, /truth, /stats, /stats/reset, /mutate, /faults, /knobs."""
import json
import threading
import time

import files
import tenant as tmod
from core import EMU, FAULT_ERRORS, HTTPError, Response, iso, route

FAULT_STATUSES = tuple(sorted(set(FAULT_ERRORS) | {503}))


def _bad(msg, status=400):
    return HTTPError(Response.json(status, {"ok": False, "error": msg}))


def _body(req):
    try:
        return json.loads(req.body or b"{}")
    except ValueError:
        raise _bad("body is not JSON") from None


@route("control", "GET", r"/health")
def health(req, m):
    return Response.json(200, {"ok": True, "tenant_id": EMU.tenant.id,
                               "modules": sorted(EMU.modules),
                               "uptime": round(time.time() - EMU.start_time,
                                               3)})


def files_truth(t):
    out_files, out_folders = [], []
    for d in t.drives.values():
        prefix = d.truth_prefix()
        out_folders.append(prefix)
        stack = [(d.root, prefix)]
        while stack:
            folder, path = stack.pop()
            for c in folder.sorted_children():
                p = path + "/" + c.name
                if c.is_folder:
                    out_folders.append(p)
                    stack.append((c, p))
                    continue
                sha, qxh = tmod.content_hashes(t, c.content)
                out_files.append({
                    "drive": d.id, "path": p, "id": c.id,
                    "size": c.content.size, "sha256": sha,
                    "quickXorHash": qxh,
                    "lastModifiedDateTime": iso(c.mtime),
                    "createdDateTime": iso(c.ctime),
                    "eTag": files.etag(c), "cTag": files.ctag(c),
                    "versions": len(c.versions) + 1})
    out_files.sort(key=lambda f: f["path"])
    out_folders.sort()
    return out_files, out_folders


@route("control", "GET", r"/truth")
def truth(req, m):
    with EMU.lock:
        t = EMU.tenant
        fl, fo = files_truth(t)
        out = {"tenant_id": t.id, "files": fl, "folders": fo,
               "drives": [{"id": d.id, "name": d.name,
                           "driveType": d.drive_type,
                           "path": d.truth_prefix(),
                           "site": d.site.id if d.site else None,
                           "user": d.user.upn if d.user else None}
                          for d in t.drives.values()],
               "sites": [{"id": s.id, "webUrl": s.web_url,
                          "personal": s.personal,
                          "parent": s.parent.id if s.parent else None}
                         for s in t.sites],
               "users": [{"id": u.id, "userPrincipalName": u.upn,
                          "has_mailbox": u.has_mailbox,
                          "has_onedrive": u.drive is not None}
                         for u in t.users],
               "messages": [], "mail_folders": []}
        mail = EMU.modules.get("mail")
        if mail is not None and hasattr(mail, "truth"):
            mt = mail.truth(t) or {}
            out["messages"] = mt.get("messages", [])
            out["mail_folders"] = mt.get("mail_folders", [])
    return Response.json(200, out)


@route("control", "GET", r"/stats")
def stats(req, m):
    with EMU.lock:
        s = dict(EMU.stats)
        s["log"] = list(s["log"])
        s["by_route"] = dict(s["by_route"])
        s["by_status"] = dict(s["by_status"])
    return Response.json(200, s)


@route("control", "POST", r"/stats/reset")
def stats_reset(req, m):
    with EMU.lock:
        cur = EMU.stats["concurrent"]
        EMU.reset_stats()
        EMU.stats["concurrent"] = cur
    return Response.json(200, {"ok": True})


@route("control", "POST", r"/faults")
def faults(req, m):
    body = _body(req)
    rules = body if isinstance(body, list) else [body]
    with EMU.lock:
        if isinstance(body, dict) and body.get("clear"):
            EMU.faults.clear()
            return Response.json(200, {"ok": True, "faults": 0})
        for r in rules:
            if not isinstance(r, dict):
                raise _bad("a fault rule is an object")
            st = r.get("status")
            if st is not None and int(st) not in FAULT_STATUSES:
                raise _bad("status must be one of %s" % ", ".join(
                    str(x) for x in FAULT_STATUSES))
            if st is None and r.get("drop_after_bytes") is None and \
                    r.get("latency_ms") is None:
                raise _bad("a rule needs status, drop_after_bytes or "
                           "latency_ms")
            if r.get("drop_mode") not in (None, "reset", "close", "rst"):
                raise _bad("drop_mode must be 'reset', 'close' or 'rst'")
            rule = {k: v for k, v in r.items() if not k.startswith("_")}
            if st is not None:
                rule["status"] = int(st)
            EMU.faults.append(rule)
        n = len(EMU.faults)
    return Response.json(200, {"ok": True, "faults": n})


@route("control", "GET", r"/faults")
def faults_list(req, m):
    with EMU.lock:
        return Response.json(200, {"faults": [
            {k: v for k, v in r.items() if not k.startswith("_")}
            for r in EMU.faults]})


@route("control", "GET", r"/knobs")
def knobs_get(req, m):
    with EMU.lock:
        return Response.json(200, dict(EMU.knobs))


@route("control", "POST", r"/knobs")
def knobs(req, m):
    body = _body(req)
    if not isinstance(body, dict):
        raise _bad("knobs are an object")
    with EMU.lock:
        for k, v in body.items():
            if k == "expire_delta_tokens":
                if v:
                    files.DELTA_EPOCH[0] += 1
                    mail = EMU.modules.get("mail")
                    if mail is not None and hasattr(mail, "expire_tokens"):
                        mail.expire_tokens()
                continue
            EMU.knobs[k] = v
        return Response.json(200, dict(EMU.knobs))


# --------------------------------------------------------------------------
# /mutate

FILE_OPS = {"create_file", "modify_file", "rename", "move", "delete",
            "create_folder", "restore_version"}


def _item(a):
    t = EMU.tenant
    if a.get("id"):
        it = t.items_by_id.get(a["id"])
    elif a.get("drive") and a.get("path") is not None:
        d = t.drives.get(a["drive"])
        if d is None:
            raise _bad("no drive '%s'" % a["drive"], 404)
        try:
            it = files.walk(d.root, a["path"])
        except HTTPError:
            it = None
    elif a.get("path"):
        it = t.item_by_path(a["path"])
    else:
        raise _bad("give 'id', 'path' (a /truth path) or 'drive'+'path'")
    if it is None or it.deleted:
        raise _bad("no such item: %s" % (a.get("id") or a.get("path")), 404)
    return it


def _split_new(a):
    """-> (drive, parent item, leaf name) for create ops (path = new path)."""
    path = a.get("path") or ""
    if not path.strip("/") or (not a.get("drive") and
                               "/" not in path.strip("/")):
        raise _bad("'path' must name the new item inside an existing folder")
    parent_path, _, leaf = path.rstrip("/").rpartition("/")
    parent = _item(dict(a, path=parent_path))
    if not parent.is_folder:
        raise _bad("'%s' is not a folder" % parent_path)
    return parent.drive, parent, leaf


def _content(a, old=None):
    t = EMU.tenant
    if a.get("content") is not None:
        return tmod.blob_from_bytes(t, a["content"].encode("utf-8"))
    if a.get("content_b64") is not None:
        import base64
        return tmod.blob_from_bytes(t, base64.b64decode(a["content_b64"]))
    size = a.get("size")
    if size is None:
        size = old.size + 17 if old is not None else 1000
    seed = int(a.get("seed", (hash(a.get("path", "")) ^ int(
        time.time() * 1e6)) & ((1 << 62) - 1)))
    return tmod.GenContent(seed, int(size), bool(a.get("text", True)),
                           bool(a.get("marker")))


def file_mutate(op, a):
    if op == "create_file":
        d, parent, leaf = _split_new(a)
        it, _ = files.ops_put_file(d, parent, leaf, _content(a),
                                   a.get("conflict", "fail"))
    elif op == "create_folder":
        d, parent, leaf = _split_new(a)
        it, _ = files.ops_create_folder(d, parent, leaf,
                                        a.get("conflict", "fail"))
    elif op == "modify_file":
        it = _item(a)
        files.ops_replace_content(it, _content(a, it.content))
    elif op == "rename":
        it = _item(a)
        files.ops_rename_move(it, a["new_name"], None)
    elif op == "move":
        it = _item(a)
        dest = _item({"id": a.get("dest_id"), "path": a.get("dest"),
                      "drive": a.get("dest_drive")}
                     if not a.get("dest_id") else {"id": a["dest_id"]})
        if dest.drive is not it.drive:
            return _move_across_drives(it, dest, a.get("new_name"),
                                       a.get("conflict", "fail"))
        files.ops_rename_move(it, a.get("new_name"), dest)
    elif op == "delete":
        it = _item(a)
        files.ops_delete(it)
    elif op == "restore_version":
        it = _item(a)
        c = files.find_version(it, a["version"])
        if c is not None:
            files.ops_replace_content(it, c)
    return it


def _move_across_drives(it, dest, new_name, behavior):
    """A move into another drive (as SharePoint's "Move to" another library
    or site does it): a copy with new ids in DEST, the original deleted ->
    the new top item.  The source drive's delta reports a deletion, the
    destination's new items."""
    if not dest.is_folder or it.parent is None:
        raise _bad("move a file or folder (not a root) into a folder")

    def copy(src, parent, name):
        if src.is_folder:
            new, _ = files.ops_create_folder(parent.drive, parent, name,
                                             behavior)
            for c in src.sorted_children():
                copy(c, new, c.name)
            return new
        new, _ = files.ops_put_file(parent.drive, parent, name, src.content,
                                    behavior, ctime=src.ctime,
                                    mtime=src.mtime)
        return new

    top = copy(it, dest, new_name or it.name)
    files.ops_delete(it)
    return top


# --------------------------------------------------------------------------
# deleting sites, libraries, users and mailboxes (as an admin would)

DIR_OPS = {"delete_site", "delete_drive", "delete_user", "delete_mailbox"}


def _drop_drive(t, d):
    """Removes drive D (a document library or a OneDrive) with its items:
    /drives/{id}, its items, download URLs and upload sessions -> 404; it
    leaves /sites/{id}/drives and /truth."""
    t.drives.pop(d.id, None)
    for iid in d.items:
        t.items_by_id.pop(iid, None)
    if d.site is not None and d in d.site.drives:
        d.site.drives.remove(d)
    for owner in (d.user, d.group):
        if owner is not None and owner.drive is d:
            owner.drive = None


def _drop_site(t, s):
    """Removes site S with its subsites and drives."""
    for sub in list(s.subsites):
        _drop_site(t, sub)
    for d in list(s.drives):
        _drop_drive(t, d)
    if s in t.sites:
        t.sites.remove(s)
    t.sites_by_id.pop(s.id.lower(), None)
    if s.parent is not None and s in s.parent.subsites:
        s.parent.subsites.remove(s)
    for u in t.users:
        if u.site is s:
            u.site = None
    for g in list(t.groups):
        if g.site is s:  # deleting a group-connected site deletes the group
            g.site = None
            t.groups.remove(g)


def _find_site(t, a):
    key = a.get("site") or a.get("id") or ""
    for s in t.sites:
        if key.lower().rstrip("/") in (s.id.lower(), s.web_url.lower()):
            return s
    raise _bad("no site '%s' (give its id or webUrl)" % key, 404)


def _find_user(t, a):
    key = a.get("user") or a.get("id") or ""
    u = t.user(key)
    if u is None:
        raise _bad("no user '%s'" % key, 404)
    return u


def _drop_mailbox(t, u, user_deleted):
    mail = EMU.modules.get("mail")
    if mail is not None and hasattr(mail, "remove_mailbox"):
        mail.remove_mailbox(t, u.id, u.upn, user_deleted)
    u.has_mailbox = False


def dir_mutate(op, a):
    """delete_site {site: id|webUrl}, delete_drive {drive}, delete_user
    {user: id|upn, onedrive: "retain"|"delete"}, delete_mailbox {user}
    -> the JSON answer."""
    t = EMU.tenant
    if op == "delete_site":
        s = _find_site(t, a)
        if s is t.sites[0]:
            raise _bad("the root site cannot be deleted")
        gone = [x.id for x in t.drives.values()
                if x.site is not None and _under(x.site, s)]
        groups = [g.id for g in t.groups if g.site is s]
        _drop_site(t, s)
        return {"ok": True, "id": s.id, "drives": gone, "groups": groups}
    if op == "delete_drive":
        d = t.drives.get(a.get("drive") or a.get("id") or "")
        if d is None:
            raise _bad("no drive '%s'" % (a.get("drive") or a.get("id")),
                       404)
        _drop_drive(t, d)
        if d.site is not None and d.site.personal and not d.site.drives:
            _drop_site(t, d.site)  # a OneDrive is its personal site
        return {"ok": True, "id": d.id}
    u = _find_user(t, a)
    if op == "delete_mailbox":
        if not u.has_mailbox:
            raise _bad("user '%s' has no mailbox" % u.upn, 404)
        _drop_mailbox(t, u, False)
        return {"ok": True, "id": u.id}
    # delete_user
    keep = a.get("onedrive", "retain")
    if keep not in ("retain", "delete"):
        raise _bad("onedrive must be 'retain' or 'delete'")
    _drop_mailbox(t, u, True)
    t.users.remove(u)
    for k in (u.id.lower(), u.upn.lower()):
        t.users_by_key.pop(k, None)
    drive = u.drive
    if drive is not None and keep == "delete":
        _drop_drive(t, drive)
        if drive.site is not None and drive.site.personal:
            _drop_site(t, drive.site)
    return {"ok": True, "id": u.id,
            "drive": drive.id if drive is not None and keep == "retain"
            else None}


def _under(site, top):
    while site is not None:
        if site is top:
            return True
        site = site.parent
    return False


_mutate_lock = threading.Lock()


@route("control", "POST", r"/mutate")
def mutate(req, m):
    a = _body(req)
    op = a.get("op") if isinstance(a, dict) else None
    if not op:
        raise _bad("missing 'op'")
    with EMU.lock:
        if op in FILE_OPS:
            try:
                it = file_mutate(op, a)
            except HTTPError as e:
                err = (e.response.json_body() or {}).get("error")
                if not isinstance(err, dict):
                    raise
                raise _bad(err.get("message", "failed"),
                           e.response.status) from None
            except KeyError as e:
                raise _bad("missing argument %s" % e) from None
            return Response.json(200, {"ok": True, "id": it.id,
                                       "drive": it.drive.id})
        if op in DIR_OPS:
            return Response.json(200, dir_mutate(op, a))
        mail = EMU.modules.get("mail")
        if mail is not None and hasattr(mail, "mutate"):
            try:
                res = mail.mutate(EMU.tenant, op, a)
            except (KeyError, ValueError, TypeError, AttributeError) as e:
                raise _bad("bad arguments for '%s': %r" % (op, e)) from None
            out = {"ok": True}
            if isinstance(res, dict):
                out.update(res)
            elif res is not None:
                out["id"] = res
            return Response.json(200, out)
        raise _bad("unknown op '%s'" % op)
