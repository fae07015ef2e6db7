"""Settings for matrixhs, all read from the environment (README: "Configuration").

With no variable set the server runs embedded: SQLite in WAL mode under the data dir,
an in-process channel layer, a local-memory cache and background work drained by
``manage.py serve``. ``DATABASE_URL`` and ``REDIS_URL`` switch to the scaled mode.
This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from matrixhs.files import read_or_create
from matrixhs.protocol.room_versions import DEFAULT_ROOM_VERSION, IMPLEMENTED_ROOM_VERSIONS

T = TypeVar("T")

BASE_DIR = Path(__file__).resolve().parent.parent


#: Settings read from files (``NAME_FILE``): name -> path (`manage.py check_deploy`).
_secret_files: dict[str, str] = {}


def _raw(name: str) -> str | None:
    """The value of ``name``, or the contents of the file named by ``name_FILE``."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        _secret_files[name] = path
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return None


def _env(name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r}: {exc}") from exc


def env_str(name: str, default: str) -> str:
    return _env(name, default, str)


def env_int(name: str, default: int) -> int:
    return _env(name, default, int)


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def env_bool(name: str, default: bool) -> bool:
    return _env(name, default, _parse_bool)


def _parse_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return raw

    return parse


def _parse_rate(raw: str) -> tuple[int, int]:
    """``"count/seconds"`` -> (count, seconds)."""
    count, sep, seconds = raw.partition("/")
    if not sep or int(count) < 1 or int(seconds) < 1:
        raise ValueError("expected COUNT/SECONDS, e.g. 10/60")
    return int(count), int(seconds)


