"""The outbound allow-list (REMEDIATOR_PROBE_ALLOW): which hosts the worker's HTTP on an alert's behalf
may reach.

A probe URL comes from alert text, so without a list the worker is a port scanner and a reader of
cloud metadata for whoever can send an alert. A host passes when it is listed by name, or when every
address it resolves to lies in a listed network. Loopback, link-local, metadata and unspecified
addresses pass only when listed by an address or a network inside their own reserved range (listing
a name that resolves there, or 0.0.0.0/0, is not enough). The caller connects to the address checked
here: there is no second DNS lookup for a rebinding answer to slip into.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Most specific first: the metadata address also lies in the link-local range.
RESERVED: list[tuple[IPNetwork, str]] = [
    (ip_network("169.254.169.254/32"), "a cloud metadata address"),
    (ip_network("fd00:ec2::254/128"), "a cloud metadata address"),
    (ip_network("127.0.0.0/8"), "loopback"),
    (ip_network("::1/128"), "loopback"),
    (ip_network("169.254.0.0/16"), "link-local"),
    (ip_network("fe80::/10"), "link-local"),
    (ip_network("0.0.0.0/8"), "unspecified"),
    (ip_network("::/128"), "unspecified"),
]


class Refused(Exception):
    """The allow-list refuses this host; the message says why."""


def _plain(address: IPAddress) -> IPAddress:
    """::ffff:127.0.0.1 is 127.0.0.1; an IPv6 zone (%eth0) does not change which host it is."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return IPv6Address(int(address)) if address.scope_id else address
    return address


def _inside(network: IPNetwork, reserved: IPNetwork) -> bool:
    if isinstance(network, IPv4Network) and isinstance(reserved, IPv4Network):
        return network.subnet_of(reserved)
    if isinstance(network, IPv6Network) and isinstance(reserved, IPv6Network):
        return network.subnet_of(reserved)
    return False


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Entries as REMEDIATOR_PROBE_ALLOW holds them (validated by the settings)."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def _check(self, address: IPAddress, host: str, named: bool) -> None:
        address = _plain(address)
        listed = [n for n in self.networks if address in n]
        shown = host if host == str(address) else f"{host} resolves to {address}, which"
        for reserved, kind in RESERVED:
            if address in reserved:
                if not any(_inside(n, reserved) for n in listed):
                    raise Refused(f"{shown} is {kind} and only an address or network listed for it allows it")
                return
        if not (named or listed):
            raise Refused(f"{shown} is not in a listed network")

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to; Refused unless the host and every address it has are allowed.

        OSError (socket.gaierror) when the name does not resolve.
        """
        try:
            literal: IPAddress | None = ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self._check(literal, host, named=False)
            return str(_plain(literal))
        name = host.lower().rstrip(".")
        named = name in self.names
        if not (named or self.networks):
            raise Refused(f"{name} is not listed")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except OSError:
            if named:
                raise
            raise Refused(f"{name} is not listed and has no address to check") from None
        addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
        for address in addresses:
            self._check(address, name, named)
        return str(_plain(addresses[0]))
