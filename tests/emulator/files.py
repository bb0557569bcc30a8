"""Sites, drives and driveItems: listing, delta, download (302 + Range),
versions, small uploads, upload sessions, folder creation, rename, move and
delete (GRAPH-API.md §4, §5).

The ops_* functions change the model and are shared with control.py
(/mutate); handlers hold EMU.lock while they read or change the tenant.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import urllib.parse
import uuid

import tenant as tmod
from core import (EMU, FILES_READ, FILES_WRITE, HTTPError, Response, iso,
                  parse_iso, graph_error, require_auth, route)

_KEY = os.urandom(32)
_INSTANCE = base64.urlsafe_b64encode(os.urandom(6)).decode()
FRAGMENT = 320 * 1024
INVALID_CHARS = set('"*:<>?/\\|')
ITEM_PROPS = {
    "id", "name", "size", "eTag", "cTag", "createdDateTime",
    "lastModifiedDateTime", "webUrl", "createdBy", "lastModifiedBy",
    "parentReference", "file", "folder", "fileSystemInfo", "root", "deleted",
    "package", "description", "@microsoft.graph.downloadUrl",
    "content.downloadUrl", "shared", "sharepointIds", "specialFolder",
    "image", "photo", "video", "audio", "remoteItem", "malware", "publication",
    "listItem", "webDavUrl", "bundle", "location", "searchResult",
}
DELTA_EPOCH = [0]  # bumped by the control knob expire_delta_tokens


def not_found(msg="The resource could not be found."):
    return HTTPError(graph_error(404, "itemNotFound", msg))


def bad_request(msg, code="invalidRequest"):
    return HTTPError(graph_error(400, code, msg))


# --------------------------------------------------------------------------
# signing (download URLs, page/delta tokens)


def _b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sign(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    mac = hmac.new(_KEY, raw, hashlib.sha256).digest()[:16]
    return _b64(raw) + "." + _b64(mac)


def unsign(tok):
    """-> dict or None when the token was not made by this process."""
    try:
        raw_s, mac_s = tok.split(".", 1)
        raw = _unb64(raw_s)
        if not hmac.compare_digest(
                hmac.new(_KEY, raw, hashlib.sha256).digest()[:16],
                _unb64(mac_s)):
            return None
        return json.loads(raw)
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------
# JSON shapes


def user_ref(u):
    if u is None:  # app-only changes
        return {"user": {"id": "c5a5a3d1-0000-4000-8000-5a5a5a5a5a5a",
                         "displayName": "SharePoint App"}}
    return u.ref()


def item_path(item):
    """parentReference.path for children of ITEM (a folder)."""
    parts = item.path_parts()
    enc = "/".join(urllib.parse.quote(p, safe="") for p in parts)
    return "/drive/root:" + ("/" + enc if enc else "")


def item_web_url(item):
    parts = item.path_parts()
    return item.drive.web_url + "".join(
        "/" + urllib.parse.quote(p, safe="") for p in parts)


def etag(item):
    return '"{%s},%d"' % (item.guid, item.etag_n)


def ctag(item):
    return '"c:{%s},%d"' % (item.guid, item.ctag_n)


def download_url(req, item, version=None):
    tok = sign({"d": item.drive.id, "i": item.id, "v": version,
                "x": int(EMU.now() + float(
                    EMU.knobs.get("download_url_lifetime") or 3600))})
    return req.url("/_layouts/15/download.aspx?UniqueId=%s&tempauth=%s" % (
        item.guid.lower(), tok), host="files")


def parent_ref(item, with_path=True):
    d = item.drive
    ref = {"driveType": d.drive_type, "driveId": d.id}
    if item.parent is not None:
        ref["id"] = item.parent.id
        if item.parent.parent is None:
            ref["name"] = d.name
        else:
            ref["name"] = item.parent.name
        if with_path:
            ref["path"] = item_path(item.parent)
    if d.site is not None:
        ref["siteId"] = d.site.id
    return ref


def item_json(req, item, select=None, delta=False):
    d = item.drive
    if item.deleted:
        obj = {"id": item.id, "name": item.name,
               "parentReference": parent_ref(item, with_path=False),
               "deleted": {"state": "deleted"}}
        obj["folder" if item.is_folder else "file"] = {}
        return obj
    obj = {
        "@odata.etag": etag(item),
        "createdDateTime": iso(item.ctime),
        "eTag": etag(item),
        "id": item.id,
        "lastModifiedDateTime": iso(item.mtime),
        "name": item.name if item.parent is not None else "root",
        "webUrl": item_web_url(item),
        "cTag": ctag(item),
        "size": item.size,
        "createdBy": user_ref(item.created_by),
        "lastModifiedBy": user_ref(item.modified_by),
        "parentReference": parent_ref(item, with_path=not delta),
        "fileSystemInfo": {"createdDateTime": iso(item.ctime),
                           "lastModifiedDateTime": iso(item.mtime)},
    }
    if item.parent is None:
        obj["root"] = {}
    if item.is_folder:
        obj["folder"] = {"childCount": len(item.children)}
        if item.package:
            obj["package"] = dict(item.package)
            del obj["folder"]
    else:
        sha, qxh = tmod.content_hashes(d.tenant, item.content)
        ext = os.path.splitext(item.name)[1].lower()
        obj["file"] = {"mimeType": tmod.MIME.get(ext,
                                                 "application/octet-stream"),
                       "hashes": {"quickXorHash": qxh}}
        if select is None or "@microsoft.graph.downloadUrl" in select or \
                "content.downloadUrl" in select:
            obj["@microsoft.graph.downloadUrl"] = download_url(req, item)
    if d.site is not None and not delta:
        obj["sharepointIds"] = {"listItemUniqueId": item.guid.lower(),
                                "siteId": d.site.id.split(",")[1],
                                "siteUrl": d.site.web_url,
                                "webId": d.site.id.split(",")[2]}
    if select is not None:
        obj = apply_select(obj, select)
    return obj


def parse_select(req, allowed=ITEM_PROPS, typename="driveItem"):
    sel = req.query.get("$select")
    if not sel:
        return None
    names = [s.strip() for s in sel.split(",") if s.strip()]
    for n in names:
        if n not in allowed:
            raise bad_request("Parsing OData Select and Expand failed: Could "
                              "not find a property named '%s' on type "
                              "'microsoft.graph.%s'." % (n, typename))
    return set(names)


def apply_select(obj, select):
    keep = set(select) | {"@odata.etag", "@odata.type"}
    if "content.downloadUrl" in select:
        keep.add("@microsoft.graph.downloadUrl")
    return {k: v for k, v in obj.items() if k in keep}


SITE_PROPS = {"id", "name", "displayName", "description", "createdDateTime",
              "lastModifiedDateTime", "webUrl", "root", "siteCollection",
              "isPersonalSite", "sharepointIds", "eTag", "parentReference"}
DRIVE_PROPS = {"id", "name", "description", "driveType", "createdDateTime",
               "lastModifiedDateTime", "webUrl", "createdBy", "owner",
               "quota", "system", "lastModifiedBy", "sharePointIds"}


def sites_sel(req, view=False):
    """Renderer for sites honouring $select (400 on unknown names)."""
    sel = parse_select(req, SITE_PROPS, "site")
    return lambda s: site_json(s, view, sel)


def drives_sel(req):
    sel = parse_select(req, DRIVE_PROPS, "drive")
    return lambda d: drive_json(d, sel)


def site_json(site, collection_view=False, select=None):
    obj = {
        "createdDateTime": iso(site.ctime),
        "description": site.description,
        "id": site.id,
        "lastModifiedDateTime": iso(site.mtime),
        "name": site.name,
        "webUrl": site.web_url,
        "displayName": site.display_name,
    }
    if site.parent is None:
        obj["root"] = {}
    obj["siteCollection"] = {"hostName": site.host}
    if site.parent is None and site.path == "":
        obj["siteCollection"]["root"] = {}
    if collection_view:
        obj["siteCollection"]["dataLocationCode"] = "NAM"
        obj["isPersonalSite"] = bool(site.personal)
    if select is not None:
        obj = apply_select(obj, select)
    return obj


def drive_json(d, select=None):
    used = d.root.size
    obj = {
        "createdDateTime": iso(d.ctime),
        "description": "",
        "id": d.id,
        "lastModifiedDateTime": iso(max([d.ctime] + [
            d.root.mtime])),
        "name": d.name,
        "webUrl": d.web_url,
        "driveType": d.drive_type,
        "createdBy": {"user": {"displayName": "System Account"}},
        "owner": d.owner,
        "quota": {"deleted": 0, "remaining": d.quota_total - used,
                  "state": "normal", "total": d.quota_total, "used": used},
    }
    if select is not None:
        obj = apply_select(obj, select)
    return obj


def page_size(req, default, maximum=1000):
    top = req.query.get("$top")
    cap = EMU.knobs.get("max_page_size")
    if cap:  # Graph may send fewer than $top asks for
        maximum = min(maximum, int(cap))
    if top is not None:
        try:
            n = int(top)
        except ValueError:
            raise bad_request("Invalid value for $top.") from None
        if n < 1:
            raise bad_request("Invalid value for $top.")
        return min(n, maximum)
    knob = EMU.knobs.get("page_size")
    return min(int(knob) if knob else default, maximum)


def collection(req, items, render, default_page, context=None):
    """Pages ITEMS by $skiptoken/$top -> Response."""
    n = page_size(req, default_page)
    start = 0
    st = req.query.get("$skiptoken") or req.query.get("$skipToken")
    if st:
        tok = unsign(st)
        if not tok or tok.get("p") != req.path:
            raise bad_request("Invalid skip token.")
        start = tok["o"]
    chunk = items[start:start + n]
    out = {}
    if context:
        out["@odata.context"] = req.url("/v1.0/$metadata#" + context)
    out["value"] = [render(x) for x in chunk]
    if start + n < len(items):
        q = dict(req.query)
        q.pop("$skipToken", None)
        q["$skiptoken"] = sign({"p": req.path, "o": start + n})
        if "$top" not in req.query:
            q["$top"] = str(n)
        out["@odata.nextLink"] = req.url(
            urllib.parse.quote(req.path, safe="/:,!$@'()*+;=") + "?" +
            urllib.parse.urlencode(q, safe="$'()*,:@!"))
    return Response.json(200, out)


# --------------------------------------------------------------------------
# lookups


def find_site(key):
    t = EMU.tenant
    if key == "root":
        return t.sites[0]
    s = t.sites_by_id.get(key.lower())
    if s is None:
        # "{hostname},{spsite-id}" or just a GUID pair also work on Graph
        for cand in t.sites:
            parts = cand.id.lower().split(",")
            if key.lower() in (",".join(parts[:2]), parts[1]):
                return cand
        raise not_found("Requested site could not be found")
    return s


def find_site_by_path(host, path):
    path = path.strip("/")
    for s in EMU.tenant.sites:
        if s.host.lower() == host.lower() and s.path.lower() == path.lower():
            return s
    raise not_found("Requested site could not be found")


def user_drive(key):
    u = EMU.tenant.user(key)
    if u is None:
        raise HTTPError(graph_error(404, "Request_ResourceNotFound",
                                    "Resource '%s' does not exist or one of "
                                    "its queried reference-property objects "
                                    "are not present." % key))
    if u.drive is None:
        raise HTTPError(graph_error(404, "ResourceNotFound",
                                    "User's mysite not found."))
    return u.drive


def group_drive(gid):
    g = EMU.tenant.group(gid)
    if g is None or g.drive is None:
        raise HTTPError(graph_error(404, "Request_ResourceNotFound",
                                    "Resource '%s' does not exist or one of "
                                    "its queried reference-property objects "
                                    "are not present." % gid))
    return g.drive


def get_drive(gd):
    if gd.get("d"):
        d = EMU.tenant.drives.get(gd["d"])
        if d is None:
            raise not_found("Drive not found.")
        return d
    if gd.get("u"):
        return user_drive(gd["u"])
    if gd.get("g"):
        return group_drive(gd["g"])
    if gd.get("s2"):
        site = find_site(gd["s2"])
        for d in site.drives:
            if d.id == gd["d2"]:
                return d
        raise not_found("Drive not found.")
    site = find_site(gd["s"])
    if not site.drives:
        raise not_found("Drive not found.")
    return site.drives[0]


def walk(item, path):
    for part in [p for p in path.split("/") if p]:
        if not item.is_folder:
            raise not_found("Item does not exist")
        nxt = item.children.get(tmod.name_key(part))
        if nxt is None:
            raise not_found("Item does not exist")
        item = nxt
    return item


def resolve(gd, allow_missing_leaf=False):
    """-> (drive, item, missing_leaf_name or None, parent)."""
    d = get_drive(gd)
    if gd.get("item") and gd["item"] != "root":
        item = d.items.get(gd["item"])
        if item is None or item.deleted:
            raise not_found("Item does not exist")
    else:
        item = d.root
    path = gd.get("path")
    if path:
        parts = [p for p in path.split("/") if p]
        if allow_missing_leaf and parts:
            parent = walk(item, "/".join(parts[:-1]))
            leaf = parent.children.get(tmod.name_key(parts[-1])) \
                if parent.is_folder else None
            if leaf is None:
                if not parent.is_folder:
                    raise not_found("Item does not exist")
                return d, None, parts[-1], parent
            return d, leaf, None, parent
        item = walk(item, path)
    return d, item, None, item.parent


# --------------------------------------------------------------------------
# model operations (shared with control.py)


def check_name(name):
    if not name or name in (".", "..") or len(name) > 255 or \
            any(c in INVALID_CHARS for c in name) or \
            any(ord(c) < 32 for c in name):
        raise bad_request("The provided name contains invalid characters or "
                          "is not allowed: '%s'." % name)


def free_name(parent, name):
    """'name 1.ext', 'name 2.ext', ... not taken in PARENT."""
    stem, ext = os.path.splitext(name)
    if not stem:
        stem, ext = name, ""
    n = 1
    while True:
        cand = "%s %d%s" % (stem, n, ext)
        if tmod.name_key(cand) not in parent.children:
            return cand
        n += 1


def new_id():
    return "01" + base64.b32encode(os.urandom(20)).decode().rstrip("=")


def _conflict(parent, name, behavior):
    """Applies conflictBehavior -> (name, existing item to replace)."""
    existing = parent.children.get(tmod.name_key(name))
    if existing is None:
        return name, None
    if behavior == "rename":
        return free_name(parent, name), None
    if behavior == "replace":
        return name, existing
    raise HTTPError(graph_error(409, "nameAlreadyExists",
                                "The specified item name already exists. "
                                "Name: %s" % name))


def ops_create_folder(drive, parent, name, behavior="fail", user=None):
    check_name(name)
    if not parent.is_folder:
        raise bad_request("The parent is not a folder.")
    name, existing = _conflict(parent, name, behavior)
    if existing is not None:
        if existing.is_folder:
            return existing, False
        ops_delete(existing)
    now = EMU.now()
    it = tmod.Item(drive, new_id(), name, parent, True, None, now, now,
                   str(uuid.uuid4()).upper(), user)
    drive.add(it)
    _touch_ancestors(parent)
    return it, True


def _touch_ancestors(folder):
    """A child change changes a folder's eTag (not cTag) and mtime."""
    while folder is not None:
        folder.drive.touch(folder, propagated=True)
        folder = folder.parent


