"""Plug-in interface of the Graph + Entra ID emulator (see README.md).

Every feature module (files, directory, entra, mail, batch, control)
registers its routes here at import time with @route.  The ASGI application
at the bottom turns HTTP requests into Request objects, applies fault rules,
dispatches to the handler in a worker thread and records statistics.
"""
import asyncio
import base64
import datetime
import json
import re
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

GRAPH_JSON = ("application/json;odata.metadata=minimal;odata.streaming=true;"
              "IEEE754Compatible=false;charset=utf-8")

ALL_ROLES = [
    "Sites.Read.All", "Sites.ReadWrite.All", "Sites.FullControl.All",
    "Files.Read.All", "Files.ReadWrite.All", "User.Read.All",
    "Group.Read.All", "Directory.Read.All", "Mail.Read", "Mail.ReadWrite",
    "MailboxSettings.Read", "MailboxSettings.ReadWrite",
    "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
]

# Roles accepted by each kind of operation (write roles imply read).
FILES_READ = ["Sites.Read.All", "Sites.ReadWrite.All", "Sites.FullControl.All",
              "Sites.Manage.All", "Files.Read.All", "Files.ReadWrite.All"]
FILES_WRITE = ["Sites.ReadWrite.All", "Sites.FullControl.All",
               "Sites.Manage.All", "Files.ReadWrite.All"]
DIR_READ = ["User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
            "Directory.ReadWrite.All", "Group.Read.All",
            "Group.ReadWrite.All"]
MAIL_READ = ["Mail.Read", "Mail.ReadWrite"]
MAIL_WRITE = ["Mail.ReadWrite"]


def iso(ts, frac=False):
    """Epoch seconds -> ISO 8601 UTC ("2017-09-14T12:34:53Z")."""
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    if frac:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond //
                                                             1000)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    """ISO 8601 (with or without fraction / zone) -> epoch seconds."""
    s = s.strip().replace("Z", "+00:00")
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


class Request:
    """One HTTP request as seen by handlers."""

    def __init__(self, method, host, raw_path, query_string=b"", headers=None,
                 body=b""):
        self.method = method.upper()
        self.host = host  # "graph" | "files" | "control"
        self.raw_path = raw_path
        self.path = urllib.parse.unquote(raw_path)
        self.query_string = query_string.decode("latin-1") if isinstance(
            query_string, bytes) else query_string
        self.query = {}
        for k, v in urllib.parse.parse_qsl(self.query_string,
                                           keep_blank_values=True):
            self.query[k] = v
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body
        self.client_request_id = self.headers.get("client-request-id")
        self.request_id = str(uuid.uuid4())
        self.in_batch = False

    def url(self, path_qs, host="graph"):
        """Absolute URL on the configured public address of HOST."""
        base = EMU.public_url(host)
        return base + path_qs

    def json(self):
        """Parsed JSON body; HTTPError 400 when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise HTTPError(graph_error(400, "invalidRequest",
                                        "Invalid request body.")) from None


class Response:
    """Status, headers (dict) and body (bytes); `stream` optionally replaces
    body with an iterable of byte chunks (then `length` is its size)."""

    def __init__(self, status=200, headers=None, body=b"", stream=None,
                 length=None):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.stream = stream
        self.length = length

    @staticmethod
    def json(status, obj, headers=None):
        h = {"Content-Type": GRAPH_JSON}
        h.update(headers or {})
        return Response(status, h,
                        json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def json_body(self):
        """Parsed body (for $batch and tests); None when empty/not JSON."""
        if self.stream is not None or not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HTTPError(Exception):
    """Raise from a handler to answer with `response`."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def _graph_date():
    return datetime.datetime.utcfromtimestamp(EMU.now()).strftime(
        "%Y-%m-%dT%H:%M:%S")


_current = threading.local()


def graph_error(status, code, message, inner_code=None, headers=None):
    """Graph error response in the GRAPH-API.md §3.1 shape."""
    req = getattr(_current, "req", None)
    inner = {"date": _graph_date(),
             "request-id": req.request_id if req else str(uuid.uuid4()),
             "client-request-id": (req.client_request_id or req.request_id)
             if req else str(uuid.uuid4())}
    if inner_code:
        inner = dict({"code": inner_code}, **inner)
    return Response.json(status, {"error": {"code": code, "message": message,
                                            "innerError": inner}}, headers)


