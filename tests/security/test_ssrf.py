"""Server-side request forgery: URLs, redirects and DNS answers that try to reach private addresses.

Private networks are refused here (ALLOW_PRIVATE_NETWORK=false). Refused addresses are never contacted: the
refusal happens before a connection is opened, so the cases below that name 10.x, 169.254.x and friends send
nothing anywhere. Everything that is contacted is the test server on 127.0.0.1.
"""

from __future__ import annotations

import pytest
from hostile_http import HostileServer, body, redirect
from security_helpers import (
    DOCS_HOST,
    INTERNAL_HOST,
    PUBLIC_LOOKING_HOST,
    FakeResolver,
    RecordingBackend,
    SettingsFactory,
    suite_resolver,
)

from crawlrag.crawl import BlockedURLError, Crawler, CrawlInputError, CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.guard import NetworkPolicy
from crawlrag.crawl.http import FetchError, HttpClient
from crawlrag.crawl.results import CrawlProgress
from crawlrag.models import Page

pytestmark = pytest.mark.hostile

OK_PAGE = "<html><head><title>Fine</title></head><body><main><h1>Fine</h1><p>An ordinary page of text.</p></main>"
SECRET = "<html><body><main><p>SECRET-INTERNAL-DATA</p></main></body></html>"


async def crawl(crawler: Crawler, url: str, **options: int) -> list[Page | PageFailure | PageSkipped]:
    return [result async for result in crawler.crawl(CrawlRequest(url, **options))]


async def assert_still_crawls(crawler: Crawler, server: HostileServer) -> None:
    """The refusal left the crawler usable: an allowed page is still fetched and stored."""
    server.route("/ok", body(OK_PAGE))
    (result,) = await crawl(crawler, server.url("/ok", host=DOCS_HOST), max_depth=0)
    assert isinstance(result, Page) and "ordinary page" in result.markdown