def _parse_bind(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not host:
        raise ValueError("expected HOST:PORT")
    return host.strip("[]"), int(port)


def _parse_positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected a positive number")
    return value


# --- The homeserver -----------------------------------------------------------------------

MATRIXHS_SERVER_NAME = env_str("MATRIXHS_SERVER_NAME", "localhost")
MATRIXHS_BIND = _env("MATRIXHS_BIND", ("127.0.0.1", 8008), _parse_bind)
MATRIXHS_DATA_DIR = Path(env_str("MATRIXHS_DATA_DIR", str(BASE_DIR / "data"))).resolve()
#: The URL clients reach us at, served in /.well-known/matrix/client.
#: /.well-known/matrix/support: the administrator's Matrix ID and email address, and a
#: support page URL (any of them; none: 404).
MATRIXHS_SUPPORT_MXID = env_str("MATRIXHS_SUPPORT_MXID", "")
MATRIXHS_SUPPORT_EMAIL = env_str("MATRIXHS_SUPPORT_EMAIL", "")
MATRIXHS_SUPPORT_PAGE = env_str("MATRIXHS_SUPPORT_PAGE", "")
MATRIXHS_PUBLIC_BASEURL = env_str(
    "MATRIXHS_PUBLIC_BASEURL", f"http://{MATRIXHS_BIND[0]}:{MATRIXHS_BIND[1]}"
).rstrip("/")
#: Whether this server speaks federation (/_matrix/federation, /_matrix/key). Off: those
#: answer 404 M_UNRECOGNIZED, /.well-known/matrix/server 404, and rooms stay local.
MATRIXHS_FEDERATION_ENABLED = env_bool("MATRIXHS_FEDERATION_ENABLED", True)
#: host:port other servers reach us at, served in /.well-known/matrix/server.
MATRIXHS_FEDERATION_ADDRESS = env_str(
    "MATRIXHS_FEDERATION_ADDRESS",
    MATRIXHS_SERVER_NAME if ":" in MATRIXHS_SERVER_NAME else f"{MATRIXHS_SERVER_NAME}:443",
)
#: Backoff of a destination that failed: from this many seconds, doubling up to _MAX_S.
MATRIXHS_FEDERATION_RETRY_MIN_S = env_int("MATRIXHS_FEDERATION_RETRY_MIN_S", 60)
MATRIXHS_FEDERATION_RETRY_MAX_S = env_int("MATRIXHS_FEDERATION_RETRY_MAX_S", 3600)
#: How long a drain holds a federation destination or a pusher (one sender at a time); a
#: worker killed mid-send frees it after this, and the periodic sweep sends again.
MATRIXHS_QUEUE_LEASE_S = env_int("MATRIXHS_QUEUE_LEASE_S", 120)
#: Whether other servers may list our published rooms (GET/POST /federation/v1/publicRooms).
MATRIXHS_ALLOW_PUBLIC_ROOMS_OVER_FEDERATION = env_bool(
    "MATRIXHS_ALLOW_PUBLIC_ROOMS_OVER_FEDERATION", False
)
MATRIXHS_SIGNING_KEY_PATH = Path(
    env_str("MATRIXHS_SIGNING_KEY_PATH", str(MATRIXHS_DATA_DIR / "signing.key"))
)
#: ASGI server used by `manage.py serve`: uvicorn (default, measured faster: bench/http_bench.py)
#: or daphne.
MATRIXHS_ASGI_SERVER = _env("MATRIXHS_ASGI_SERVER", "uvicorn", _parse_choice(("uvicorn", "daphne")))

#: Requests that run their (sync) Django code at once, per process; more wait their turn
#: (matrixhs.asgi_handler). Keep it at most MATRIXHS_DB_POOL_MAX on PostgreSQL, so that
#: a request never waits for a database connection.
MATRIXHS_REQUEST_THREADS = _env("MATRIXHS_REQUEST_THREADS", 16, _parse_positive)

#: The version of rooms created without ``room_version`` (and the one /capabilities
#: names as default). The spec's recommendation unless set; test suites written for
#: older versions may pick one (Complement's configuration uses 10).
MATRIXHS_DEFAULT_ROOM_VERSION = _env(
    "MATRIXHS_DEFAULT_ROOM_VERSION",
    DEFAULT_ROOM_VERSION,
    _parse_choice(tuple(IMPLEMENTED_ROOM_VERSIONS)),
)

# --- Accounts -----------------------------------------------------------------------------

MATRIXHS_REGISTRATION = _env(
    "MATRIXHS_REGISTRATION", "disabled", _parse_choice(("open", "token", "disabled"))
)
MATRIXHS_GUEST_ACCESS = env_bool("MATRIXHS_GUEST_ACCESS", False)
#: Secret of /_synapse/admin/v1/register (shared-secret registration, as Synapse's
#: registration_shared_secret); empty turns that endpoint off. Also from ..._FILE.
MATRIXHS_REGISTRATION_SHARED_SECRET = env_str("MATRIXHS_REGISTRATION_SHARED_SECRET", "")
#: Lifetime of access tokens issued with a refresh token (clients that ask for one).
MATRIXHS_ACCESS_TOKEN_LIFETIME_MS = env_int("MATRIXHS_ACCESS_TOKEN_LIFETIME_MS", 5 * 60 * 1000)
#: POST /login/get_token: signed-in users may make single-use m.login.token tokens
#: (to sign in another client), valid MATRIXHS_LOGIN_TOKEN_LIFETIME_MS.
MATRIXHS_LOGIN_TOKEN_ENABLED = env_bool("MATRIXHS_LOGIN_TOKEN_ENABLED", True)
MATRIXHS_LOGIN_TOKEN_LIFETIME_MS = env_int("MATRIXHS_LOGIN_TOKEN_LIFETIME_MS", 2 * 60 * 1000)
#: How long a User-Interactive Auth session may take.
MATRIXHS_UIA_SESSION_LIFETIME_MS = env_int("MATRIXHS_UIA_SESSION_LIFETIME_MS", 15 * 60 * 1000)
#: Profile lookups (GET /profile/...) need an access token; by default they are public.
MATRIXHS_PROFILE_LOOKUP_REQUIRES_AUTH = env_bool("MATRIXHS_PROFILE_LOOKUP_REQUIRES_AUTH", False)
MATRIXHS_MAX_DISPLAYNAME_LENGTH = 256
MATRIXHS_MAX_AVATAR_URL_LENGTH = 1000
#: Largest JSON request body accepted on the client API (bytes).
MATRIXHS_MAX_REQUEST_BYTES = env_int("MATRIXHS_MAX_REQUEST_BYTES", 10 * 1024 * 1024)
#: Presence (online/unavailable/offline). Off: PUT /presence is accepted but nothing is
#: stored or sent, everyone reads as offline, and /sync has no presence.
MATRIXHS_PRESENCE_ENABLED = env_bool("MATRIXHS_PRESENCE_ENABLED", True)

# --- Push ----------------------------------------------------------------------------------

#: Accept pushers whose push gateway URL is plain http: (local tests only; notifications
#: carry message content and the pushkey).
MATRIXHS_PUSH_ALLOW_HTTP = env_bool("MATRIXHS_PUSH_ALLOW_HTTP", False)
#: Evaluate push rules for every new event (notifications, unread counts, pushes). Off
#: only to measure what evaluation costs (bench/push_bench.py).
MATRIXHS_PUSH_EVALUATION = env_bool("MATRIXHS_PUSH_EVALUATION", True)

# --- VoIP (TURN REST API credentials, as coturn's use-auth-secret checks them) -----------


def _parse_turn_uris(raw: str) -> list[str]:
    uris = [uri.strip() for uri in raw.split(",") if uri.strip()]
    bad = [uri for uri in uris if not uri.startswith(("turn:", "turns:"))]
    if bad:
        raise ValueError(f"not turn: or turns: URIs: {', '.join(bad)}")
    return uris


#: Comma-separated TURN URIs served by /voip/turnServer (empty: no TURN server).
MATRIXHS_TURN_URIS = _env("MATRIXHS_TURN_URIS", [], _parse_turn_uris)
MATRIXHS_TURN_SHARED_SECRET = env_str("MATRIXHS_TURN_SHARED_SECRET", "")
#: Lifetime of the TURN credentials (seconds).
MATRIXHS_TURN_TTL = _env("MATRIXHS_TURN_TTL", 86400, _parse_positive)

# --- Rate limits (COUNT/SECONDS, per user or per IP) --------------------------------------

MATRIXHS_RATELIMIT_ENABLED = env_bool("MATRIXHS_RATELIMIT_ENABLED", True)


def _parse_proxies(raw: str) -> list[str]:
    """Comma-separated addresses or networks (CIDR) of reverse proxies."""
    proxies = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            proxies.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return proxies


#: Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (matrixhs.asgi):
#: the client is the rightmost address in X-Forwarded-For that is not one of them. Empty:
#: the headers are ignored and the client is the peer of the connection.
MATRIXHS_TRUSTED_PROXIES = _env("MATRIXHS_TRUSTED_PROXIES", [], _parse_proxies)
if env_bool("MATRIXHS_TRUST_X_FORWARDED_FOR", False):
    raise ImproperlyConfigured(
        "MATRIXHS_TRUST_X_FORWARDED_FOR is gone: set MATRIXHS_TRUSTED_PROXIES to the addresses "
        "of your reverse proxies instead (e.g. 127.0.0.1)"
    )
MATRIXHS_RATELIMITS = {
    # Every client request, per user (per IP when there is no user).
    "client": _env("MATRIXHS_RATELIMIT_CLIENT", (600, 60), _parse_rate),
    # Login, register, refresh and password checks, per IP.
    "auth": _env("MATRIXHS_RATELIMIT_AUTH", (30, 60), _parse_rate),
    # /sync and sliding sync requests, per user (a busy client syncs several times a
    # second; a runaway loop is stopped).
    "sync": _env("MATRIXHS_RATELIMIT_SYNC", (1200, 60), _parse_rate),
}

# --- Media repository ----------------------------------------------------------------------


def _parse_networks(raw: str) -> list[str]:
    """Comma-separated IP networks (CIDR), checked here so a typo fails at start-up."""
    import ipaddress

    nets = [item.strip() for item in raw.split(",") if item.strip()]
    for net in nets:
        ipaddress.ip_network(net, strict=False)
    return nets


def _parse_thumbnail_sizes(raw: str) -> list[tuple[int, int, str]]:
    """``32x32-crop,800x600-scale`` -> [(32, 32, "crop"), (800, 600, "scale")]."""
    sizes = []
    for item in raw.split(","):
        dims, _, method = item.strip().partition("-")
        width, _, height = dims.partition("x")
        if method not in ("crop", "scale") or int(width) < 1 or int(height) < 1:
            raise ValueError("expected WIDTHxHEIGHT-crop|scale, ...")
        sizes.append((int(width), int(height), method))
    return sizes


#: Largest upload (bytes), served as m.upload.size. Upload paths get this body limit in
#: place of MATRIXHS_MAX_REQUEST_BYTES.
MATRIXHS_MAX_UPLOAD_BYTES = env_int("MATRIXHS_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
#: Total bytes one local user may have stored (0: no quota). Past it: 403 M_FORBIDDEN.
MATRIXHS_MEDIA_USER_QUOTA_BYTES = env_int("MATRIXHS_MEDIA_USER_QUOTA_BYTES", 0)
#: Where media live: "filesystem" (MATRIXHS_MEDIA_DIR) or "s3" (MATRIXHS_S3_*).
MATRIXHS_MEDIA_STORAGE = _env(
    "MATRIXHS_MEDIA_STORAGE", "filesystem", _parse_choice(("filesystem", "s3"))
)
MATRIXHS_MEDIA_DIR = Path(env_str("MATRIXHS_MEDIA_DIR", str(MATRIXHS_DATA_DIR / "media")))
MATRIXHS_S3_BUCKET = env_str("MATRIXHS_S3_BUCKET", "")
MATRIXHS_S3_ENDPOINT_URL = env_str("MATRIXHS_S3_ENDPOINT_URL", "")
MATRIXHS_S3_REGION = env_str("MATRIXHS_S3_REGION", "")
MATRIXHS_S3_ACCESS_KEY_ID = env_str("MATRIXHS_S3_ACCESS_KEY_ID", "")
MATRIXHS_S3_SECRET_ACCESS_KEY = env_str("MATRIXHS_S3_SECRET_ACCESS_KEY", "")
MATRIXHS_S3_PREFIX = env_str("MATRIXHS_S3_PREFIX", "")
#: How long an ID from POST /media/v1/create waits for its upload (ms).
MATRIXHS_MEDIA_UNUSED_EXPIRY_MS = env_int("MATRIXHS_MEDIA_UNUSED_EXPIRY_MS", 24 * 3600 * 1000)
#: Created-but-not-uploaded IDs one user may hold at once (past it: 429).
MATRIXHS_MEDIA_MAX_PENDING_UPLOADS = env_int("MATRIXHS_MEDIA_MAX_PENDING_UPLOADS", 10)
#: Longest a download waits for a pending upload (timeout_ms is capped to it).
MATRIXHS_MEDIA_MAX_WAIT_MS = env_int("MATRIXHS_MEDIA_MAX_WAIT_MS", 20000)
#: The unauthenticated /_matrix/media/v3 download and thumbnail endpoints are frozen
#: (spec 1.11): media created at or after this time (ms since the epoch) answer 404
#: there. 0 (the default) freezes them for all media; -1 keeps them open.
MATRIXHS_MEDIA_LEGACY_FREEZE_MS = env_int("MATRIXHS_MEDIA_LEGACY_FREEZE_MS", 0)
#: Images with more pixels are never decoded (decompression bombs): no thumbnail, 413.
MATRIXHS_MAX_IMAGE_PIXELS = env_int("MATRIXHS_MAX_IMAGE_PIXELS", 32_000_000)
#: Thumbnails made at upload (the spec's suggested sizes): WIDTHxHEIGHT-METHOD, ...
MATRIXHS_THUMBNAIL_SIZES = _env(
    "MATRIXHS_THUMBNAIL_SIZES",
    [
        (32, 32, "crop"),
        (96, 96, "crop"),
        (320, 240, "scale"),
        (640, 480, "scale"),
        (800, 600, "scale"),
    ],
    _parse_thumbnail_sizes,
)
#: Largest thumbnail made on demand (each side, pixels).
MATRIXHS_MAX_THUMBNAIL_SIDE = env_int("MATRIXHS_MAX_THUMBNAIL_SIDE", 2048)
#: Retention: media not accessed for this many days are purged by `manage.py purge_media`
#: (0: kept for ever).
MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS = env_int("MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS", 0)
MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS = env_int("MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS", 90)
#: URL previews (GET /media/preview_url).
MATRIXHS_URL_PREVIEW_ENABLED = env_bool("MATRIXHS_URL_PREVIEW_ENABLED", True)
#: Addresses outbound requests never reach (checked after DNS, on every redirect, at
#: connect time). The default: loopback, private, link-local, CGNAT, multicast, reserved.
MATRIXHS_OUTBOUND_IP_BLOCKLIST = _env(
    "MATRIXHS_OUTBOUND_IP_BLOCKLIST",
    [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "0.0.0.0/8",
        "255.255.255.255/32",
        "::1/128",
        "::/128",
        "fe80::/10",
        "fc00::/7",
        "ff00::/8",
        "2001:db8::/32",
        "64:ff9b::/96",
        "::ffff:0:0/96",
    ],
    _parse_networks,
)
#: Exceptions to the blocklist (e.g. a local test server).
MATRIXHS_OUTBOUND_IP_ALLOWLIST = _env("MATRIXHS_OUTBOUND_IP_ALLOWLIST", [], _parse_networks)
MATRIXHS_URL_PREVIEW_MAX_BYTES = env_int("MATRIXHS_URL_PREVIEW_MAX_BYTES", 10 * 1024 * 1024)
MATRIXHS_URL_PREVIEW_TIMEOUT_S = env_int("MATRIXHS_URL_PREVIEW_TIMEOUT_S", 10)
MATRIXHS_URL_PREVIEW_MAX_REDIRECTS = env_int("MATRIXHS_URL_PREVIEW_MAX_REDIRECTS", 5)
#: How long a preview is served from the cache (ms).
MATRIXHS_URL_PREVIEW_CACHE_MS = env_int("MATRIXHS_URL_PREVIEW_CACHE_MS", 3600 * 1000)

# --- Federation transport ---------------------------------------------------------------
#: host:port of the TLS federation listener `serve` opens beside MATRIXHS_BIND (with
#: MATRIXHS_TLS_CERT_FILE and _KEY_FILE). Unset: federation is served on MATRIXHS_BIND,
#: for a TLS proxy in front.
MATRIXHS_FEDERATION_BIND = _env("MATRIXHS_FEDERATION_BIND", None, _parse_bind)
MATRIXHS_TLS_CERT_FILE = env_str("MATRIXHS_TLS_CERT_FILE", "")
MATRIXHS_TLS_KEY_FILE = env_str("MATRIXHS_TLS_KEY_FILE", "")
#: Extra CA certificates (PEM) trusted for outbound federation, beside the system's.
MATRIXHS_FEDERATION_CA_FILE = env_str("MATRIXHS_FEDERATION_CA_FILE", "")
#: Networks outbound federation may reach although MATRIXHS_OUTBOUND_IP_BLOCKLIST has them.
MATRIXHS_FEDERATION_IP_ALLOWLIST = _env("MATRIXHS_FEDERATION_IP_ALLOWLIST", [], _parse_networks)
MATRIXHS_FEDERATION_TIMEOUT_S = env_int("MATRIXHS_FEDERATION_TIMEOUT_S", 30)
#: How long other servers may use our published keys (valid_until_ts = now + this).
MATRIXHS_FEDERATION_KEY_VALIDITY_S = env_int("MATRIXHS_FEDERATION_KEY_VALIDITY_S", 86400)
#: A server's keys are fetched again (unknown key ID, expired keys) at most this often.
MATRIXHS_FEDERATION_KEY_REFETCH_S = env_int("MATRIXHS_FEDERATION_KEY_REFETCH_S", 60)
#: Notaries asked for a server's keys when the server does not answer (comma-separated).
MATRIXHS_FEDERATION_TRUSTED_KEY_SERVERS = _env(
    "MATRIXHS_FEDERATION_TRUSTED_KEY_SERVERS",
    [],
    lambda raw: [item.strip() for item in raw.split(",") if item.strip()],
)

# --- Observability ------------------------------------------------------------------------
#: host:port of a separate listener serving Prometheus metrics at /metrics, opened by
#: `manage.py serve` (unset: none). Each process serves its own figures.
MATRIXHS_METRICS_BIND = _env("MATRIXHS_METRICS_BIND", None, _parse_bind)
#: Serve /metrics on the main listener too, to bearers of this token (unset: it is not
#: served there). Also from MATRIXHS_METRICS_TOKEN_FILE.
MATRIXHS_METRICS_TOKEN = env_str("MATRIXHS_METRICS_TOKEN", "")
#: One log line per HTTP request (matrixhs.access: method, path, status, duration, user).
MATRIXHS_ACCESS_LOG = env_bool("MATRIXHS_ACCESS_LOG", True)
#: Log lines as plain text or as one JSON object per line.
MATRIXHS_LOG_FORMAT = _env("MATRIXHS_LOG_FORMAT", "plain", _parse_choice(("plain", "json")))

# --- Services -----------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", "")
REDIS_URL = env_str("REDIS_URL", "")
EMBEDDED = not REDIS_URL

if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # Fails fast while the server is down, and serves again once it is back.
        _db["ENGINE"] = "matrixhs.postgresql_backend"
        # psycopg 3's pool: persistent connections and ASGI do not mix (CONN_MAX_AGE stays 0).
        _db["CONN_MAX_AGE"] = 0
        # Lent connections are checked by the backend, only those idle for a while (a
        # connection the server closed is found and replaced when it is lent): Django's
        # own check would cost a round trip on every request.
        _db["CONN_HEALTH_CHECKS"] = False
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("MATRIXHS_DB_POOL_MIN", 2),
            "max_size": env_int("MATRIXHS_DB_POOL_MAX", 20),
            "timeout": 30,
        }
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(MATRIXHS_DATA_DIR / "homeserver.sqlite3"),
    }
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["ENGINE"] = "matrixhs.sqlite_backend"  # writers queue in-process (see the module)
    _db.setdefault("OPTIONS", {}).update(
        {
            # One writer at a time, taken at BEGIN: no deadlock-prone lock upgrades.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
            ),
        }
    )
    # Request threads are pooled (matrixhs.asgi_handler), so each keeps its connection.
    _db["CONN_MAX_AGE"] = None
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("TEST", {})["NAME"] = ":memory:"  # in-memory test database
DATABASES = {"default": _db}

