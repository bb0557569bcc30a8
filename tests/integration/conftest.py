"""Shared fixtures for the integration tests.

Binaries come from $M365_BUILD/bin (set by `make check-integration`).
Fixtures for the emulator, a repository and a mounted filesystem live here so
that every test area (snapshots, connect, restore, live) uses the same ones.
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
BIN = BUILD / "bin"
SANITIZE = os.environ.get("M365_SANITIZE", "")


def binary(name):
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'make' first")
    return str(path)


# ---------------------------------------------------------------------------
# Graph + Entra ID emulator (tests/emulator, see its README.md)

import http.client  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

EMULATOR = ROOT / "tests" / "emulator" / "emulator.py"
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable


class EmulatorError(Exception):
    pass


class Emulator:
    """A running emulator process.  Attributes: every ready-file field
    (graph_url, login_url, files_url, control_url, ca_file, tenant_id,
    tenant_domain, apps, admin_user, pid, ...), .ready (the dict), .state
    (state dir), .proc (Popen)."""

    def __init__(self, proc, ready, state, log_path):
        self.proc = proc
        self.ready = ready
        self.state = state
        self.log_path = log_path
        for k, v in ready.items():
            setattr(self, k, v)
        self.ssl = ssl.create_default_context(cafile=ready["ca_file"])
        self._token = None

    # control API -----------------------------------------------------------
    def control(self, method, path, json_body=None):
        """METHOD PATH on the control API -> parsed JSON (raises
        EmulatorError with the body on a non-2xx status)."""
        data = None
        headers = {}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.control_url + path, data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise EmulatorError("%s %s -> %d %s" % (method, path, e.code,
                                                    e.read()[:2000]))
        return json.loads(body) if body else None

    def truth(self):
        return self.control("GET", "/truth")

    def stats(self):
        return self.control("GET", "/stats")

    def reset_stats(self):
        return self.control("POST", "/stats/reset", {})

    def mutate(self, **op):
        return self.control("POST", "/mutate", op)

    def fault(self, **rule):
        return self.control("POST", "/faults", rule)

    def knobs(self, **k):
        return self.control("POST", "/knobs", k)

    # HTTPS helpers -----------------------------------------------------------
    def token(self, refresh=False):
        """An app-only access token for the pre-registered 'backup' app (via
        the emulator's token endpoint when entra is present; any string
        is accepted otherwise)."""
        if self._token and not refresh:
            return self._token
        backup = (self.apps or {}).get("backup")
        if not backup:
            self._token = "emulator-test-token"
            return self._token
        with open(backup["secret_file"]) as f:
            secret = f.read().strip()
        form = urllib.parse.urlencode({
            "client_id": backup["client_id"], "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
            "grant_type": "client_credentials"}).encode()
        st, _, body = self.request(
            "POST", self.login_url + "/%s/oauth2/v2.0/token" % self.tenant_id,
            body=form, auth=False,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        if st != 200:
            raise EmulatorError("token request failed: %d %s" % (st, body))
        self._token = json.loads(body)["access_token"]
        return self._token

    def request(self, method, url, body=None, headers=None, auth=True):
        """One HTTPS request (no redirects followed) -> (status, headers
        dict with lower-case names, body bytes).  URL may be a Graph path
        ("/v1.0/..." or "/sites/...", relative to graph_url/v1.0)."""
        if not url.startswith("https://"):
            if not url.startswith("/v1.0"):
                url = "/v1.0" + url
            url = self.graph_url + url
        u = urllib.parse.urlsplit(url)
        h = dict(headers or {})
        if auth and "Authorization" not in h:
            h["Authorization"] = "Bearer " + (self.token() if auth is True
                                              else auth)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPSConnection(u.hostname, u.port,
                                           context=self.ssl, timeout=120)
        try:
            path = u.path + ("?" + u.query if u.query else "")
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def get_json(self, url, expect=200, **kw):
        """GET URL -> parsed JSON; asserts the status is EXPECT."""
        st, _, body = self.request("GET", url, **kw)
        assert st == expect, "%s -> %d %s" % (url, st, body[:500])
        return json.loads(body)

    # lifetime ----------------------------------------------------------------
    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_emulator(state, scale=0, seed=1, tenant=None, extra_args=(),
                   timeout=120, **knobs):
    """Starts an emulator with state dir STATE -> Emulator (knobs applied)."""
    state = pathlib.Path(state)
    state.mkdir(parents=True, exist_ok=True)
    ready_file = state / "ready.json"
    if ready_file.exists():
        ready_file.unlink()
    log_path = state / "emulator.log"
    args = [SYSTEM_PYTHON, str(EMULATOR), "--state", str(state),
            "--scale", str(scale), "--seed", str(seed),
            "--ready-file", str(ready_file)]
    if tenant:
        args += ["--tenant", tenant]
    args += list(extra_args)
    log = open(log_path, "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.time() + timeout
    while not ready_file.exists():
        if proc.poll() is not None:
            raise EmulatorError("emulator exited with %d:\n%s" % (
                proc.returncode, log_path.read_text(errors="replace")))
        if time.time() > deadline:
            proc.kill()
            proc.wait()
            raise EmulatorError("emulator not ready after %ds:\n%s" % (
                timeout, log_path.read_text(errors="replace")))
        time.sleep(0.05)
    emu = Emulator(proc, json.loads(ready_file.read_text()), state, log_path)
    if knobs:
        emu.knobs(**knobs)
    return emu


@pytest.fixture(scope="session")
def emulator_factory(tmp_path_factory):
    """emulator_factory(scale=0, seed=1, tenant=None, extra_args=(), **knobs)
    -> a fresh Emulator; every one started is stopped at session end (or
    call .stop() earlier)."""
    started = []

    def factory(scale=0, seed=1, tenant=None, extra_args=(), **knobs):
        state = tmp_path_factory.mktemp("emu-s%d-" % scale)
        emu = start_emulator(state, scale=scale, seed=seed, tenant=tenant,
                             extra_args=extra_args, **knobs)
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture(scope="module")
def emulator(emulator_factory):
    """A scale-0 emulator, fresh for each test module."""
    emu = emulator_factory(scale=0)
    yield emu
    emu.stop()
