"""Emulator Entra ID side: token endpoint (secrets, certificate
assertions, AADSTS errors), device code flow, app registration through
Graph, roles in tokens and Graph 401/403 (GRAPH-API.md sections 1-2)."""
import base64
import datetime
import hashlib
import json
import re
import time
import urllib.parse
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from conftest import EmulatorError

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
AAD_KEYS = {"error", "error_description", "error_codes", "timestamp",
            "trace_id", "correlation_id", "error_uri"}
SITES_READ = "332a536c-c7ef-4017-ab91-336970924f0d"
MAIL_READ = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / \
    "tests" / "emulator" / "graph-samples"


def sample(name):
    p = SAMPLES / name
    if not p.exists():
        p = __import__("pathlib").Path("/work/shared/graph-samples") / name
    return json.loads(p.read_text())


# ----------------------------------------------------------------- helpers
def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims_of(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) %
                                                              4)))


def token_url(emu, tenant=None):
    return "%s/%s/oauth2/v2.0/token" % (emu.login_url,
                                        tenant or emu.tenant_id)


def post_form(emu, url, form, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    st, hdrs, body = emu.request("POST", url, body=urllib.parse.urlencode(
        form).encode(), auth=False, headers=h)
    return st, hdrs, json.loads(body)


def backup(emu):
    b = emu.apps["backup"]
    with open(b["secret_file"]) as f:
        return b, f.read().strip()


def secret_form(cid, secret, scope=GRAPH_SCOPE):
    return {"grant_type": "client_credentials", "client_id": cid,
            "client_secret": secret, "scope": scope}


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def cert_der(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).public_bytes(
            serialization.Encoding.DER)


def new_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(days=1))
            .not_valid_after(t + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER)


def assertion(emu, cid, key, der, alg="RS256", thumbs=("x5t", "x5t#S256"),
              **claims):
    now = int(time.time())
    c = {"aud": token_url(emu), "iss": cid, "sub": cid,
         "jti": str(uuid.uuid4()), "nbf": now, "iat": now,
         "exp": now + 600}
    c.update(claims)
    hdr = {"alg": alg, "typ": "JWT"}
    if "x5t" in thumbs:
        hdr["x5t"] = b64u(hashlib.sha1(der).digest())
    if "x5t#S256" in thumbs:
        hdr["x5t#S256"] = b64u(hashlib.sha256(der).digest())
    signing = (b64u(json.dumps(hdr).encode()) + "." +
               b64u(json.dumps(c).encode())).encode()
    if alg == "PS256":
        sig = key.sign(signing, padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256())
    else:
        sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return signing.decode() + "." + b64u(sig)


def cert_form(cid, jwt, scope=GRAPH_SCOPE):
    return {"grant_type": "client_credentials", "client_id": cid,
            "client_assertion_type": ASSERTION, "client_assertion": jwt,
            "scope": scope}


def check_aad_error(st, body, status, error, code):
    """The exact GRAPH-API.md 1.4 shape; returns the first line."""
    assert st == status, body
    assert set(body) == AAD_KEYS, body
    assert body["error"] == error, body
    assert body["error_codes"] == [code], body
    m = re.fullmatch(r"AADSTS(\d+): (.*)\r\nTrace ID: (%s)\r\nCorrelation "
                     r"ID: (%s)\r\nTimestamp: (\d{4}-\d\d-\d\d "
                     r"\d\d:\d\d:\d\dZ)" % (GUID, GUID),
                     body["error_description"], re.S)
    assert m, body["error_description"]
    assert int(m.group(1)) == code
    assert m.group(3) == body["trace_id"]
    assert m.group(4) == body["correlation_id"]
    assert m.group(5) == body["timestamp"]
    assert body["error_uri"].endswith("error?code=%d" % code)
    return m.group(2)


def control_or_skip(emu, method, path, body=None):
    try:
        return emu.control(method, path, body)
    except EmulatorError as e:
        if " 404 " in str(e):
            pytest.skip("control endpoint %s not available yet" % path)
        raise


