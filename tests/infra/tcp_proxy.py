"""A tiny TCP forwarder the tests can cut, to make "the database is stopped" real.

The gunicorns reach MariaDB only through it. Stopping it closes its listener
and every connection it carries, so the app sees exactly what a stopped
database gives it (refused connects, dropped sessions) while the machine's
shared MariaDB keeps serving the other tests running at the same time.
"""

import contextlib
import socket
import threading


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``target`` until :meth:`stop`; :meth:`start` again reuses the port."""

    def __init__(self, target_host, target_port):
        """Prepare a proxy to ``target_host:target_port`` on a free local port."""
        self.target = (target_host, target_port)
        self.port = None
        self.listener = None
        self.connections = set()
        self.lock = threading.Lock()

    def start(self):
        """Listen (on the same port as before, if there was one) and forward in threads."""
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port or 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self):
        """Close the listener and cut every open connection."""
        # shutdown wakes the thread blocked in accept(); close alone would not.
        self._close(self.listener)
        with self.lock:
            for connection in self.connections:
                self._close(connection)
            self.connections.clear()

    def _accept(self, listener):
        """Accept clients until the listener closes; pair each with an upstream connection."""
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source, sink):
        """Copy bytes one way until either side closes."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    @staticmethod
    def _close(connection):
        """Shut a socket down both ways and close it, ignoring one already closed."""
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
        connection.close()