def aad_error(status, error, codes, description):
    """Entra ID token error response in the GRAPH-API.md §1.4 shape."""
    if isinstance(codes, int):
        codes = [codes]
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    ts = datetime.datetime.utcfromtimestamp(EMU.now()).strftime(
        "%Y-%m-%d %H:%M:%SZ")
    desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n" \
           "Timestamp: %s" % (codes[0], description, trace, corr, ts)
    obj = {"error": error, "error_description": desc, "error_codes": codes,
           "timestamp": ts, "trace_id": trace, "correlation_id": corr,
           "error_uri": "%s/error?code=%d" % (EMU.public_url("login"),
                                              codes[0])}
    return Response(status, {"Content-Type": "application/json; "
                             "charset=utf-8"},
                    json.dumps(obj).encode())


ROUTES = []  # (host, method, regex, handler)


def route(host, method, pattern):
    """Register handler(req, m) for HOST ("graph" | "files" | "control"),
    METHOD and PATTERN (regex full-matched against Request.path)."""
    rx = re.compile(pattern)

    def deco(fn):
        ROUTES.append((host, method.upper(), rx, fn))
        return fn

    return deco


def find_route(req):
    """-> (handler, match, route name "module.function") or raises
    HTTPError (400 unknown segment / 405)."""
    method_seen = False
    for host, method, rx, fn in ROUTES:
        if host != req.host:
            continue
        m = rx.fullmatch(req.path)
        if not m:
            continue
        if method == req.method or (method == "GET" and req.method == "HEAD"):
            return fn, m, "%s.%s" % (fn.__module__, fn.__name__)
        method_seen = True
    if method_seen:
        raise HTTPError(graph_error(405, "Request_BadRequest" if False else
                                    "BadRequest", "The HTTP method '%s' is "
                                    "not allowed." % req.method))
    if req.host == "control":
        raise HTTPError(Response.json(404, {"error": "no such control "
                                            "endpoint '%s'" % req.path}))
    raise HTTPError(graph_error(400, "BadRequest", "Resource not found for "
                                "the segment '%s'." %
                                req.path.rstrip("/").split("/")[-1]))


def _b64url_json(part):
    part += "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(part))


def _service_denied(any_of_roles):
    roles = " ".join(any_of_roles)
    if "Mail." in roles:
        return graph_error(403, "ErrorAccessDenied",
                           "Access is denied. Check credentials and try "
                           "again.")
    if any(r.startswith(("User.", "Group.", "Directory.", "Application.",
                         "AppRoleAssignment.")) for r in any_of_roles):
        return graph_error(403, "Authorization_RequestDenied",
                           "Insufficient privileges to complete the "
                           "operation.")
    return graph_error(403, "accessDenied",
                       "Either scp or roles claim need to be present in the "
                       "token.")


def require_auth(req, any_of_roles):
    """Checks the bearer token of REQ; -> claims.  Raises HTTPError 401 or
    403 (service-specific code) unless one of ANY_OF_ROLES is granted."""
    auth = req.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise HTTPError(graph_error(401, "InvalidAuthenticationToken",
                                    "Access token is empty."))
    token = auth[7:].strip()
    entra = EMU.modules.get("entra")
    if entra is None:
        claims = {"roles": list(ALL_ROLES), "appid": "unverified"}
    else:
        claims = entra.verify_access_token(token)
        if claims is None:
            msg = "Access token validation failure."
            try:
                payload = _b64url_json(token.split(".")[1])
                if payload.get("exp", 0) < EMU.now() or \
                        payload.get("nbf", 0) > EMU.now() + 300:
                    msg = "Access token has expired or is not yet valid."
                elif payload.get("aud") not in (
                        "https://graph.microsoft.com",
                        "00000003-0000-0000-c000-000000000000"):
                    msg = "Access token validation failure. Invalid " \
                          "audience."
            except (IndexError, ValueError, TypeError, AttributeError):
                pass
            raise HTTPError(graph_error(401, "InvalidAuthenticationToken",
                                        msg))
    granted = set(claims.get("roles") or [])
    granted |= set((claims.get("scp") or "").split())
    if not granted & set(any_of_roles):
        raise HTTPError(_service_denied(any_of_roles))
    return claims