def ops_put_file(drive, parent, name, content, behavior="replace", user=None,
                 ctime=None, mtime=None):
    """New file or new version of an existing one -> (item, created)."""
    check_name(name)
    if not parent.is_folder:
        raise bad_request("The parent is not a folder.")
    name, existing = _conflict(parent, name, behavior)
    now = EMU.now()
    if existing is not None:
        if existing.is_folder:
            raise HTTPError(graph_error(409, "nameAlreadyExists",
                                        "A folder with this name exists."))
        ops_replace_content(existing, content, user, mtime)
        return existing, False
    it = tmod.Item(drive, new_id(), name, parent, False, content,
                   ctime or now, mtime or now, str(uuid.uuid4()).upper(),
                   user)
    drive.add(it)
    _touch_ancestors(parent)
    return it, True


def ops_replace_content(item, content, user=None, mtime=None):
    if item.is_folder:
        raise bad_request("Cannot upload content to a folder.")
    label = "%d.0" % (len(item.versions) + 1)
    item.versions.append((label, item.content, item.mtime, item.modified_by))
    item.content = content
    item.mtime = mtime or EMU.now()
    if user is not None:
        item.modified_by = user
    item.drive.touch(item, content=True)
    _touch_ancestors(item.parent)


def ops_rename_move(item, new_name=None, new_parent=None, behavior="fail"):
    if item.parent is None:
        raise bad_request("Cannot rename or move the root.")
    name = new_name or item.name
    check_name(name)
    dest = new_parent or item.parent
    if not dest.is_folder:
        raise bad_request("The destination is not a folder.")
    p = dest
    while p is not None:
        if p is item:
            raise bad_request("Cannot move a folder into itself.")
        p = p.parent
    old_parent = item.parent
    key = tmod.name_key(name)
    clash = dest.children.get(key)
    if clash is not None and clash is not item:
        name, _ = _conflict(dest, name, behavior if behavior != "replace"
                            else "fail")
        key = tmod.name_key(name)
    del old_parent.children[tmod.name_key(item.name)]
    old_parent._sorted = None
    item.name = name
    item.parent = dest
    dest.children[key] = item
    dest._sorted = None
    item.drive.touch(item)
    _touch_ancestors(old_parent)
    if dest is not old_parent:
        _touch_ancestors(dest)
    return item


