"""m365-connect against the emulator: add/test with each credential,
register and grant through the device code, and every failure the admin
can meet, each checked for the remedy printed.  Secrets never show in
argv, logs or 'show'; files are 0600."""
import datetime
import json
import os
import re
import stat
import subprocess
import threading
import time
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from conftest import binary

GUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def emu(emulator):
    emulator.knobs(device_interval=1)
    return emulator


@pytest.fixture
def cfg(tmp_path):
    d = tmp_path / "cfg"
    return d


def run(cfg, *args, input=None, env=None, timeout=180):
    e = dict(os.environ)
    e["M365FS_CONFIG_DIR"] = str(cfg)
    e.pop("M365_DEBUG", None)
    if env:
        e.update(env)
    return subprocess.run([binary("m365-connect")] + list(args),
                          input=input, capture_output=True, text=True,
                          env=e, timeout=timeout)


def private_file(path, text):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return str(path)


def endpoints(emu):
    return ["--login-url", emu.login_url, "--graph-url", emu.graph_url,
            "--ca-file", emu.ca_file]


def secret_of(emu):
    with open(emu.apps["backup"]["secret_file"]) as f:
        return f.read().strip()


def add_secret(emu, cfg, tmp_path, name, secret=None, client_id=None,
               tenant=None):
    sf = private_file(tmp_path / (name + ".in"), (secret or secret_of(emu))
                      + "\n")
    r = run(cfg, "add", name, "--tenant", tenant or emu.tenant_id,
            "--client-id", client_id or emu.apps["backup"]["client_id"],
            "--secret-file", sf, *endpoints(emu))
    assert r.returncode == 0, r.stderr
    return r


def make_cert(days=365, bits=2048, not_before=None, cn="test"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = not_before or (datetime.datetime.utcnow()
                           - datetime.timedelta(minutes=5))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return key, cert


def write_pem(tmp_path, stem, key, cert):
    c = tmp_path / (stem + ".pem")
    k = tmp_path / (stem + ".key")
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private_file(k, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode())
    return str(c), str(k)


def new_app(emu, **kw):
    """A separate app in the emulator (so the shared one stays intact)."""
    return emu.control("POST", "/entra/add_app", kw)


def assert_fails(r, *phrases):
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    for p in phrases:
        assert p in out, "%r not in:\n%s" % (p, out)


# -- the good paths ----------------------------------------------------------

def test_add_secret_then_test_passes(emu, cfg, tmp_path):
    add_secret(emu, cfg, tmp_path, "sec")
    r = run(cfg, "test", "sec")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "connection 'sec' works" in r.stdout
    for step in ("client secret accepted", "Microsoft Graph reachable",
                 "permissions granted", "site collections listed",
                 "mailbox of", "OneDrive of"):
        assert step in r.stdout, r.stdout
    # files are private, the secret is not in the connection file
    for p in cfg.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert secret_of(emu) not in (cfg / "sec.conf").read_text()
    assert (cfg / "sec.secret").read_text() == secret_of(emu)


def test_add_certificate_then_test_passes(emu, cfg, tmp_path):
    b = emu.apps["backup"]
    r = run(cfg, "add", "crt", "--tenant", emu.tenant_domain,
            "--client-id", b["client_id"], "--cert", b["cert_file"],
            "--key", b["key_file"], *endpoints(emu))
    assert r.returncode == 0, r.stderr
    cert = x509.load_pem_x509_certificate(open(b["cert_file"], "rb").read())
    thumb = cert.fingerprint(hashes.SHA1()).hex().upper()
    assert "thumbprint: " + thumb in r.stdout  # as Entra shows it
    r = run(cfg, "test", "crt", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["connection"] == "crt"
    assert all(s["result"] == "ok" for s in doc["steps"])
    assert any(thumb in s["message"] for s in doc["steps"])


def test_add_pfx_with_password_file(emu, cfg, tmp_path):
    b = emu.apps["backup"]
    key = serialization.load_pem_private_key(
        open(b["key_file"], "rb").read(), None)
    cert = x509.load_pem_x509_certificate(open(b["cert_file"], "rb").read())
    pfx = tmp_path / "b.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"m365", key, cert, None,
        serialization.BestAvailableEncryption(b"pfx pass")))
    pw = private_file(tmp_path / "pw", "pfx pass\n")
    r = run(cfg, "add", "pfx", "--tenant", emu.tenant_id, "--client-id",
            b["client_id"], "--pfx", str(pfx), "--password-file", pw,
            *endpoints(emu))
    assert r.returncode == 0, r.stderr
    assert run(cfg, "test", "pfx").returncode == 0
    # a wrong password is named as such
    bad = private_file(tmp_path / "bad", "nope\n")
    r = run(cfg, "add", "pfx2", "--tenant", emu.tenant_id, "--client-id",
            b["client_id"], "--pfx", str(pfx), "--password-file", bad,
            *endpoints(emu))
    assert_fails(r, "wrong password for PFX file")


