"""Media upload/download throughput and the server's peak memory during a large upload.

For each ASGI server (uvicorn, daphne) it starts `manage.py serve` (embedded mode unless
DATABASE_URL is set), registers a user, then:

- uploads SIZE MB of random bytes (streamed by the client, never held whole) and reports
  MB/s and the server process's resident memory: before, and the peak while uploading
  (sampled from /proc every 20 ms);
- downloads it as another user, checks the SHA-256, reports MB/s and the peak memory
  while downloading; then downloads it once more reading slowly (a slow client), to see
  whether the server buffers what the client has not read yet.

    .venv/bin/python bench/media_bench.py [--size-mb 200] [--asgi uvicorn,daphne]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.server import RunningServer

CHUNK = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples a process's RSS in a thread until stopped; the highest value seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def random_body(size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    block = os.urandom(CHUNK)
    sent = 0
    while sent < size:
        # Vary each chunk a little so the content is not one block repeated.
        chunk = (sent.to_bytes(8, "big") + block)[: min(CHUNK, size - sent)]
        digest.update(chunk)
        sent += len(chunk)
        yield chunk


def register(client: httpx.Client, name: str) -> str:
    body = {"username": name, "password": "bench-password-1", "auth": {"type": "m.login.dummy"}}
    resp = client.post("/_matrix/client/v3/register", json=body)
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def run(asgi: str, size_mb: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix=f"media-bench-{asgi}-"))
    server = RunningServer(
        data_dir,
        MATRIXHS_ASGI_SERVER=asgi,
        MATRIXHS_MAX_UPLOAD_BYTES=str((size_mb + 1) * 1024 * 1024),
        MATRIXHS_LOG_LEVEL="WARNING",
    ).start()
    assert server.process is not None
    pid = server.process.pid
    size = size_mb * 1024 * 1024
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            alice, bob = register(client, "alice"), register(client, "bob")
            idle = rss_mb(pid)
            sent = hashlib.sha256()
            with PeakRss(pid) as upload_peak:
                start = time.perf_counter()
                resp = client.post(
                    "/_matrix/media/v3/upload?filename=big.bin",
                    content=random_body(size, sent),
                    headers={
                        "Authorization": f"Bearer {alice}",
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                )
                upload_s = time.perf_counter() - start
            resp.raise_for_status()
            mxc = resp.json()["content_uri"][len("mxc://") :]
            url = f"/_matrix/client/v1/media/download/{mxc}"
            headers = {"Authorization": f"Bearer {bob}"}

            got = hashlib.sha256()
            with PeakRss(pid) as download_peak:
                start = time.perf_counter()
                with client.stream("GET", url, headers=headers) as stream:
                    stream.raise_for_status()
                    for chunk in stream.iter_raw(CHUNK):
                        got.update(chunk)
                download_s = time.perf_counter() - start
            assert got.hexdigest() == sent.hexdigest(), "download differs from upload"

            # A slow reader: 64 KiB every 2 ms (~32 MB/s) for the first 64 MB.
            with PeakRss(pid) as slow_peak:
                with client.stream("GET", url, headers=headers) as stream:
                    read = 0
                    for chunk in stream.iter_raw(65536):
                        read += len(chunk)
                        if read > 64 * 1024 * 1024:
                            break
                        time.sleep(0.002)
    finally:
        server.stop()
    print(
        f"{asgi:8s} {size_mb} MB: upload {size_mb / upload_s:7.1f} MB/s, "
        f"download {size_mb / download_s:7.1f} MB/s | server RSS idle {idle:.0f} MB, "
        f"peak during upload {upload_peak.peak:.0f} MB, during download "
        f"{download_peak.peak:.0f} MB, during a slow download {slow_peak.peak:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--asgi", default="uvicorn,daphne")
    args = parser.parse_args()
    for asgi in args.asgi.split(","):
        run(asgi.strip(), args.size_mb)


if __name__ == "__main__":
    main()
