"""Who may call the API. With no keys the API answers on loopback only; with NASA_API_KEYS (a
comma-separated list, each at least 16 characters) every request needs one of them, sent as
KEDA's metrics-api scaler sends it:

    X-API-KEY: <key>                       (authMode: apiKey, KEDA's default header)
    Authorization: Bearer <key>            (authMode: bearer)
    Authorization: Basic base64(any:<key>) (authMode: basic; the key is the password)

Keys are compared in constant time (hmac.compare_digest), each of them, so the time an answer
takes says nothing about which key or how much of one matched. Every key a request carries is
tried (an empty X-API-KEY does not hide a valid bearer token).

A key may be scoped to one site of a sites file: `NASA_API_KEYS=shop:KEY1,*:ADMINKEY` gives
KEY1 the routes of site `shop` only (/sites/shop/..., or the one-site API of `shop`), and
ADMINKEY every route. A key without a `site:` prefix (a site name or `*` before the first ':')
opens every route. Keys are printable ASCII, at least 16 characters. Requests whose headers
exceed MAX_HEADER_BYTES are answered 431 before any key is looked at.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import os
import re

from nasa_autoscale.settings import SettingsError

KEYS_VARIABLE = "NASA_API_KEYS"
MIN_KEY_LENGTH = 16
MAX_HEADER_BYTES = 16 * 1024  # all of a request's header names and values together
EVERY_SITE = "*"
_SCOPE = re.compile(r"(\*|[a-z0-9][a-z0-9_-]{0,62}):(.+)")


def scoped(entry: str) -> tuple[str, str]:
    """(scope, key) of one NASA_API_KEYS entry: `site:key`, `*:key`, or a bare key (scope *)."""
    match = _SCOPE.fullmatch(entry)
    return (match[1], match[2]) if match else (EVERY_SITE, entry)


def api_keys_from_env(environ=os.environ) -> tuple[str, ...]:
    """The configured keys (each `[site:]key`); a key too short, not printable ASCII or with
    spaces inside is an error naming the variable and the key's number (never the key)."""
    raw = environ.get(KEYS_VARIABLE, "")
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    for number, entry in enumerate(keys, 1):
        _, key = scoped(entry)
        if len(key) < MIN_KEY_LENGTH:
            raise SettingsError(
                f"{KEYS_VARIABLE}: key {number} has {len(key)} characters; "
                f"at least {MIN_KEY_LENGTH} are needed"
            )
        if any(char.isspace() or not char.isprintable() for char in key):
            raise SettingsError(f"{KEYS_VARIABLE}: key {number} holds a space or control character")
        if not key.isascii():
            raise SettingsError(f"{KEYS_VARIABLE}: key {number} is not ASCII (headers are ASCII)")
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


def presented_keys(headers: dict[bytes, bytes]) -> list[str]:
    """The keys a request carries: X-API-KEY, a bearer token, basic auth's password (each that
    is there and not empty)."""
    keys = []
    if headers.get(b"x-api-key", b"").strip():
        keys.append(headers[b"x-api-key"].decode("latin-1").strip())
    scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer":
        keys.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        keys.append(decoded.partition(":")[2])
    return [key for key in keys if key]


def matching_scopes(presented: list[str] | str | None, keys: tuple[str, ...]) -> set[str]:
    """The scopes (sites, or *) of the configured keys that one of `presented` equals, each
    presented key compared against every configured one in constant time."""
    if presented is None:
        return set()
    presented = [presented] if isinstance(presented, str) else presented
    scopes = set()
    for given in presented:
        for scope, key in map(scoped, keys):
            if hmac.compare_digest(given.encode("utf-8", "replace"), key.encode()):
                scopes.add(scope)
    return scopes


def key_matches(presented: str | None, keys: tuple[str, ...]) -> bool:
    """Whether `presented` is one of `keys` (of any scope)."""
    return bool(matching_scopes(presented, keys))


def request_site(path: str, site: str | None) -> str | None:
    """The site a request is for: the one-site API's `site`, or /sites/<name>/...'s name; None
    for the sites API's own routes (/health, /sites), which only a key for every site opens."""
    if site is not None:
        return site
    parts = path.split("/")
    return parts[2] if len(parts) > 3 and parts[1] == "sites" else None


class ApiKeyAuth:
    """ASGI middleware: 401 without a valid key when keys are configured; without keys, 403 on
    any request that reached a non-loopback bind address (started by hand with --host 0.0.0.0:
    the launcher refuses that before it listens, this catches uvicorn started directly)."""

    def __init__(self, app, keys: tuple[str, ...], site: str | None = None):
        self.app, self.keys, self.site = app, keys, site

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw_headers = scope.get("headers") or []
        if sum(len(name) + len(value) for name, value in raw_headers) > MAX_HEADER_BYTES:
            return await _deny(send, 431, f"request headers over {MAX_HEADER_BYTES} bytes")
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
        scopes = matching_scopes(presented_keys(dict(raw_headers)), self.keys)
        if not scopes:
            return await _deny(send, 401, "a valid API key is needed (X-API-KEY or bearer)")
        site = request_site(scope.get("path", ""), self.site)
        if EVERY_SITE not in scopes and site not in scopes:
            return await _deny(send, 403, "this API key is for another site")
        return await self.app(scope, receive, send)


async def _deny(send, status: int, detail: str):
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="nasa_autoscale"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