def ops_delete(item):
    if item.parent is None:
        raise bad_request("Cannot delete the root.")
    parent = item.parent
    del parent.children[tmod.name_key(item.name)]
    parent._sorted = None
    stack = [item]
    while stack:
        it = stack.pop()
        if it.is_folder:
            stack.extend(it.children.values())
        it.deleted = True
        it.drive.touch(it)
        EMU.tenant.items_by_id.pop(it.id, None)
    _touch_ancestors(parent)


# --------------------------------------------------------------------------
# sites


@route("graph", "GET", r"/v1\.0/sites")
def sites_search(req, m):
    require_auth(req, FILES_READ)
    q = req.query.get("search")
    if q is None:
        raise bad_request("Either 'search' or '$filter' must be specified.")
    q = q.strip().strip('"').lower()
    with EMU.lock:
        found = [s for s in EMU.tenant.sites if not s.personal and (
            q in ("*", "") or q in s.name.lower() or
            q in s.display_name.lower() or q in s.description.lower())]
        return collection(req, found, sites_sel(req), 200, "sites")


@route("graph", "GET", r"/v1\.0/sites/(?:oneDrive\.)?getAllSites(?:\(\))?")
def sites_all(req, m):
    require_auth(req, FILES_READ)
    with EMU.lock:
        found = [s for s in EMU.tenant.sites if s.parent is None]
        return collection(req, found, sites_sel(req, True), 200, "sites")


