"""Entra ID side of the emulator: token endpoint, device code flow, app
registration through Graph (applications, servicePrincipals,
appRoleAssignedTo) and the access tokens every Graph route checks.

State lives in the module-level DIR (one per process), created by setup()
and guarded by core.EMU.lock. Behaviour and error texts follow
/work/shared/GRAPH-API.md sections 1 and 2; see tests/emulator/README.md.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import time
import urllib.parse
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

try:
    from . import core
except ImportError:  # run as a script from tests/emulator
    import core

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCES = ("https://graph.microsoft.com", GRAPH_APP_ID)
GRAPH_AUD = "https://graph.microsoft.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SKEW = 300  # seconds of clock skew tolerated on client assertions

# (value, application role id, delegated scope id) from GRAPH-API.md section 2
PERMISSIONS = [
    ("Sites.Read.All", "332a536c-c7ef-4017-ab91-336970924f0d", None),
    ("Sites.ReadWrite.All", "9492366f-7969-46a4-8d15-ed1a20078fff", None),
    ("Sites.FullControl.All", "a82116e5-55eb-4c41-a434-62fe8a61c773",
     "5a54b8b3-347c-476d-8f8e-42d5c7424d29"),
    ("Sites.Manage.All", "0c0bf378-bf22-4481-8f81-9e89a9b4960a",
     "65e50fdc-43b7-4915-933e-e8138f11f40a"),
    ("Sites.Selected", "883ea226-0bf2-4a8f-9f9d-92c9162a727d", None),
    ("Files.Read.All", "01d4889c-1287-42c6-ac1f-5d1e02578ef6", None),
    ("Files.ReadWrite.All", "75359482-378d-4052-8f01-80520e7db3cd", None),
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214", None),
    ("Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b", None),
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61", None),
    ("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
     "570282fd-fa5c-430d-a7fd-fc8dc98a9dca"),
    ("Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
     "024d486e-b451-40bb-833d-3e66d98c5c73"),
    ("MailboxSettings.Read", "40f97065-369a-49f4-947c-6a255697ae91",
     "87f447af-9fa4-4c32-9dfa-4a57a73d18ce"),
    ("MailboxSettings.ReadWrite", "6931bccd-447a-43d1-b442-00a195474933",
     "818c620a-27a9-40bd-a6a5-d96f7d610b4b"),
    ("Application.ReadWrite.All", "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
     None),
    ("AppRoleAssignment.ReadWrite.All",
     "06b708a9-e830-4db3-a914-8e69da51d44f", None),
]
# roles granted to the pre-registered "backup" app (admin consent done)
BACKUP_ROLES = ["Sites.Read.All", "Sites.ReadWrite.All", "Files.Read.All",
                "Files.ReadWrite.All", "User.Read.All", "Group.Read.All",
                "Directory.Read.All", "Mail.Read", "Mail.ReadWrite",
                "MailboxSettings.Read", "MailboxSettings.ReadWrite"]
# delegated scopes a device-code sign-in may ask for on Graph
DELEGATED_OK = {"Application.ReadWrite.All", "Application.Read.All",
                "AppRoleAssignment.ReadWrite.All", "Directory.Read.All",
                "Directory.ReadWrite.All", "User.Read", "User.Read.All",
                "Mail.Read", "Mail.ReadWrite", "Sites.Read.All",
                "Files.Read.All"}
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}

DIR = None  # the Directory, set by setup()


# ---------------------------------------------------------------- helpers
def tget(obj, *names, default=None):
    """First present attribute or key of obj among names."""
    for n in names:
        if isinstance(obj, dict):
            if n in obj and obj[n] is not None:
                return obj[n]
        elif getattr(obj, n, None) is not None:
            return getattr(obj, n)
    return default


def tenant_users(tenant):
    """The tenant's users as a list (dicts or objects)."""
    us = tget(tenant, "users", default=[])
    if isinstance(us, dict):
        us = list(us.values())
    return list(us)


def user_upn(u):
    return tget(u, "userPrincipalName", "upn", default="")


def user_id(u):
    return tget(u, "id", "oid", default="")


def user_name(u):
    return tget(u, "displayName", "display_name", default=user_upn(u))


def find_user(tenant, key):
    """User by object id or UPN (case-insensitive), or None."""
    k = key.lower()
    for u in tenant_users(tenant):
        if str(user_id(u)).lower() == k or user_upn(u).lower() == k:
            return u
    return None


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


iso = core.iso


def iso7(t):
    """Entra time text with 7 fraction digits, as in AADSTS700024."""
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%07dZ" % (d.microsecond * 10)


def parse_time(s):
    """Epoch time for an ISO 8601 text (Z or offset), or None."""
    if not s or not isinstance(s, str):
        return None
    try:
        return core.parse_iso(s)
    except ValueError:
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z?$", s)
        return core.parse_iso(m.group(1)) if m else None


def now():
    return core.EMU.now()


def knob(name, default=None):
    v = core.EMU.knobs.get(name)
    return default if v is None else v