def knobs(emu, **k):
    return control_or_skip(emu, "POST", "/knobs", k)


def add_app(emu, **args):
    return control_or_skip(emu, "POST", "/entra/add_app", args)


def delegated(emu, scp="Application.ReadWrite.All "
              "AppRoleAssignment.ReadWrite.All"):
    return control_or_skip(emu, "POST", "/entra/delegated_token",
                           {"scp": scp})["access_token"]


# ---------------------------------------------------------------- secrets
def test_secret_in_form(emulator):
    b, secret = backup(emulator)
    st, hdrs, body = post_form(emulator, token_url(emulator),
                               secret_form(b["client_id"], secret))
    assert st == 200, body
    assert hdrs["content-type"].startswith("application/json")
    assert set(body) >= set(sample("token-success.json"))
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 60
    assert isinstance(body["ext_expires_in"], int)
    c = claims_of(body["access_token"])
    assert c["aud"] == "https://graph.microsoft.com"
    assert c["iss"] == "https://sts.windows.net/%s/" % emulator.tenant_id
    assert c["tid"] == emulator.tenant_id
    assert c["appid"] == b["client_id"]
    assert re.fullmatch(GUID, c["oid"])
    assert c["exp"] - c["iat"] == body["expires_in"]
    for role in ("Sites.Read.All", "Files.Read.All", "User.Read.All",
                 "Mail.Read", "Mail.ReadWrite"):
        assert role in c["roles"]
    assert "scp" not in c