SITE = r"/v1\.0/(?:sites/(?P<site>[^/:]+)|groups/(?P<group>[^/]+)/sites/root)"


def _site(m):
    if m.group("group"):
        g = EMU.tenant.group(m.group("group"))
        if g is None or g.site is None:
            raise not_found("Requested site could not be found")
        return g.site
    return find_site(m.group("site"))


@route("graph", "GET", SITE)
def site_get(req, m):
    require_auth(req, FILES_READ)
    with EMU.lock:
        return Response.json(200, sites_sel(req)(_site(m)))


@route("graph", "GET", SITE + r"/sites")
def site_subsites(req, m):
    require_auth(req, FILES_READ)
    with EMU.lock:
        return collection(req, list(_site(m).subsites), sites_sel(req),
                          200, "sites")


@route("graph", "GET", SITE + r"/drives")
def site_drives(req, m):
    require_auth(req, FILES_READ)
    with EMU.lock:
        return collection(req, list(_site(m).drives), drives_sel(req), 200,
                          "drives")


@route("graph", "GET", r"/v1\.0/sites/(?P<host>[^/:,]+):(?P<path>/[^:]*)"
       r"(?::(?P<rest>/.*)?)?")
def site_by_path(req, m):
    require_auth(req, FILES_READ)
    with EMU.lock:
        s = find_site_by_path(m.group("host"), m.group("path"))
        rest = (m.group("rest") or "").rstrip("/")
        if rest == "":
            return Response.json(200, sites_sel(req)(s))
        if rest == "/drives":
            return collection(req, list(s.drives), drives_sel(req), 200,
                              "drives")
        if rest == "/sites":
            return collection(req, list(s.subsites), sites_sel(req), 200,
                              "sites")
        if rest == "/drive":
            if not s.drives:
                raise not_found("Drive not found.")
            return Response.json(200, drives_sel(req)(s.drives[0]))
        raise bad_request("Unsupported segment '%s'." % rest)


# --------------------------------------------------------------------------
# drives and items

