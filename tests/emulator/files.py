"""Sites, drives and driveItems (being filled in)."""
from core import FILES_READ, Response, require_auth, route


@route("graph", "GET", r"/v1.0/sites/root")
def site_root(req, m):
    require_auth(req, FILES_READ)
    return Response.json(200, {})
