"""Helpers for the emulator tests (shape comparison with graph-samples,
delta and paging walkers)."""
import json
import pathlib
import urllib.parse

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "emulator" / \
    "graph-samples"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def same_shape(got, want, path="$", missing_ok=()):
    """Every key of WANT is in GOT with the same JSON type (recursively;
    lists compare their first elements; null in WANT matches anything)."""
    if want is None:
        return
    assert jtype(got) == jtype(want), "%s: %s is %s, sample has %s" % (
        path, json.dumps(got)[:80], jtype(got), jtype(want))
    if isinstance(want, dict):
        for k, v in want.items():
            if k in missing_ok:
                continue
            assert k in got, "%s: missing key '%s' (have %s)" % (
                path, k, sorted(got))
            same_shape(got[k], v, path + "." + k, missing_ok)
    elif isinstance(want, list) and want and got:
        same_shape(got[0], want[0], path + "[0]", missing_ok)


def all_pages(emu, url):
    """Follows @odata.nextLink -> (all values, last page)."""
    out = []
    while True:
        page = emu.get_json(url)
        out.extend(page["value"])
        if "@odata.nextLink" not in page:
            return out, page
        url = page["@odata.nextLink"]


def delta_round(emu, url):
    """One delta round -> (items, deltaLink, pages)."""
    items = []
    pages = 0
    while True:
        page = emu.get_json(url)
        pages += 1
        items.extend(page["value"])
        if "@odata.deltaLink" in page:
            assert "@odata.nextLink" not in page
            return items, page["@odata.deltaLink"], pages
        url = page["@odata.nextLink"]


def q(path):
    return urllib.parse.quote(path)
