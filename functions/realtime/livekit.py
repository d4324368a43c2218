"""LiveKit: access tokens for clients, and the server API (Twirp RoomService, JSON over HTTP) for the room sync.

Tokens are the JWTs LiveKit's SDKs mint (HS256 with the API secret; `iss` the API key, `sub` the identity, `nbf`,
`exp`, camelCase `video` grants), made with PyJWT so the image needs neither the SDK nor asyncio. Each server-API
call carries its own short-lived token with exactly the grant LiveKit checks for that method: `roomList` for
ListRooms, `roomAdmin` for the named room for ListParticipants, `roomCreate` for DeleteRoom.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import jwt
import urllib3

from shared import outbound

ROOM_SERVICE = "/twirp/livekit.RoomService/"
SERVER_TOKEN_TTL_SECONDS = 600


class LiveKitError(Exception):
    """LiveKit could not be reached, timed out, or answered with an error."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code  # Twirp's error code (`not_found`, `unauthenticated`, …) when LiveKit answered


@dataclass(frozen=True)
class ClientToken:
    value: str
    expires_at: int  # unix seconds


class TokenMinter:
    def __init__(self, api_key: str, api_secret: str, ttl_seconds: int):
        self.api_key = api_key
        self.api_secret = api_secret
        self.ttl_seconds = ttl_seconds

    def _sign(self, subject: str, video: dict, ttl_seconds: int, now: float) -> tuple[str, int]:
        issued = int(now)
        expires = issued + ttl_seconds
        claims = {"iss": self.api_key, "sub": subject, "nbf": issued, "exp": expires, "video": video}
        return jwt.encode(claims, self.api_secret, algorithm="HS256"), expires

    def client_token(self, identity: str, room: str, *, now: float | None = None) -> ClientToken:
        """Jan's grant: join this one room, publish, subscribe and send data."""
        video = {"roomJoin": True, "room": room, "canPublish": True, "canSubscribe": True, "canPublishData": True}
        value, expires = self._sign(identity, video, self.ttl_seconds, time.time() if now is None else now)
        return ClientToken(value=value, expires_at=expires)

    def server_token(self, video: dict) -> str:
        return self._sign("", video, SERVER_TOKEN_TTL_SECONDS, time.time())[0]


@dataclass(frozen=True)
class Room:
    name: str
    num_participants: int


class RoomService:
    """LiveKit's RoomService over Twirp's JSON protocol (`POST /twirp/livekit.RoomService/<Method>`)."""

    def __init__(self, base_url: str, minter: TokenMinter, timeout_seconds: float):
        self.base_url = base_url.rstrip("/")
        self.minter = minter
        self.timeout_seconds = timeout_seconds

    def _call(self, method: str, body: dict, grant: dict) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": f"Bearer {self.minter.server_token(grant)}"}
        try:
            response = outbound.send("POST", self.base_url + ROOM_SERVICE + method, body=json.dumps(body).encode(),
                                     headers=headers, connect_timeout=self.timeout_seconds,
                                     read_timeout=self.timeout_seconds)
        except urllib3.exceptions.TimeoutError:
            raise LiveKitError(f"LiveKit {method} timed out") from None
        except urllib3.exceptions.HTTPError as exc:
            raise LiveKitError(f"LiveKit {method} unreachable: {type(exc).__name__}") from None
        try:
            document = json.loads(response.data or b"{}")
        except ValueError:
            document = None
        if response.status != 200:
            code = document.get("code") if isinstance(document, dict) else None
            message = document.get("msg") if isinstance(document, dict) else None
            raise LiveKitError(f"LiveKit {method} answered {response.status}: {message or code or 'error'}",
                               code=code)
        if not isinstance(document, dict):
            raise LiveKitError(f"LiveKit {method} returned invalid JSON")
        return document

    def list_rooms(self) -> dict[str, Room]:
        document = self._call("ListRooms", {}, {"roomList": True})
        rooms = {}
        for entry in document.get("rooms") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                count = entry.get("num_participants", entry.get("numParticipants", 0))
                rooms[entry["name"]] = Room(name=entry["name"], num_participants=int(count or 0))
        return rooms

    def list_participants(self, room: str) -> list[str]:
        """The identities in the room (LiveKit's room list counts participants only now and then)."""
        document = self._call("ListParticipants", {"room": room}, {"roomAdmin": True, "room": room})
        return [entry.get("identity", "") for entry in document.get("participants") or [] if isinstance(entry, dict)]

    def delete_room(self, room: str) -> None:
        """Remove the room and disconnect everyone in it; a room that is already gone counts as removed."""
        try:
            self._call("DeleteRoom", {"room": room}, {"roomCreate": True})
        except LiveKitError as exc:
            if exc.code != "not_found":
                raise
