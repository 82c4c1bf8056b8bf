"""Who is calling: the peer's address, or, when the peer is one of our own reverse
proxies (PHR_TRUSTED_PROXIES), the address that proxy says it forwarded for.

Forwarding headers are believed from trusted proxies only: anyone else can write
them. The chain is read from the right (the hop nearest us) and trusted proxies are
skipped; the first address that is not ours is the client. A value that does not
parse as an address ends the walk at the hop that wrote it: a trusted proxy's
garbage is not a reason to believe what a client put before it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_for(forwarded: str) -> list[str]:
    hops = []
    for element in forwarded.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.strip().lower() == "for":
                hops.append(value)
    return hops


def client_address(
    peer: str | None, headers: Iterable[tuple[str, str]], trusted_cidrs: tuple[str, ...]
) -> str | None:
    if peer is None or not trusted_cidrs:
        return peer
    trusted = _networks(trusted_cidrs)
    peer_address = _address(peer)
    if peer_address is None or not any(peer_address in n for n in trusted):
        return peer
    forwarded = [v for k, v in headers if k.lower() == "forwarded"]
    if forwarded:
        hops = _forwarded_for(",".join(forwarded))
    else:
        hops = ",".join(v for k, v in headers if k.lower() == "x-forwarded-for").split(",")
    hops = [h for h in hops if h.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not any(address in n for n in trusted):
            break
    return client