def public(obj):
    """Copy of a stored object without the private '_' keys."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def write_secret_file(path, data):
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


def new_secret():
    """A client secret in the shape Entra issues (40 chars with '~')."""
    alpha = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
             "0123456789_.~-")
    head = "".join(secrets.choice(alpha[:62]) for _ in range(3))
    tail = "".join(secrets.choice(alpha) for _ in range(34))
    return head + "8Q~" + tail


def secret_hash(s):
    return hashlib.sha256(s.encode()).hexdigest()


def make_cert(cn, days=365):
    """(cert PEM, key PEM) of a new RSA-2048 self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(days=1))
            .not_valid_after(t + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


# ------------------------------------------------------------- directory
class Directory:
    """Applications, service principals, role assignments, device codes,
    refresh tokens and the token signing key of one tenant."""

    def __init__(self, tenant, state_dir):
        self.tenant = tenant
        self.state_dir = state_dir
        self.tid = str(tget(tenant, "tenant_id", "id", "tid"))
        self.domain = tget(tenant, "tenant_domain", "domain",
                           default="contoso.onmicrosoft.com")
        doms = tget(tenant, "domains", "verified_domains", default=[])
        self.domains = {d.lower() for d in doms if isinstance(d, str)}
        self.domains.add(self.domain.lower())
        self.display_name = tget(tenant, "display_name", "displayName",
                                 "name", default="Contoso")
        org = tget(tenant, "organization")
        if org is not None:
            self.display_name = tget(org, "displayName",
                                     default=self.display_name)
        self.apps = {}  # object id -> application
        self.sps = {}  # object id -> service principal
        self.assignments = {}  # id -> appRoleAssignment
        self.devices = {}  # device_code -> state
        self.refresh = {}  # refresh_token -> grant
        self.jtis = {}  # (client_id, jti) -> expiry
        self.key, self.kid = self._signing_key()
        self.pub = self.key.public_key()

    def uid(self, name):
        return str(uuid.uuid5(uuid.UUID(self.tid) if _is_guid(self.tid)
                              else uuid.NAMESPACE_DNS, name))

    def _signing_key(self):
        path = os.path.join(self.state_dir, "token-signing.key")
        if os.path.exists(path):
            with open(path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
        else:
            key = rsa.generate_private_key(public_exponent=65537,
                                           key_size=2048)
            write_secret_file(path, key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
        der = key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        return key, b64u(hashlib.sha1(der).digest())

    # -- lookups
    def app_by_appid(self, app_id):
        for a in self.apps.values():
            if a["appId"].lower() == str(app_id).lower():
                return a
        return None

    def sp_by_appid(self, app_id):
        for s in self.sps.values():
            if s["appId"].lower() == str(app_id).lower():
                return s
        return None

    def graph_sp(self):
        return self.sp_by_appid(GRAPH_APP_ID)

    def roles_of(self, sp):
        """Granted Graph application role values of a service principal."""
        g = self.graph_sp()
        byid = {r["id"]: r["value"] for r in g["appRoles"]}
        out = []
        for a in self.assignments.values():
            if (a["principalId"] == sp["id"] and a["resourceId"] == g["id"]
                    and a["appRoleId"] in byid):
                out.append(byid[a["appRoleId"]])
        return sorted(set(out))

    # -- creation
    def add_app(self, display_name, app_id=None, object_id=None, body=None,
                created=None):
        body = body or {}
        app_id = app_id or str(uuid.uuid4())
        oid = object_id or str(uuid.uuid4())
        t = now()
        app = {
            "id": oid, "deletedDateTime": None,
            "isFallbackPublicClient": body.get("isFallbackPublicClient"),
            "appId": app_id, "applicationTemplateId": None,
            "identifierUris": body.get("identifierUris", []),
            "createdDateTime": iso(t), "displayName": display_name,
            "isDeviceOnlyAuthSupported": None, "groupMembershipClaims": None,
            "optionalClaims": None, "addIns": [],
            "publisherDomain": self.domain,
            "signInAudience": body.get("signInAudience",
                                       "AzureADandPersonalMicrosoftAccount"),
            "tags": body.get("tags", []), "tokenEncryptionKeyId": None,
            "api": {"requestedAccessTokenVersion": 2,
                    "acceptMappedClaims": None,
                    "knownClientApplications": [],
                    "oauth2PermissionScopes": [],
                    "preAuthorizedApplications": []},
            "appRoles": body.get("appRoles", []),
            "publicClient": body.get("publicClient", {"redirectUris": []}),
            "info": {"termsOfServiceUrl": None, "supportUrl": None,
                     "privacyStatementUrl": None, "marketingUrl": None,
                     "logoUrl": None},
            "keyCredentials": [],
            "parentalControlSettings": {"countriesBlockedForMinors": [],
                                        "legalAgeGroupRule": "Allow"},
            "passwordCredentials": [],
            "requiredResourceAccess": body.get("requiredResourceAccess", []),
            "web": body.get("web", {
                "redirectUris": [], "homePageUrl": None, "logoutUrl": None,
                "implicitGrantSettings": {"enableIdTokenIssuance": False,
                                          "enableAccessTokenIssuance": False}
            }),
            "_created": time.time() if created is None else created,
            "_secrets": [],
        }
        if body.get("keyCredentials"):
            app["keyCredentials"] = self.key_credentials(
                body["keyCredentials"], [])
        self.apps[oid] = app
        return app

    def add_password(self, app, display_name=None, end=None, secret=None):
        secret = secret or new_secret()
        t = now()
        end = end if end is not None else t + 2 * 365 * 86400
        cred = {"customKeyIdentifier": None, "displayName": display_name,
                "endDateTime": iso(end), "hint": secret[:3],
                "keyId": str(uuid.uuid4()), "secretText": None,
                "startDateTime": iso(t)}
        app["passwordCredentials"].append(cred)
        app["_secrets"].append({"keyId": cred["keyId"],
                                "hash": secret_hash(secret)})
        return cred, secret

    def key_credentials(self, entries, old):
        """Validated keyCredentials list for a create or PATCH; entries
        naming an existing keyId without 'key' keep that key."""
        oldby = {k["keyId"]: k for k in old}
        out = []
        for e in entries:
            if not isinstance(e, dict):
                raise _bad_key()
            if not e.get("key") and e.get("keyId") in oldby:
                out.append(oldby[e["keyId"]])
                continue
            try:
                der = base64.b64decode(e.get("key") or "", validate=True)
                cert = x509.load_der_x509_certificate(der)
            except Exception:
                raise _bad_key()
            sha1 = hashlib.sha1(der).digest()
            cki = e.get("customKeyIdentifier")
            if isinstance(cki, str) and re.fullmatch(r"[0-9A-Fa-f]{40}", cki):
                cki = base64.b64encode(bytes.fromhex(cki)).decode()
            elif not cki:
                cki = base64.b64encode(sha1).decode()
            start = e.get("startDateTime") or iso(
                cert.not_valid_before.replace(
                    tzinfo=datetime.timezone.utc).timestamp())
            end = e.get("endDateTime") or iso(
                cert.not_valid_after.replace(
                    tzinfo=datetime.timezone.utc).timestamp())
            out.append({
                "customKeyIdentifier": cki,
                "displayName": e.get("displayName") or
                cert.subject.rfc4514_string(),
                "endDateTime": end,
                "key": None,
                "keyId": e.get("keyId") or str(uuid.uuid4()),
                "startDateTime": start,
                "type": e.get("type", "AsymmetricX509Cert"),
                "usage": e.get("usage", "Verify"),
                "_sha1": sha1.hex().upper(),
                "_sha256": hashlib.sha256(der).hexdigest().upper(),
                "_pub": cert.public_key(),
            })
        return out

    def add_sp(self, app, display_name=None):
        oid = self.uid("sp:" + app["appId"]) if app.get("_wellknown") \
            else str(uuid.uuid4())
        sp = {
            "id": oid, "deletedDateTime": None, "accountEnabled": True,
            "appDisplayName": app["displayName"], "appId": app["appId"],
            "appOwnerOrganizationId": self.tid,
            "appRoleAssignmentRequired": False,
            "displayName": display_name or app["displayName"],
            "homepage": None, "logoutUrl": None,
            "publisherName": self.display_name, "replyUrls": [],
            "servicePrincipalNames": [app["appId"]], "tags": [],
            "addIns": [], "appRoles": list(app.get("appRoles", [])),
            "info": {"termsOfServiceUrl": None, "supportUrl": None,
                     "privacyStatementUrl": None, "marketingUrl": None,
                     "logoUrl": None},
            "keyCredentials": [],
            "oauth2PermissionScopes": list(app.get("_scopes", [])),
            "passwordCredentials": [],
            "servicePrincipalType": "Application",
        }
        self.sps[oid] = sp
        return sp

    def assign(self, principal, resource, role_id):
        raw = hashlib.sha256(
            (principal["id"] + resource["id"] + role_id).encode()).digest()
        aid = b64u(raw[:32])[:43]
        a = {"id": aid, "deletedDateTime": None, "appRoleId": role_id,
             "createdDateTime": iso(now()),
             "principalDisplayName": principal["displayName"],
             "principalId": principal["id"],
             "principalType": "ServicePrincipal",
             "resourceDisplayName": resource["displayName"],
             "resourceId": resource["id"]}
        self.assignments[aid] = a
        return a


def _is_guid(s):
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}"
                             r"[0-9a-fA-F]{12}", str(s)))


def _bad_key():
    return core.HTTPError(core.graph_error(
        400, "Request_BadRequest",
        "Invalid value specified for property 'key' of resource "
        "'KeyCredential'."))