if REDIS_URL:
    CACHES = {
        "default": {
            # Redis, with a process-local stand-in while Redis is down (matrixhs.cache).
            "BACKEND": "matrixhs.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            # An unreachable Redis must fail a call fast, not hang the request.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # An unreachable Redis fails a subscription fast (the waiter then polls).
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 1}],
                "prefix": env_str("MATRIXHS_CHANNEL_PREFIX", "mhs"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_IGNORE_RESULT = True
# A request that queues a task must not hang on a broker that is down: the work is in
# the database, and the periodic sweep queues it again (matrixhs.drain).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}

# --- Django -------------------------------------------------------------------------------

DEBUG = env_bool("MATRIXHS_DEBUG", False)


def _secret_key() -> str:
    """MATRIXHS_SECRET_KEY, else a random key generated once and kept in the data dir."""
    configured = env_str("MATRIXHS_SECRET_KEY", "")
    if configured:
        return configured
    try:
        return read_or_create(
            MATRIXHS_DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
        ).strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"MATRIXHS_DATA_DIR {MATRIXHS_DATA_DIR}: {exc}") from exc


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",
    "matrixhs.apps.MatrixAdminConfig",  # django.contrib.admin, with our admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "channels",
    "matrixhs",
    "accounts",
    "rooms",
    "sync",
    "e2ee",
    "federation",
    "media",
    "push",
    "serveradmin",
]

