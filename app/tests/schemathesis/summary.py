"""Turns schemathesis' JSON report (and the hooks' token counts) into docs/results/schemathesis.md.

Usage: summary.py REPORT.json STATS.json OUT.md KEY=VALUE...   (the KEY=VALUEs describe the run)
Prints the headline and exits 1 when the run had a failure or an error, so scripts/fuzz-api
fails even if schemathesis' own exit code were lost.
"""

import json
import sys

# Every check schemathesis has (all are on), in its own order, with the failure types each raises
# (the JSON report names failures by type; ST codes in `st explain`).
CHECKS = {
    "not_a_server_error": ["ServerError", "ContentTypeServerError"],
    "status_code_conformance": ["UndefinedStatusCode"],
    "content_type_conformance": ["MissingContentType", "UndefinedContentType", "MalformedMediaType"],
    "response_headers_conformance": ["MissingHeaders"],
    "response_schema_conformance": [
        "JsonSchemaError",
        "MalformedJson",
        "ContentDeserializationError",
        "DiscriminatorMismatch",
    ],
    "negative_data_rejection": ["AcceptedNegativeData"],
    "positive_data_acceptance": ["RejectedPositiveData"],
    "missing_required_header": ["MissingHeaderNotRejected"],
    "unsupported_method": ["UnsupportedMethodResponse"],
    "allow_header_conformance": ["AllowHeaderMismatch"],
    "use_after_free": ["UseAfterFree"],
    "ensure_resource_availability": ["EnsureResourceAvailability"],
    "ignored_auth": ["IgnoredAuth"],
    "object_level_authorization": ["ObjectLevelAuthorizationViolation"],
}
CHECK_OF_TYPE = {failure: check for check, failures in CHECKS.items() for failure in failures}


def main() -> int:
    report_path, stats_path, out_path, *pairs = sys.argv[1:]
    report = json.load(open(report_path, encoding="utf-8"))
    stats = json.load(open(stats_path, encoding="utf-8"))
    run = dict(pair.split("=", 1) for pair in pairs)

    cases = report["test_cases"]
    failures = report["failures"]
    errors = report["errors"]
    by_check: dict[str, int] = {}
    for group in failures:
        check = CHECK_OF_TYPE.get(group["type"], group["type"])
        by_check[check] = by_check.get(check, 0) + group["count"]
    failed = sum(by_check.values())
    errored = sum(e["count"] for e in errors)
    ok = failed == 0 and errored == 0 and report["exit_code"] == 0 and stats.get("server_errors", 0) == 0

    ops = report["operations"]
    lines = [
        "# schemathesis against docs/openapi.yaml",
        "",
        f"Written by `scripts/fuzz-api` on {report['started_at'][:19]}Z; reproduce with `{run['command']}`.",
        "",
        "| | |",
        "| --- | --- |",
        f"| result | **{'passed' if ok else 'FAILED'}**: {failed} failures, {errored} errors |",
        f"| test cases | {cases['generated']} generated, {cases['with_failures']} with failures, "
        f"{cases['errored']} errored, {cases['without_checks']} sent without a check applying |",
        f"| requests (hooks' count) | {stats['requests']}: {stats['admin']} with the admin token, "
        f"{stats['user']} with a user's own token, {stats['other']} with another or a malformed "
        f"Authorization, {stats['none']} without; {stats['server_errors']} answered 5xx |",
        f"| operations | {ops['tested']} tested of {ops['total']} |",
        "| phases | "
        + ", ".join(f"{name} {p['status']}" for name, p in report["phases"].items())
        + " |",
        f"| bounds | {run['bounds']}, seed {report['seed']} |",
        f"| running time | {report['running_time']:.0f} s |",
        f"| store | {run['store']} |",
        f"| tools | schemathesis {report['schemathesis_version']}, Python {run['python']} |",
        "",
        "## Failures by check",
        "",
        "| check | failures |",
        "| --- | --- |",
    ]
    for check in list(CHECKS) + sorted(set(by_check) - set(CHECKS)):
        lines.append(f"| {check} | {by_check.get(check, 0)} |")
    if failures:
        lines += ["", "## Failures", ""]
        for group in failures:
            ops_text = ", ".join(group["operations"])
            check = CHECK_OF_TYPE.get(group["type"], group["type"])
            lines.append(f"- {group['code']} {group['title']} ({check}, {group['count']}): {ops_text}")
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {e['title']} ({e['count']})" for e in errors]
    warnings = {name: items for name, items in report["warnings"].items() if items}
    if warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {name}: {', '.join(map(str, items))}" for name, items in sorted(warnings.items())]
    lines += [
        "",
        "`object_level_authorization` acts only on identities declared as peers in a Web Fuzzing "
        "Commons auth file, and none are: one user reading another's data is tested by hand in "
        "app/tests/api/hostile.rs. Users' own tokens are exercised here through hooks.py.",
        "",
        "Accepted by configuration, with the reasons in app/tests/schemathesis/schemathesis.toml: "
        "422 for schema-valid cart lines that break a stored-state rule (unknown product, more than "
        "999 of one product, more than 100 lines); 200 from GET /users/{user_id}/cart after "
        "DELETE /users/{user_id}/cart (deleting a cart empties it).",
        "",
    ]
    with open(out_path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))

    print(
        f"schemathesis: {cases['generated']} test cases, {failed} failures, {errored} errors, "
        f"{stats['requests']} requests ({stats['user']} with a user's own token), {report['running_time']:.0f} s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