def _graph_app():
    roles = [{"allowedMemberTypes": ["Application"],
              "description": "Allows the app to use %s without a signed-in "
                             "user." % v,
              "displayName": v, "id": rid, "isEnabled": True, "origin":
              "Application", "value": v} for v, rid, _ in PERMISSIONS]
    scopes = [{"adminConsentDescription": v, "adminConsentDisplayName": v,
               "id": sid, "isEnabled": True, "type": "Admin",
               "userConsentDescription": None,
               "userConsentDisplayName": None, "value": v}
              for v, _, sid in PERMISSIONS if sid]
    return roles, scopes


# ------------------------------------------------------------------ setup
def setup(tenant, state_dir):
    """Create the directory: Graph service principal, the pre-registered
    'backup' app (secret + certificate files in state_dir, 0600, admin
    consent for BACKUP_ROLES) and the admin public client. Returns the
    "apps" dict of the ready file."""
    global DIR
    d = Directory(tenant, state_dir)
    roles, scopes = _graph_app()
    g = d.add_app("Microsoft Graph", app_id=GRAPH_APP_ID,
                  object_id=d.uid("app:graph"), created=0,
                  body={"appRoles": roles})
    g["_wellknown"] = True
    g["_scopes"] = scopes
    gsp = d.add_sp(g)
    gsp["appOwnerOrganizationId"] = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
    gsp["publisherName"] = "Microsoft Services"
    gsp["servicePrincipalNames"] = [GRAPH_APP_ID,
                                    "https://graph.microsoft.com",
                                    "https://graph.microsoft.com/"]

    # admin public client for the device-code flow
    pc = d.add_app("m365fs admin (public client)",
                   app_id=d.uid("app:admin-public-client"),
                   object_id=d.uid("app:admin-public-client:obj"), created=0,
                   body={"isFallbackPublicClient": True,
                         "signInAudience": "AzureADMultipleOrgs"})
    pc["_wellknown"] = True
    d.add_sp(pc)

    # the pre-registered backup app
    sec_path = os.path.join(state_dir, "backup.secret")
    pem_path = os.path.join(state_dir, "backup.pem")
    key_path = os.path.join(state_dir, "backup.key")
    if os.path.exists(sec_path):
        with open(sec_path) as f:
            secret = f.read().strip()
    else:
        secret = new_secret()
        write_secret_file(sec_path, secret + "\n")
    if not (os.path.exists(pem_path) and os.path.exists(key_path)):
        cert_pem, key_pem = make_cert("m365fs-backup")
        write_secret_file(key_path, key_pem)
        write_secret_file(pem_path, cert_pem)
    with open(pem_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_bytes(serialization.Encoding.DER)
    b = d.add_app("m365fs backup", app_id=d.uid("app:backup"),
                  object_id=d.uid("app:backup:obj"), created=0,
                  body={"signInAudience": "AzureADMyOrg", "keyCredentials": [
                      {"type": "AsymmetricX509Cert", "usage": "Verify",
                       "key": base64.b64encode(der).decode(),
                       "keyId": d.uid("key:backup")}]})
    b["_wellknown"] = True
    d.add_password(b, "emulator", secret=secret)
    b["passwordCredentials"][0]["keyId"] = b["_secrets"][0]["keyId"] = \
        d.uid("secret:backup")
    b["requiredResourceAccess"] = [{
        "resourceAppId": GRAPH_APP_ID,
        "resourceAccess": [{"id": rid, "type": "Role"}
                           for v, rid, _ in PERMISSIONS if v in BACKUP_ROLES]}]
    bsp = d.add_sp(b)
    for v, rid, _ in PERMISSIONS:
        if v in BACKUP_ROLES:
            d.assign(bsp, gsp, rid)
    DIR = d
    return {"backup": {"client_id": b["appId"], "secret_file": sec_path,
                       "cert_file": pem_path, "key_file": key_path},
            "admin_public_client": {"client_id": pc["appId"]}}


def admin_user():
    """(object id, UPN, display name) of the tenant admin."""
    upn = tget(DIR.tenant, "admin_upn", default="admin@" + DIR.domain)
    for u in tenant_users(DIR.tenant):
        if user_upn(u).lower() == upn.lower():
            return (str(user_id(u)), user_upn(u), user_name(u))
    return (DIR.uid("user:admin"), upn, "MOD Administrator")


# ----------------------------------------------------------------- tokens
def _jwt(header, claims, key, alg="RS256"):
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    c = b64u(json.dumps(claims, separators=(",", ":")).encode())
    signing = (h + "." + c).encode()
    if alg == "PS256":
        sig = key.sign(signing, padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()),
            salt_length=hashes.SHA256.digest_size), hashes.SHA256())
    else:
        sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return h + "." + c + "." + b64u(sig)


def sign_jwt(claims, key, alg="RS256", header=None):
    """Signed JWT text (used by the tests to build client assertions)."""
    hdr = {"alg": alg, "typ": "JWT"}
    hdr.update(header or {})
    return _jwt(hdr, claims, key, alg)


def _verify_sig(pub, alg, signing, sig):
    try:
        if alg == "RS256":
            pub.verify(sig, signing, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            salt = getattr(padding.PSS, "AUTO", hashes.SHA256.digest_size)
            pub.verify(sig, signing, padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=salt),
                hashes.SHA256())
        else:
            return False
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def _split_jwt(tok):
    """(header, claims, signing input, signature) or None."""
    parts = tok.split(".")
    if len(parts) != 3:
        return None
    try:
        hdr = json.loads(b64u_dec(parts[0]))
        claims = json.loads(b64u_dec(parts[1]))
        sig = b64u_dec(parts[2])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(hdr, dict) or not isinstance(claims, dict):
        return None
    return hdr, claims, (parts[0] + "." + parts[1]).encode(), sig


def issue_access_token(app_id, oid, roles=None, scp=None, user=None):
    """(access token, lifetime) for Graph, signed by the emulator key."""
    life = int(knob("token_lifetime", 3599))
    t = int(now())
    claims = {"aud": GRAPH_AUD, "iss": "https://sts.windows.net/%s/" %
              DIR.tid, "iat": t, "nbf": t, "exp": t + life,
              "aio": b64u(os.urandom(24)), "app_displayname":
              _app_name(app_id), "appid": app_id, "appidacr": "1",
              "idp": "https://sts.windows.net/%s/" % DIR.tid,
              "idtyp": "user" if user else "app", "oid": oid,
              "rh": "0.emulator.", "sub": oid, "tid": DIR.tid,
              "uti": b64u(os.urandom(16)), "ver": "1.0"}
    if roles:
        claims["roles"] = list(roles)
    if scp:
        claims["scp"] = scp
    if user:
        claims["upn"] = user[1]
        claims["unique_name"] = user[1]
        claims["name"] = user[2]
    tok = _jwt({"typ": "JWT", "alg": "RS256", "x5t": DIR.kid,
                "kid": DIR.kid}, claims, DIR.key)
    return tok, life


def _app_name(app_id):
    a = DIR.app_by_appid(app_id)
    return a["displayName"] if a else None


