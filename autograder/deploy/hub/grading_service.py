"""Start the course's grading server (formgrader) as a JupyterHub managed service that answers at once.

JupyterHub gives a managed service ten seconds to answer HTTP at start-up and exits if it does
not; the grading server (JupyterLab + nbgrader) needs 5-15 s to start on a small or busy
machine. So the service is this launcher: it starts ``jupyterhub-singleuser`` on a free local
port and listens on the service's own address at once, passing every connection through to the
server byte for byte (HTTP and WebSockets alike). Until the server is up, a connection gets
``404 grading server starting`` (JupyterHub counts any answer below 500 as "up"). When the
server exits, the launcher exits with its status, and JupyterHub restarts the service.

Usage (``jupyterhub_config.py``): ``python grading_service.py <jupyterhub-singleuser> [args]``,
with the environment JupyterHub gives a service. Standard library only: it starts in ~50 ms.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from urllib.parse import urlsplit, urlunsplit

STARTING = (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: 56\r\n\r\nThe grading server is starting: reload in a few seconds.")
CHUNK = 1 << 16


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from ``reader`` to ``writer`` until either side closes."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def serve(command: list[str]) -> int:
    public = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])      # where JupyterHub looks for us
    host, inner = public.hostname, free_port(public.hostname)
    env = {**os.environ, "JUPYTERHUB_SERVICE_URL": urlunsplit(public._replace(netloc=f"{host}:{inner}"))}
    server = await asyncio.create_subprocess_exec(*command, env=env)

    async def forward(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, inner)
        except OSError:                  # not listening yet
            client_w.write(STARTING)
            await client_w.drain()
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    listener = await asyncio.start_server(forward, host, public.port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.terminate)
    async with listener:
        return await server.wait()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: grading_service.py <jupyterhub-singleuser> [args]")
    sys.exit(asyncio.run(serve(sys.argv[1:])))