def test_secret_by_http_basic_and_domain_tenant(emulator):
    b, secret = backup(emulator)
    basic = base64.b64encode(("%s:%s" % (b["client_id"], secret))
                             .encode()).decode()
    st, _, body = post_form(
        emulator, token_url(emulator, emulator.tenant_domain),
        {"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        headers={"Authorization": "Basic " + basic})
    assert st == 200, body
    assert claims_of(body["access_token"])["appid"] == b["client_id"]


def test_secret_files_are_private(emulator):
    import os
    b = emulator.apps["backup"]
    for k in ("secret_file", "cert_file", "key_file"):
        assert os.stat(b[k]).st_mode & 0o777 == 0o600, k
    key = load_key(b["key_file"])
    assert key.key_size == 2048


# ------------------------------------------------------------ certificates
@pytest.mark.parametrize("alg", ["RS256", "PS256"])
@pytest.mark.parametrize("thumbs", [("x5t",), ("x5t#S256",),
                                    ("x5t", "x5t#S256")])
def test_certificate_assertion(emulator, alg, thumbs):
    b = emulator.apps["backup"]
    jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                    cert_der(b["cert_file"]), alg, thumbs)
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    assert st == 200, body
    c = claims_of(body["access_token"])
    assert c["appid"] == b["client_id"] and "Sites.Read.All" in c["roles"]


def test_assertion_audience_v1_and_domain_forms(emulator):
    b = emulator.apps["backup"]
    key, der = load_key(b["key_file"]), cert_der(b["cert_file"])
    for aud in ("%s/%s/oauth2/token" % (emulator.login_url,
                                        emulator.tenant_id),
                "%s/%s/oauth2/v2.0/token" % (emulator.login_url,
                                             emulator.tenant_domain)):
        jwt = assertion(emulator, b["client_id"], key, der, aud=aud)
        st, _, body = post_form(emulator, token_url(emulator),
                                cert_form(b["client_id"], jwt))
        assert st == 200, (aud, body)
    jwt = assertion(emulator, b["client_id"], key, der,
                    aud="https://login.example.com/x/oauth2/v2.0/token")
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    assert st == 401 and body["error"] == "invalid_client", body


# ------------------------------------------------------------------ errors
def test_error_unknown_tenant_90002(emulator):
    b, secret = backup(emulator)
    for t in ("fabrikam.onmicrosoft.com", str(uuid.uuid4())):
        st, _, body = post_form(emulator, token_url(emulator, t),
                                secret_form(b["client_id"], secret))
        text = check_aad_error(st, body, 400, "invalid_request", 90002)
        assert text.startswith("Tenant '%s' not found." % t)


def test_error_malformed_tenant_900023(emulator):
    b, secret = backup(emulator)
    st, _, body = post_form(emulator, token_url(emulator, "not_a%20tenant"),
                            secret_form(b["client_id"], secret))
    text = check_aad_error(st, body, 400, "invalid_request", 900023)
    assert text == ("Specified tenant identifier 'not_a tenant' is neither a "
                    "valid DNS name, nor a valid external domain.")


def test_error_unknown_app_700016(emulator):
    _, secret = backup(emulator)
    cid = str(uuid.uuid4())
    st, _, body = post_form(emulator, token_url(emulator),
                            secret_form(cid, secret))
    text = check_aad_error(st, body, 400, "unauthorized_client", 700016)
    assert text.startswith("Application with identifier '%s' was not found "
                           "in the directory 'Contoso'." % cid)


def test_error_wrong_secret_7000215(emulator):
    b, secret = backup(emulator)
    st, _, body = post_form(emulator, token_url(emulator),
                            secret_form(b["client_id"], secret + "x"))
    text = check_aad_error(st, body, 401, "invalid_client", 7000215)
    assert "for a secret added to app '%s'" % b["client_id"] in text


def test_error_no_credential_7000218(emulator):
    b, _ = backup(emulator)
    form = secret_form(b["client_id"], "")
    del form["client_secret"]
    st, _, body = post_form(emulator, token_url(emulator), form)
    text = check_aad_error(st, body, 400, "invalid_request", 7000218)
    assert text == ("The request body must contain the following parameter:"
                    " 'client_assertion' or 'client_secret'.")


def test_error_expired_secret_7000222(emulator):
    app = add_app(emulator, displayName="expiring", cert=False,
                  roles=["Sites.Read.All"])
    form = secret_form(app["client_id"], app["secret"])
    st, _, body = post_form(emulator, token_url(emulator), form)
    assert st == 200, body
    emulator.control("POST", "/entra/expire_secret",
                     {"client_id": app["client_id"]})
    st, _, body = post_form(emulator, token_url(emulator), form)
    text = check_aad_error(st, body, 401, "invalid_client", 7000222)
    assert text.startswith("The provided client secret keys for app '%s' "
                           "are expired." % app["client_id"])


@pytest.mark.parametrize("scope,error,code", [
    ("https://graph.microsoft.com/User.Read", "invalid_scope", 1002012),
    ("https://graph.microsoft.com/.default offline_access", "invalid_scope",
     70011),
    ("User.Read", "invalid_scope", 70011),
    ("https://graph.microsoft.us/.default", "invalid_resource", 500011),
])
def test_error_bad_scope(emulator, scope, error, code):
    b, secret = backup(emulator)
    st, _, body = post_form(emulator, token_url(emulator),
                            secret_form(b["client_id"], secret, scope))
    text = check_aad_error(st, body, 400, error, code)
    if code == 1002012:
        assert text == ("The provided value for scope %s is not valid. "
                        "Client credential flows must have a scope value "
                        "with /.default suffixed to the resource identifier"
                        " (application ID URI)." % scope)
    if code == 500011:
        assert text.startswith("The resource principal named "
                               "https://graph.microsoft.us was not found")


def test_error_unknown_certificate_700027(emulator):
    b = emulator.apps["backup"]
    key, der = new_cert()
    jwt = assertion(emulator, b["client_id"], key, der)
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    text = check_aad_error(st, body, 401, "invalid_client", 700027)
    thumb = hashlib.sha1(der).hexdigest().upper()
    assert text.startswith("The certificate with identifier used to sign "
                           "the client assertion is not registered on "
                           "application. [Reason - The key was not found., "
                           "Thumbprint of key used by client: '%s'" % thumb)
    assert "configured keys for app Id '%s'" % b["client_id"] in text


def test_error_bad_signature_700027(emulator):
    b = emulator.apps["backup"]
    other, _ = new_cert()
    jwt = assertion(emulator, b["client_id"], other,
                    cert_der(b["cert_file"]))
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    text = check_aad_error(st, body, 401, "invalid_client", 700027)
    assert text.startswith("Client assertion contains an invalid signature.")


def test_error_no_thumbprint_50027(emulator):
    b = emulator.apps["backup"]
    jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                    cert_der(b["cert_file"]), thumbs=())
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    text = check_aad_error(st, body, 401, "invalid_client", 50027)
    assert "No certificate thumbprint specified in token header" in text


