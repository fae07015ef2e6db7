"""matrix-nio against the real server process: media upload, download and thumbnails.

Alice uploads a real PNG and a 200 MB file (streamed from disk); Bob downloads both
byte-identical (the large one straight to disk), gets a thumbnail of the right size, and
a request without a token is refused. Embedded mode, local media storage.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nio
import pytest
from PIL import Image

from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e

LARGE = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        tmp_path_factory.mktemp("hs"), MATRIXHS_MAX_UPLOAD_BYTES=str(LARGE + 1024 * 1024)
    ).start()
    try:
        yield running
    finally:
        running.stop()


def _png() -> bytes:
    image = Image.new("RGB", (1200, 900))
    image.putdata([(x % 256, y % 256, (x + y) % 256) for y in range(900) for x in range(1200)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _large_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(LARGE // (1024 * 1024)):
            block = i.to_bytes(4, "big") + os.urandom(1024 * 1024 - 4)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


async def _client(server: RunningServer, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(server.base_url, name)
    registered = await client.register(name, "media-password-1")
    assert isinstance(registered, nio.RegisterResponse), registered
    return client


async def _media_round_trip(server: RunningServer, tmp: Path) -> str:
    alice, bob = await _client(server, "alice"), await _client(server, "bob")
    try:
        png = _png()
        uploaded, _ = await alice.upload(
            io.BytesIO(png), content_type="image/png", filename="picture.png", filesize=len(png)
        )
        assert isinstance(uploaded, nio.UploadResponse), uploaded
        png_mxc = uploaded.content_uri

        large_path, large_sha = tmp / "large.bin", _large_file(tmp / "large.bin")
        with large_path.open("rb") as source:
            uploaded, _ = await alice.upload(
                source,
                content_type="application/octet-stream",
                filename="large.bin",
                filesize=LARGE,
            )
        assert isinstance(uploaded, nio.UploadResponse), uploaded
        large_mxc = uploaded.content_uri

        got = await bob.download(mxc=png_mxc)
        assert isinstance(got, nio.MemoryDownloadResponse), got
        assert (got.body, got.content_type, got.filename) == (png, "image/png", "picture.png")

        saved = tmp / "downloaded.bin"
        got = await bob.download(mxc=large_mxc, save_to=saved)
        assert isinstance(got, nio.DiskDownloadResponse), got
        digest = hashlib.sha256()
        with saved.open("rb") as downloaded:
            while block := downloaded.read(1024 * 1024):
                digest.update(block)
        assert digest.hexdigest() == large_sha

        server_name, media_id = png_mxc[len("mxc://") :].split("/")
        thumb = await bob.thumbnail(server_name, media_id, 320, 240, nio.ResizingMethod.scale)
        assert isinstance(thumb, nio.ThumbnailResponse), thumb
        assert thumb.content_type == "image/png"
        assert Image.open(io.BytesIO(thumb.body)).size == (320, 240)
        thumb = await bob.thumbnail(server_name, media_id, 96, 96, nio.ResizingMethod.crop)
        assert isinstance(thumb, nio.ThumbnailResponse), thumb
        assert Image.open(io.BytesIO(thumb.body)).size == (96, 96)
    finally:
        await alice.close()
        await bob.close()
    return png_mxc


def test_nio_uploads_and_another_user_downloads(
    media_server: RunningServer, tmp_path: Path
) -> None:
    png_mxc = asyncio.run(_media_round_trip(media_server, tmp_path))
    mxc = png_mxc[len("mxc://") :]
    anonymous = httpx.get(f"{media_server.base_url}/_matrix/client/v1/media/download/{mxc}")
    assert (anonymous.status_code, anonymous.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    legacy = httpx.get(f"{media_server.base_url}/_matrix/media/v3/download/{mxc}")
    assert (legacy.status_code, legacy.json()["errcode"]) == (404, "M_NOT_FOUND")


def _stored(server: RunningServer) -> set[Path]:
    return {p for p in (server.data_dir / "media").rglob("*") if p.is_file()}


def test_upload_cut_off_midway_leaves_nothing(media_server: RunningServer) -> None:
    token = httpx.post(
        f"{media_server.base_url}/_matrix/client/v3/register",
        json={
            "username": "carol",
            "password": "media-password-1",
            "auth": {"type": "m.login.dummy"},
        },
    ).json()["access_token"]
    before = _stored(media_server)
    with socket.create_connection(("127.0.0.1", media_server.port)) as sock:
        sock.sendall(
            (
                "POST /_matrix/media/v3/upload HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"Content-Length: {20 * 1024 * 1024}\r\n\r\n"
            ).encode()
        )
        for _ in range(5):
            sock.sendall(os.urandom(1024 * 1024))
    time.sleep(1)  # the server notices the disconnect
    assert _stored(media_server) == before
    done = httpx.post(
        f"{media_server.base_url}/_matrix/media/v3/upload",
        content=b"after",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert done.status_code == 200, done.text
