"""Schemathesis hooks for scripts/fuzz-api: which bearer token each generated request carries.

The document's security scheme is one bearer token for every secured route; which token opens a
route depends on the path (a user's own token or the admin token). With the admin token alone,
the users' own tokens would never be exercised, so:

* every successful sign-up (POST /users -> 201) records the new user's token by user id;
* a request whose `user_id` path parameter names a recorded user carries that user's token
  (stateful runs reach this through the document's links from signUp to the user's routes);
* everything else carries the admin token (SHOPBENCH_FUZZ_ADMIN_TOKEN).

Tokens are looked up per request (no caching), and a 401 is never taken as an expired token:
this service's tokens do not expire, so a 401 is an answer to check, not a reason to re-log-in.

At exit the hooks write how many requests went out with which kind of token, and how many got a
5xx, to SHOPBENCH_FUZZ_STATS (JSON) for the summary.
"""

import atexit
import json
import os
import threading

import schemathesis

ADMIN_TOKEN = os.environ["SHOPBENCH_FUZZ_ADMIN_TOKEN"]
_tokens: dict[str, str] = {}
_user_tokens: set[str] = set()
_lock = threading.Lock()
_stats = {"requests": 0, "admin": 0, "user": 0, "other": 0, "none": 0, "server_errors": 0}


def _token_kind(authorization):
    if authorization is None:
        return "none"
    if authorization == f"Bearer {ADMIN_TOKEN}":
        return "admin"
    if authorization.startswith("Bearer ") and authorization[7:] in _user_tokens:
        return "user"
    return "other"


@atexit.register
def _write_stats():
    path = os.environ.get("SHOPBENCH_FUZZ_STATS")
    if path:
        with _lock, open(path, "w", encoding="utf-8") as f:
            json.dump(_stats, f)


@schemathesis.hook
def after_call(context, case, response):
    with _lock:
        _stats["requests"] += 1
        _stats[_token_kind(response.request.headers.get("Authorization"))] += 1
        _stats["server_errors"] += response.status_code >= 500
    if case.operation.method.upper() != "POST" or case.operation.path != "/users":
        return
    if response.status_code != 201:
        return
    try:
        body = response.json()
        user_id, token = body["user"]["id"], body["token"]
    except (ValueError, KeyError, TypeError):
        return  # response_schema_conformance reports a malformed sign-up body
    with _lock:
        _tokens[user_id] = token
        _user_tokens.add(token)


@schemathesis.auth(refresh_interval=None, retry_on=[])
class ShopTokens:
    def get(self, case, context):
        user_id = (case.path_parameters or {}).get("user_id")
        with _lock:
            return _tokens.get(user_id, ADMIN_TOKEN) if isinstance(user_id, str) else ADMIN_TOKEN

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