DRIVE = (r"/v1\.0/(?:drives/(?P<d>[^/]+)|users/(?P<u>[^/]+)/drive"
         r"|groups/(?P<g>[^/]+)/drive|sites/(?P<s2>[^/:]+)/drives/"
         r"(?P<d2>[^/]+)|sites/(?P<s>[^/:]+)/drive)")
ITEM = DRIVE + (r"(?:/root|/items/(?P<item>[^/:]+))"
                r"(?::(?P<path>/[^:]*)?:?)?(?P<rest>/.*)?")


@route("graph", "GET", DRIVE)
def drive_get(req, m):
    require_auth(req, FILES_READ)
    with EMU.lock:
        return Response.json(200, drives_sel(req)(get_drive(m.groupdict())))


@route("graph", "GET", ITEM)
def item_get(req, m):
    require_auth(req, FILES_READ)
    gd = m.groupdict()
    rest = (gd.get("rest") or "").rstrip("/")
    with EMU.lock:
        if rest == "/delta" or rest.startswith("/delta("):
            d, item, _, _ = resolve(gd)
            return delta(req, d, item, rest)
        d, item, _, _ = resolve(gd)
        if rest == "":
            sel = parse_select(req)
            return Response.json(200, item_json(req, item, sel))
        if rest == "/children":
            if not item.is_folder:
                return Response.json(200, {"value": []})
            sel = parse_select(req)
            return collection(req, list(item.sorted_children()),
                              lambda c: item_json(req, c, sel), 200)
        if rest == "/content":
            if item.is_folder:
                raise HTTPError(graph_error(
                    400, "invalidRequest",
                    "Cannot download the content of a folder."))
            return Response(302, {"Location": download_url(req, item)})
        if rest == "/versions":
            return Response.json(200, {"@odata.context": req.url(
                "/v1.0/$metadata#drives('%s')/items('%s')/versions" % (
                    d.id, item.id)), "value": versions_json(item)})
        mv = re.fullmatch(r"/versions/([^/]+)(/content)?", rest)
        if mv:
            v = find_version(item, mv.group(1))
            if mv.group(2):
                return Response(302, {"Location": download_url(
                    req, item, None if v is None else mv.group(1))})
            vs = [x for x in versions_json(item) if x["id"] == mv.group(1)]
            return Response.json(200, vs[0])
        raise bad_request("Unsupported segment '%s'." % rest)


def versions_json(item):
    cur = {"id": "%d.0" % (len(item.versions) + 1),
           "lastModifiedBy": user_ref(item.modified_by),
           "lastModifiedDateTime": iso(item.mtime),
           "size": item.size}
    out = [cur]
    for label, content, mtime, user in reversed(item.versions):
        out.append({"id": label, "lastModifiedBy": user_ref(user),
                    "lastModifiedDateTime": iso(mtime),
                    "size": content.size})
    return out


def find_version(item, vid):
    """-> content of an older version, None for the current one."""
    if item.is_folder:
        raise not_found("Version not found.")
    if vid in ("current", "%d.0" % (len(item.versions) + 1)):
        return None
    for label, content, _, _ in item.versions:
        if label == vid:
            return content
    raise not_found("The requested version does not exist.")


def _acting_user(claims):
    t = EMU.tenant
    if claims.get("oid"):
        u = t.user(claims["oid"])
        if u is not None:
            return u
    return None


def _behavior(req, body=None, default="fail"):
    b = req.query.get("@microsoft.graph.conflictBehavior")
    if body is not None:
        b = body.get("@microsoft.graph.conflictBehavior", b)
    b = (b or default).lower()
    if b not in ("fail", "replace", "rename"):
        raise bad_request("Invalid conflict behavior '%s'." % b)
    return b


@route("graph", "PUT", ITEM)
def item_put(req, m):
    claims = require_auth(req, FILES_WRITE)
    gd = m.groupdict()
    rest = (gd.get("rest") or "").rstrip("/")
    if rest != "/content":
        raise bad_request("Unsupported segment '%s'." % rest)
    with EMU.lock:
        d, item, leaf, parent = resolve(gd, allow_missing_leaf=True)
        content = tmod.blob_from_bytes(EMU.tenant, req.body)
        user = _acting_user(claims)
        if item is not None and not gd.get("path"):
            ops_replace_content(item, content, user)
            return Response.json(200, item_json(req, item))
        name = leaf if leaf is not None else item.name
        it, created = ops_put_file(d, parent, name, content,
                                   _behavior(req, default="replace"), user)
        return Response.json(201 if created else 200, item_json(req, it))


@route("graph", "POST", ITEM)
def item_post(req, m):
    claims = require_auth(req, FILES_WRITE)
    gd = m.groupdict()
    rest = (gd.get("rest") or "").rstrip("/")
    body = req.json() if req.body else {}
    with EMU.lock:
        if rest == "/createUploadSession":
            return create_upload_session(req, gd, body or {}, claims)
        d, item, _, _ = resolve(gd)
        if rest == "/children":
            if not isinstance(body, dict) or "name" not in body:
                raise bad_request("A name is required.")
            if "folder" not in body:
                raise bad_request("Only folders can be created this way.")
            it, created = ops_create_folder(d, item, body["name"],
                                            _behavior(req, body, "fail"),
                                            _acting_user(claims))
            return Response.json(201, item_json(req, it))
        mv = re.fullmatch(r"/versions/([^/]+)/restoreVersion", rest)
        if mv:
            content = find_version(item, mv.group(1))
            if content is not None:
                ops_replace_content(item, content, _acting_user(claims))
            return Response(204)
        raise bad_request("Unsupported segment '%s'." % rest)


