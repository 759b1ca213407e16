"""A webhook receiver verifying Standard Webhooks signatures, for the webhook and callback tests."""

from __future__ import annotations

import json

from aiohttp import web

from .common import Received


def webhook_app(secrets: dict[str, str], received: Received) -> web.Application:
    """A receiver whose endpoint /hook/<name> verifies the Standard Webhooks signature with its own secret
    (secrets[name]) through the `standardwebhooks` library, as a real receiver would."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        name = request.match_info["name"]
        try:
            Webhook(secrets[name]).verify(body, dict(request.headers))
        except (KeyError, WebhookVerificationError):
            return web.Response(status=401, text="bad signature")
        received.requests.append({"name": name, "body": json.loads(body), "id": request.headers["webhook-id"]})
        if name == "gone":
            return web.Response(status=410, text="endpoint removed")
        if name == "fail":
            return web.Response(status=500, text="oops")
        return web.Response(status=204)

    app = web.Application()
    app.add_routes([web.post("/hook/{name}", hook)])
    return app
