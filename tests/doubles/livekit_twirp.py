"""LiveKitTwirp: a TEST DOUBLE of a LiveKit server's RoomService (no media, no WebRTC).

A real HTTP/1.1 server on 127.0.0.1 speaking LiveKit's Twirp JSON protocol: `POST
/twirp/livekit.RoomService/{ListRooms,ListParticipants,DeleteRoom}` with `Content-Type: application/json`, snake_case
proto field names in replies, Twirp error bodies (`{"code": "not_found", "msg": …}`). It checks each call's bearer
token as LiveKit does: HS256 with the API secret, `iss` the API key, and the grant that method needs (`roomList`;
`roomAdmin` for the named `room`; `roomCreate`). Tests put participants in rooms, make it slow (`delay`), down
(`down`: every connection is closed without an answer) or failing one method (`fail`), and read what was called.

    with LiveKitTwirp("devkey", "secret") as livekit:
        livekit.join("room_…", "user-id")          # creates the room, as a client's first join does
        ...  # point the code under test at livekit.base_url
        assert [call.method for call in livekit.calls] == ["ListRooms", "ListParticipants"]
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

PREFIX = "/twirp/livekit.RoomService/"


@dataclass(frozen=True)
class Call:
    method: str
    body: dict
    video: dict  # the token's video grant


class LiveKitTwirp:
    def __init__(self, api_key: str, api_secret: str, *, delay: float = 0.0):
        self.api_key = api_key
        self.api_secret = api_secret
        self.delay = delay
        self.down = False
        self.fail: set[str] = set()  # methods answering Twirp `internal` (500)
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight: dict[str, int] = {}
        self._rooms: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if double.down:
                    self.close_connection = True
                    return
                status, answer = double._answer(self.path, self.headers, raw)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self.ws_url = f"ws://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # What clients do in LiveKit -----------------------------------------------------------------------------

    def join(self, room: str, identity: str) -> None:
        with self._lock:
            self._rooms.setdefault(room, []).append(identity)

    def leave(self, room: str, identity: str) -> None:
        """The room stays, empty, as LiveKit keeps it for its departure timeout."""
        with self._lock:
            self._rooms[room].remove(identity)

    def close_room(self, room: str) -> None:
        with self._lock:
            self._rooms.pop(room, None)

    def rooms(self) -> dict[str, list[str]]:
        with self._lock:
            return {name: list(people) for name, people in self._rooms.items()}

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    # The wire protocol ----------------------------------------------------------------------------------------

    def _answer(self, path: str, headers, raw: bytes) -> tuple[int, dict]:
        method = path[len(PREFIX):] if path.startswith(PREFIX) else ""
        if method not in ("ListRooms", "ListParticipants", "DeleteRoom"):
            return 404, {"code": "bad_route", "msg": f"no handler for path {path!r}"}
        if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return 404, {"code": "bad_route", "msg": "unexpected Content-Type"}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"code": "malformed", "msg": "the request body is not JSON"}
        authorization = headers.get("Authorization") or ""
        if not authorization.startswith("Bearer "):
            return 401, {"code": "unauthenticated", "msg": "no authorization header"}
        try:
            claims = jwt.decode(authorization[7:], self.api_secret, algorithms=["HS256"], issuer=self.api_key,
                                options={"require": ["exp", "iss"]})
        except jwt.PyJWTError as exc:
            return 401, {"code": "unauthenticated", "msg": str(exc)}
        video = claims.get("video") or {}
        room = body.get("room", "")
        allowed = {"ListRooms": video.get("roomList") is True,
                   "ListParticipants": video.get("roomAdmin") is True and video.get("room") == room,
                   "DeleteRoom": video.get("roomCreate") is True}[method]
        with self._lock:
            self.calls.append(Call(method=method, body=body, video=video))
            self.in_flight += 1
            self.max_in_flight[method] = max(self.max_in_flight.get(method, 0), self.in_flight)
        try:
            if self.delay:
                self._stopping.wait(self.delay)
            if not allowed:
                return 403, {"code": "permission_denied", "msg": "permissions denied"}
            if method in self.fail:
                return 500, {"code": "internal", "msg": "scripted failure"}
            with self._lock:
                if method == "ListRooms":
                    return 200, {"rooms": [{"sid": f"RM_{name[-12:]}", "name": name, "empty_timeout": 300,
                                            "departure_timeout": 20, "max_participants": 0,
                                            "creation_time": str(int(time.time())), "metadata": "",
                                            "num_participants": len(people), "num_publishers": 0,
                                            "active_recording": False}
                                           for name, people in self._rooms.items()]}
                if room not in self._rooms:
                    return 404, {"code": "not_found", "msg": "requested room does not exist"}
                if method == "ListParticipants":
                    return 200, {"participants": [{"sid": f"PA_{n}", "identity": identity, "state": "ACTIVE",
                                                   "name": "", "metadata": "", "joined_at": str(int(time.time()))}
                                                  for n, identity in enumerate(self._rooms[room])]}
                del self._rooms[room]
                return 200, {}
        finally:
            with self._lock:
                self.in_flight -= 1

    def __enter__(self) -> LiveKitTwirp:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