def verify_access_token(token):
    """Claims of a Graph access token issued by this emulator, or None if
    the signature is bad, the token expired or is not yet valid, or the
    audience is not Graph."""
    if DIR is None or not token:
        return None
    p = _split_jwt(token)
    if p is None:
        return None
    hdr, claims, signing, sig = p
    if hdr.get("alg") != "RS256" or not _verify_sig(DIR.pub, "RS256",
                                                    signing, sig):
        return None
    if claims.get("aud") not in (GRAPH_AUD, GRAPH_AUD + "/", GRAPH_APP_ID):
        return None
    t = now()
    try:
        if float(claims["exp"]) <= t or float(claims["nbf"]) > t + 1:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    if claims.get("tid") != DIR.tid:
        return None
    return claims


# -------------------------------------------------------- token endpoint
def _aad(status, error, code, text):
    raise core.HTTPError(core.aad_error(status, error, [code], text))


def _form(req):
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError:
        text = req.body.decode("latin-1")
    return {k: v for k, v in urllib.parse.parse_qsl(
        text, keep_blank_values=True)}


_DNS = re.compile(r"(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
                  r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+")


def _check_tenant(t, allow_multi=False):
    """Validate the {tenant} path segment; raises the AADSTS error."""
    tl = t.lower()
    if allow_multi and tl in ("organizations", "common"):
        return
    if _is_guid(t):
        if tl == DIR.tid.lower():
            return
    elif tl in DIR.domains:
        return
    elif not _DNS.fullmatch(t):
        _aad(400, "invalid_request", 900023,
             "Specified tenant identifier '%s' is neither a valid DNS "
             "name, nor a valid external domain." % t)
    _aad(400, "invalid_request", 90002,
         "Tenant '%s' not found. Check to make sure you have the correct "
         "tenant ID and are signing into the correct cloud. Check with "
         "your subscription administrator, this may happen if there are "
         "no active subscriptions for the tenant." % t)


def _need(form, name):
    v = form.get(name)
    if not v:
        _aad(400, "invalid_request", 900144,
             "The request body must contain the following parameter: "
             "'%s'." % name)
    return v


def _find_client(client_id):
    """The application for a client_id, honouring the propagation delay."""
    app = DIR.app_by_appid(client_id)
    delay = float(knob("propagation_delay", 0) or 0)
    if app is None or time.time() - app["_created"] < delay:
        _aad(400, "unauthorized_client", 700016,
             "Application with identifier '%s' was not found in the "
             "directory '%s'. This can happen if the application has not "
             "been installed by the administrator of the tenant or "
             "consented to by any user in the tenant. You may have sent "
             "your authentication request to the wrong tenant."
             % (client_id, DIR.display_name))
    return app


def _check_scope_cc(scope):
    """Client-credentials scope: exactly one '<graph>/.default'."""
    parts = scope.split()
    if len(parts) != 1:
        _aad(400, "invalid_scope", 70011,
             "The provided value for the input parameter 'scope' is not "
             "valid. The scope %s is not valid." % scope)
    s = parts[0]
    if not s.endswith("/.default"):
        if "/" in s.replace("://", ""):
            _aad(400, "invalid_scope", 1002012,
                 "The provided value for scope %s is not valid. Client "
                 "credential flows must have a scope value with /.default "
                 "suffixed to the resource identifier (application ID URI)."
                 % s)
        _aad(400, "invalid_scope", 70011,
             "The provided value for the input parameter 'scope' is not "
             "valid. The scope %s is not valid." % s)
    res = s[:-len("/.default")]
    if res.rstrip("/").lower() not in GRAPH_RESOURCES:
        _aad(400, "invalid_resource", 500011,
             "The resource principal named %s was not found in the tenant "
             "named %s. This can happen if the application has not been "
             "installed by the administrator of the tenant or consented to "
             "by any user in the tenant. You might have sent your "
             "authentication request to the wrong tenant."
             % (res, DIR.display_name))


def _check_secret(app, client_id, secret):
    h = secret_hash(secret)
    t = now()
    for s in app["_secrets"]:
        if hmac.compare_digest(s["hash"], h):
            cred = next((c for c in app["passwordCredentials"]
                         if c["keyId"] == s["keyId"]), None)
            end = parse_time(cred["endDateTime"]) if cred else None
            if end is not None and end <= t:
                _aad(401, "invalid_client", 7000222,
                     "The provided client secret keys for app '%s' are "
                     "expired. Visit the Azure portal to create new keys "
                     "for your app: https://aka.ms/NewClientSecret, or "
                     "consider using certificate credentials for added "
                     "security: https://aka.ms/certCreds." % client_id)
            return
    _aad(401, "invalid_client", 7000215,
         "Invalid client secret provided. Ensure the secret being sent in "
         "the request is the client secret value, not the client secret "
         "ID, for a secret added to app '%s'." % client_id)


def _token_urls(req, tenant):
    out = set()
    hosts = {req.url("")}
    hdr_host = req.headers.get("host") or req.headers.get(":authority")
    if hdr_host:
        hosts.add("https://" + hdr_host)
    hosts.add("https://login.microsoftonline.com")
    tenants = {tenant, DIR.tid, DIR.domain}
    for h in hosts:
        for t in tenants:
            out.add("%s/%s/oauth2/v2.0/token" % (h.rstrip("/"), t))
            out.add("%s/%s/oauth2/token" % (h.rstrip("/"), t))
    return {u.lower() for u in out}


def _portal_text(client_id):
    return ("Please visit the Azure Portal, Graph Explorer or directly use "
            "MS Graph to see configured keys for app Id '%s'. Review the "
            "documentation at https://docs.microsoft.com/en-us/graph/"
            "deployments to determine the corresponding service endpoint "
            "and https://docs.microsoft.com/en-us/graph/api/application-get"
            "?view=graph-rest-1.0&tabs=http to build a query request URL, "
            "such as 'https://graph.microsoft.com/beta/applications/%s']"
            % (client_id, "{objectId}"))


def _check_assertion(req, tenant, app, client_id, assertion, atype):
    if atype != ASSERTION_TYPE:
        _aad(400, "invalid_request", 90014,
             "The request body must contain the following parameter: "
             "'client_assertion_type'." if not atype else
             "The client_assertion_type '%s' is not supported." % atype)
    p = _split_jwt(assertion)
    if p is None:
        _aad(401, "invalid_client", 50027,
             "JWT token is invalid or malformed.")
    hdr, claims, signing, sig = p
    x5t, x5t256 = hdr.get("x5t"), hdr.get("x5t#S256")
    if not x5t and not x5t256:
        _aad(401, "invalid_client", 50027,
             "Invalid JWT token. No certificate thumbprint specified in "
             "token header.")
    try:
        sha1 = b64u_dec(x5t).hex().upper() if x5t else None
        sha256 = b64u_dec(x5t256).hex().upper() if x5t256 else None
    except (ValueError, TypeError):
        _aad(401, "invalid_client", 50027,
             "Invalid JWT token. The certificate thumbprint in the token "
             "header is not valid base64url.")
    shown = sha1 or sha256
    key = None
    for k in app["keyCredentials"]:
        if k.get("type") != "AsymmetricX509Cert" or k.get("usage") != \
                "Verify":
            continue
        if (sha1 and k["_sha1"] == sha1) or (sha256 and
                                             k["_sha256"] == sha256):
            key = k
            break
    if key is None:
        _aad(401, "invalid_client", 700027,
             "The certificate with identifier used to sign the client "
             "assertion is not registered on application. [Reason - The "
             "key was not found., Thumbprint of key used by client: '%s', "
             % shown + _portal_text(client_id))
    alg = hdr.get("alg")
    if not _verify_sig(key["_pub"], alg, signing, sig):
        _aad(401, "invalid_client", 700027,
             "Client assertion contains an invalid signature. [Reason - "
             "The key was found but the signature could not be verified "
             "(alg '%s')., Thumbprint of key used by client: '%s', Found "
             "key 'Start=%s, End=%s', " % (alg, key["_sha1"],
                                           key["startDateTime"],
                                           key["endDateTime"])
             + _portal_text(client_id))
    t = now()
    kend = parse_time(key["endDateTime"])
    if kend is not None and kend <= t:
        _aad(401, "invalid_client", 700027,
             "Client assertion contains an invalid signature. [Reason - "
             "The key used is expired., Thumbprint of key used by client: "
             "'%s', Found key 'Start=%s, End=%s', "
             % (key["_sha1"], key["startDateTime"], key["endDateTime"])
             + _portal_text(client_id))
    iss, sub = claims.get("iss"), claims.get("sub")
    if sub != iss:
        _aad(401, "invalid_client", 50048,
             "Subject mismatches Issuer claim in the client assertion. "
             "Subject '%s'. Issuer '%s'." % (sub, iss))
    if str(iss).lower() != client_id.lower():
        _aad(401, "invalid_client", 700021,
             "Client assertion application identifier doesn't match "
             "'client_id' parameter. Review the documentation at "
             "https://learn.microsoft.com/entra/identity-platform/"
             "certificate-credentials")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    urls = _token_urls(req, tenant)
    if not any(isinstance(a, str) and a.lower() in urls for a in auds):
        _aad(401, "invalid_client", 700212,
             "No matching federated identity record found for presented "
             "assertion audience '%s'. Client assertion audience claim "
             "must be the token endpoint of this tenant." % aud)
    try:
        nbf = float(claims.get("nbf", 0))
        exp = float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        nbf, exp = float(claims.get("nbf", 0) or 0), 0.0
    if nbf > t + SKEW or exp < t - SKEW:
        _aad(401, "invalid_client", 700024,
             "Client assertion is not within its valid time range. Current "
             "time: %s, assertion valid from %s, expiry time of assertion "
             "%s. Review the documentation at https://learn.microsoft.com/"
             "entra/identity-platform/certificate-credentials"
             % (iso7(t), iso7(nbf), iso7(exp)))
    jti = claims.get("jti")
    if jti:
        for k in [k for k, e in DIR.jtis.items() if e < t - SKEW]:
            del DIR.jtis[k]
        if (client_id.lower(), jti) in DIR.jtis:
            _aad(401, "invalid_client", 50027,
                 "JWT token is invalid or malformed. The client assertion "
                 "'jti' claim '%s' has already been used." % jti)
        DIR.jtis[(client_id.lower(), jti)] = exp


def _token_ok(tok, life, extra=None):
    body = {"token_type": "Bearer", "expires_in": life,
            "ext_expires_in": life, "access_token": tok}
    body.update(extra or {})
    return core.Response.json(200, body, {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def _basic_auth(req):
    h = req.headers.get("authorization", "")
    if not h.lower().startswith("basic "):
        return None, None
    try:
        raw = base64.b64decode(h[6:].strip(), validate=True).decode()
        cid, _, sec = raw.partition(":")
        return urllib.parse.unquote(cid), urllib.parse.unquote(sec)
    except (ValueError, UnicodeDecodeError):
        _aad(401, "invalid_client", 7000215,
             "Invalid client secret provided. The HTTP Basic credentials "
             "could not be decoded.")


def _client_credentials(req, tenant, form):
    _check_tenant(tenant)
    bid, bsecret = _basic_auth(req)
    client_id = form.get("client_id") or bid
    if not client_id:
        _need(form, "client_id")
    app = _find_client(client_id)
    _check_scope_cc(_need(form, "scope"))
    secret = form.get("client_secret") or bsecret
    assertion = form.get("client_assertion")
    if not secret and not assertion:
        _aad(400, "invalid_request", 7000218,
             "The request body must contain the following parameter: "
             "'client_assertion' or 'client_secret'.")
    if assertion:
        _check_assertion(req, tenant, app, client_id, assertion,
                         form.get("client_assertion_type"))
    else:
        _check_secret(app, client_id, secret)
    sp = DIR.sp_by_appid(client_id)
    if sp is None:
        _aad(401, "invalid_client", 7000229,
             "The client application %s is missing service principal in "
             "the tenant %s. See instructions here: https://go.microsoft."
             "com/fwlink/?linkid=2225119" % (client_id, DIR.tid))
    tok, life = issue_access_token(app["appId"], sp["id"],
                                   roles=DIR.roles_of(sp))
    return _token_ok(tok, life)


def _graph_scopes(scope):
    """(graph scope names, oidc scope names) of a delegated request."""
    graph, oidc = [], []
    for s in scope.split():
        low = s.lower()
        if low in OIDC_SCOPES:
            oidc.append(low)
            continue
        name = s
        for r in ("https://graph.microsoft.com/", GRAPH_APP_ID + "/"):
            if low.startswith(r):
                name = s[len(r):]
        if name == ".default":
            name = "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All"
        if "/" in name or "://" in name:
            _aad(400, "invalid_scope", 70011,
                 "The provided value for the input parameter 'scope' is not "
                 "valid. The scope %s is not valid." % s)
        graph.extend(name.split())
    return graph, oidc


def _delegated_response(client_id, grant):
    oid, upn, name = grant["user"]
    scp = " ".join(grant["scopes"])
    tok, life = issue_access_token(client_id, oid, scp=scp,
                                   user=grant["user"])
    extra = {"scope": " ".join(grant["scopes"] + [
        s for s in grant["oidc"] if s != "offline_access"])}
    if "offline_access" in grant["oidc"]:
        rt = "0.AR" + b64u(os.urandom(48))
        DIR.refresh[rt] = dict(grant, client_id=client_id)
        extra["refresh_token"] = rt
    if "openid" in grant["oidc"]:
        t = int(now())
        extra["id_token"] = _jwt(
            {"typ": "JWT", "alg": "RS256", "kid": DIR.kid},
            {"aud": client_id, "iss": "https://login.microsoftonline.com/"
             "%s/v2.0" % DIR.tid, "iat": t, "nbf": t, "exp": t + 3600,
             "name": name, "oid": oid, "preferred_username": upn,
             "sub": b64u(hashlib.sha256(oid.encode()).digest()[:24]),
             "tid": DIR.tid, "ver": "2.0"}, DIR.key)
    return _token_ok(tok, life, extra)


def _device_grant(tenant, form):
    _check_tenant(tenant, allow_multi=True)
    client_id = _need(form, "client_id")
    code = _need(form, "device_code")
    _find_client(client_id)
    st = DIR.devices.get(code)
    if st is None or st["client_id"].lower() != client_id.lower():
        _aad(400, "bad_verification_code", 70018,
             "Invalid verification code entered.")
    t = now()
    if st["state"] == "redeemed":
        _aad(400, "invalid_grant", 54005,
             "OAuth2 Authorization code was already redeemed, please retry "
             "with a new valid code or use an existing refresh token.")
    if t >= st["expires"]:
        _aad(400, "expired_token", 70019, "Verification code expired.")
    if st["state"] == "declined":
        _aad(400, "authorization_declined", 70000,
             "The end user denied the authorization request.")
    st["polls"] += 1
    slow = int(knob("device_slow_down", 0) or 0)
    if st["polls"] <= slow:
        _aad(400, "slow_down", 70016,
             "OAuth 2.0 device flow error. Polling too fast; wait "
             "'interval' plus 5 seconds between requests.")
    if st["state"] == "pending":
        n = knob("device_pending_polls")
        if n is not None and st["polls"] - slow > int(n):
            st["state"] = "approved"
            st["user"] = admin_user()
    if st["state"] == "pending":
        _aad(400, "authorization_pending", 70016,
             "OAuth 2.0 device flow error. Authorization is pending. "
             "Continue polling.")
    st["state"] = "redeemed"
    return _delegated_response(client_id, {
        "user": st["user"], "scopes": st["scopes"], "oidc": st["oidc"]})


def _refresh_grant(tenant, form):
    _check_tenant(tenant, allow_multi=True)
    client_id = _need(form, "client_id")
    rt = _need(form, "refresh_token")
    _find_client(client_id)
    g = DIR.refresh.get(rt)
    if g is None or g["client_id"].lower() != client_id.lower():
        _aad(400, "invalid_grant", 9002313,
             "Invalid request. Request is malformed or invalid.")
    grant = dict(g)
    if form.get("scope"):
        graph, oidc = _graph_scopes(form["scope"])
        if graph:
            grant["scopes"] = graph
        grant["oidc"] = sorted(set(oidc) | {"offline_access"})
    return _delegated_response(client_id, grant)


@core.route("graph", "POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
def token_endpoint(req, m):
    tenant = m.group("tenant")
    with core.EMU.lock:
        if DIR is None:
            _aad(503, "temporarily_unavailable", 90033,
                 "A transient error has occurred. Please try again.")
        form = _form(req)
        gt = form.get("grant_type")
        if not gt:
            _check_tenant(tenant, allow_multi=True)
            _need(form, "grant_type")
        if gt == "client_credentials":
            return _client_credentials(req, tenant, form)
        if gt == DEVICE_GRANT:
            return _device_grant(tenant, form)
        if gt == "refresh_token":
            return _refresh_grant(tenant, form)
        _check_tenant(tenant, allow_multi=True)
        _aad(400, "unsupported_grant_type", 70003,
             "The app requested an unsupported grant type '%s'." % gt)


# ------------------------------------------------------------ device code
_UC_ALPHA = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@core.route("graph", "POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/devicecode")
def devicecode_endpoint(req, m):
    with core.EMU.lock:
        _check_tenant(m.group("tenant"), allow_multi=True)
        form = _form(req)
        client_id = _need(form, "client_id")
        app = _find_client(client_id)
        if not app.get("isFallbackPublicClient"):
            _aad(400, "invalid_client", 7000218,
                 "The request body must contain the following parameter: "
                 "'client_assertion' or 'client_secret'.")
        graph, oidc = _graph_scopes(_need(form, "scope"))
        code = "DAQABAAEAAAD" + b64u(os.urandom(96))
        user_code = "".join(secrets.choice(_UC_ALPHA) for _ in range(9))
        life = int(knob("device_code_lifetime", 900))
        interval = int(knob("device_interval", 5))
        DIR.devices[code] = {"client_id": client_id, "user_code": user_code,
                             "scopes": graph, "oidc": oidc,
                             "expires": now() + life, "state": "pending",
                             "polls": 0, "user": None}
        uri = req.url("/devicelogin")
        return core.Response.json(200, {
            "user_code": user_code, "device_code": code,
            "verification_uri": uri, "expires_in": life,
            "interval": interval,
            "message": "To sign in, use a web browser to open the page %s "
                       "and enter the code %s to authenticate."
                       % (uri, user_code)},
            {"Content-Type": "application/json; charset=utf-8"})


def device_approve(user_code, deny=False, upn=None):
    """Approve (as the admin, or the user upn) or deny a pending device
    code. Returns True if a pending code was found."""
    with core.EMU.lock:
        for st in DIR.devices.values():
            if st["user_code"] == user_code.strip().upper() and \
                    st["state"] == "pending":
                if deny:
                    st["state"] = "declined"
                else:
                    st["state"] = "approved"
                    u = find_user(DIR.tenant, upn) if upn else None
                    st["user"] = (str(user_id(u)), user_upn(u),
                                  user_name(u)) if u else admin_user()
                return True
        return False


_PAGE = """<!doctype html><html><head><title>Enter code</title></head>
<body><h1>Emulator device login</h1><p>%s</p>
<form method="post"><input name="user_code" placeholder="code">
<button name="action" value="approve">Approve</button>
<button name="action" value="deny">Deny</button></form></body></html>"""


@core.route("graph", "GET", r"/devicelogin")
def devicelogin_page(req, m):
    return core.Response(200, {"Content-Type": "text/html; charset=utf-8"},
                         (_PAGE % "Enter the code shown by the program.")
                         .encode())


@core.route("graph", "POST", r"/devicelogin")
def devicelogin_post(req, m):
    form = _form(req)
    ok = device_approve(form.get("user_code", ""),
                        deny=form.get("action") == "deny")
    msg = ("Done: you can close this page." if ok else
           "Unknown or already used code.")
    return core.Response(200 if ok else 400,
                         {"Content-Type": "text/html; charset=utf-8"},
                         (_PAGE % msg).encode())


# ------------------------------------------------------- Graph: auth
APP_READ = ["Application.Read.All", "Application.ReadWrite.All",
            "Directory.Read.All", "Directory.ReadWrite.All"]
APP_WRITE = ["Application.ReadWrite.All", "Directory.ReadWrite.All"]
ASSIGN_WRITE = ["AppRoleAssignment.ReadWrite.All"]


def _ctx(req, what):
    return "https://graph.microsoft.com/v1.0/$metadata#" + what


def _json_body(req):
    try:
        b = json.loads(req.body or b"{}")
    except ValueError:
        raise core.HTTPError(core.graph_error(
            400, "BadRequest", "Unable to read JSON request payload. "
            "Please ensure Content-Type header is set and payload is of "
            "valid JSON format."))
    if not isinstance(b, dict):
        raise core.HTTPError(core.graph_error(
            400, "BadRequest", "The request payload must be a JSON object."))
    return b


def _not_found(oid):
    return core.HTTPError(core.graph_error(
        404, "Request_ResourceNotFound",
        "Resource '%s' does not exist or one of its queried "
        "reference-property objects are not present." % oid))


_FILTER = re.compile(r"\s*(appId|displayName|id)\s+eq\s+'((?:[^']|'')*)'\s*")


def _filter_list(req, items, ctx):
    """Apply $filter (prop eq 'v'), $select and $top to a list."""
    f = req.query.get("$filter")
    for clause in re.split(r"\s+and\s+", f.strip()) if f else []:
        m = _FILTER.fullmatch(clause)
        if not m:
            raise core.HTTPError(core.graph_error(
                400, "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified for "
                "property '%s' of resource '%s'." % (
                    (clause.split() or [""])[0], ctx)))
        prop, val = m.group(1), m.group(2).replace("''", "'")
        items = [i for i in items if str(i.get(prop, "")).lower() ==
                 val.lower()]
    top = req.query.get("$top")
    if top:
        try:
            items = items[:max(1, min(999, int(top)))]
        except ValueError:
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest", "Invalid $top value."))
    return [_select(req, i) for i in items]


def _select(req, obj):
    out = public(obj)
    sel = req.query.get("$select")
    if sel:
        names = [s.strip() for s in sel.split(",") if s.strip()]
        unknown = [n for n in names if n not in out]
        if unknown:
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "Could not find a property named '%s' on type "
                "'microsoft.graph.directoryObject'." % unknown[0]))
        out = {k: out[k] for k in ["id"] + names if k in out}
    return _strip_keys(out)


def _strip_keys(obj):
    """Key credential internals removed from a rendered object."""
    if "keyCredentials" in obj:
        obj["keyCredentials"] = [public(k) for k in obj["keyCredentials"]]
    return obj


def _lookup(table, key):
    m = re.fullmatch(r"\(appId='([^']*)'\)", key)
    if m:
        for o in table.values():
            if o["appId"].lower() == m.group(1).lower():
                return o
    elif key in table:
        return table[key]
    raise _not_found(key)


# ---------------------------------------------------- Graph: applications
@core.route("graph", "POST", r"/v1\.0/applications")
def app_create(req, m):
    core.require_auth(req, APP_WRITE)
    body = _json_body(req)
    with core.EMU.lock:
        if not body.get("displayName"):
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "Invalid value specified for property 'displayName' of "
                "resource 'Application'."))
        app = DIR.add_app(body["displayName"], body=body)
        out = _strip_keys(public(app))
        out = dict({"@odata.context": _ctx(req, "applications/$entity")},
                   **out)
        return core.Response.json(201, out, {
            "Location": req.url("/v1.0/applications/" + app["id"])})