def test_error_subject_mismatch_50048(emulator):
    b = emulator.apps["backup"]
    jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                    cert_der(b["cert_file"]), sub="someone-else")
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    text = check_aad_error(st, body, 401, "invalid_client", 50048)
    assert text.startswith("Subject mismatches Issuer claim in the client "
                           "assertion.")


@pytest.mark.parametrize("shift", [3600, -3600])
def test_error_clock_skew_700024(emulator, shift):
    b = emulator.apps["backup"]
    now = int(time.time()) + shift
    jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                    cert_der(b["cert_file"]), nbf=now, exp=now + 600)
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    text = check_aad_error(st, body, 401, "invalid_client", 700024)
    exp = datetime.datetime.fromtimestamp(now + 600, datetime.timezone.utc)
    assert re.match(r"Client assertion is not within its valid time range. "
                    r"Current time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z, "
                    r"assertion valid from .*, expiry time of assertion "
                    + re.escape(exp.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")),
                    text), text


def test_within_skew_accepted(emulator):
    b = emulator.apps["backup"]
    now = int(time.time()) + 200  # inside the 5 minute tolerance
    jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                    cert_der(b["cert_file"]), nbf=now, exp=now + 600)
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(b["client_id"], jwt))
    assert st == 200, body


def test_server_clock_skew_knob(emulator):
    b = emulator.apps["backup"]
    knobs(emulator, clock_skew=-3600)
    try:
        jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                        cert_der(b["cert_file"]))
        st, _, body = post_form(emulator, token_url(emulator),
                                cert_form(b["client_id"], jwt))
        check_aad_error(st, body, 401, "invalid_client", 700024)
    finally:
        knobs(emulator, clock_skew=0)


def test_error_jti_replay(emulator):
    b = emulator.apps["backup"]
    jwt = assertion(emulator, b["client_id"], load_key(b["key_file"]),
                    cert_der(b["cert_file"]))
    form = cert_form(b["client_id"], jwt)
    st, _, body = post_form(emulator, token_url(emulator), form)
    assert st == 200, body
    st, _, body = post_form(emulator, token_url(emulator), form)
    text = check_aad_error(st, body, 401, "invalid_client", 50027)
    assert "already been used" in text


# ------------------------------------------------------- Graph 401 / 403
def test_graph_rejects_bad_tokens(emulator):
    tok = emulator.token()
    head, payload, sig = tok.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "==="))
    forged["roles"] = ["Application.ReadWrite.All"]
    bad = head + "." + b64u(json.dumps(forged).encode()) + "." + sig
    for t in (bad, tok[:-4] + "AAAA", "not-a-jwt"):
        st, _, body = emulator.request("GET", "/applications", auth=t)
        assert st == 401, body
        assert json.loads(body)["error"]["code"] == \
            "InvalidAuthenticationToken"


def test_expired_token_is_401(emulator):
    knobs(emulator, token_lifetime=1)
    try:
        tok = emulator.token(refresh=True)
        assert claims_of(tok)["exp"] - claims_of(tok)["iat"] == 1
        time.sleep(2.1)
        st, _, body = emulator.request("GET", "/users/%s/mailFolders" %
                                       emulator.admin_user, auth=tok)
        assert st == 401
        err = json.loads(body)["error"]
        assert err["code"] == "InvalidAuthenticationToken"
        assert err["message"] == \
            "Access token has expired or is not yet valid."
    finally:
        knobs(emulator, token_lifetime=3599)
        emulator.token(refresh=True)