class Emulator:
    """The one emulator object (EMU)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.tenant = None
        self.knobs = {
            "token_lifetime": 3599,
            "propagation_delay": 0,
            "clock_skew": 0,
            "page_size": None,
            "max_page_size": None,
            "device_pending_polls": 2,
            "expire_delta_tokens": False,
            "download_url_lifetime": 3600,
            "upload_session_lifetime": 3600,
            "batch_order": "shuffle",
        }
        self.modules = {}  # name -> imported optional module
        self.urls = {}  # "graph", "login", "files", "control" -> base URL
        self.state_dir = None
        self.faults = []
        self.stats = None
        self.reset_stats()
        self.start_time = time.time()

    def now(self):
        return time.time() + float(self.knobs.get("clock_skew") or 0)

    def public_url(self, host):
        return self.urls.get(host) or self.urls.get("graph", "")

    def reset_stats(self):
        with self.lock:
            self.stats = {"total": 0, "by_route": {}, "by_status": {},
                          "bytes_downloaded": 0, "throttled": 0,
                          "files_authorization_seen": 0, "concurrent": 0,
                          "concurrent_max": 0, "log": []}

    def count(self, req, pattern, status, extra=None):
        """Records one request in the stats (control requests are not
        counted) -> its log entry (a dict the caller may update)."""
        entry = {"bytes": 0}
        if req.host == "control":
            return entry
        with self.lock:
            s = self.stats
            s["total"] += 1
            key = "%s %s" % (req.method, pattern)
            s["by_route"][key] = s["by_route"].get(key, 0) + 1
            s["by_status"][str(status)] = s["by_status"].get(str(status),
                                                             0) + 1
            had_auth = "authorization" in req.headers
            if req.host == "files" and had_auth:
                s["files_authorization_seen"] += 1
            entry.update({"method": req.method, "host": req.host,
                     "path": req.path, "query": req.query_string,
                     "status": status, "range": req.headers.get("range"),
                     "had_authorization": had_auth,
                     "client_request_id": req.client_request_id,
                     "time": time.time()})
            if extra:
                entry.update(extra)
            if len(s["log"]) < 200000:
                s["log"].append(entry)
            return entry


EMU = Emulator()


def match_fault(req):
    """First matching fault rule (consumed), or None."""
    with EMU.lock:
        for rule in EMU.faults:
            rx = rule.get("_rx")
            if rx is None:
                rx = rule["_rx"] = re.compile(rule.get("path_regex", ".*"))
            target = req.path + ("?" + req.query_string
                                 if req.query_string else "")
            if rule.get("host") and rule["host"] != req.host:
                continue
            if rule.get("method") and rule["method"].upper() != req.method:
                continue
            if not rx.search(target):
                continue
            if rule.get("count") is not None:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    EMU.faults.remove(rule)
            return rule
    return None


# fault status -> (code, message, inner code) when the rule names none
FAULT_ERRORS = {
    429: ("TooManyRequests", "Please retry again later.", None),
    403: ("activityLimitReached", "The request has been throttled",
          "throttledRequest"),
    509: ("activityLimitReached", "The request has been throttled",
          "throttledRequest"),
    500: ("generalException", "An unspecified error has occurred.", None),
    502: ("serviceNotAvailable", "The service is not available. Try the "
          "request again after a delay.", None),
    504: ("serviceNotAvailable", "The service is not available. Try the "
          "request again after a delay.", None),
}
THROTTLE_STATUSES = (403, 429, 503, 509)


def throttle_response(status, retry_after=None, code=None, inner_code=None,
                      message=None):
    """The answer of a fault rule: 429 in the error-429.json shape, 503
    serviceNotAvailable (activityLimitReached with a Retry-After), 509 and
    403 activityLimitReached (SharePoint throttling), 500/502/504; CODE,
    INNER_CODE, MESSAGE replace the defaults."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status == 503:
        dcode = "serviceNotAvailable" if retry_after is None \
            else "activityLimitReached"
        default = (dcode, "The request has been throttled", None)
    else:
        default = FAULT_ERRORS.get(status, ("generalException",
                                            "Fault injected.", None))
    r = graph_error(status, code or default[0], message or default[1],
                    inner_code or default[2], headers=headers)
    if status == 429 and not (code or inner_code or message):
        obj = json.loads(r.body)
        obj["error"]["innerError"].update({"code": "429", "message":
                                           "Please retry after",
                                           "status": "429"})
        r.body = json.dumps(obj).encode()
    return r