MIDDLEWARE = [
    "matrixhs.middleware.MatrixMiddleware",
    # Sessions, auth and messages, applied to /admin/ only (see the class).
    "matrixhs.middleware.AdminOnlyMiddleware",
]
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

# The admin's cookies and CSRF check. Served over HTTPS (MATRIXHS_PUBLIC_BASEURL), its
# session and CSRF cookies are never sent over plain HTTP; its forms are accepted from
# that origin (behind a TLS proxy that is not in MATRIXHS_TRUSTED_PROXIES, Django would
# otherwise take the https Origin for a foreign one).
_PUBLIC_HTTPS = MATRIXHS_PUBLIC_BASEURL.startswith("https://")
SESSION_COOKIE_SECURE = _PUBLIC_HTTPS
CSRF_COOKIE_SECURE = _PUBLIC_HTTPS
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = ["{0.scheme}://{0.netloc}".format(urlsplit(MATRIXHS_PUBLIC_BASEURL))]
X_FRAME_OPTIONS = "DENY"

ROOT_URLCONF = "matrixhs.urls"
ASGI_APPLICATION = "matrixhs.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["matrixhs.passwords.Argon2idHasher"]
# The ASGI wrapper enforces MATRIXHS_MAX_REQUEST_BYTES before Django reads the body.
DATA_UPLOAD_MAX_MEMORY_SIZE = MATRIXHS_MAX_REQUEST_BYTES
# Request bodies past this size are spooled to a temporary file by Django's ASGI handler
# (uploads are then copied from it to the media storage in chunks, never held whole).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024


