"""FCM HTTP v1 (POST /v1/projects/<project>/messages:send) and Google's OAuth2 token endpoint (/token).

The token endpoint checks a real RS256 assertion signed with the service account's key and hands out
an access token, which every send must carry. A token that starts with "bad", "malformed", "busy",
"quota" or "garbled" gets FCM's own answer for that case (the adapter tests); any other is accepted,
unless the project's quota is spent (429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED, as FCM answers).
"""

from __future__ import annotations

import itertools
import json

import jwt
from aiohttp import web

from .common import Counts, Received

ACCESS_TOKEN = "ya29.local"


def fcm_error(status: int, code: str, message: str, google_status: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": google_status, "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}, status=status,
        headers=headers)


def fcm_app(public_key_pem: str, received: Received | None = None, counts: Counts | None = None) -> web.Application:
    ids = itertools.count(1)
    counts = counts or Counts()

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:  # a real RS256 assertion signed with the service account's key
            claims = jwt.decode(form["assertion"], public_key_pem, algorithms=["RS256"],
                                options={"verify_aud": False})
        except (jwt.PyJWTError, KeyError) as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        if "firebase.messaging" not in claims.get("scope", "") or not str(claims.get("aud", "")).endswith("/token"):
            return web.json_response({"error": "invalid_scope", "error_description": str(claims)}, status=400)
        return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    async def send(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                             "UNAUTHENTICATED")
        body = await request.read()
        if not counts.request(len(body)):
            return fcm_error(429, "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Messages' of service "
                             "'fcm.googleapis.com'", "RESOURCE_EXHAUSTED", headers={"Retry-After": "1"})
        try:
            message = json.loads(body)["message"]
            token = message["token"]
            if not isinstance(token, str) or not token:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", "INVALID_ARGUMENT")
        if received is not None:
            received.requests.append(message)
        if token.startswith("bad"):
            return fcm_error(404, "UNREGISTERED", "Requested entity was not found.", "NOT_FOUND")
        if token.startswith("malformed"):
            return fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data' (Map), \"title\"",
                             "INVALID_ARGUMENT")
        if token.startswith("busy"):
            return web.json_response({"error": {"code": 503, "message": "The service is currently unavailable.",
                                                "status": "UNAVAILABLE"}}, status=503, headers={"Retry-After": "7"})
        if token.startswith("quota"):
            return fcm_error(429, "QUOTA_EXCEEDED", "Quota exceeded for quota metric", "RESOURCE_EXHAUSTED")
        if token.startswith("garbled"):
            return web.Response(text="<html>502 Bad Gateway</html>", status=200)
        counts.accepted(token)
        await counts.hold()
        project = request.match_info["project"]
        return web.json_response({"name": f"projects/{project}/messages/{next(ids)}"})

    app = web.Application()
    app.add_routes([web.post("/token", token), web.post("/v1/projects/{project}/messages:send", send)])
    return app