@route("graph", "PATCH", ITEM)
def item_patch(req, m):
    require_auth(req, FILES_WRITE)
    gd = m.groupdict()
    if (gd.get("rest") or "").rstrip("/"):
        raise bad_request("Unsupported segment.")
    body = req.json() or {}
    with EMU.lock:
        d, item, _, _ = resolve(gd)
        dest = None
        pref = body.get("parentReference") or {}
        if pref.get("id"):
            dest = d.items.get(pref["id"])
            if dest is None or dest.deleted:
                raise not_found("Destination does not exist.")
        elif pref.get("path"):
            p = pref["path"].split("root:", 1)[-1]
            dest = walk(d.root, urllib.parse.unquote(p))
        fsi = body.get("fileSystemInfo") or {}
        if body.get("name") or dest is not None:
            ops_rename_move(item, body.get("name"), dest,
                            _behavior(req, body, "fail"))
        if fsi:
            if fsi.get("lastModifiedDateTime"):
                item.mtime = parse_iso(fsi["lastModifiedDateTime"])
            if fsi.get("createdDateTime"):
                item.ctime = parse_iso(fsi["createdDateTime"])
            d.touch(item)
        return Response.json(200, item_json(req, item))


@route("graph", "DELETE", ITEM)
def item_delete(req, m):
    require_auth(req, FILES_WRITE)
    gd = m.groupdict()
    if (gd.get("rest") or "").rstrip("/"):
        raise bad_request("Unsupported segment.")
    with EMU.lock:
        d, item, _, _ = resolve(gd)
        ops_delete(item)
    return Response(204)


# --------------------------------------------------------------------------
# delta

_ROUNDS = {}  # round id -> {"ids": [...], "drive", "target", "select"}
_ROUND_ORDER = []


def _delta_link(req, d, base, token):
    return req.url("/v1.0/drives/%s/root/delta?token=%s" % (
        d.id, urllib.parse.quote(token, safe="")))


def _delta_token(d, seq):
    return sign({"k": "d", "d": d.id, "s": seq, "e": DELTA_EPOCH[0],
                 "n": _INSTANCE})


def _resync(req, d):
    loc = req.url("/v1.0/drives/%s/root/delta" % d.id)
    raise HTTPError(graph_error(
        410, "resyncRequired",
        "Resync required. Replace any local items with the server's version "
        "(including deletes) if you're sure that the service was up to date "
        "with your local changes when you last sync'd. Upload any local "
        "changes that the server doesn't know about.",
        inner_code="resyncChangesApplyDifferences",
        headers={"Location": loc}))


def _order(items):
    live = [i for i in items if not i.deleted]
    dead = [i for i in items if i.deleted]
    live.sort(key=lambda i: (i.depth(), i.seq))
    dead.sort(key=lambda i: i.seq)
    return dead + live


def delta(req, d, item, rest):
    if item.parent is not None:
        raise bad_request("Delta is only supported on the root of a drive.")
    token = req.query.get("token")
    if token is None:
        mt = re.fullmatch(r"/delta\(token='?([^')]*)'?\)", rest)
        token = mt.group(1) if mt else None
    sel = parse_select(req)
    if token == "latest":
        return Response.json(200, {
            "@odata.context": req.url("/v1.0/$metadata#Collection(driveItem)"),
            "value": [],
            "@odata.deltaLink": _delta_link(req, d, None,
                                            _delta_token(d, d.seq))})
    if token and token.startswith("r."):
        rid, _, off = token[2:].rpartition(".")
        rnd = _ROUNDS.get(rid)
        if rnd is None or rnd["drive"] is not d or \
                rnd["epoch"] != DELTA_EPOCH[0]:
            _resync(req, d)
        return _delta_page(req, d, rid, rnd, int(off))
    if token is None:
        base = None
    else:
        tok = unsign(token)
        if tok is None:
            try:
                ts = parse_iso(urllib.parse.unquote(token))
            except ValueError:
                _resync(req, d)
            base = 0
            for seq, when in d.changes:
                if when <= ts:
                    base = seq
                else:
                    break
        else:
            if tok.get("d") != d.id or tok.get("n") != _INSTANCE or \
                    tok.get("e") != DELTA_EPOCH[0]:
                _resync(req, d)
            base = tok["s"]
    target = d.seq
    if base is None:
        ids = []
        queue = [d.root]
        while queue:  # breadth first: parents before children
            nxt = []
            for it in queue:
                ids.append(it.id)
                if it.is_folder:
                    nxt.extend(it.sorted_children())
            queue = nxt
    else:
        changed = [i for i in d.items.values() if i.seq > base]
        seen = {i.id for i in changed}
        extra = []
        exclude_parents = "deltaexcludeparent" in req.headers.get(
            "prefer", "").lower()
        if exclude_parents:  # only items that changed themselves
            changed = [i for i in changed if i.own_seq > base]
        for i in changed if not exclude_parents else []:
            p = i.parent
            while p is not None and p.id not in seen and not i.deleted:
                seen.add(p.id)
                extra.append(p)
                p = p.parent
        ids = [i.id for i in _order(changed + extra)]
    rid = _b64(os.urandom(9))
    rnd = {"ids": ids, "drive": d, "target": target, "select": sel,
           "epoch": DELTA_EPOCH[0]}
    _ROUNDS[rid] = rnd
    _ROUND_ORDER.append(rid)
    while len(_ROUND_ORDER) > 256:
        _ROUNDS.pop(_ROUND_ORDER.pop(0), None)
    return _delta_page(req, d, rid, rnd, 0)


