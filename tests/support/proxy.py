"""A loopback TCP proxy that can refuse connections for a while: a database going down and
coming back, as the workers see it over the network; or hold each new connection for a moment
(``delay``): a database a little far away, so that a rotation takes long enough to watch."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class FlakyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, delay: float = 0.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._down_until = 0.0
        self._refuse_next = 0
        self._closed = threading.Event()
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True, name="flaky-proxy").start()

    def down_for(self, seconds: float) -> None:
        """Refuse every new connection for ``seconds`` (established ones carry on)."""
        self._down_until = time.monotonic() + seconds

    def refuse_next(self, connections: int) -> None:
        """Refuse the next ``connections`` new connections, then accept again."""
        self._refuse_next = connections

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until or self._refuse_next > 0:
                self._refuse_next = max(0, self._refuse_next - 1)
                self.refused += 1
                client.close()
                continue
            if self.delay:
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()
            else:
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        time.sleep(self.delay)
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
