"""The SSRF guard: a crawler pointed at the internet must not be steered into the network it runs in.

A link (or a redirect, or a DNS answer) naming a private, loopback, link-local, multicast or reserved
address is refused unless its host name or address is on an explicit allow-list.  The check runs when a
connection is made, on the address actually connected to, so DNS rebinding between check and use cannot
slip past it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(Exception):
    """The host resolves to an address the guard refuses (deliberately not an OSError: never retried)."""


class DnsFailure(Exception):
    """The host name does not resolve."""


@dataclass(frozen=True)
class AddressGuard:
    """``allow``: host names, IP addresses or CIDR networks that may be private (``127.0.0.1``, ``10.0.0.0/8``).

    ``connect_to`` maps ``host:port`` to the ``ip:port`` to connect to instead of asking DNS (as curl's
    ``--connect-to``), so a local mirror can be crawled under its public URLs.
    """

    allow: tuple[str, ...] = ()
    connect_to: tuple[tuple[str, str], ...] = ()
    _names: frozenset[str] = field(init=False, repr=False)
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names, networks = set(), []
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_networks", tuple(networks))

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """The address to connect to for ``host:port``, or ``BlockedAddress`` / ``DnsFailure``."""
        target = dict(self.connect_to).get(f"{host}:{port}")
        if target:
            ip, _, target_port = target.rpartition(":")
            host_ip, port = ip.strip("[]"), int(target_port)
            addresses = [host_ip]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as e:
                raise DnsFailure(f"{host}: {e}") from None
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if host.lower().rstrip(".") not in self._names:
            for address in addresses:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
                if not self._public(ip) and not any(ip in net for net in self._networks):
                    raise BlockedAddress(f"{host} resolves to {ip}, a non-public address (allow it explicitly)")
        return addresses[0], port

    @staticmethod
    def _public(ip: IPAddress) -> bool:
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped
        return ip.is_global and not ip.is_multicast
