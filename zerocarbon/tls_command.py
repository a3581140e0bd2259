"""`zerocarbon tls issue`: the certificate authority and the brokers' certificate of a deployment
apart from the local stack (docker/compose.yaml's one-shot `tls`), handed over to each
container that reads them.

The same CA and certificate as `zerocarbon stack up` makes (stack/certificate_authority.py):
the CA once, in ZC_STACK_HOME/tls, whose key never leaves that folder; the server certificate
issued again only when its names change or it nears its end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from config.settings import Settings
from stack.certificate_authority import deliver, ensure_server_certificate, tls_dir

HELP = "make the CA once and the brokers' certificate, and copy them where brokers and clients read them"
DESCRIPTION = (
    "For brokers deployed apart (docker/compose.yaml): make the certificate authority in "
    "ZC_STACK_HOME/tls if there is none, and a server certificate for every --name (localhost and "
    "127.0.0.1 always), issued again only when the names change or fewer than 30 days are left. "
    "Then copy, for each --deliver-server DIR:UID:GID, the CA certificate, the server's "
    "certificate, its key and Kafka's PEM keystore into DIR, owned by UID:GID (keys 0600); and for "
    "each --deliver-ca DIR, the CA certificate only, which clients trust (ZC_TLS_CA_FILE). The CA's "
    "key is never copied. A broker reads its certificate when it starts: restart it after a new one. "
    "See docs/security.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["issue"])
    parser.add_argument(
        "--name",
        action="append",
        required=True,
        help="a host name or IP address clients reach the brokers at (repeat it)",
    )
    parser.add_argument(
        "--deliver-server",
        action="append",
        default=[],
        type=_delivery,
        metavar="DIR:UID:GID",
        help="a broker's folder: CA certificate, server certificate, key and keystore (repeat it)",
    )
    parser.add_argument(
        "--deliver-ca",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="the clients' folder: the CA certificate only (repeat it)",
    )


def _delivery(value: str) -> tuple[Path, tuple[int, int]]:
    folder, _, owner = value.rpartition(":")
    folder, _, uid = folder.rpartition(":")
    if not folder or not uid.isdigit() or not owner.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not DIR:UID:GID (e.g. /deliver/kafka:1000:1000)")
    return Path(folder), (int(uid), int(owner))


def run(args: argparse.Namespace, settings: Settings) -> int:
    cert = ensure_server_certificate(settings.stack_home, tuple(args.name))
    copied = [path for to, owner in args.deliver_server for path in deliver(cert, to, owner, server=True)]
    copied += [path for to in args.deliver_ca for path in deliver(cert, to, None, server=False)]
    print(f"[tls] CA in {tls_dir(settings.stack_home)}; server certificate for {', '.join(args.name)}")
    if copied:
        print(f"[tls] copied {', '.join(map(str, copied))}: a running broker reads them when it restarts")
    return 0
