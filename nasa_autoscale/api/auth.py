"""Who may call the API. With no keys the API answers on loopback only; with NASA_API_KEYS (a
comma-separated list, each at least 16 characters) every request needs one of them, sent as
KEDA's metrics-api scaler sends it:

    X-API-KEY: <key>                       (authMode: apiKey, KEDA's default header)
    Authorization: Bearer <key>            (authMode: bearer)
    Authorization: Basic base64(any:<key>) (authMode: basic; the key is the password)

Keys are compared in constant time (hmac.compare_digest), each of them, so the time an answer
takes says nothing about which key or how much of one matched.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import os

from nasa_autoscale.settings import SettingsError

KEYS_VARIABLE = "NASA_API_KEYS"
MIN_KEY_LENGTH = 16


def api_keys_from_env(environ=os.environ) -> tuple[str, ...]:
    """The configured keys; a key too short or with spaces inside is an error naming the
    variable (never the key)."""
    raw = environ.get(KEYS_VARIABLE, "")
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_LENGTH:
            raise SettingsError(
                f"{KEYS_VARIABLE}: key {number} has {len(key)} characters; "
                f"at least {MIN_KEY_LENGTH} are needed"
            )
        if any(char.isspace() or not char.isprintable() for char in key):
            raise SettingsError(f"{KEYS_VARIABLE}: key {number} holds a space or control character")
    return keys


def is_loopback(host: str | None) -> bool:
    """A bind address that only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return False
    return True


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request carries, from X-API-KEY, a bearer token or basic auth's password."""
    if b"x-api-key" in headers:
        return headers[b"x-api-key"].decode("latin-1").strip()
    scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def key_matches(presented: str | None, keys: tuple[str, ...]) -> bool:
    """Whether `presented` is one of `keys`, comparing against every key in constant time."""
    if presented is None:
        return False
    given = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


class ApiKeyAuth:
    """ASGI middleware: 401 without a valid key when keys are configured; without keys, 403 on
    any request that reached a non-loopback bind address (started by hand with --host 0.0.0.0:
    the launcher refuses that before it listens, this catches uvicorn started directly)."""

    def __init__(self, app, keys: tuple[str, ...]):
        self.app, self.keys = app, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.keys:
            # the address of the socket the request came in on (a server's getsockname; a name
            # such as the test client's "testserver" is no socket and is let through)
            server = (scope.get("server") or (None, None))[0]
            if _is_ip(server) and not is_loopback(server):
                return await _deny(
                    send,
                    403,
                    f"this API listens on {server} beyond loopback with no {KEYS_VARIABLE}: "
                    "set keys or bind 127.0.0.1",
                )
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if not key_matches(presented_key(headers), self.keys):
            return await _deny(send, 401, "a valid API key is needed (X-API-KEY or bearer)")
        return await self.app(scope, receive, send)


async def _deny(send, status: int, detail: str):
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="nasa_autoscale"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