def dispatch(req, apply_faults=True):
    """Runs REQ through fault rules and the routes -> (Response, pattern,
    fault rule or None).  Used by the HTTP layer and by $batch."""
    prev = getattr(_current, "req", None)
    _current.req = req
    fault = match_fault(req) if apply_faults else None
    pattern = "-"
    try:
        if fault and fault.get("status"):
            with EMU.lock:
                if fault["status"] in THROTTLE_STATUSES:
                    EMU.stats["throttled"] += 1
            resp = throttle_response(
                fault["status"], fault.get("retry_after"), fault.get("code"),
                fault.get("inner_code"), fault.get("message"))
        else:
            fn, m, pattern = find_route(req)
            resp = fn(req, m)
    except HTTPError as e:
        resp = e.response
    except Exception as e:  # a bug in a handler: answer 500, log it
        import traceback
        traceback.print_exc()
        resp = graph_error(500, "generalException", "internal error: %r" % e)
    finally:
        _current.req = prev
    if req.host != "control":
        resp.headers.setdefault("request-id", req.request_id)
        resp.headers.setdefault("client-request-id",
                                req.client_request_id or req.request_id)
    return resp, pattern, fault


_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="emu")
_CHUNK = 1 << 20


class DropConnection(Exception):
    """Raised by the app to cut a response off (see transport.py)."""


DROP_KEY = "emu.drop"  # scope key: how to drop ("reset" | "close" | "rst")


def make_app(host_of):
    """ASGI application; HOST_OF(scope) -> "graph" | "files" | "control"."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        headers = {}
        for k, v in scope["headers"]:
            k = k.decode("latin-1").lower()
            v = v.decode("latin-1")
            headers[k] = headers[k] + ", " + v if k in headers else v
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if isinstance(raw_path, bytes):
            raw_path = raw_path.decode("latin-1")
        raw_path = raw_path.split("?", 1)[0]
        req = Request(scope["method"], host_of(scope), raw_path,
                      scope.get("query_string", b""), headers, b"".join(chunks))
        loop = asyncio.get_running_loop()
        with EMU.lock:
            EMU.stats["concurrent"] += 1
            EMU.stats["concurrent_max"] = max(EMU.stats["concurrent_max"],
                                              EMU.stats["concurrent"])
        try:
            await _serve(req, send, loop, scope)
        finally:
            with EMU.lock:
                EMU.stats["concurrent"] -= 1

    return app


async def _serve(req, send, loop, scope):
    fault = None
    t0 = time.monotonic()
    resp, pattern, fault = await loop.run_in_executor(_POOL, dispatch, req)
    # the time the handler took to make the response (before sending it)
    made_ms = round((time.monotonic() - t0) * 1000.0, 2)
    if fault and fault.get("latency_ms"):
        await asyncio.sleep(float(fault["latency_ms"]) / 1000.0)
    drop = fault.get("drop_after_bytes") if fault else None
    if drop is not None:
        # read by transport.py: "reset" (HTTP/2: RST_STREAM) or "close"
        scope[DROP_KEY] = fault.get("drop_mode") or "reset"
    hdrs = dict(resp.headers)
    if resp.stream is not None:
        length = resp.length
    else:
        length = len(resp.body)
    if req.method == "HEAD":
        body_iter = None
    else:
        body_iter = resp.stream
    if resp.status not in (204, 304) and not any(
            k.lower() == "content-length" for k in hdrs):
        hdrs["Content-Length"] = str(length)
    out = [(k.lower().encode("latin-1"), str(v).encode("latin-1"))
           for k, v in hdrs.items()]
    # counted before anything is sent, so a client that has its answer
    # always finds it in /stats
    entry = EMU.count(req, pattern, resp.status,
                      {"bytes": 0, "made_ms": made_ms})
    counting = req.host == "files" and req.method == "GET"

    def add(n, dropped=False):
        with EMU.lock:
            entry["bytes"] += n
            if dropped:
                entry["dropped"] = True
            if counting:
                EMU.stats["bytes_downloaded"] += n

    await send({"type": "http.response.start", "status": resp.status,
                "headers": out})
    if req.method == "HEAD":
        await send({"type": "http.response.body", "body": b""})
    elif body_iter is None:
        body = resp.body
        if drop is not None:
            body = body[:int(drop)]
            add(len(body), True)
            await send({"type": "http.response.body", "body": body,
                        "more_body": True})
            raise DropConnection()
        add(len(body))
        await send({"type": "http.response.body", "body": body})
    else:
        it = iter(body_iter)
        sent = 0
        while True:
            chunk = await loop.run_in_executor(_POOL, next, it, None)
            if chunk is None:
                break
            if drop is not None and sent + len(chunk) >= int(drop):
                chunk = chunk[:int(drop) - sent]
                add(len(chunk), True)
                await send({"type": "http.response.body",
                            "body": bytes(chunk), "more_body": True})
                raise DropConnection()
            sent += len(chunk)
            add(len(chunk))
            await send({"type": "http.response.body", "body": bytes(chunk),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
