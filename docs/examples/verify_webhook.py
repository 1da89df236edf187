#!/usr/bin/env python3
"""Verifies a Kurt webhook delivery's Kurt-Signature header (docs/reports.md, "Webhooks").

In a receiver, call verify(secret, request.headers["Kurt-Signature"], raw_body) on the raw request
body (the bytes as received, before any JSON parsing) and refuse the delivery when it is False.

As a command (what the tests run against a real delivery):
  KURT_WEBHOOK_SECRET=whsec_... verify_webhook.py '<Kurt-Signature value>' < body
exits 0 when the signature is valid and fresh, 1 otherwise.
"""
import hashlib
import hmac
import os
import sys
import time

# Deliveries older than this are refused, so that a captured one cannot be replayed later.
TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    # Compare in constant time; a header may carry several v1 values during a secret rotation.
    return any(hmac.compare_digest(expected, value)
               for key, value in (p.split("=", 1) for p in header.split(",") if "=" in p)
               if key == "v1")


if __name__ == "__main__":
    if len(sys.argv) != 2 or "KURT_WEBHOOK_SECRET" not in os.environ:
        sys.exit("usage: KURT_WEBHOOK_SECRET=whsec_... verify_webhook.py '<Kurt-Signature>' < body")
    ok = verify(os.environ["KURT_WEBHOOK_SECRET"], sys.argv[1], sys.stdin.buffer.read())
    print("valid" if ok else "INVALID")
    sys.exit(0 if ok else 1)
