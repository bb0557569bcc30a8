"""JSON batching: POST /v1.0/$batch (GRAPH-API.md §3.3).

Each request is dispatched into the normal routes (fault rules apply per
item, so a 429 rule gives a per-item 429 with its Retry-After header);
dependsOn orders execution and a failed dependency gives 424; the
responses come in a shuffled order (knob batch_order "shuffle", the
default, or "request").
"""
import base64
import json
import random
import urllib.parse

from core import (EMU, HTTPError, Request, Response, dispatch, graph_error,
                  route)

MAX_REQUESTS = 20


def _bad(msg):
    return HTTPError(graph_error(400, "BadRequest", msg))


@route("graph", "POST", r"/v1\.0/\$batch")
def batch(req, m):
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("requests"),
                                                    list):
        raise _bad("Invalid batch payload format.")
    reqs = body["requests"]
    if not reqs:
        raise _bad("Invalid batch payload format.")
    if len(reqs) > MAX_REQUESTS:
        raise _bad("Number of batch request steps exceeds the maximum of "
                   "%d." % MAX_REQUESTS)
    ids = set()
    for r in reqs:
        if not isinstance(r, dict) or not r.get("id") or not r.get("url") \
                or not r.get("method"):
            raise _bad("Each batch request needs id, method and url.")
        if str(r["id"]) in ids:
            raise _bad("Batch request ids must be unique.")
        ids.add(str(r["id"]))
    for r in reqs:
        for dep in r.get("dependsOn") or []:
            if str(dep) not in ids:
                raise _bad("Batch request depends on an unknown id '%s'." %
                           dep)
    done = {}
    order = []
    pending = list(reqs)
    while pending:
        progressed = False
        for r in list(pending):
            deps = [str(x) for x in r.get("dependsOn") or []]
            if any(d not in done for d in deps):
                continue
            pending.remove(r)
            progressed = True
            rid = str(r["id"])
            if any(done[d] >= 400 for d in deps):
                done[rid] = 424
                order.append({"id": rid, "status": 424, "body": {
                    "error": {"code": "FailedDependency",
                              "message": "Dependent request failed."}}})
                continue
            res = _run(req, r)
            done[rid] = res["status"]
            order.append(res)
        if not progressed:
            raise _bad("Batch dependsOn has a cycle.")
    if EMU.knobs.get("batch_order", "shuffle") == "shuffle":
        # "responses may be in any order" (GRAPH-API.md 3.3): clients must
        # match them by id.  Seeded: the same calls give the same order.
        with EMU.lock:
            _RNG.shuffle(order)
    return Response.json(200, {"responses": order})


_RNG = random.Random(20)


def _raw_path(path):
    """The URL path of a batch item as it would arrive on the wire: it is
    already percent-encoded (ids, UPNs, names), so '%' is kept; only what
    may not appear raw in a URL (spaces, non-ASCII) is encoded."""
    return urllib.parse.quote(path, safe="/:,!$@'()*+;=~%")


def _run(outer, r):
    url = r["url"]
    if url.startswith("https://") or url.startswith("http://"):
        url = urllib.parse.urlsplit(url)
        path, qs = url.path, url.query
    else:
        if not url.startswith("/"):
            url = "/" + url
        path, _, qs = url.partition("?")
    if not path.startswith("/v1.0/"):
        path = "/v1.0" + path
    headers = {k.lower(): str(v) for k, v in (r.get("headers") or {}).items()}
    for h in ("authorization", "client-request-id", "prefer"):
        if h in outer.headers and h not in headers:
            headers[h] = outer.headers[h]
    body = r.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str) and not headers.get(
            "content-type", "application/json").startswith(
                "application/json"):
        raw = base64.b64decode(body)
    else:
        raw = json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
    sub = Request(r["method"], "graph", _raw_path(path), qs, headers, raw)
    sub.in_batch = True
    resp, pattern, _ = dispatch(sub)
    EMU.count(sub, pattern, resp.status, {"batch": True})
    out = {"id": str(r["id"]), "status": resp.status}
    hdrs = {k: v for k, v in resp.headers.items()
            if k.lower() not in ("request-id", "client-request-id",
                                 "content-length")}
    if hdrs:
        out["headers"] = hdrs
    if resp.stream is not None:
        data = b"".join(resp.stream)
        out["body"] = base64.b64encode(data).decode()
    elif resp.body:
        parsed = resp.json_body()
        out["body"] = parsed if parsed is not None else \
            base64.b64encode(resp.body).decode()
    elif resp.status != 302:
        out["body"] = None
    return out
