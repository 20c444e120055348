"""Runs one call of the `apinator-server` Python SDK (PyPI) for tests/e2e/apinator.test.mjs.

Usage: python apinator_sdk.py '<json>' where the JSON is
{"host": "http://127.0.0.1:PORT", "app": {"id", "key", "secret"}, "op": NAME, "args": {...}}.
Prints {"ok": true, "result": ...} or {"ok": false, "error": <exception class>, "message",
"status"}: the SDK's own exception mapping is what the test checks.
"""

import json
import sys

from apinator import Apinator
from apinator.errors import RealtimeError


def main() -> None:
    req = json.loads(sys.argv[1])
    app = req["app"]
    client = Apinator(app_id=app["id"], key=app["key"], secret=app["secret"], cluster="eu")
    # The SDK hard-codes https://ws-<cluster>.apinator.io; `host` is a plain attribute.
    client.host = req["host"]
    op, args = req["op"], req.get("args", {})
    try:
        if op == "trigger":
            result = client.trigger(**args)
        elif op == "authenticate_channel":
            result = client.authenticate_channel(**args)
        elif op == "get_channels":
            result = client.get_channels(**args)
        elif op == "get_channel":
            result = client.get_channel(**args)
        elif op == "verify_webhook":
            result = client.verify_webhook(**args)
        else:
            raise SystemExit(f"unknown op {op}")
        print(json.dumps({"ok": True, "result": result}))
    except RealtimeError as e:
        print(json.dumps({
            "ok": False,
            "error": type(e).__name__,
            "message": str(e.args[0]) if e.args else "",
            "status": getattr(e, "status", None),
        }))


if __name__ == "__main__":
    main()
