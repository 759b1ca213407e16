"""The admin login lockout behind a reverse proxy, on the production web server (gunicorn with uvicorn
workers, DEBUG off): X-Forwarded-For names the client only when the request came from a trusted proxy
(FORWARDED_ALLOW_IPS); from any other peer the peer's own address counts, whatever the header says."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.test import RequestFactory

from notifications_project.client_ip import client_ip, trusted_proxies
from tests.web_server import web_server

ATTACKER, COLLEAGUE = "203.0.113.7", "198.51.100.9"


def login(base: str, username: str, password: str, forwarded_for: str) -> int:
    """One admin login through the server, as a browser behind the proxy makes it: the form, then the post."""
    headers = {"X-Forwarded-For": forwarded_for}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/admin/login/", headers=headers), timeout=10) as page:
        form = page.read().decode()
        cookie = re.search(r"csrftoken=([^;]+)", page.headers["Set-Cookie"]).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token,
                                   "next": "/admin/"}).encode()
    post = urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=body, headers={
        **headers, "Cookie": f"csrftoken={cookie}", "Content-Type": "application/x-www-form-urlencoded"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(post, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        return answer.code


def fail_until_locked(base: str, limit: int, forwarded_for: str) -> None:
    for _ in range(limit - 1):
        assert login(base, "ops", "wrong", forwarded_for) == 200  # the form again, with its error
    assert login(base, "ops", "wrong", forwarded_for) == 429


@pytest.fixture
def ops(transactional_db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("ops", "ops@example.com", "right-password-1")


def test_through_a_trusted_proxy_the_forwarded_client_is_locked_out_and_no_one_else(ops, settings, tmp_path):
    from axes.models import AccessAttempt

    with web_server(tmp_path / "static", FORWARDED_ALLOW_IPS="127.0.0.1") as base:
        fail_until_locked(base, settings.AXES_FAILURE_LIMIT, f"{ATTACKER}, 127.0.0.1")
        assert login(base, "ops", "right-password-1", ATTACKER) == 429  # even with the right password
        assert login(base, "ops", "right-password-1", COLLEAGUE) == 302  # another client behind the proxy
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_from_an_untrusted_peer_the_header_is_ignored(ops, settings, tmp_path):
    from axes.models import AccessAttempt

    with web_server(tmp_path / "static", FORWARDED_ALLOW_IPS="10.1.2.3") as base:  # a proxy that is not us
        fail_until_locked(base, settings.AXES_FAILURE_LIMIT, ATTACKER)
        # A new address in the header changes nothing: the lock is on the peer that really connected.
        assert login(base, "ops", "right-password-1", COLLEAGUE) == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


@pytest.mark.parametrize("peer, header, expected", [
    ("10.0.0.2", "203.0.113.7", "203.0.113.7"),  # the proxy's one hop
    ("10.0.0.2", "198.51.100.1, 203.0.113.7, 10.0.0.3", "203.0.113.7"),  # the rightmost untrusted hop
    ("10.0.0.2", "", "10.0.0.2"),  # a trusted proxy that sent no header
    ("10.0.0.2", "not-an-address", "10.0.0.2"),  # a malformed hop: nothing to its left is believed
    ("10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted peer: its own address
])
def test_client_ip_reads_the_header_from_the_right_skipping_trusted_proxies(settings, peer, header, expected):
    settings.TRUSTED_PROXIES = [__import__("ipaddress").ip_network("10.0.0.0/8")]
    request = RequestFactory().get("/admin/login/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=header)
    assert client_ip(request) == expected


def test_a_bad_trusted_proxy_list_stops_start_up_naming_the_variable(monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1, proxy.example")
    with pytest.raises(SystemExit, match="configuration error: FORWARDED_ALLOW_IPS: expected IP addresses"):
        trusted_proxies()
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert trusted_proxies() == "*"