@core.route("graph", "GET", r"/v1\.0/applications")
def app_list(req, m):
    core.require_auth(req, APP_READ)
    with core.EMU.lock:
        items = _filter_list(req, list(DIR.apps.values()), "application")
        return core.Response.json(200, {
            "@odata.context": _ctx(req, "applications"), "value": items})


@core.route("graph", "GET",
            r"/v1\.0/applications(?P<key>/[^/]+|\(appId='[^']*'\))")
def app_get(req, m):
    core.require_auth(req, APP_READ)
    with core.EMU.lock:
        app = _lookup(DIR.apps, m.group("key").lstrip("/"))
        out = _select(req, app)
        return core.Response.json(200, dict(
            {"@odata.context": _ctx(req, "applications/$entity")}, **out))


_APP_PATCHABLE = ("displayName", "signInAudience", "requiredResourceAccess",
                  "isFallbackPublicClient", "publicClient", "web", "tags",
                  "identifierUris", "appRoles", "api", "info", "notes")


@core.route("graph", "PATCH",
            r"/v1\.0/applications(?P<key>/[^/]+|\(appId='[^']*'\))")
def app_patch(req, m):
    core.require_auth(req, APP_WRITE)
    body = _json_body(req)
    with core.EMU.lock:
        app = _lookup(DIR.apps, m.group("key").lstrip("/"))
        if "keyCredentials" in body:
            kc = body["keyCredentials"]
            if not isinstance(kc, list):
                raise _bad_key()
            app["keyCredentials"] = DIR.key_credentials(
                kc, app["keyCredentials"])
        if "passwordCredentials" in body:
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "Updates to credentials on this resource are not "
                "supported; use addPassword."))
        for k in _APP_PATCHABLE:
            if k in body:
                app[k] = body[k]
        return core.Response(204, {}, b"")


