"""The address allow-list, table by table from the IANA special-purpose registries (IPv4 and IPv6).

Each registry block is checked at its first and last address and must be refused with its rule; public
addresses next to them must be allowed; every IPv6 form that carries an IPv4 address must be judged by that
address. The URLs of the outside probe (issue 14) are refused by the crawler before any connection, with the
rule in the error, and the exemptions (ALLOW_PRIVATE_NETWORK, ALLOWED_HOSTS) still lift the rule.
"""

from __future__ import annotations

import ipaddress

import pytest
from security_helpers import RecordingBackend, SettingsFactory, suite_resolver

from crawlrag.crawl.addresses import IPV4_SPECIAL_PURPOSE, IPV6_EMBEDDED_IPV4, IPV6_SPECIAL_PURPOSE, non_public_rule
from crawlrag.crawl.guard import BlockedURLError, NetworkPolicy
from crawlrag.crawl.http import FetchError, HttpClient

pytestmark = pytest.mark.hostile

# (block, the words its rule must contain): the IANA IPv4 Special-Purpose Address Registry, every entry.
IPV4_REGISTRY = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.0.0/29", "IPv4 service continuity"),
    ("192.0.0.8/32", "IPv4 dummy address"),
    ("192.0.0.9/32", "port control protocol anycast"),
    ("192.0.0.10/32", "TURN anycast"),
    ("192.0.0.170/32", "NAT64/DNS64 discovery"),
    ("192.0.0.171/32", "NAT64/DNS64 discovery"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("224.0.0.0/4", "multicast"),  # not a special-purpose entry: not unicast at all
]
# The IANA IPv6 Special-Purpose Address Registry, every entry that does not carry an IPv4 address, and the
# blocks outside 2000::/3.
IPV6_REGISTRY = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy IPv6 prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:1::1/128", "port control protocol anycast"),
    ("2001:1::2/128", "TURN anycast"),
    ("2001:1::3/128", "DNS-SD service registration"),
    ("2001:2::/48", "benchmarking"),
    ("2001:3::/32", "AMT"),
    ("2001:4:112::/48", "AS112-v6"),
    ("2001:10::/28", "ORCHID"),
    ("2001:20::/28", "ORCHIDv2"),
    ("2001:30::/28", "drone remote ID"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2620:4f:8000::/48", "AS112"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing (SRv6)"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("4000::/3", "outside 2000::/3"),
    ("8000::/1", "outside 2000::/3"),
    ("200::/7", "outside 2000::/3"),
    ("1000::/4", "outside 2000::/3"),
]
# Globally routable unicast, including neighbours of refused blocks.
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.0.3.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::200e",
    "2000::1",
    "3ffe:ffff::1",
    "3fff:1000::1",
    "2001:200::1",
    "2001:db9::1",
    "2620:4f:8001::1",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]
# (address, form, the IPv4 address it carries, the rule of that address)
EMBEDDED = [
    ("::127.0.0.1", "IPv4-compatible", "127.0.0.1", "loopback"),
    ("::169.254.169.254", "IPv4-compatible", "169.254.169.254", "link-local"),
    ("::10.0.0.1", "IPv4-compatible", "10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "IPv4-mapped", "127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped", "169.254.169.254", "link-local"),
    ("::ffff:0:7f00:1", "IPv4-translated (SIIT)", "127.0.0.1", "loopback"),
    ("::ffff:0:a9fe:a9fe", "IPv4-translated (SIIT)", "169.254.169.254", "link-local"),
    ("64:ff9b::7f00:1", "NAT64", "127.0.0.1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64", "169.254.169.254", "link-local"),
    ("64:ff9b::c0a8:1", "NAT64", "192.168.0.1", "private"),
    ("64:ff9b:1::a9fe:a9fe", "local-use NAT64", "169.254.169.254", "link-local"),
    ("64:ff9b:1::7f00:1", "local-use NAT64", "127.0.0.1", "loopback"),
    ("2002:7f00:1::1", "6to4", "127.0.0.1", "loopback"),
    ("2002:a9fe:a9fe::1", "6to4", "169.254.169.254", "link-local"),
    ("2001:0:808:808:0:0:80ff:fffe", "Teredo", "127.0.0.1", "loopback"),  # client address, stored inverted
    ("2001:0:a00:1::1", "Teredo", "10.0.0.1", "private"),  # server address
]


def edges(block: str) -> list[str]:
    """The first and last address of `block`, but not those that a more specific block (or form) decides."""
    network = ipaddress.ip_network(block)
    inner_blocks = [ipaddress.ip_network(other) for other, _ in IPV4_REGISTRY + IPV6_REGISTRY]
    inner_blocks += [form.network for form in IPV6_EMBEDDED_IPV4]
    inner_blocks = [
        other for other in inner_blocks if other.version == network.version and other.prefixlen > network.prefixlen
    ]
    found = [
        address
        for address in (network.network_address, network.broadcast_address)
        if not any(address in other for other in inner_blocks)
    ]
    assert found, block
    return [str(address) for address in found]


@pytest.mark.parametrize(
    ("block", "words"), IPV4_REGISTRY + IPV6_REGISTRY, ids=[b for b, _ in IPV4_REGISTRY + IPV6_REGISTRY]
)
def test_every_registry_block_is_refused_with_its_rule(block: str, words: str) -> None:
    for address in edges(block):
        rule = non_public_rule(ipaddress.ip_address(address))
        assert rule is not None and words in rule, (address, rule)


def test_the_tables_in_the_code_are_the_registries() -> None:
    """Every block the code lists is tested above, and none is missing from the code."""
    listed = {str(block.network) for block in IPV4_SPECIAL_PURPOSE + IPV6_SPECIAL_PURPOSE}
    tested = {ipaddress.ip_network(block).compressed for block, _ in IPV4_REGISTRY + IPV6_REGISTRY}
    not_registry = {"224.0.0.0/4", "4000::/3", "8000::/1", "200::/7", "1000::/4"}
    assert listed == tested - not_registry


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_routable_unicast_is_allowed(address: str) -> None:
    assert non_public_rule(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "form", "inner", "words"), EMBEDDED, ids=[case[0] for case in EMBEDDED])
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_carry(address: str, form: str, inner: str, words: str) -> None:
    rule = non_public_rule(ipaddress.ip_address(address))
    assert rule is not None
    assert rule.startswith(words) and f"as {form} {inner}" in rule, rule