def test_no_consent_token_has_no_roles_and_graph_403(emulator):
    app = add_app(emulator, displayName="no consent", cert=False, roles=[])
    st, _, body = post_form(emulator, token_url(emulator),
                            secret_form(app["client_id"], app["secret"]))
    assert st == 200, body
    tok = body["access_token"]
    assert "roles" not in claims_of(tok)
    for path, code, msg in [
            ("/users/%s/mailFolders" % emulator.admin_user,
             "ErrorAccessDenied",
             "Access is denied. Check credentials and try again."),
            ("/applications", "Authorization_RequestDenied",
             "Insufficient privileges to complete the operation."),
            ("/sites/root", "accessDenied",
             "Either scp or roles claim need to be present in the token.")]:
        st, _, body = emulator.request("GET", path, auth=tok)
        assert st == 403, (path, body)
        err = json.loads(body)["error"]
        assert (err["code"], err["message"]) == (code, msg)


def test_revoked_consent_removes_roles(emulator):
    app = add_app(emulator, displayName="revoked", cert=False,
                  roles=["Mail.Read", "Sites.Read.All"])
    form = secret_form(app["client_id"], app["secret"])
    st, _, body = post_form(emulator, token_url(emulator), form)
    assert sorted(claims_of(body["access_token"])["roles"]) == [
        "Mail.Read", "Sites.Read.All"]
    r = emulator.control("POST", "/entra/revoke_consent",
                         {"client_id": app["client_id"]})
    assert r["removed"] == 2
    st, _, body = post_form(emulator, token_url(emulator), form)
    assert st == 200 and "roles" not in claims_of(body["access_token"])


# -------------------------------------------------------------- device code
def device_start(emu, scope, tenant="organizations"):
    cid = emu.apps["admin_public_client"]["client_id"]
    st, _, body = post_form(
        emu, "%s/%s/oauth2/v2.0/devicecode" % (emu.login_url, tenant),
        {"client_id": cid, "scope": scope})
    assert st == 200, body
    return cid, body