@core.route("graph", "DELETE", r"/v1\.0/applications/(?P<key>[^/]+)")
def app_delete(req, m):
    core.require_auth(req, APP_WRITE)
    with core.EMU.lock:
        app = _lookup(DIR.apps, m.group("key"))
        if app.get("_wellknown") and app["appId"] == GRAPH_APP_ID:
            raise core.HTTPError(core.graph_error(
                403, "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation."))
        del DIR.apps[app["id"]]
        return core.Response(204, {}, b"")


@core.route("graph", "POST", r"/v1\.0/applications/(?P<key>[^/]+)/addPassword")
def app_add_password(req, m):
    core.require_auth(req, APP_WRITE)
    body = _json_body(req)
    with core.EMU.lock:
        app = _lookup(DIR.apps, m.group("key"))
        pc = body.get("passwordCredential") or {}
        end = parse_time(pc.get("endDateTime"))
        cred, secret = DIR.add_password(app, pc.get("displayName"), end)
        out = dict(cred, secretText=secret)
        return core.Response.json(200, dict(
            {"@odata.context": _ctx(req,
                                    "microsoft.graph.passwordCredential")},
            **out))


@core.route("graph", "POST",
            r"/v1\.0/applications/(?P<key>[^/]+)/removePassword")
def app_remove_password(req, m):
    core.require_auth(req, APP_WRITE)
    body = _json_body(req)
    with core.EMU.lock:
        app = _lookup(DIR.apps, m.group("key"))
        kid = body.get("keyId")
        if not any(c["keyId"] == kid for c in app["passwordCredentials"]):
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "No password credential found with keyId '%s'." % kid))
        app["passwordCredentials"] = [c for c in app["passwordCredentials"]
                                      if c["keyId"] != kid]
        app["_secrets"] = [s for s in app["_secrets"] if s["keyId"] != kid]
        return core.Response(204, {}, b"")