# (URL with {port}, the words the error must contain). No case reaches the network: each is refused first.
REFUSED_START_URLS = [
    ("file:///etc/passwd", "only http:// and https://"),
    ("gopher://127.0.0.1:{port}/_GET%20/secret", "only http:// and https://"),
    ("ftp://127.0.0.1:{port}/secret", "only http:// and https://"),
    ("dict://127.0.0.1:{port}/info", "only http:// and https://"),
    ("javascript:fetch('http://127.0.0.1/')", "only http:// and https://"),
    ("data:text/html,<h1>hi</h1>", "only http:// and https://"),
    ("http://169.254.169.254/latest/meta-data/", "link-local (this range holds cloud metadata"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "inside the IPv6 address"),
    ("http://[::ffff:127.0.0.1]:{port}/secret", "loopback, inside the IPv6 address"),
    ("http://2130706433:{port}/secret", "non-public address 127.0.0.1 (loopback)"),
    ("http://0x7f.1:{port}/secret", "non-public address 127.0.0.1 (loopback)"),
    ("http://0177.0.0.1:{port}/secret", "non-public address 127.0.0.1 (loopback)"),
    ("http://127.1:{port}/secret", "non-public address 127.0.0.1 (loopback)"),
    ("http://[::1]:{port}/secret", "non-public address ::1 (loopback)"),
    ("http://0.0.0.0:{port}/secret", "(unspecified)"),
    ("http://10.0.0.1/", "(private)"),
    ("http://172.16.5.4/", "(private)"),
    ("http://192.168.1.1/admin", "(private)"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://224.0.0.251/", "(multicast)"),
    ("http://255.255.255.255/", "(broadcast)"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd12:3456::1]/", "(private)"),
    ("http://[64:ff9b::7f00:1]:{port}/", "loopback, inside the IPv6 address"),
    ("http://[2002:7f00:1::1]:{port}/", "loopback, inside the IPv6 address"),
    # The forms an outside probe found passing (issue 14): IPv4-compatible, SIIT, local-use NAT64, new blocks.
    ("http://[::127.0.0.1]:{port}/secret", "loopback, inside the IPv6 address ::7f00:1 as IPv4-compatible"),
    ("http://[::169.254.169.254]/latest/meta-data/", "cloud metadata services such as 169.254.169.254), inside"),
    ("http://[::ffff:0:7f00:1]:{port}/secret", "as IPv4-translated (SIIT) 127.0.0.1"),
    ("http://[64:ff9b:1::a9fe:a9fe]/latest/meta-data/", "as local-use NAT64 169.254.169.254"),
    ("http://[5f00::1]/", "segment routing (SRv6) SIDs"),
    ("http://[3fff::1]/", "documentation (RFC 9637)"),
    (f"http://{PUBLIC_LOOKING_HOST}:{{port}}/secret", "non-public address 127.0.0.1 (loopback)"),
    (f"http://{INTERNAL_HOST}:{{port}}/secret", f"or add {INTERNAL_HOST} to ALLOWED_HOSTS"),
    ("http://mixed.example.com/", "non-public address 10.0.0.5 (private)"),
    ("http://nxdomain.example.com/", "cannot resolve host"),
    (f"http://alice:hunter2@{DOCS_HOST}:{{port}}/secret", "credentials"),
    (f"http://{DOCS_HOST}:{{port}}/" + "a" * 5000, "the limit is 2048"),
    ("http://1.2.3.999/", "invalid IPv4 address"),
]


@pytest.mark.parametrize(("template", "words"), REFUSED_START_URLS, ids=[case[0][:48] for case in REFUSED_START_URLS])
async def test_start_url_is_refused(
    template: str, words: str, server: HostileServer, hostile_settings: SettingsFactory
) -> None:
    server.route("/secret", body(SECRET))
    resolver = suite_resolver(**{"mixed.example.com": ["93.184.216.34", "10.0.0.5"]})
    url = template.replace("{port}", str(server.port))
    async with Crawler(hostile_settings(), resolver=resolver) as crawler:
        with pytest.raises(CrawlInputError) as refused:
            await crawl(crawler, url)
        assert words in str(refused.value)
        assert "hunter2" not in str(refused.value)
        assert server.hits["/secret"] == 0
        await assert_still_crawls(crawler, server)


@pytest.mark.parametrize(
    "target",
    [
        f"http://{INTERNAL_HOST}:{{port}}/secret",
        "http://127.0.0.1:{port}/secret",
        "http://[::ffff:7f00:1]:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "file:///etc/passwd",
    ],
)
async def test_redirect_from_an_allowed_host_to_a_private_one_is_refused(
    target: str, server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    server.route("/secret", body(SECRET))
    server.route("/start", redirect(target.replace("{port}", str(server.port))))
    async with Crawler(hostile_settings(), resolver=resolver) as crawler:
        (result,) = await crawl(crawler, server.url("/start", host=DOCS_HOST), max_depth=0)
        assert isinstance(result, PageFailure)
        assert "non-public address" in result.reason or "cannot be crawled" in result.reason
        assert server.hits["/start"] == 1 and server.hits["/secret"] == 0
        await assert_still_crawls(crawler, server)


async def test_endless_redirect_loop_stops_at_max_redirects(
    server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    server.route("/a", redirect("/b"))
    server.route("/b", redirect("/a"))
    async with Crawler(hostile_settings(max_redirects=5), resolver=resolver) as crawler:
        (result,) = await crawl(crawler, server.url("/a", host=DOCS_HOST), max_depth=0)
        assert isinstance(result, PageFailure) and "too many redirects (more than 5)" in result.reason
        assert server.hits["/a"] + server.hits["/b"] == 6
        await assert_still_crawls(crawler, server)


async def test_endless_redirect_chain_to_new_urls(
    server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    counter = iter(range(10**6))
    server.route("/chain", redirect(lambda: f"/chain?{next(counter)}"))
    async with Crawler(hostile_settings(max_redirects=3), resolver=resolver) as crawler:
        (result,) = await crawl(crawler, server.url("/chain", host=DOCS_HOST), max_depth=0)
    assert isinstance(result, PageFailure) and "too many redirects" in result.reason
    assert server.hits["/chain"] == 4


async def test_links_sitemaps_and_llms_txt_never_lead_to_private_hosts(
    server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    port = server.port
    private = [f"http://127.0.0.1:{port}/secret", f"http://{INTERNAL_HOST}:{port}/secret", "http://10.1.2.3/"]
    links = "".join(f'<a href="{url}">x</a>' for url in private)
    server.route("/", body(f"<html><body><main><p>Links to elsewhere.</p>{links}</main></body></html>"))
    server.route("/llms.txt", body("# Docs\n\n" + "\n".join(f"- [x]({url})" for url in private), "text/plain"))
    entries = "".join(f"<url><loc>{url}</loc></url>" for url in private)
    urlset = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    server.route("/sitemap.xml", body(urlset, "application/xml"))
    index = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>http://{INTERNAL_HOST}:{port}/secret-sitemap.xml</loc></sitemap></sitemapindex>"
    )
    server.route("/sitemap_index.xml", body(index, "application/xml"))
    server.route("/secret", body(SECRET))
    async with Crawler(hostile_settings(), resolver=resolver) as crawler:
        from_page = await crawl(crawler, server.url("/", host=DOCS_HOST), max_depth=2)
        from_llms = await crawl(crawler, server.url("/llms.txt", host=DOCS_HOST))
        from_sitemap = await crawl(crawler, server.url("/sitemap.xml", host=DOCS_HOST))
        from_index = await crawl(crawler, server.url("/sitemap_index.xml", host=DOCS_HOST))
    assert [type(result) for result in from_page] == [Page]
    assert [type(result) for result in from_llms] == [Page]
    assert all(isinstance(result, PageSkipped) and result.reason == "different site" for result in from_sitemap)
    # The child sitemap on a private host was refused (reported as such), so it listed nothing.
    assert [(failure.url, "Refusing to fetch" in failure.reason) for failure in from_index] == [
        (f"http://{INTERNAL_HOST}:{port}/secret-sitemap.xml", True)
    ]
    assert server.hits["/secret"] == 0 and server.hits["/secret-sitemap.xml"] == 0


async def test_dns_rebinding_cannot_swap_the_address_after_the_check(hostile_settings: SettingsFactory) -> None:
    """The check sees a public address, a second DNS answer says 127.0.0.1: the connection uses the vetted one.

    A recording network backend stands in for sockets: it notes where the crawler would connect and connects
    nowhere, so this test sends no traffic to the "public" address.
    """
    settings = hostile_settings(allowed_hosts=[])
    rebinding = FakeResolver({"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]})
    backend = RecordingBackend()
    async with HttpClient(settings, NetworkPolicy(settings, resolver=rebinding), network_backend=backend) as http:
        with pytest.raises(FetchError, match="connection failed"):
            await http.get("http://rebind.example.com/")
    assert backend.connects == [("93.184.216.34", 80)]

    # Without the DNS cache the connection asks again, gets 127.0.0.1, and the same rules refuse it.
    rebinding = FakeResolver({"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]})
    backend = RecordingBackend()
    policy = NetworkPolicy(settings, resolver=rebinding, dns_cache_seconds=0)
    async with HttpClient(settings, policy, network_backend=backend) as http:
        with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1 \(loopback\)"):
            await http.get("http://rebind.example.com/")
    assert rebinding.queries == ["rebind.example.com", "rebind.example.com"]
    assert backend.connects == []


async def test_connections_are_pinned_and_keep_the_host_header(
    server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    """DOCS_HOST exists only in the test resolver, so reaching it proves the connection used the vetted address."""
    server.route("/ok", body(OK_PAGE))
    settings = hostile_settings()
    async with HttpClient(settings, NetworkPolicy(settings, resolver=resolver)) as http:
        response = await http.get(server.url("/ok", host=DOCS_HOST))
    assert response.status == 200 and b"ordinary page" in response.body
    assert server.host_headers["/ok"] == f"{DOCS_HOST}:{server.port}"
    assert resolver.queries == [DOCS_HOST]


async def test_allow_private_network_still_refuses_other_schemes_and_credentials(
    server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    server.route("/ok", body(OK_PAGE))
    settings = hostile_settings(allow_private_network=True)
    async with HttpClient(settings, NetworkPolicy(settings, resolver=resolver)) as http:
        for url, words in [
            ("file:///etc/passwd", "only http:// and https://"),
            (f"http://bob:pw@127.0.0.1:{server.port}/ok", "credentials"),
        ]:
            with pytest.raises(FetchError, match=words):
                await http.get(url)
        assert (await http.get(server.url("/ok"))).status == 200  # and private addresses are allowed
    assert server.hits["/ok"] == 1


async def test_progress_callback_sees_nothing_of_a_refused_crawl(
    server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    seen: list[CrawlProgress] = []
    async with Crawler(hostile_settings(), resolver=resolver) as crawler:
        with pytest.raises(BlockedURLError):
            results = crawler.crawl(CrawlRequest(f"http://{INTERNAL_HOST}:{server.port}/"), on_progress=seen.append)
            await anext(results)
    assert seen == [] and sum(server.hits.values()) == 0


BROWSER_PROBE = """<!DOCTYPE html><html><head><title>Probe</title></head><body><div id="app"></div>
<iframe src="http://localhost:{port}/secret-frame"></iframe>
<script>
function probe(method, url) {
  try {
    const request = new XMLHttpRequest();
    request.open(method, url, false);  // synchronous: done before the load event the renderer waits for
    request.send(method === "POST" ? "x" : null);
    return request.status + "=" + request.responseText.trim();
  } catch (error) { return "BLOCKED"; }
}
let socket = "none";
try { new WebSocket("ws://127.0.0.1:{port}/ws"); socket = "opened"; } catch (error) { socket = "refused"; }
const unroutable = ["serviceWorker" in navigator, "RTCPeerConnection" in window, "WebTransport" in window];
const results = [
  "unroutable-apis:" + (unroutable.some(Boolean) ? "present" : "absent"),
  "control:" + probe("GET", "http://127.0.0.1:{port}/control"),
  "secret:" + probe("GET", "http://localhost:{port}/secret"),
  "metadata:" + probe("GET", "http://169.254.169.254/latest/meta-data/"),
  "post:" + probe("POST", "/post-target"),
];
document.getElementById("app").innerHTML = "<main><h1>Probe results</h1><p>" + results.join(" ; ") + "</p></main>";
</script></body></html>"""


@pytest.mark.browser
@pytest.mark.usefixtures("no_leftover_chromium")
async def test_browser_requests_go_through_the_same_guard(
    server: HostileServer, hostile_settings: SettingsFactory
) -> None:
    """127.0.0.1 is exempt (the positive control reaches the server); `localhost` is not, so Chromium, which
    would resolve it to loopback on its own, must never reach /secret. Neither may a POST, a frame or a socket."""
    port = server.port
    server.route("/probe", body(BROWSER_PROBE.replace("{port}", str(port))))
    server.route("/control", body("CONTROL-OK", "text/plain", headers={"Access-Control-Allow-Origin": "*"}))
    for path in ("/secret", "/secret-frame", "/post-target", "/ws"):
        server.route(path, body("SECRET-INTERNAL-DATA", "text/plain", headers={"Access-Control-Allow-Origin": "*"}))
    settings = hostile_settings(browser="always", allowed_hosts=[DOCS_HOST, "127.0.0.1"], request_timeout_seconds=10)
    async with Crawler(settings, resolver=suite_resolver(localhost=["127.0.0.1"])) as crawler:
        (page,) = await crawl(crawler, server.url("/probe", host=DOCS_HOST), max_depth=0)
    assert isinstance(page, Page), page
    assert "control:200=CONTROL-OK" in page.markdown and "unroutable-apis:absent" in page.markdown
    assert "secret:BLOCKED" in page.markdown and "metadata:BLOCKED" in page.markdown
    assert "post:BLOCKED" in page.markdown and "SECRET-INTERNAL-DATA" not in page.markdown
    assert server.hits["/control"] == 1
    for path in ("/secret", "/secret-frame", "/post-target", "/ws"):
        assert server.hits[path] == 0, path
