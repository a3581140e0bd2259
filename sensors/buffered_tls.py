"""TLS over a blocking socket that reads many TLS records per system call.

An ``ssl.SSLSocket`` returns one TLS record per ``recv`` and reads each record with two
``read`` calls of its own. Mosquitto writes every PUBACK as a record of its own, so a
publisher over an ``SSLSocket`` made two system calls per acknowledged message: measured by
bench/bridge_throughput.py, TLS tripled the load generator's CPU per reading (2.5 to 7.2
CPU-seconds per million). Here the socket is read in large chunks into a memory BIO and every
complete record decrypted from it at once, as asyncio's own TLS transport does.
"""

from __future__ import annotations

import socket
import ssl

_CHUNK = 1 << 16


class BufferedTlsSocket:
    """The part of a socket's interface the MQTT publishers use, over TLS."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._read_socket()
        self._flush()

    def fileno(self) -> int:
        return self._sock.fileno()

    def pending(self) -> int:
        """Bytes read from the socket and not yet decrypted: select() cannot see them."""
        return self._incoming.pending

    def sendall(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:  # a write may take only part of it (one record's worth)
            view = view[self._tls.write(view) :]
            self._flush()

    def recv(self, _bufsize: int) -> bytes:
        """Every byte decrypted from what was already read, else what one socket read brings
        (blocking, within the socket's timeout); b"" once the peer has closed."""
        while True:
            data = self._decrypt_available()
            if data or self._incoming.eof:
                return data
            if not self._read_socket():
                return b""

    def close(self) -> None:
        self._sock.close()

    def _decrypt_available(self) -> bytes:
        parts: list[bytes] = []
        while True:
            try:
                parts.append(self._tls.read(_CHUNK))
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the peer's close_notify
                self._incoming.write_eof()
                break
        self._flush()  # reading may answer the peer (TLS 1.3 key update)
        return b"".join(parts)

    def _read_socket(self) -> bool:
        data = self._sock.recv(_CHUNK)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._sock.sendall(pending)