# ----------------------------------------------- Graph: service principals
@core.route("graph", "POST", r"/v1\.0/servicePrincipals")
def sp_create(req, m):
    core.require_auth(req, APP_WRITE)
    body = _json_body(req)
    with core.EMU.lock:
        app = DIR.app_by_appid(body.get("appId") or "")
        if app is None:
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "The appId '%s' of the service principal does not reference "
                "a valid application object." % body.get("appId")))
        if DIR.sp_by_appid(app["appId"]):
            raise core.HTTPError(core.graph_error(
                409, "Request_MultipleObjectsWithSameKeyValue",
                "The service principal cannot be created, updated, or "
                "restored because the service principal name %s is already "
                "in use." % app["appId"]))
        sp = DIR.add_sp(app)
        return core.Response.json(201, dict(
            {"@odata.context": _ctx(req, "servicePrincipals/$entity")},
            **_strip_keys(public(sp))), {
            "Location": req.url("/v1.0/servicePrincipals/" + sp["id"])})


@core.route("graph", "GET", r"/v1\.0/servicePrincipals")
def sp_list(req, m):
    core.require_auth(req, APP_READ)
    with core.EMU.lock:
        items = _filter_list(req, list(DIR.sps.values()), "servicePrincipal")
        return core.Response.json(200, {
            "@odata.context": _ctx(req, "servicePrincipals"), "value": items})


@core.route("graph", "GET",
            r"/v1\.0/servicePrincipals(?P<key>/[^/]+|\(appId='[^']*'\))")
def sp_get(req, m):
    core.require_auth(req, APP_READ)
    with core.EMU.lock:
        sp = _lookup(DIR.sps, m.group("key").lstrip("/"))
        return core.Response.json(200, dict(
            {"@odata.context": _ctx(req, "servicePrincipals/$entity")},
            **_select(req, sp)))


