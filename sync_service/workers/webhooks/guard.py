"""The SSRF guard. The policy is the database's: the blocked networks and names are
read from cfg_private.webhook_blocked_networks() / webhook_blocked_names() at start, and
SsrfPolicy.refusal mirrors cfg_private.webhook_refusal() line for line
(tests/webhooks/test_webhooks_ssrf.py asserts one table of host forms against both). Every
connection is checked in the resolver aiohttp connects with (HostGuard): every address
of every answer, no verdict kept beyond the connection."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")
_IPV6 = re.compile(rf"[0-9a-f:]*:[0-9a-f:]*|[0-9a-f:]*:{_OCTET}(\.{_OCTET}){{3}}")
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*|[0-9a-f:.]*:[0-9a-f:.]*")
_NUMERIC_END = re.compile(r"(^|\.)(0x[0-9a-f]*|[0-9]+)$")
_PREFIX = re.compile(r"[^/]*/[0-9]{1,3}")

REASONS = {
    "non_ascii": "is not an ASCII host name",
    "invalid_host": "is not a valid host name or IP address",
    "blocked_address": "is a loopback, private, link-local or metadata address",
    "numeric_host": "is a numeric address form",
    "local_name": "is a local name",
}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_literal(name: str) -> Address | None:
    """cfg_private.webhook_host_literal: the address a normalised host names, in canonical form only."""
    if _IPV4.fullmatch(name) or _IPV6.fullmatch(name):
        try:
            return ipaddress.ip_address(name)
        except ValueError:
            return None
    return None


def normalise(host: str) -> str:
    return host.lower().rstrip(".")


class SsrfPolicy:
    def __init__(self, networks: tuple, names: tuple[str, ...]):
        self.networks = networks
        self.names = names
        self._urls: dict[tuple[str, tuple[str, ...]], str | None] = {}

    @classmethod
    def from_lists(cls, networks: list[str], names: list[str]) -> SsrfPolicy:
        return cls(tuple(ipaddress.ip_network(n) for n in networks), tuple(names))

    @staticmethod
    def admits(allowed: tuple[str, ...], name: str, address: Address | None) -> bool:
        """cfg_private.webhook_allowlist_admits: a name, an address or a CIDR network in allowed."""
        for entry in allowed:
            if normalise(entry) == name:
                return True
            if address is None or host_literal(entry.split("/", 1)[0]) is None:
                continue
            if "/" in entry and not _PREFIX.fullmatch(entry):
                continue
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if network.version == address.version and address in network:
                return True
        return False

    def refusal(self, host: str, address: Address | None, allowed: tuple[str, ...]) -> str | None:
        """cfg_private.webhook_refusal: why host (at address) may not be called, or None."""
        name = normalise(host)
        if not host.isascii():
            return "non_ascii"
        if not _HOST.fullmatch(name):
            return "invalid_host"
        literal = host_literal(name)
        if literal is None and ":" in name:
            return "invalid_host"
        address = address if address is not None else literal
        if self.admits(allowed, name, address):
            return None
        if address is not None and any(
            address.version == n.version and address in n for n in self.networks
        ):
            return "blocked_address"
        if literal is None and _NUMERIC_END.search(name):
            return "numeric_host"
        if name in self.names or any(n.startswith(".") and name.endswith(n) for n in self.names):
            return "local_name"
        return None

    def url_refusal(self, url: str, allowed: tuple[str, ...]) -> str | None:
        """What cfg_private.check_webhook_url refuses, as a message (None: may be sent).
        Names are not resolved here: HostGuard checks their addresses at connection time.
        Memoised: a pure function of its arguments (no DNS), unlike a resolver's verdict."""
        key = (url, allowed)
        if key not in self._urls:
            if len(self._urls) >= 10000:
                self._urls.clear()
            self._urls[key] = self._url_refusal(url, allowed)
        return self._urls[key]

    def _url_refusal(self, url: str, allowed: tuple[str, ...]) -> str | None:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return "refused: not a valid URL"
        reason = self.refusal(host, None, allowed)
        if reason is not None:
            return f"refused: {host} {REASONS[reason]}"
        name = normalise(host)
        if parts.scheme != "https" and not self.admits(allowed, name, host_literal(name)):
            return f"refused: plain http to {host} (https required unless allowlisted)"
        return None


class Refused(OSError):
    """A connection the SSRF policy refuses (raised inside aiohttp's resolver)."""


async def system_lookup(host: str, port: int, family: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


class HostGuard(AbstractResolver):
    """aiohttp's resolver for one allowlist: checks the host and every address of every
    answer each time aiohttp opens a connection, and hands aiohttp exactly the addresses
    it checked. Nothing is cached, so a later answer (DNS rebinding) is checked afresh.
    aiohttp does not call a resolver for IP literals: Dispatcher._send checks those."""

    def __init__(self, policy: SsrfPolicy, allowed: tuple[str, ...] = (), lookup=system_lookup):
        self.policy = policy
        self.allowed = allowed
        self.lookup = lookup

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list:
        reason = self.policy.refusal(host, None, self.allowed)
        if reason is not None:
            raise Refused(f"refused: {host} {REASONS[reason]}")
        results = []
        for answer in await self.lookup(host, port, family):
            try:
                address = ipaddress.ip_address(answer.split("%", 1)[0])
            except ValueError:
                raise Refused(f"refused: {host} resolves to {answer!r}, not an IP address") from None
            if self.policy.refusal(host, address, self.allowed) is not None:
                raise Refused(f"refused: {host} resolves to {answer}, a loopback, private, link-local or "
                              "metadata address")
            results.append({
                "hostname": host, "host": answer, "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": socket.IPPROTO_TCP, "flags": socket.AI_NUMERICHOST,
            })
        if not results:
            raise OSError(f"DNS lookup of {host} returned no address")
        return results

    async def close(self) -> None:
        pass

