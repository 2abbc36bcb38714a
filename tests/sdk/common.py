"""Helpers shared by the SDK scripts the end-to-end tests run (tests/e2e/harness/python.rs).

Every script reads its parameters from the environment and prints one JSON line. Exit codes:
0 success, 3 an API error the SDK raised (its JSON printed), anything else unexpected.
"""

import json
import os
import sys
import traceback


def env(name, default=None):
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            fail(f"missing environment variable {name}")
        return default
    return value


def env_json(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return json.loads(raw)


def emit(result):
    print(json.dumps(result, sort_keys=True, default=str), flush=True)


def fail(message):
    print(message, file=sys.stderr, flush=True)
    sys.exit(2)


def error_json(e, **extra):
    """What the tests need to know about an SDK exception."""
    response = getattr(e, "response", None)
    headers = {}
    if response is not None:
        for name in ("retry-after", "x-request-id", "content-type", "x-aigw-cache"):
            if name in response.headers:
                headers[name] = response.headers[name]
    body = getattr(e, "body", None)
    result = {
        "exception": type(e).__name__,
        "classes": [c.__name__ for c in type(e).__mro__],
        "status": getattr(e, "status_code", None),
        "message": str(e),
        "body": body,
        "headers": headers,
    }
    result.update(extra)
    return result


def run(main, api_error_types):
    """Runs main(); an instance of api_error_types ends with exit 3 and its JSON."""
    try:
        main()
    except api_error_types as e:
        emit(error_json(e, **getattr(e, "_aigw_extra", {})))
        sys.exit(3)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(2)
