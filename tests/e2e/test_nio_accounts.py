"""matrix-nio against the real server process: the account life cycle of a bot or client."""

from __future__ import annotations

import asyncio

import httpx
import nio
import pytest

from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e


async def _account_life_cycle(server: RunningServer) -> None:
    client = nio.AsyncClient(server.base_url, "alice")
    try:
        registered = await client.register("alice", "wonderland", device_name="nio test")
        assert isinstance(registered, nio.RegisterResponse), registered
        assert registered.user_id == f"@alice:{server.server_name}"
        await client.close()

        client = nio.AsyncClient(server.base_url, "alice")
        login = await client.login("wonderland", device_name="second device")
        assert isinstance(login, nio.LoginResponse), login
        assert login.device_id != registered.device_id

        whoami = await client.whoami()
        assert isinstance(whoami, nio.WhoamiResponse), whoami
        assert (whoami.user_id, whoami.device_id) == (login.user_id, login.device_id)

        renamed = await client.update_device(login.device_id, {"display_name": "Renamed"})
        assert isinstance(renamed, nio.UpdateDeviceResponse), renamed
        devices = await client.devices()
        assert isinstance(devices, nio.DevicesResponse), devices
        names = {d.id: d.display_name for d in devices.devices}
        assert names == {registered.device_id: "nio test", login.device_id: "Renamed"}

        shown = await client.set_displayname("Alice Liddell")
        assert isinstance(shown, nio.ProfileSetDisplayNameResponse), shown
        profile = await client.get_profile(login.user_id)
        assert isinstance(profile, nio.ProfileGetResponse), profile
        assert profile.displayname == "Alice Liddell"

        token = client.access_token
        logout = await client.logout()
        assert isinstance(logout, nio.LogoutResponse), logout
        after = httpx.get(
            f"{server.base_url}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert (after.status_code, after.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    finally:
        await client.close()


def test_nio_register_login_whoami_device_profile_logout(server: RunningServer) -> None:
    asyncio.run(_account_life_cycle(server))


def test_wrong_password_is_refused_to_nio(server: RunningServer) -> None:
    async def attempt() -> nio.LoginError | nio.LoginResponse:
        client = nio.AsyncClient(server.base_url, "nobody")
        try:
            return await client.login("nope")
        finally:
            await client.close()

    result = asyncio.run(attempt())
    assert isinstance(result, nio.LoginError)
    assert result.status_code == "M_FORBIDDEN"


def test_served_errors_are_json_with_cors(server: RunningServer) -> None:
    response = httpx.get(f"{server.base_url}/_matrix/client/v3/unknown")
    assert response.status_code == 404
    assert response.json()["errcode"] == "M_UNRECOGNIZED"
    assert response.headers["access-control-allow-origin"] == "*"
    big = httpx.put(
        f"{server.base_url}/_matrix/client/v3/user/@a:b/account_data/x",
        content=b"x" * (11 * 1024 * 1024),
    )
    assert (big.status_code, big.json()["errcode"]) == (413, "M_TOO_LARGE")


def test_daphne_serves_the_same_api(tmp_path: object) -> None:
    """`serve` on daphne (MATRIXHS_ASGI_SERVER=daphne) as well as on the default uvicorn."""
    from pathlib import Path

    daphne = RunningServer(Path(str(tmp_path)), MATRIXHS_ASGI_SERVER="daphne").start()
    try:
        body = {"username": "dora", "password": "pw", "auth": {"type": "m.login.dummy"}}
        registered = httpx.post(f"{daphne.base_url}/_matrix/client/v3/register", json=body)
        assert registered.status_code == 200, registered.text
        whoami = httpx.get(
            f"{daphne.base_url}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {registered.json()['access_token']}"},
        )
        assert whoami.json()["user_id"] == f"@dora:{daphne.server_name}"
        assert "daphne" in httpx.get(f"{daphne.base_url}/_matrix/client/versions").headers["server"]
    finally:
        daphne.stop()


def test_the_servers_secrets_and_database_are_private(server: RunningServer) -> None:
    """The files `migrate` and `serve` created in the data dir are 0600."""
    import stat

    names = ["signing.key", "secret_key"]
    if not server.database_url:  # SQLite, in the data dir
        names += ["homeserver.sqlite3", "homeserver.sqlite3-wal"]
    modes = {name: stat.S_IMODE((server.data_dir / name).stat().st_mode) for name in names}
    assert modes == dict.fromkeys(names, 0o600)
