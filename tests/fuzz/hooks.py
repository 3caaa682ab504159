"""Schemathesis hooks for the project's fuzzing: a check that a request answered with an error
changed nothing. Every state change writes an audit row stamped with the request id the worker
answered with (x-request-id), so an error answer whose id appears in audit_logs changed the
database."""

import os
import re
import subprocess

import schemathesis

DB_URL = os.environ["FUZZ_DB_URL"]


@schemathesis.check
def error_changes_nothing(ctx, response, case):
    if response.status_code < 400:
        return None
    values = response.headers.get("x-request-id") or []
    request_id = values[0] if isinstance(values, list) and values else values
    if not request_id or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(request_id)):
        raise AssertionError(f"an error answer ({response.status_code}) without a usable x-request-id")
    rows = subprocess.run(
        ["psql", DB_URL, "-XAtc", f"select count(*) from public.audit_logs where request_id = '{request_id}'"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    if rows != "0":
        raise AssertionError(f"answered {response.status_code}, yet wrote {rows} audit row(s) (request {request_id})")
    return None