def test_local_use_nat64_is_refused_even_when_it_carries_a_public_address() -> None:
    """RFC 8215: where the IPv4 address sits in 64:ff9b:1::/48 depends on the network, so none is trusted."""
    rule = non_public_rule(ipaddress.ip_address("64:ff9b:1::808:808"))
    assert rule is not None and "local-use NAT64 (RFC 8215)" in rule


# The URLs of the outside probe and their neighbours: refused before any connection, the rule named.
PROBE_URLS = [
    ("http://[::127.0.0.1]/", "loopback, inside the IPv6 address ::7f00:1 as IPv4-compatible 127.0.0.1"),
    ("http://[::169.254.169.254]/", "link-local (this range holds cloud metadata"),
    ("http://[::ffff:0:7f00:1]/", "loopback, inside the IPv6 address ::ffff:0:7f00:1 as IPv4-translated (SIIT)"),
    ("http://[64:ff9b:1::a9fe:a9fe]/", "as local-use NAT64 169.254.169.254"),
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "as NAT64 169.254.169.254"),
    ("http://[2002:a9fe:a9fe::1]/", "as 6to4 169.254.169.254"),
    ("http://[2001:0:808:808:0:0:80ff:fffe]/", "as Teredo 127.0.0.1"),
    ("http://[5f00::1]/", "segment routing (SRv6) SIDs (RFC 9602)"),
    ("http://[3fff::1]/", "documentation (RFC 9637)"),
    ("http://[2001:db8::1]/", "documentation (RFC 3849)"),
    ("http://[100::1]/", "discard-only (RFC 6666)"),
    ("http://[4000::1]/", "not global unicast (outside 2000::/3"),
    ("http://192.0.0.9/", "port control protocol anycast"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://203.0.113.7/", "documentation (TEST-NET-3"),
]


@pytest.mark.parametrize(("url", "words"), PROBE_URLS, ids=[case[0] for case in PROBE_URLS])
async def test_probe_urls_are_refused_before_any_connection(
    url: str, words: str, hostile_settings: SettingsFactory
) -> None:
    settings = hostile_settings()
    backend = RecordingBackend()
    async with HttpClient(
        settings, NetworkPolicy(settings, resolver=suite_resolver()), network_backend=backend
    ) as http:
        with pytest.raises(FetchError) as refused:
            await http.get(url)
    assert "Refusing to fetch" in str(refused.value) and words in str(refused.value)
    assert backend.connects == []


async def test_resolved_names_are_judged_by_the_same_rules(hostile_settings: SettingsFactory) -> None:
    resolver = suite_resolver(**{"nat64.example.com": ["2606:4700::1", "64:ff9b:1::a9fe:a9fe"]})
    policy = NetworkPolicy(hostile_settings(allowed_hosts=[]), resolver=resolver)
    with pytest.raises(BlockedURLError, match=r"non-public address 64:ff9b:1::a9fe:a9fe \(link-local"):
        await policy.addresses("nat64.example.com")


async def test_exemptions_still_lift_the_address_rule(hostile_settings: SettingsFactory) -> None:
    resolver = suite_resolver(**{"lab.example": ["64:ff9b:1::a9fe:a9fe"], "docs.lab.example": ["::ffff:0:a00:1"]})
    listed = NetworkPolicy(hostile_settings(allowed_hosts=["*.lab.example"]), resolver=resolver)
    assert await listed.addresses("docs.lab.example") == ("::ffff:0:a00:1",)
    with pytest.raises(BlockedURLError, match=r"or add lab\.example to ALLOWED_HOSTS"):
        await listed.addresses("lab.example")
    anything = NetworkPolicy(hostile_settings(allow_private_network=True, allowed_hosts=[]), resolver=resolver)
    assert await anything.addresses("lab.example") == ("64:ff9b:1::a9fe:a9fe",)
    await anything.check("http://[5f00::1]/")
