"""The Matrix errors only end-to-end encryption uses."""

from __future__ import annotations

from matrixhs.errors import Codes, MatrixError

INVALID_SIGNATURE = Codes.INVALID_SIGNATURE


class BadSignature(MatrixError):
    """400 M_INVALID_SIGNATURE: a signature is missing or does not verify."""

    def __init__(self, msg: str = "Invalid signature") -> None:
        super().__init__(400, INVALID_SIGNATURE, msg)


class WrongRoomKeysVersion(MatrixError):
    """403 M_WRONG_ROOM_KEYS_VERSION: keys may only be written to the current backup."""

    def __init__(self, current_version: str) -> None:
        super().__init__(
            403,
            Codes.WRONG_ROOM_KEYS_VERSION,
            "Wrong backup version.",
            {"current_version": current_version},
        )
