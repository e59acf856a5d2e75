"""Point 8 of issue 14 (brief point 5): only the hosts the app serves, no cross-origin grants, no framing."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.hardening.conftest import Start
from ui.server import lan_address


def test_other_hosts_and_origins_get_nothing_and_the_ui_cannot_be_framed(
    start_app: Start, probes: Callable[[int], None]
) -> None:
    url, _ = start_app()
    port = httpx.URL(url).port
    tried = 0
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", f"10.0.0.99:{port}", ""):
        for path in ("", "config", "gradio_api/info"):
            answer = httpx.get(f"{url}{path}", headers={"Host": host}, timeout=10)
            tried += 1
            assert answer.status_code == 400, (host, path, answer.status_code)
            assert "session" not in answer.text.lower()
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{url}config", headers={"Host": host}, timeout=10).status_code == 200, host

    # No credentialed CORS for any other origin, localhost ports included; the preflight is refused.
    for origin in ("http://localhost:9999", "http://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
        answer = httpx.get(f"{url}config", headers={"Origin": origin}, timeout=10)
        tried += 1
        assert answer.status_code == 200 and not any(h.startswith("access-control-") for h in answer.headers), origin
        preflight = httpx.options(
            f"{url}gradio_api/queue/join",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert preflight.status_code >= 400 and "access-control-allow-origin" not in preflight.headers, origin
    same = httpx.get(f"{url}config", headers={"Origin": url.rstrip("/")}, timeout=10)
    assert same.status_code == 200

    # The editing UI (and everything else) refuses to be framed.
    for path in ("", "config"):
        answer = httpx.get(f"{url}{path}", timeout=10)
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers.get_list("content-security-policy")
    assert tried == 19
    probes(tried)


def test_under_listen_the_lan_address_and_configured_host_are_served(start_app: Start) -> None:
    url, _ = start_app(host="0.0.0.0", no_login=True)
    port = httpx.URL(url).port
    address = lan_address()
    if address:
        assert httpx.get(f"{url}config", headers={"Host": f"{address}:{port}"}, timeout=10).status_code == 200
    assert httpx.get(f"{url}config", headers={"Host": f"evil.example:{port}"}, timeout=10).status_code == 400
