"""TLS over a socket, read many records at a time: what the publishers send and receive is
exactly what crossed the connection, however the peer cut it into records."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.tls import client_tls_context
from sensors.buffered_tls import BufferedTlsSocket
from stack.certificate_authority import ServerCertificate, ensure_server_certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return ensure_server_certificate(tmp_path_factory.mktemp("tls"), ("localhost", "127.0.0.1"))


@pytest.fixture
def serve(certificate: ServerCertificate) -> Iterator[Callable[[Callable[[ssl.SSLSocket], None]], int]]:
    """Run ``peer`` on one TLS connection accepted on a free loopback port; return the port."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(peer: Callable[[ssl.SSLSocket], None]) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def accept() -> None:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                peer(tls)

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for thread in threads:
        thread.join(timeout=10)
    for listener in listeners:
        listener.close()


def _connect(port: int, certificate: ServerCertificate) -> BufferedTlsSocket:
    tcp = socket.create_connection(("127.0.0.1", port), timeout=10)
    return BufferedTlsSocket(tcp, client_tls_context(certificate.ca_file), "localhost")


def test_many_small_records_come_back_whole_in_few_reads(
    serve: Callable[[Callable[[ssl.SSLSocket], None]], int], certificate: ServerCertificate
) -> None:
    """A broker writing one record per 4-byte PUBACK: every byte arrives, in order, and reads
    are not one per record."""
    records = [bytes([0x40, 0x02, k >> 8, k & 0xFF]) for k in range(2000)]
    ready = threading.Event()

    def peer(tls: ssl.SSLSocket) -> None:
        for record in records:
            tls.sendall(record)  # one TLS record each
        ready.set()
        tls.recv(1)  # hold the connection until the client has read everything

    client = _connect(serve(peer), certificate)
    try:
        assert ready.wait(10)
        received, reads = b"", 0
        while len(received) < 4 * len(records):
            received += client.recv(1 << 16)
            reads += 1
        assert received == b"".join(records)
        assert reads < len(records) // 10, reads
        client.sendall(b"x")
    finally:
        client.close()


def test_what_is_sent_reaches_the_peer_and_a_close_reads_as_empty(
    serve: Callable[[Callable[[ssl.SSLSocket], None]], int], certificate: ServerCertificate
) -> None:
    got: list[bytes] = []

    def peer(tls: ssl.SSLSocket) -> None:
        data = b""
        while len(data) < 100_000:
            data += tls.recv(1 << 16)
        got.append(data)
        tls.sendall(b"bye")

    client = _connect(serve(peer), certificate)
    try:
        payload = bytes(range(256)) * 400
        client.sendall(payload[:100_000])
        assert client.recv(1 << 16) == b"bye"
        assert client.recv(1 << 16) == b""  # the peer closed
    finally:
        client.close()
    assert got == [payload[:100_000]]


def test_a_server_another_ca_signed_is_refused(tmp_path: Path) -> None:
    stranger = ensure_server_certificate(tmp_path / "stranger", ("localhost",))
    trusted = ensure_server_certificate(tmp_path / "ours", ("localhost",))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(stranger.cert_file, stranger.key_file)
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            _connect(int(listener.getsockname()[1]), trusted)
    finally:
        thread.join(timeout=10)
        listener.close()
