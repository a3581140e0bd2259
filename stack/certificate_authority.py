"""The local stack's certificate authority: made once by ``stack up``, kept under its home.

Kafka's client listener (SASL_SSL) and Mosquitto's TLS listener present a server certificate
signed by this CA; every client of ours trusts ``ca.crt`` and nothing else. The CA's key never
leaves ``<stack home>/tls`` (folder 0700, keys 0600). The server certificate is issued again
when the names it must carry change (a new ``bind_host`` or broker host) or when it has less
than 30 days left; the CA itself lasts ten years and is never replaced silently: deleting the
folder is how an operator rotates it (every client must then be given the new ``ca.crt``).

openssl's command line does the cryptography (Debian's ``openssl`` package), so no Python
cryptography library is needed. Keys are EC P-256: the handshakes stay cheap.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stack.debian_packages import ensure_packages
from stack.errors import StackError
from stack.secret_files import write_secret
from stack.service import write_if_changed

OPENSSL = "/usr/bin/openssl"
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients accept for a server certificate
RENEW_WITHIN_SECONDS = 30 * 86_400


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """What a TLS listener is given: its key and certificate, and the CA clients trust."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    keystore_file: Path  # key then certificate in one PEM file: Kafka's PEM keystore


def tls_dir(stack_home: Path) -> Path:
    return stack_home / "tls"


def ca_file(stack_home: Path) -> Path:
    """The CA certificate every client of the local stack trusts."""
    return tls_dir(stack_home) / "ca.crt"


def ensure_server_certificate(stack_home: Path, names: tuple[str, ...]) -> ServerCertificate:
    """The CA (made if missing) and a server certificate valid for ``names`` (host names and
    IP addresses), issued again only when it lacks one of them or is about to expire."""
    ensure_packages({"openssl": OPENSSL})
    folder = tls_dir(stack_home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_key, ca_cert = folder / "ca.key", ca_file(stack_home)
    if not (ca_key.exists() and ca_cert.exists()):
        _make_ca(ca_key, ca_cert)
    cert = ServerCertificate(
        ca_file=ca_cert,
        cert_file=folder / "server.crt",
        key_file=folder / "server.key",
        keystore_file=folder / "server-keystore.pem",
    )
    wanted = sorted(set(names) | {"localhost", "127.0.0.1"})
    names_file = folder / "server.names"
    current = (
        cert.cert_file.exists()
        and cert.keystore_file.exists()
        and names_file.exists()
        and names_file.read_text(encoding="utf-8").split() == wanted
        and _valid_beyond(cert.cert_file, RENEW_WITHIN_SECONDS)
        and _signed_by(cert.cert_file, ca_cert)
    )
    if not current:
        _issue_server(ca_key, ca_cert, cert, wanted)
        names_file.write_text(" ".join(wanted) + "\n", encoding="utf-8")
    return cert


def deliver(cert: ServerCertificate, folder: Path, owner: tuple[int, int] | None, server: bool) -> list[Path]:
    """Copy ``ca.crt`` into ``folder`` for processes that run elsewhere (another container),
    and with ``server`` the server's certificate, key and PEM keystore too: keys 0600 in a
    folder 0700, certificates 0644, all owned by ``owner`` (uid, gid) when given. The CA's
    key is never copied. Files already up to date are left as they are; the copies made."""
    folder.mkdir(parents=True, exist_ok=True)
    public = [cert.ca_file, cert.cert_file] if server else [cert.ca_file]
    secret = [cert.key_file, cert.keystore_file] if server else []
    copied = []
    for source in [*public, *secret]:
        target = folder / source.name
        text = source.read_text(encoding="utf-8")
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            copied.append(target)
        if source in secret:
            write_secret(target, text)
        else:
            write_if_changed(target, text)
            target.chmod(0o644)
        if owner is not None:
            os.chown(target, *owner)
    if owner is not None:
        os.chown(folder, *owner)
    return copied


def _openssl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"openssl {args[0]} failed (exit {result.returncode}): {result.stderr.strip()[-1500:]}"
        )
    return result.stdout


def _make_ca(key: Path, cert: Path) -> None:
    print(f"[stack] creating the local certificate authority in {key.parent}", flush=True)
    with tempfile.TemporaryDirectory(dir=key.parent) as work:
        new_key, new_cert = Path(work) / "ca.key", Path(work) / "ca.crt"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(new_key), "-out", str(new_cert), "-days", str(CA_DAYS),
            "-subj", "/O=zerocarbon local stack/CN=zerocarbon local CA",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        write_secret(key, new_key.read_text(encoding="utf-8"))
        cert.write_text(new_cert.read_text(encoding="utf-8"), encoding="utf-8")
        cert.chmod(0o644)


def _subject_alt_names(names: list[str]) -> str:
    entries = []
    for name in names:
        try:
            entries.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            entries.append(f"DNS:{name}")
    return ",".join(entries)


def _issue_server(ca_key: Path, ca_cert: Path, cert: ServerCertificate, names: list[str]) -> None:
    print(f"[stack] issuing the brokers' TLS certificate for {', '.join(names)}", flush=True)
    with tempfile.TemporaryDirectory(dir=cert.key_file.parent) as work:
        key, request, signed = Path(work) / "k.pem", Path(work) / "r.csr", Path(work) / "c.pem"
        extensions = Path(work) / "ext.cnf"
        extensions.write_text(
            f"subjectAltName={_subject_alt_names(names)}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n",
            encoding="utf-8",
        )
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(request), "-subj", f"/O=zerocarbon local stack/CN={names[0]}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-CAserial", str(Path(work) / "ca.srl"), "-out", str(signed),
            "-days", str(SERVER_DAYS), "-extfile", str(extensions),
        )  # fmt: skip
        key_text, cert_text = key.read_text(encoding="utf-8"), signed.read_text(encoding="utf-8")
    # PKCS#8 key (openssl 3 writes it so), then the certificate: Kafka's PEM keystore format.
    write_secret(cert.key_file, key_text)
    write_secret(cert.keystore_file, key_text + cert_text)
    cert.cert_file.write_text(cert_text, encoding="utf-8")
    cert.cert_file.chmod(0o644)


def _valid_beyond(cert: Path, seconds: int) -> bool:
    result = subprocess.run(
        [OPENSSL, "x509", "-checkend", str(seconds), "-noout", "-in", str(cert)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _signed_by(cert: Path, ca_cert: Path) -> bool:
    result = subprocess.run(
        [OPENSSL, "verify", "-CAfile", str(ca_cert), str(cert)], capture_output=True, check=False
    )
    return result.returncode == 0