def _media_storage() -> dict[str, object]:
    if MATRIXHS_MEDIA_STORAGE == "s3":
        if not MATRIXHS_S3_BUCKET:
            raise ImproperlyConfigured("MATRIXHS_MEDIA_STORAGE=s3 needs MATRIXHS_S3_BUCKET")
        from boto3.s3.transfer import TransferConfig

        options: dict[str, object] = {
            "bucket_name": MATRIXHS_S3_BUCKET,
            "location": MATRIXHS_S3_PREFIX,
            "file_overwrite": True,  # every key is new (media/keys.py)
            "default_acl": None,
            "querystring_auth": False,
            # Multipart uploads of 8 MiB parts, two at a time: bounded memory.
            "transfer_config": TransferConfig(max_concurrency=2),
        }
        if MATRIXHS_S3_ENDPOINT_URL:
            options["endpoint_url"] = MATRIXHS_S3_ENDPOINT_URL
        if MATRIXHS_S3_REGION:
            options["region_name"] = MATRIXHS_S3_REGION
        if MATRIXHS_S3_ACCESS_KEY_ID:
            options["access_key"] = MATRIXHS_S3_ACCESS_KEY_ID
            options["secret_key"] = MATRIXHS_S3_SECRET_ACCESS_KEY
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MATRIXHS_MEDIA_DIR), "file_permissions_mode": 0o600},
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "media": _media_storage(),
}
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "/static/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["matrixhs.fastjson.JsonRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "matrixhs.negotiation.JsonOnlyNegotiation",
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "matrixhs.errors.drf_exception_handler",
    "COMPACT_JSON": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "matrixhs.observe.JsonFormatter"},
    },
    "filters": {"quiet_outages": {"()": "matrixhs.outages.QuietOutages"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": MATRIXHS_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("MATRIXHS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR", "filters": ["quiet_outages"]},
        # One warning per outage of Redis or the database, not one per failed call.
        **{
            name: {"filters": ["quiet_outages"]}
            for name in (
                "channels_redis.pubsub",
                "psycopg.pool",
                "matrixhs.background",
                "matrixhs.drain",
                "matrixhs.errors",
            )
        },
    },
}

MATRIXHS_SECRET_FILES = dict(_secret_files)