@core.route("graph", "POST",
            r"/v1\.0/servicePrincipals/(?P<key>[^/]+)/appRoleAssignedTo")
def sp_assign(req, m):
    core.require_auth(req, ASSIGN_WRITE)
    body = _json_body(req)
    with core.EMU.lock:
        res = _lookup(DIR.sps, m.group("key"))
        if body.get("resourceId") and body["resourceId"] != res["id"]:
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "The resourceId '%s' does not match the service principal "
                "in the request URL." % body["resourceId"]))
        principal = DIR.sps.get(body.get("principalId") or "")
        if principal is None:
            raise core.HTTPError(core.graph_error(
                404, "Request_ResourceNotFound",
                "Resource '%s' does not exist or one of its queried "
                "reference-property objects are not present."
                % body.get("principalId")))
        role = body.get("appRoleId")
        if not any(r["id"] == role for r in res["appRoles"]):
            raise core.HTTPError(core.graph_error(
                400, "Request_BadRequest",
                "Permission being assigned was not found on application "
                "'%s'." % res["appId"]))
        for a in DIR.assignments.values():
            if (a["principalId"], a["resourceId"], a["appRoleId"]) == \
                    (principal["id"], res["id"], role):
                raise core.HTTPError(core.graph_error(
                    400, "Request_BadRequest",
                    "Permission being assigned already exists on the "
                    "object"))
        a = DIR.assign(principal, res, role)
        return core.Response.json(201, dict({"@odata.context": _ctx(
            req, "servicePrincipals('%s')/appRoleAssignedTo/$entity"
            % res["id"])}, **a))


def _assignment_list(req, key, field, what):
    with core.EMU.lock:
        sp = _lookup(DIR.sps, key)
        items = [dict(a) for a in DIR.assignments.values()
                 if a[field] == sp["id"]]
        return core.Response.json(200, {
            "@odata.context": _ctx(req, "servicePrincipals('%s')/%s"
                                   % (sp["id"], what)), "value": items})


@core.route("graph", "GET",
            r"/v1\.0/servicePrincipals/(?P<key>[^/]+)/appRoleAssignedTo")
def sp_assigned_to(req, m):
    core.require_auth(req, APP_READ)
    return _assignment_list(req, m.group("key"), "resourceId",
                            "appRoleAssignedTo")


@core.route("graph", "GET",
            r"/v1\.0/servicePrincipals/(?P<key>[^/]+)/appRoleAssignments")
def sp_assignments(req, m):
    core.require_auth(req, APP_READ)
    return _assignment_list(req, m.group("key"), "principalId",
                            "appRoleAssignments")


@core.route("graph", "DELETE",
            r"/v1\.0/servicePrincipals/(?P<key>[^/]+)/"
            r"(appRoleAssignedTo|appRoleAssignments)/(?P<aid>[^/]+)")
def sp_unassign(req, m):
    core.require_auth(req, ASSIGN_WRITE)
    with core.EMU.lock:
        _lookup(DIR.sps, m.group("key"))
        if m.group("aid") not in DIR.assignments:
            raise _not_found(m.group("aid"))
        del DIR.assignments[m.group("aid")]
        return core.Response(204, {}, b"")


# ---------------------------------------------------------- control hooks
def control(op, args):
    """Entra test hooks (also reachable as POST /entra/{op} on the control
    API when core supports control routes). Returns a JSON-able dict."""
    with core.EMU.lock:
        if op == "device_approve":
            ok = device_approve(args.get("user_code", ""),
                                deny=bool(args.get("deny")),
                                upn=args.get("upn"))
            return {"ok": ok}
        if op == "expire_secret":
            app = DIR.app_by_appid(args["client_id"])
            for c in app["passwordCredentials"]:
                if not args.get("keyId") or c["keyId"] == args["keyId"]:
                    c["endDateTime"] = iso(now() - 60)
            return {"ok": True}
        if op == "expire_certificate":
            app = DIR.app_by_appid(args["client_id"])
            for c in app["keyCredentials"]:
                c["endDateTime"] = iso(now() - 60)
            return {"ok": True}
        if op == "revoke_consent":
            sp = DIR.sp_by_appid(args["client_id"])
            gone = [k for k, a in DIR.assignments.items()
                    if sp and a["principalId"] == sp["id"]]
            for k in gone:
                del DIR.assignments[k]
            return {"ok": True, "removed": len(gone)}
        if op == "grant_consent":
            sp = DIR.sp_by_appid(args["client_id"])
            g = DIR.graph_sp()
            have = {a["appRoleId"] for a in DIR.assignments.values()
                    if a["principalId"] == sp["id"]}
            for v, rid, _ in PERMISSIONS:
                if v in args.get("roles", BACKUP_ROLES) and rid not in have:
                    DIR.assign(sp, g, rid)
            return {"ok": True, "roles": DIR.roles_of(sp)}
        if op == "add_app":
            app = DIR.add_app(args.get("displayName", "test app"),
                              created=time.time() if args.get("delayed")
                              else 0)
            out = {"ok": True, "client_id": app["appId"], "id": app["id"]}
            if args.get("secret", True):
                out["secret"] = DIR.add_password(app, "test")[1]
            if args.get("cert", True):
                cert_pem, key_pem = make_cert("emulator-test")
                der = x509.load_pem_x509_certificate(cert_pem).public_bytes(
                    serialization.Encoding.DER)
                app["keyCredentials"] = DIR.key_credentials([
                    {"key": base64.b64encode(der).decode()}], [])
                out["cert_pem"] = cert_pem.decode()
                out["key_pem"] = key_pem.decode()
            if args.get("service_principal", True):
                sp = DIR.add_sp(app)
                out["sp_id"] = sp["id"]
                for v, rid, _ in PERMISSIONS:
                    if v in args.get("roles", []):
                        DIR.assign(sp, DIR.graph_sp(), rid)
            return out
        if op == "delegated_token":
            u = find_user(DIR.tenant, args["upn"]) if args.get("upn") \
                else None
            user = (str(user_id(u)), user_upn(u), user_name(u)) if u \
                else admin_user()
            tok, life = issue_access_token(
                DIR.apps[DIR.uid("app:admin-public-client:obj")]["appId"],
                user[0], scp=args.get("scp", "Application.ReadWrite.All "
                                      "AppRoleAssignment.ReadWrite.All"),
                user=user)
            return {"ok": True, "access_token": tok, "expires_in": life}
        raise KeyError(op)


def _control_route(method, pattern):
    """core.route for the control host, if core knows that host."""
    try:
        return core.route("control", method, pattern)
    except Exception:  # core without control routes: hooks via control()
        return lambda fn: fn


@_control_route("POST", r"/device/approve")
def control_device_approve(req, m):
    args = json.loads(req.body or b"{}")
    r = control("device_approve", args)
    return core.Response.json(200 if r["ok"] else 404, r)


@_control_route("POST", r"/entra/(?P<op>[a-z_]+)")
def control_entra(req, m):
    try:
        args = json.loads(req.body or b"{}")
        return core.Response.json(200, control(m.group("op"), args))
    except KeyError as e:
        return core.Response.json(400, {"ok": False,
                                        "error": "unknown %s" % e})
