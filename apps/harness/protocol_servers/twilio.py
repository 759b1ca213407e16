"""Twilio's Messages API (POST /2010-04-01/Accounts/<sid>/Messages.json) with Basic auth, for the SMS
adapter tests: a number starting +1500555bad, +1500555quota or +1500555busy gets Twilio's answer."""

from __future__ import annotations

import base64
import itertools

from aiohttp import web

from .common import Received


def twilio_app(account_sid: str, auth_token: str, received: Received) -> web.Application:
    ids = itertools.count(1)
    expected_auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()

    def twilio_error(status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "more_info":
                                  f"https://www.twilio.com/docs/errors/{code}", "status": status}, status=status)

    async def create(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected_auth:
            return twilio_error(401, 20003, "Authenticate")
        if request.match_info["sid"] != account_sid:
            return twilio_error(404, 20404, "The requested resource was not found")
        form = await request.post()
        received.requests.append(dict(form))
        to = form.get("To", "")
        if to.startswith("+1500555bad"):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to.startswith("+1500555quota"):
            return twilio_error(429, 20429, "Too Many Requests")
        if to.startswith("+1500555busy"):
            return twilio_error(503, 20500, "Service Unavailable")
        sid = f"SM{next(ids):032d}"
        return web.json_response({"sid": sid, "account_sid": account_sid, "to": to, "from": form.get("From"),
                                  "body": form.get("Body"), "status": "queued", "num_segments": "1",
                                  "direction": "outbound-api", "api_version": "2010-04-01",
                                  "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"}, status=201)

    app = web.Application()
    app.add_routes([web.post("/2010-04-01/Accounts/{sid}/Messages.json", create)])
    return app
