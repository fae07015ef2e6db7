"""TLS terminator: tls_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT CERT KEY.

Accepts TLS on 0.0.0.0:LISTEN_PORT and pipes the plain bytes to TARGET_HOST:TARGET_PORT
(matrixhs has no TLS federation listener of its own yet)."""

import asyncio
import contextlib
import ssl
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main() -> None:
    port, host, tport, cert, key = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        sys.argv[4],
        sys.argv[5],
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(host, tport)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))

    # Inside the test container: Complement reaches it through the container network.
    server = await asyncio.start_server(handle, "0.0.0.0", int(port), ssl=ctx)  # noqa: S104
    async with server:
        await server.serve_forever()


asyncio.run(main())