def _delta_page(req, d, rid, rnd, off):
    n = page_size(req, 200, 1000)
    ids = rnd["ids"][off:off + n]
    sel = rnd["select"]
    out = {"@odata.context": req.url("/v1.0/$metadata#Collection(driveItem)"),
           "value": []}
    for iid in ids:
        it = d.items.get(iid)
        if it is None:
            continue
        out["value"].append(item_json(req, it, sel, delta=True))
    if off + n < len(rnd["ids"]):
        q = {"token": "r.%s.%d" % (rid, off + n)}
        if "$top" in req.query:
            q["$top"] = req.query["$top"]
        out["@odata.nextLink"] = req.url(
            "/v1.0/drives/%s/root/delta?%s" % (d.id,
                                               urllib.parse.urlencode(q)))
    else:
        out["@odata.deltaLink"] = _delta_link(
            req, d, None, _delta_token(d, rnd["target"]))
        _ROUNDS.pop(rid, None)
    return Response.json(200, out)


# --------------------------------------------------------------------------
# download (files host)


def parse_range(h, size):
    """-> (start, end_exclusive) or None (no/ignored range); raises 416."""
    if not h:
        return None
    mr = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", h)
    if not mr or (mr.group(1) == "" and mr.group(2) == ""):
        if "," in h:
            return None  # multiple ranges: answer with the whole file
        raise HTTPError(_416(size))
    a, b = mr.group(1), mr.group(2)
    if a == "":
        n = int(b)
        if n == 0:
            raise HTTPError(_416(size))
        return max(0, size - n), size
    a = int(a)
    b = int(b) if b else size - 1
    if a >= size or b < a:
        raise HTTPError(_416(size))
    return a, min(b, size - 1) + 1


def _416(size):
    r = graph_error(416, "invalidRange", "The requested range is not "
                    "satisfiable.")
    r.headers["Content-Range"] = "bytes */%d" % size
    return r


@route("files", "GET", r"/_layouts/15/download\.aspx")
def download(req, m):
    tok = unsign(req.query.get("tempauth", ""))
    if tok is None:
        raise HTTPError(graph_error(401, "unauthenticated",
                                    "Invalid or tampered download URL."))
    if tok["x"] < EMU.now():
        raise HTTPError(graph_error(401, "unauthenticated",
                                    "The download URL has expired."))
    with EMU.lock:
        d = EMU.tenant.drives.get(tok["d"])
        item = d.items.get(tok["i"]) if d else None
        if item is None or item.deleted:
            raise not_found()
        content = item.content if tok["v"] is None else \
            find_version(item, tok["v"])
        if content is None:
            content = item.content
        et = etag(item)
    size = content.size
    rng = parse_range(req.headers.get("range"), size)
    headers = {"Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes", "ETag": et,
               "Content-Disposition": "attachment; filename*=UTF-8''" +
               urllib.parse.quote(item.name)}
    if rng is None:
        return Response(200, headers, stream=content.iter(0, size),
                        length=size)
    a, b = rng
    headers["Content-Range"] = "bytes %d-%d/%d" % (a, b - 1, size)
    return Response(206, headers, stream=content.iter(a, b), length=b - a)


# --------------------------------------------------------------------------
# upload sessions

_SESSIONS = {}


class Session:
    def __init__(self, sid, drive, parent, name, target, behavior, expires,
                 defer, fsinfo, user, file_size):
        self.id = sid
        self.drive = drive
        self.parent = parent
        self.name = name
        self.target = target  # item to replace (session by item id)
        self.behavior = behavior
        self.expires = expires
        self.defer = defer
        self.fsinfo = fsinfo or {}
        self.user = user
        self.total = file_size
        self.received = 0  # bytes received in order
        self.path = os.path.join(EMU.state_dir or "/tmp", "uploads", sid)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        open(self.path, "wb").close()
        self.complete = False

    def ranges(self):
        if self.total is not None and self.received >= self.total:
            return []
        return ["%d-" % self.received]

    def status(self):
        return {"expirationDateTime": iso(self.expires, frac=True),
                "nextExpectedRanges": self.ranges()}

    def drop(self):
        _SESSIONS.pop(self.id, None)
        try:
            os.unlink(self.path)
        except OSError:
            pass


