"""Schemathesis hooks for tests/e2e/api_conformance.sh: the rules no JSON Schema can state.

Each field's own limits are in the OpenAPI document (from the protos' kurt.api.v1.rules), and
schemathesis generates data within them. What remains spans fields or needs the world, and is
written in the fields' descriptions; these hooks make generated data keep to it, so that a
refusal of the data they leave is a real mismatch between the document and the services:
- an expiry must be in the future, and validSince before it (the hooks put it a day back);
- a link's limit (validSince, maxClicks, fallbackUrl) is not given with its clear_ field;
- a report's and a stats query's range: end after start, at most 366 (reports) or 31 (hourly
  stats) days long;
- an update changes something (a target, an expiry, a limit, forwarding, redirect rules, or
  clearing one), and sets tags or clears them, not both (and so for redirect rules);
- a page token must come from a previous page;
- the key the run authenticates with (KURT_API_KEY_ID) is not revoked by DELETE /v1/keys/{id},
  which would leave the rest of the run unauthenticated;
- a webhook's host must resolve to a public address, which nothing does offline: the URL is
  cleared (removing the webhook), which every account may do.
"""

import os
from datetime import datetime, timedelta, timezone

import schemathesis


def _stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """Runs before every request of every phase (examples, coverage, fuzzing)."""
    path = case.operation.path
    now = datetime.now(timezone.utc)
    body = case.body if isinstance(case.body, dict) else None
    query = case.query if isinstance(case.query, dict) else None
    if body is not None:
        if path in ("/v1/links", "/v1/links/{code}") and "expireTime" in body:
            body["expireTime"] = _stamp(now + timedelta(days=1))
            body.pop("clearExpireTime", None)
            body.pop("clear_expire_time", None)
        if path in ("/v1/links", "/v1/links/{code}"):
            # validSince is before the expiry (given or stored, which the line above keeps in the
            # future); a limit (or a password) and its clear_ are not given together.
            for name, clear in (("validSince", "clearValidSince"), ("maxClicks", "clearMaxClicks"),
                                ("fallbackUrl", "clearFallbackUrl"), ("password", "clearPassword")):
                if name in body:
                    body.pop(clear, None)
            for name in ("validSince", "valid_since"):
                if name in body:
                    body[name] = _stamp(now - timedelta(days=1))
        if path == "/v1/links/{code}" and case.method.upper() == "PATCH":
            if body.get("tags"):
                body.pop("clearTags", None)
            if body.get("redirectRules"):
                body.pop("clearRedirectRules", None)
            if not body.get("redirectRules") and not any(
                    body.get(name) is not None and body.get(name) is not False
                    for name in ("targetUrl", "expireTime", "clearExpireTime", "validSince",
                                 "clearValidSince", "maxClicks", "clearMaxClicks",
                                 "fallbackUrl", "clearFallbackUrl", "forwardQuery",
                                 "password", "clearPassword", "clearRedirectRules")):
                body["clearExpireTime"] = True
        if path == "/v1/reports":
            body["startTime"] = _stamp(now - timedelta(days=2))
            body["endTime"] = _stamp(now - timedelta(days=1))
        if path == "/v1/webhook" and "url" in body:
            body["url"] = ""
    own_key = os.environ.get("KURT_API_KEY_ID")
    if path == "/v1/keys/{id}" and own_key and (case.path_parameters or {}).get("id") == own_key:
        case.path_parameters["id"] = "key_0000000000000000"
    if query is not None:
        query.pop("pageToken", None)
        if path == "/v1/links/{code}/stats":
            for name in ("startTime", "endTime"):
                query.pop(name, None)
