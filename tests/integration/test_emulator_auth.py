"""Graph authorization on the files and directory routes: 401 without or
with an expired token, 403 when the roles do not cover the operation."""
import json
import urllib.parse

import pytest


def app_token(emu, roles):
    if "entra" not in emu.modules:
        pytest.skip("entra.py is not present")
    app = emu.control("POST", "/entra/add_app", {"displayName": "roles " +
                                                 ",".join(roles),
                                                 "roles": roles,
                                                 "cert": False})
    form = urllib.parse.urlencode({
        "client_id": app["client_id"], "client_secret": app["secret"],
        "scope": "https://graph.microsoft.com/.default",
        "grant_type": "client_credentials"}).encode()
    st, _, body = emu.request("POST", emu.login_url + "/%s/oauth2/v2.0/token"
                              % emu.tenant_id, body=form, auth=False,
                              headers={"Content-Type":
                                       "application/x-www-form-urlencoded"})
    assert st == 200, body
    return json.loads(body)["access_token"]


def err(resp):
    return json.loads(resp[2])["error"]


def test_no_roles_gives_service_specific_403(emulator):
    tok = app_token(emulator, [])
    r = emulator.request("GET", "/sites/root", auth=tok)
    assert r[0] == 403
    assert err(r)["code"] == "accessDenied"
    assert err(r)["message"] == "Either scp or roles claim need to be " \
        "present in the token."
    r = emulator.request("GET", "/users", auth=tok)
    assert r[0] == 403 and err(r)["code"] == "Authorization_RequestDenied"


def test_read_roles_cannot_write(emulator):
    tok = app_token(emulator, ["Sites.Read.All", "User.Read.All"])
    assert emulator.request("GET", "/sites/root", auth=tok)[0] == 200
    assert emulator.request("GET", "/users", auth=tok)[0] == 200
    root = emulator.get_json("/sites/root/drive/root", auth=tok)
    r = emulator.request("POST", "/drives/%s/items/%s/children" % (
        root["parentReference"]["driveId"], root["id"]),
        body={"name": "x", "folder": {}}, auth=tok)
    assert r[0] == 403 and err(r)["code"] == "accessDenied"
    tok = app_token(emulator, ["Files.ReadWrite.All"])
    r = emulator.request("POST", "/drives/%s/items/%s/children" % (
        root["parentReference"]["driveId"], root["id"]),
        body={"name": "written", "folder": {}}, auth=tok)
    assert r[0] == 201


def test_expired_and_forged_tokens_401(emulator):
    if "entra" not in emulator.modules:
        pytest.skip("entra.py is not present")
    tok = emulator.token(refresh=True)
    emulator.knobs(clock_skew=7200)
    try:
        r = emulator.request("GET", "/sites/root", auth=tok)
        assert r[0] == 401
        assert err(r)["code"] == "InvalidAuthenticationToken"
        assert err(r)["message"] == "Access token has expired or is not " \
            "yet valid."
    finally:
        emulator.knobs(clock_skew=0)
    head, payload, sig = tok.split(".")
    r = emulator.request("GET", "/sites/root",
                         auth=head + "." + payload + "." + sig[::-1])
    assert r[0] == 401