def create_upload_session(req, gd, body, claims):
    d, item, leaf, parent = resolve(gd, allow_missing_leaf=True)
    props = body.get("item") or {}
    behavior = _behavior(req, props, "fail")
    target = None
    if gd.get("path"):
        name = leaf if leaf is not None else item.name
        if props.get("name") and props["name"] != name:
            raise bad_request("The name in the path and in the body differ.")
        check_name(name)
        if leaf is None and item.is_folder:
            raise HTTPError(graph_error(409, "nameAlreadyExists",
                                        "A folder with this name exists."))
    else:
        if item.is_folder:
            raise bad_request("createUploadSession needs a file path.")
        target, name, parent = item, item.name, item.parent
    if req.headers.get("if-match") and (target or (leaf is None and item)):
        cur = target or item
        if req.headers["if-match"] not in (etag(cur), ctag(cur)):
            raise HTTPError(graph_error(412, "resourceModified",
                                        "ETag does not match current item's "
                                        "value"))
    fs = props.get("fileSize")
    sid = _b64(os.urandom(18))
    life = float(EMU.knobs.get("upload_session_lifetime") or 3600)
    s = Session(sid, d, parent, name, target, behavior, EMU.now() + life,
                bool(body.get("deferCommit")), props.get("fileSystemInfo"),
                _acting_user(claims), int(fs) if fs is not None else None)
    _SESSIONS[sid] = s
    url = req.url("/up/%s?sig=%s" % (sid, sign({"u": sid})), host="files")
    out = {"@odata.context": req.url(
        "/v1.0/$metadata#microsoft.graph.uploadSession"),
        "uploadUrl": url, "expirationDateTime": iso(s.expires, frac=True),
        "nextExpectedRanges": ["0-"]}
    return Response.json(200, out)


def _session(req, m):
    tok = unsign(req.query.get("sig", ""))
    s = _SESSIONS.get(m.group(1))
    if tok is None or tok.get("u") != m.group(1) or s is None:
        raise not_found("The upload session was not found.")
    if s.expires < EMU.now():
        s.drop()
        raise not_found("The upload session has expired.")
    if EMU.tenant.drives.get(s.drive.id) is not s.drive:
        s.drop()  # the drive (library, site, OneDrive) was deleted
        raise not_found("The upload session was not found.")
    return s


def _no_auth(req):
    if "authorization" in req.headers and \
            EMU.knobs.get("strict_upload_auth", True):
        raise HTTPError(graph_error(
            401, "unauthenticated", "Upload URLs are pre-authenticated: do "
            "not send an Authorization header."))


@route("files", "GET", r"/up/([A-Za-z0-9_-]+)")
def session_status(req, m):
    with EMU.lock:
        return Response.json(200, _session(req, m).status())


@route("files", "DELETE", r"/up/([A-Za-z0-9_-]+)")
def session_delete(req, m):
    _no_auth(req)
    with EMU.lock:
        _session(req, m).drop()
    return Response(204)


@route("files", "PUT", r"/up/([A-Za-z0-9_-]+)")
def session_put(req, m):
    _no_auth(req)
    cr = req.headers.get("content-range", "")
    mr = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", cr)
    with EMU.lock:
        s = _session(req, m)
        if not mr:
            raise bad_request("Missing or invalid Content-Range header.")
        a, b = int(mr.group(1)), int(mr.group(2))
        total = None if mr.group(3) == "*" else int(mr.group(3))
        if total is None:
            raise bad_request("The total size must be given in "
                              "Content-Range.")
        if s.total is None:
            s.total = total
        elif total != s.total:
            raise bad_request("The Content-Range total %d differs from the "
                              "declared size %d." % (total, s.total))
        n = b - a + 1
        if b < a or n != len(req.body) or b >= total:
            raise bad_request("The Content-Range header length does not "
                              "match the provided number of bytes.")
        last = b == total - 1
        if not last and n % FRAGMENT:
            raise bad_request("Fragment size must be a multiple of 320 KiB "
                              "(327680 bytes) except for the last one.")
        if a != s.received:
            r = graph_error(416, "invalidRange",
                            "The uploaded fragment overlaps with data that "
                            "has already been received." if a < s.received
                            else "The uploaded fragment does not start at "
                            "the next expected byte.",
                            inner_code="fragmentOverlap"
                            if a < s.received else "invalidRange")
            obj = json.loads(r.body)
            obj["error"]["nextExpectedRanges"] = s.ranges()
            r.body = json.dumps(obj).encode()
            raise HTTPError(r)
        with open(s.path, "r+b") as f:
            f.seek(a)
            f.write(req.body)
        s.received = b + 1
        if not last:
            return Response.json(202, s.status())
        if s.defer:
            s.complete = True
            return Response.json(202, s.status())
        return _commit(req, s)


@route("files", "POST", r"/up/([A-Za-z0-9_-]+)")
def session_commit(req, m):
    _no_auth(req)
    with EMU.lock:
        s = _session(req, m)
        if not s.complete:
            raise bad_request("The upload is not complete.")
        return _commit(req, s)


def _commit(req, s):
    with open(s.path, "rb") as f:
        data = f.read()
    content = tmod.blob_from_bytes(EMU.tenant, data)
    ctime = mtime = None
    if s.fsinfo.get("createdDateTime"):
        ctime = parse_iso(s.fsinfo["createdDateTime"])
    if s.fsinfo.get("lastModifiedDateTime"):
        mtime = parse_iso(s.fsinfo["lastModifiedDateTime"])
    if s.target is not None:
        if s.target.deleted:
            s.drop()
            raise not_found("The item was deleted.")
        ops_replace_content(s.target, content, s.user, mtime)
        it, created = s.target, False
    else:
        if s.parent.deleted:
            s.drop()
            raise not_found("The parent folder was deleted.")
        try:
            it, created = ops_put_file(s.drive, s.parent, s.name, content,
                                       s.behavior, s.user, ctime, mtime)
        except HTTPError:
            s.drop()
            raise
    if ctime:
        it.ctime = ctime
    s.drop()
    return Response.json(201 if created else 200, item_json(req, it))
