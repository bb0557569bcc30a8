"""Control API (plain HTTP on control_url): health, truth, stats, mutate,
faults, knobs."""
from core import EMU, Response, route


@route("control", "GET", r"/health")
def health(req, m):
    return Response.json(200, {"ok": True, "tenant_id": EMU.tenant.id,
                               "modules": sorted(EMU.modules)})