def device_poll(emu, cid, code, tenant="organizations"):
    return post_form(emu, token_url(emu, tenant), {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": cid, "device_code": code})


ADMIN_SCOPES = ("https://graph.microsoft.com/Application.ReadWrite.All "
                "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All"
                " offline_access openid profile")


def test_device_code_flow_with_approval(emulator):
    knobs(emulator, device_pending_polls=None)
    cid, dc = device_start(emulator, ADMIN_SCOPES)
    assert set(dc) == {"device_code", "user_code", "verification_uri",
                       "expires_in", "interval", "message"}
    assert dc["verification_uri"].startswith(emulator.login_url)
    assert isinstance(dc["expires_in"], int) and dc["expires_in"] == 900
    assert isinstance(dc["interval"], int)
    assert dc["user_code"] in dc["message"]
    assert dc["verification_uri"] in dc["message"]
    for _ in range(3):
        st, _, body = device_poll(emulator, cid, dc["device_code"])
        check_aad_error(st, body, 400, "authorization_pending", 70016)
    r = emulator.control("POST", "/device/approve",
                         {"user_code": dc["user_code"]})
    assert r["ok"] is True
    st, _, body = device_poll(emulator, cid, dc["device_code"])
    assert st == 200, body
    assert set(body) >= set(sample("devicecode-token-success.json"))
    c = claims_of(body["access_token"])
    assert "Application.ReadWrite.All" in c["scp"].split()
    assert "AppRoleAssignment.ReadWrite.All" in c["scp"].split()
    assert "roles" not in c
    assert c["upn"] == emulator.admin_user
    idc = claims_of(body["id_token"])
    assert idc["aud"] == cid and idc["preferred_username"] == \
        emulator.admin_user
    # the code is single use
    st, _, body2 = device_poll(emulator, cid, dc["device_code"])
    assert st == 400 and body2["error"] == "invalid_grant"
    # refresh token grant
    st, _, body3 = post_form(emulator, token_url(emulator, "organizations"), {
        "grant_type": "refresh_token", "client_id": cid,
        "refresh_token": body["refresh_token"],
        "scope": ADMIN_SCOPES})
    assert st == 200, body3
    assert claims_of(body3["access_token"])["oid"] == c["oid"]
    st, _, body4 = post_form(emulator, token_url(emulator), {
        "grant_type": "refresh_token", "client_id": cid,
        "refresh_token": "bogus"})
    check_aad_error(st, body4, 400, "invalid_grant", 9002313)


def test_device_code_auto_approve_after_n_polls(emulator):
    knobs(emulator, device_pending_polls=2)
    cid, dc = device_start(emulator, "Application.ReadWrite.All",
                           emulator.tenant_id)
    for _ in range(2):
        st, _, body = device_poll(emulator, cid, dc["device_code"])
        assert body["error"] == "authorization_pending"
    st, _, body = device_poll(emulator, cid, dc["device_code"])
    assert st == 200, body
    assert "refresh_token" not in body  # offline_access not asked
    assert "id_token" not in body


def test_device_code_declined_slow_down_bad_and_expired(emulator):
    knobs(emulator, device_pending_polls=None, device_slow_down=1)
    try:
        cid, dc = device_start(emulator, ADMIN_SCOPES)
        st, _, body = device_poll(emulator, cid, dc["device_code"])
        assert st == 400 and body["error"] == "slow_down", body
        emulator.control("POST", "/device/approve",
                         {"user_code": dc["user_code"], "deny": True})
        st, _, body = device_poll(emulator, cid, dc["device_code"])
        check_aad_error(st, body, 400, "authorization_declined", 70000)
        st, _, body = device_poll(emulator, cid, "nonsense")
        check_aad_error(st, body, 400, "bad_verification_code", 70018)
        knobs(emulator, device_slow_down=0, device_code_lifetime=1)
        cid, dc = device_start(emulator, ADMIN_SCOPES)
        assert dc["expires_in"] == 1
        time.sleep(1.2)
        st, _, body = device_poll(emulator, cid, dc["device_code"])
        check_aad_error(st, body, 400, "expired_token", 70019)
    finally:
        knobs(emulator, device_slow_down=0, device_code_lifetime=900,
              device_pending_polls=2)


def test_device_code_needs_public_client(emulator):
    b, _ = backup(emulator)
    st, _, body = post_form(
        emulator, "%s/organizations/oauth2/v2.0/devicecode" %
        emulator.login_url, {"client_id": b["client_id"],
                             "scope": "User.Read"})
    check_aad_error(st, body, 400, "invalid_client", 7000218)


# -------------------------------------------------------- app registration
def graph(emu, method, path, tok, body=None):
    st, hdrs, data = emu.request(method, path, body=body, auth=tok)
    return st, (json.loads(data) if data else None)


def test_app_registration_end_to_end(emulator):
    knobs(emulator, device_pending_polls=0)
    cid, dc = device_start(emulator, ADMIN_SCOPES)
    st, _, body = device_poll(emulator, cid, dc["device_code"])
    assert st == 200, body
    tok = body["access_token"]
    key, der = new_cert()
    # 1. application
    st, app = graph(emulator, "POST", "/applications", tok, {
        "displayName": "M365 Backup", "signInAudience": "AzureADMyOrg",
        "requiredResourceAccess": [{
            "resourceAppId": "00000003-0000-0000-c000-000000000000",
            "resourceAccess": [{"id": SITES_READ, "type": "Role"},
                               {"id": MAIL_READ, "type": "Role"}]}]})
    assert st == 201, app
    assert set(app) >= set(sample("application-create-response.json"))
    assert app["signInAudience"] == "AzureADMyOrg"
    app_id, oid = app["appId"], app["id"]
    st, lst = graph(emulator, "GET", "/applications?$filter=" +
                    urllib.parse.quote("appId eq '%s'" % app_id), tok)
    assert st == 200 and [a["id"] for a in lst["value"]] == [oid]
    st, lst = graph(emulator, "GET", "/applications?$filter=" +
                    urllib.parse.quote("displayName eq 'M365 Backup'"), tok)
    assert oid in [a["id"] for a in lst["value"]]
    # 2. certificate (PATCH keyCredentials) and a secret
    req = sample("application-add-certificate-request.json")
    kc = dict(req["keyCredentials"][0], key=base64.b64encode(der).decode(),
              customKeyIdentifier=hashlib.sha1(der).hexdigest().upper())
    del kc["startDateTime"], kc["endDateTime"]  # sample's are long past
    st, none = graph(emulator, "PATCH", "/applications/" + oid, tok,
                     {"keyCredentials": [kc]})
    assert st == 204
    st, got = graph(emulator, "GET", "/applications/" + oid, tok)
    k = got["keyCredentials"][0]
    assert k["key"] is None
    assert base64.b64decode(k["customKeyIdentifier"]) == \
        hashlib.sha1(der).digest()
    assert k["type"] == "AsymmetricX509Cert" and k["usage"] == "Verify"
    assert re.fullmatch(GUID, k["keyId"])
    st, pw = graph(emulator, "POST", "/applications/%s/addPassword" % oid,
                   tok, {"passwordCredential": {"displayName": "m365fs"}})
    assert st == 200, pw
    assert pw["secretText"] and pw["hint"] == pw["secretText"][:3]
    st, got = graph(emulator, "GET", "/applications/" + oid, tok)
    assert got["passwordCredentials"][0]["secretText"] is None
    # no service principal yet: tokens fail
    form = secret_form(app_id, pw["secretText"])
    st, _, body = post_form(emulator, token_url(emulator), form)
    check_aad_error(st, body, 401, "invalid_client", 7000229)
    # 3. service principal
    st, sp = graph(emulator, "POST", "/servicePrincipals", tok,
                   {"appId": app_id})
    assert st == 201, sp
    assert set(sp) >= set(sample("serviceprincipal-create-response.json"))
    assert sp["appId"] == app_id
    st, dup = graph(emulator, "POST", "/servicePrincipals", tok,
                    {"appId": app_id})
    assert st == 409
    st, gsp = graph(emulator, "GET", "/servicePrincipals?$filter=" +
                    urllib.parse.quote("appId eq '00000003-0000-0000-c000-"
                                       "000000000000'") +
                    "&$select=id,appRoles", tok)
    assert st == 200 and len(gsp["value"]) == 1
    graph_sp = gsp["value"][0]
    roles = {r["value"]: r["id"] for r in graph_sp["appRoles"]}
    assert roles["Sites.Read.All"] == SITES_READ
    assert roles["Mail.Read"] == MAIL_READ
    assert roles["Files.Read.All"] == "01d4889c-1287-42c6-ac1f-5d1e02578ef6"
    assert set(graph_sp) == {"id", "appRoles"}
    # token without consent: no roles
    st, _, body = post_form(emulator, token_url(emulator), form)
    assert st == 200 and "roles" not in claims_of(body["access_token"])
    # 4. admin consent
    for rid in (SITES_READ, MAIL_READ):
        st, a = graph(emulator, "POST", "/servicePrincipals/%s/"
                      "appRoleAssignedTo" % graph_sp["id"], tok,
                      {"principalId": sp["id"], "resourceId": graph_sp["id"],
                       "appRoleId": rid})
        assert st == 201, a
        assert set(a) >= set(sample("approleassignedto-response.json"))
        assert a["principalType"] == "ServicePrincipal"
        assert a["resourceDisplayName"] == "Microsoft Graph"
    st, err = graph(emulator, "POST", "/servicePrincipals/%s/"
                    "appRoleAssignedTo" % graph_sp["id"], tok,
                    {"principalId": sp["id"], "resourceId": graph_sp["id"],
                     "appRoleId": SITES_READ})
    assert st == 400
    assert err["error"]["message"] == \
        "Permission being assigned already exists on the object"
    st, lst = graph(emulator, "GET", "/servicePrincipals/%s/"
                    "appRoleAssignments" % sp["id"], tok)
    assert sorted(a["appRoleId"] for a in lst["value"]) == sorted(
        [SITES_READ, MAIL_READ])
    st, lst = graph(emulator, "GET", "/servicePrincipals/%s/"
                    "appRoleAssignedTo" % graph_sp["id"], tok)
    assert {a["principalId"] for a in lst["value"]} >= {sp["id"]}
    # 5. tokens now carry the roles, by secret and by certificate
    st, _, body = post_form(emulator, token_url(emulator), form)
    assert sorted(claims_of(body["access_token"])["roles"]) == [
        "Mail.Read", "Sites.Read.All"]
    jwt = assertion(emulator, app_id, key, der)
    st, _, body = post_form(emulator, token_url(emulator),
                            cert_form(app_id, jwt))
    assert st == 200, body
    app_tok = body["access_token"]
    st, _, data = emulator.request("GET", "/users/%s/mailFolders" %
                                   emulator.admin_user, auth=app_tok)
    assert st == 200, data
    # the app token cannot register apps
    st, err = graph(emulator, "POST", "/applications", app_tok,
                    {"displayName": "x"})
    assert st == 403
    assert err["error"]["code"] == "Authorization_RequestDenied"


def test_propagation_delay(emulator):
    knobs(emulator, propagation_delay=30)
    try:
        tok = delegated(emulator)
        st, app = graph(emulator, "POST", "/applications", tok,
                        {"displayName": "fresh"})
        assert st == 201
        st, pw = graph(emulator, "POST", "/applications/%s/addPassword" %
                       app["id"], tok, {"passwordCredential": {}})
        graph(emulator, "POST", "/servicePrincipals", tok,
              {"appId": app["appId"]})
        form = secret_form(app["appId"], pw["secretText"])
        st, _, body = post_form(emulator, token_url(emulator), form)
        check_aad_error(st, body, 400, "unauthorized_client", 700016)
        knobs(emulator, propagation_delay=0)
        st, _, body = post_form(emulator, token_url(emulator), form)
        assert st == 200, body
    finally:
        knobs(emulator, propagation_delay=0)


def test_registration_needs_admin_scopes(emulator):
    tok = delegated(emulator, scp="User.Read")
    st, err = graph(emulator, "POST", "/applications", tok,
                    {"displayName": "nope"})
    assert st == 403
    assert err["error"]["code"] == "Authorization_RequestDenied"
    st, err = graph(emulator, "GET", "/applications/" + str(uuid.uuid4()),
                    delegated(emulator))
    assert st == 404 and err["error"]["code"] == "Request_ResourceNotFound"


def test_filter_with_and(emulator):
    tok = delegated(emulator)
    b = emulator.apps["backup"]
    f = "appId eq '%s' and displayName eq 'm365fs backup'" % b["client_id"]
    st, lst = graph(emulator, "GET", "/applications?$filter=" +
                    urllib.parse.quote(f), tok)
    assert st == 200 and [a["appId"] for a in lst["value"]] == \
        [b["client_id"]]
    f = "appId eq '%s' and displayName eq 'other'" % b["client_id"]
    st, lst = graph(emulator, "GET", "/applications?$filter=" +
                    urllib.parse.quote(f), tok)
    assert st == 200 and lst["value"] == []
    st, err = graph(emulator, "GET", "/applications?$filter=" +
                    urllib.parse.quote("startswith(displayName,'m')"), tok)
    assert st == 400