def test_list_show_remove(emu, cfg, tmp_path):
    add_secret(emu, cfg, tmp_path, "one")
    r = run(cfg, "list", "--json")
    assert [c["name"] for c in json.loads(r.stdout)] == ["one"]
    r = run(cfg, "show", "one")
    assert r.returncode == 0
    assert secret_of(emu) not in r.stdout + r.stderr
    assert "********" in r.stdout
    r = run(cfg, "show", "one", "--json")
    assert json.loads(r.stdout)["secret"] == "********"
    assert run(cfg, "remove", "one").returncode == 0
    assert not list(cfg.iterdir())
    assert_fails(run(cfg, "show", "one"), "no connection 'one'",
                 "m365-connect list")


# -- input checks before anything is sent -------------------------------------

def test_client_id_not_a_guid(emu, cfg, tmp_path):
    sf = private_file(tmp_path / "s", "x\n")
    r = run(cfg, "add", "g", "--tenant", emu.tenant_id, "--client-id",
            "1234-nope", "--secret-file", sf)
    assert r.returncode == 2
    assert "client id '1234-nope' is not a GUID" in r.stderr
    assert "hint: " in r.stderr
    assert not cfg.exists() or not list(cfg.iterdir())


def test_world_readable_secret_refused(emu, cfg, tmp_path):
    sf = tmp_path / "s"
    sf.write_text(secret_of(emu))
    os.chmod(sf, 0o644)
    r = run(cfg, "add", "w", "--tenant", emu.tenant_id, "--client-id",
            emu.apps["backup"]["client_id"], "--secret-file", str(sf))
    assert_fails(r, "is readable by other users", "chmod 600 %s" % sf)
    # and a stored one that became readable is refused by test
    add_secret(emu, cfg, tmp_path, "w2")
    os.chmod(cfg / "w2.secret", 0o644)
    assert_fails(run(cfg, "test", "w2"), "readable by other users",
                 "chmod 600")


def test_short_key_and_expired_certificate_refused(emu, cfg, tmp_path):
    cid = emu.apps["backup"]["client_id"]
    key, cert = make_cert(bits=1024)
    c, k = write_pem(tmp_path, "short", key, cert)
    r = run(cfg, "add", "s", "--tenant", emu.tenant_id, "--client-id", cid,
            "--cert", c, "--key", k)
    assert_fails(r, "1024 bits", "at least 2048 bits")
    key, cert = make_cert(days=1, not_before=datetime.datetime(2020, 1, 1))
    c, k = write_pem(tmp_path, "old", key, cert)
    r = run(cfg, "add", "e", "--tenant", emu.tenant_id, "--client-id", cid,
            "--cert", c, "--key", k)
    assert_fails(r, "expired on 2020-01-02", "cert renew")


