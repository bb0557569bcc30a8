#!/usr/bin/python3
"""Microsoft Graph + Entra ID emulator for m365fs tests (see README.md).

/usr/bin/python3 tests/emulator/emulator.py --state DIR [--scale N|--tenant
edge] [--seed S] [--listen 127.0.0.1] [--files-listen 127.0.0.2] [--port 0]
[--files-port 0] [--control-port 0] [--ready-file FILE]
[--token-lifetime SECONDS] [--extra-names a,b]
"""
import argparse
import asyncio
import datetime
import importlib
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import core  # noqa: E402
from core import EMU  # noqa: E402

OPTIONAL_MODULES = ["entra", "mail"]
OWN_MODULES = ["tenant", "files", "directory", "control", "batch"]


def _write_private(path, data):
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def ensure_certs(state, names):
    """Test CA (state/ca.pem) and a server certificate for NAMES."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_pem = os.path.join(state, "ca.pem")
    ca_key_pem = os.path.join(state, "ca-key.pem")
    now = datetime.datetime.utcnow()
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    noenc = serialization.NoEncryption()
    if os.path.exists(ca_pem) and os.path.exists(ca_key_pem):
        with open(ca_pem, "rb") as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        with open(ca_key_pem, "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "m365fs emulator test CA")])
        ca_cert = (x509.CertificateBuilder().subject_name(subj)
                   .issuer_name(subj).public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True,
                                                        path_length=0), True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, key_cert_sign=True,
                       crl_sign=True, content_commitment=False,
                       key_encipherment=False, data_encipherment=False,
                       key_agreement=False, encipher_only=False,
                       decipher_only=False), True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                       ca_key.public_key()), False)
                   .sign(ca_key, hashes.SHA256()))
        _write_private(ca_key_pem, ca_key.private_bytes(pem, pkcs8, noenc))
        with open(ca_pem, "wb") as f:
            f.write(ca_cert.public_bytes(pem))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, "m365fs emulator")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           True)
            .add_extension(x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256()))
    cert_file = os.path.join(state, "server.pem")
    key_file = os.path.join(state, "server-key.pem")
    _write_private(key_file, key.private_bytes(pem, pkcs8, noenc))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return ca_pem, cert_file, key_file


def bind(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit it: no 40 ms Nagle + delayed-ACK stalls
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((addr, port))
    s.listen(1024)
    s.setblocking(False)
    return s


def load_modules():
    for name in OWN_MODULES:
        EMU.modules[name] = importlib.import_module(name)
    for name in OPTIONAL_MODULES:
        try:
            EMU.modules[name] = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            print("emulator: module '%s' not present, skipped" % name,
                  file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", required=True)
    ap.add_argument("--scale", type=int, default=0)
    ap.add_argument("--tenant", default=None, help="'edge' for edge cases")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--files-listen", default="127.0.0.2")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--files-port", type=int, default=None,
                    help="default: --port when it is not 0, else ephemeral")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--control-listen", default=None)
    ap.add_argument("--ready-file", default=None)
    ap.add_argument("--token-lifetime", type=int, default=None)
    ap.add_argument("--extra-names", default="")
    ap.add_argument("--public-graph-url", default=None,
                    help="base URL put into links instead of the bound one")
    ap.add_argument("--public-files-url", default=None)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)

    os.makedirs(a.state, exist_ok=True)
    EMU.state_dir = os.path.abspath(a.state)
    if a.token_lifetime is not None:
        EMU.knobs["token_lifetime"] = a.token_lifetime
    extra = [n for n in a.extra_names.split(",") if n]
    names = ["127.0.0.1", "127.0.0.2", "localhost", a.listen, a.files_listen]
    names = list(dict.fromkeys(names + extra))
    ca_file, cert_file, key_file = ensure_certs(EMU.state_dir, names)

    gsock = bind(a.listen, a.port)
    files_port = a.files_port if a.files_port is not None else a.port
    fsock = bind(a.files_listen, files_port)
    csock = bind(a.control_listen or a.listen, a.control_port)
    gport, fport, cport = (s.getsockname()[1] for s in (gsock, fsock, csock))

    def hostport(addr, port, scheme="https"):
        default = 443 if scheme == "https" else 80
        return "%s://%s%s" % (scheme, addr,
                              "" if port == default else ":%d" % port)

    EMU.urls["graph"] = a.public_graph_url or hostport(a.listen, gport)
    EMU.urls["login"] = EMU.urls["graph"]
    EMU.urls["files"] = a.public_files_url or hostport(a.files_listen, fport)
    EMU.urls["control"] = hostport(a.control_listen or a.listen, cport,
                                   "http")
    EMU.ca_file = ca_file

    t0 = time.time()
    load_modules()
    tenant_mod = EMU.modules["tenant"]
    EMU.tenant = tenant_mod.generate(scale=a.scale, seed=a.seed,
                                     kind=a.tenant, state_dir=EMU.state_dir)
    apps = {}
    if "mail" in EMU.modules:
        import random
        EMU.modules["mail"].generate(EMU.tenant,
                                     random.Random("mail:%d:%d" %
                                                   (a.seed, a.scale)),
                                     a.scale)
    if "entra" in EMU.modules:
        apps = EMU.modules["entra"].setup(EMU.tenant, EMU.state_dir) or {}
    gen_seconds = time.time() - t0

    ready = {
        "graph_url": EMU.urls["graph"],
        "login_url": EMU.urls["login"],
        "files_url": EMU.urls["files"],
        "control_url": EMU.urls["control"],
        "ca_file": ca_file,
        "tenant_id": EMU.tenant.id,
        "tenant_domain": EMU.tenant.domain,
        "apps": apps,
        "admin_user": getattr(EMU.tenant, "admin_upn",
                              "admin@" + EMU.tenant.domain),
        "pid": os.getpid(),
        "graph_port": gport,
        "files_port": fport,
        "control_port": cport,
        "state_dir": EMU.state_dir,
        "scale": a.scale,
        "seed": a.seed,
        "tenant_kind": a.tenant or "standard",
        "modules": sorted(EMU.modules),
        "generate_seconds": round(gen_seconds, 3),
    }

    from hypercorn.config import Config, Sockets
    from hypercorn.asyncio.run import worker_serve
    import transport

    # EMU_H2_TUNE=0: hypercorn's own HTTP/2 buffers and windows (to compare)
    transport.install(speed=os.environ.get("EMU_H2_TUNE", "1") != "0")

    cfg = Config()
    cfg.certfile = cert_file
    cfg.keyfile = key_file
    cfg.alpn_protocols = ["h2", "http/1.1"]
    cfg.keep_alive_timeout = 75
    cfg.graceful_timeout = 1
    cfg.h11_max_incomplete_size = 64 * 1024
    cfg.h2_max_inbound_frame_size = 1 << 20
    cfg.accesslog = None
    cfg.loglevel = "INFO" if a.verbose else "WARNING"
    logging.getLogger("hypercorn.error").setLevel(
        logging.INFO if a.verbose else logging.CRITICAL)
    sockets = Sockets([gsock, fsock], [csock], [])
    addr_kind = {}
    for s, kind in ((gsock, "graph"), (fsock, "files"), (csock, "control")):
        addr_kind[s.getsockname()] = kind

    def host_of(scope):
        server = scope.get("server")
        if server:
            k = addr_kind.get((server[0], server[1]))
            if k:
                return k
        return "graph"

    app = core.make_app(host_of)
    stop = asyncio.Event()

    async def run():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def announce():
            await asyncio.sleep(0.05)
            if a.ready_file:
                tmp = a.ready_file + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(ready, f, indent=1)
                os.replace(tmp, a.ready_file)
            print("emulator: ready graph %s files %s control %s (%.2fs "
                  "generation)" % (EMU.urls["graph"], EMU.urls["files"],
                                   EMU.urls["control"], gen_seconds),
                  file=sys.stderr, flush=True)

        loop.create_task(announce())
        await worker_serve(app, cfg, sockets=sockets, shutdown_trigger=stop.wait)

    EMU.stop_event = stop
    asyncio.run(run())
    tenant_mod.save_cache(EMU.tenant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
