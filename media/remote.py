"""Media of other servers.

Fetching them (GET /_matrix/federation/v1/media/download/{mediaId} on the origin, then a
Media row with the copy) comes with the federation client. Until then a request for a
remote mxc:// that is not cached answers 404 M_NOT_FOUND, as the spec allows a server
that cannot reach the origin.
"""

from __future__ import annotations

from matrixhs.errors import NotFound
from media.models import Media


def fetch_remote_media(server_name: str, media_id: str) -> Media:
    """The cached copy of ``mxc://server_name/media_id``, fetched from its origin.

    Raises:
        NotFound: it cannot be fetched (no federation client yet).
    """
    raise NotFound(f"Remote media mxc://{server_name}/{media_id} is not available")