def test_secret_stdin_never_in_argv_or_logs(emu, cfg, tmp_path):
    secret = secret_of(emu)
    r = run(cfg, "add", "st", "--tenant", emu.tenant_id, "--client-id",
            emu.apps["backup"]["client_id"], "--secret-stdin",
            *endpoints(emu), input=secret + "\n")
    assert r.returncode == 0, r.stderr
    assert "--secret" not in " ".join(a for a in r.args
                                      if a != "--secret-stdin")
    # debug logs of a full test run hold neither the secret nor a token
    r = run(cfg, "test", "st", env={"M365_DEBUG": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "debug" in r.stderr  # the log level really was raised
    assert secret not in r.stdout + r.stderr
    assert not re.search(r"eyJ[A-Za-z0-9_-]{20,}", r.stdout + r.stderr)
    # there is no option that takes a secret on the command line
    r = run(cfg, "add", "x", "--secret", secret)
    assert r.returncode == 2 and "unknown option '--secret'" in r.stderr


def test_secret_not_in_process_arguments(emu, cfg, tmp_path):
    """While m365-connect runs (here: waiting out propagation), its argv
    as 'ps' sees it holds no secret."""
    app = new_app(emu, displayName="ps check", delayed=True,
                  roles=["Sites.ReadWrite.All"])
    emu.knobs(propagation_delay=4)
    try:
        add_secret(emu, cfg, tmp_path, "ps", secret=app["secret"],
                   client_id=app["client_id"])
        e = dict(os.environ, M365FS_CONFIG_DIR=str(cfg))
        p = subprocess.Popen([binary("m365-connect"), "test", "ps",
                              "--wait", "30s"], env=e,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1)
        out = subprocess.run(["ps", "-ww", "-o", "args=", "-p",
                              str(p.pid)], capture_output=True,
                             text=True).stdout
        p.communicate(timeout=60)
        assert "m365-connect" in out
        assert app["secret"] not in out
    finally:
        emu.knobs(propagation_delay=0)


# -- each failure with its remedy ---------------------------------------------

def test_unknown_tenant(emu, cfg, tmp_path):
    add_secret(emu, cfg, tmp_path, "t", tenant="nosuch.onmicrosoft.com")
    assert_fails(run(cfg, "test", "t"),
                 "tenant 'nosuch.onmicrosoft.com' was not found",
                 "--cloud")


def test_app_not_found(emu, cfg, tmp_path):
    add_secret(emu, cfg, tmp_path, "a",
               client_id="0badc0de-0000-4000-8000-000000000000")
    r = run(cfg, "test", "a")
    assert_fails(r, "application '0badc0de-0000-4000-8000-000000000000' "
                 "was not found", "client id", "--wait")
    assert "ok       tenant" in r.stdout  # the tenant step passed


def test_just_registered_app_is_waited_out(emu, cfg, tmp_path):
    app = new_app(emu, displayName="fresh app", delayed=True,
                  roles=["Sites.ReadWrite.All", "Files.ReadWrite.All",
                         "User.Read.All", "Mail.ReadWrite"])
    emu.knobs(propagation_delay=5)
    try:
        add_secret(emu, cfg, tmp_path, "fresh", secret=app["secret"],
                   client_id=app["client_id"])
        assert_fails(run(cfg, "test", "fresh"), "was not found",
                     "test fresh --wait")
        t0 = time.time()
        r = run(cfg, "test", "fresh", "--wait", "1m")
        assert r.returncode == 0, r.stdout + r.stderr
        assert time.time() - t0 < 40
    finally:
        emu.knobs(propagation_delay=0)


def test_wrong_secret(emu, cfg, tmp_path):
    add_secret(emu, cfg, tmp_path, "ws", secret="not-the-secret")
    assert_fails(run(cfg, "test", "ws"), "client secret of application",
                 "was rejected", "not its Secret ID")


def test_expired_secret(emu, cfg, tmp_path):
    app = new_app(emu, displayName="expiring", roles=["Sites.ReadWrite.All"])
    emu.control("POST", "/entra/expire_secret",
                {"client_id": app["client_id"]})
    add_secret(emu, cfg, tmp_path, "xs", secret=app["secret"],
               client_id=app["client_id"])
    assert_fails(run(cfg, "test", "xs"), "has expired",
                 "create a new secret")


def test_unknown_certificate(emu, cfg, tmp_path):
    key, cert = make_cert(cn="not uploaded")
    c, k = write_pem(tmp_path, "u", key, cert)
    r = run(cfg, "add", "uc", "--tenant", emu.tenant_id, "--client-id",
            emu.apps["backup"]["client_id"], "--cert", c, "--key", k,
            *endpoints(emu))
    assert r.returncode == 0, r.stderr
    thumb = cert.fingerprint(hashes.SHA1()).hex().upper()
    assert_fails(run(cfg, "test", "uc"), "certificate is not registered",
                 "upload the certificate (thumbprint %s)" % thumb,
                 "m365-connect grant uc")


def test_missing_admin_consent_then_grant(emu, cfg, tmp_path):
    app = new_app(emu, displayName="no consent", roles=[], cert=False)
    add_secret(emu, cfg, tmp_path, "nc", secret=app["secret"],
               client_id=app["client_id"])
    assert_fails(run(cfg, "test", "nc"), "admin consent is missing",
                 "m365-connect grant nc")
    # grant: admin signs in (approved through the control API), consent
    r = device_flow(emu, cfg, "grant", "nc", "--public-client-id",
                    emu.apps["admin_public_client"]["client_id"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "found application" in r.stdout
    assert "granting admin consent for 'Mail.ReadWrite'" in r.stdout
    r = run(cfg, "test", "nc")
    assert r.returncode == 0, r.stdout + r.stderr


def test_grant_registers_the_connection_certificate(emu, cfg, tmp_path):
    app = new_app(emu, displayName="hand made", cert=False,
                  roles=["Sites.ReadWrite.All"])
    add_secret(emu, cfg, tmp_path, "hm", secret=app["secret"],
               client_id=app["client_id"])
    r = run(cfg, "cert", "new", "hm", "--bits", "2048")
    assert r.returncode == 0, r.stderr
    assert re.search(r"thumbprint: [0-9A-F]{40}", r.stdout)
    assert_fails(run(cfg, "test", "hm"), "certificate is not registered")
    r = device_flow(emu, cfg, "grant", "hm", "--public-client-id",
                    emu.apps["admin_public_client"]["client_id"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "registering the certificate on the app" in r.stdout
    r = run(cfg, "test", "hm")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "certificate accepted" in r.stdout


def test_clock_skew(emu, cfg, tmp_path):
    b = emu.apps["backup"]
    run(cfg, "add", "ck", "--tenant", emu.tenant_id, "--client-id",
        b["client_id"], "--cert", b["cert_file"], "--key", b["key_file"],
        *endpoints(emu))
    emu.knobs(clock_skew=3600)
    try:
        assert_fails(run(cfg, "test", "ck"), "clock of this machine is off",
                     "NTP")
    finally:
        emu.knobs(clock_skew=0)


def test_throttling_during_test_is_waited_out(emu, cfg, tmp_path):
    add_secret(emu, cfg, tmp_path, "thr")
    emu.fault(path_regex="/v1.0/users", status=429, retry_after="1.5",
              count=2)
    t0 = time.time()
    r = run(cfg, "test", "thr")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "throttled" in r.stdout
    assert time.time() - t0 >= 1.5


def test_tls_failure_with_wrong_ca(emu, cfg, tmp_path):
    key, cert = make_cert(cn="some other CA")
    ca = tmp_path / "other-ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    sf = private_file(tmp_path / "s", secret_of(emu))
    r = run(cfg, "add", "tls", "--tenant", emu.tenant_id, "--client-id",
            emu.apps["backup"]["client_id"], "--secret-file", sf,
            "--login-url", emu.login_url, "--graph-url", emu.graph_url,
            "--ca-file", str(ca))
    assert r.returncode == 0, r.stderr
    host = emu.login_url.split("://")[1]
    assert_fails(run(cfg, "test", "tls"),
                 "TLS certificate of '%s' is not trusted" % host)


def test_sharepoint_url_of_another_tenant(emu, cfg, tmp_path):
    sf = private_file(tmp_path / "s", secret_of(emu))
    r = run(cfg, "add", "sp", "--tenant", emu.tenant_id, "--client-id",
            emu.apps["backup"]["client_id"], "--secret-file", sf,
            "--sharepoint-url", "https://fabrikam.sharepoint.com",
            *endpoints(emu))
    assert r.returncode == 0, r.stderr
    assert_fails(run(cfg, "test", "sp"),
                 "SharePoint URL 'https://fabrikam.sharepoint.com' does "
                 "not belong to tenant")


# -- automatic registration ---------------------------------------------------

def device_flow(emu, cfg, *args):
    """Run a command that signs an admin in; approve its code through the
    control API as soon as it is printed."""
    e = dict(os.environ, M365FS_CONFIG_DIR=str(cfg))
    p = subprocess.Popen([binary("m365-connect")] + list(args), env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    err = []

    def read_err():
        for line in p.stderr:
            err.append(line)

    t = threading.Thread(target=read_err)
    t.start()
    code = None
    deadline = time.time() + 30
    while code is None and time.time() < deadline and p.poll() is None:
        m = re.search(r"enter the code\s+(\S+)", "".join(err))
        if m:
            code = m.group(1)
        time.sleep(0.1)
    assert code, "no device code printed:\n" + "".join(err)
    assert emu.control("POST", "/device/approve",
                       {"user_code": code})["ok"]
    out = p.stdout.read()
    p.wait(timeout=180)
    t.join()
    return subprocess.CompletedProcess(p.args, p.returncode, out,
                                       "".join(err))


def test_register_end_to_end_and_rerun_reuses_app(emu, cfg):
    pub = emu.apps["admin_public_client"]["client_id"]
    emu.knobs(propagation_delay=3)
    try:
        r = device_flow(emu, cfg, "register", "auto", "--tenant",
                        emu.tenant_domain, "--public-client-id", pub,
                        "--bits", "2048", *endpoints(emu))
    finally:
        emu.knobs(propagation_delay=0)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "creating application 'm365fs backup auto'" in r.stdout
    assert "the application's certificate is accepted" in r.stdout
    conf = (cfg / "auto.conf").read_text()
    cid = re.search(r"client_id = (%s)" % GUID_RE, conf).group(1)
    for f in ("auto.conf", "auto.pem", "auto.key"):
        assert stat.S_IMODE((cfg / f).stat().st_mode) == 0o600
    r = run(cfg, "test", "auto")
    assert r.returncode == 0, r.stdout + r.stderr

    r = device_flow(emu, cfg, "register", "auto", "--public-client-id", pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reused" in r.stdout and "creating application" not in r.stdout
    conf = (cfg / "auto.conf").read_text()
    assert "client_id = " + cid in conf
    tok = emu.control("POST", "/entra/delegated_token", {})["access_token"]
    q = urllib.parse.quote("displayName eq 'm365fs backup auto'")
    apps = emu.get_json("/applications?$filter=" + q, auth=tok)["value"]
    assert [a["appId"] for a in apps] == [cid]


def test_register_declined(emu, cfg):
    pub = emu.apps["admin_public_client"]["client_id"]
    e = dict(os.environ, M365FS_CONFIG_DIR=str(cfg))
    p = subprocess.Popen([binary("m365-connect"), "register", "dn",
                          "--tenant", emu.tenant_id, "--public-client-id",
                          pub, "--bits", "2048"] + endpoints(emu), env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    buf = ""
    while "enter the code" not in buf or not re.search(
            r"enter the code\s+\S+", buf):
        line = p.stderr.readline()
        assert line, buf
        buf += line
    code = re.search(r"enter the code\s+(\S+)", buf).group(1)
    emu.control("POST", "/device/approve", {"user_code": code,
                                            "deny": True})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert "the sign-in was declined" in err


def test_cert_renew_then_grant(emu, cfg):
    pub = emu.apps["admin_public_client"]["client_id"]
    r = device_flow(emu, cfg, "register", "rn", "--tenant", emu.tenant_id,
                    "--public-client-id", pub, "--bits", "2048",
                    *endpoints(emu))
    assert r.returncode == 0, r.stdout + r.stderr
    old = re.search(r"thumbprint: ([0-9A-F]{40})",
                    run(cfg, "cert", "show", "rn").stdout).group(1)
    r = run(cfg, "cert", "renew", "rn", "--bits", "2048")
    assert r.returncode == 0, r.stderr
    new = re.search(r"thumbprint: ([0-9A-F]{40})", r.stdout).group(1)
    assert new != old and (cfg / "rn.old.pem").exists()
    assert_fails(run(cfg, "test", "rn"), "certificate is not registered",
                 new)
    r = device_flow(emu, cfg, "grant", "rn", "--public-client-id", pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "registering the certificate on the app" in r.stdout
    assert run(cfg, "test", "rn").returncode == 0


@pytest.mark.parametrize("cmd", ["add", "register", "grant", "test", "cert",
                                 "list", "show", "remove"])
def test_help_for_every_command(cfg, cmd):
    r = run(cfg, cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: m365-connect " + cmd)
    r = run(cfg, "--help")
    assert r.returncode == 0 and cmd in r.stdout


# -- the token provider (C driver tests/unit/test_auth_emu.c) -----------------

def token_requests(emu):
    return sum(1 for e in emu.stats()["log"]
               if e.get("path", "").endswith("/oauth2/v2.0/token"))


def auth_driver(emu, mode):
    from conftest import BUILD
    env = dict(os.environ, M365_EMU_READY=str(emu.state / "ready.json"))
    return subprocess.run([str(BUILD / "tests" / "test_auth_emu"), mode],
                          env=env, capture_output=True, text=True,
                          timeout=60)


def test_token_cache_invalidate_and_concurrent_callers(emu):
    emu.reset_stats()
    r = auth_driver(emu, "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    # one request at first, one after invalidate for 8 threads at once
    assert token_requests(emu) == 2


def test_token_refreshed_before_expiry(emu):
    emu.knobs(token_lifetime=4)
    try:
        emu.reset_stats()
        r = auth_driver(emu, "refresh")
    finally:
        emu.knobs(token_lifetime=3599)
    assert r.returncode == 0, r.stdout + r.stderr
    assert token_requests(emu) == 2


def test_device_slow_down_is_honoured(emu, cfg, tmp_path):
    """slow_down (sent with AADSTS70016, like authorization_pending) adds
    5 s to the polling interval (RFC 8628)."""
    add_secret(emu, cfg, tmp_path, "slow")
    emu.knobs(device_slow_down=1)
    try:
        t0 = time.time()
        r = device_flow(emu, cfg, "grant", "slow", "--public-client-id",
                        emu.apps["admin_public_client"]["client_id"])
        took = time.time() - t0
    finally:
        emu.knobs(device_slow_down=0)
    assert r.returncode == 0, r.stdout + r.stderr
    assert took >= 6, took  # 1 s, slow_down, then 1 + 5 s
