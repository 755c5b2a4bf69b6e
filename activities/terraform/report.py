"""Turn Terraform's machine-readable output into what a person reads in ActionOutcome.

Source: the `-json` UI messages of init/plan/apply, one object per line, `type` telling which.
"""

from __future__ import annotations

from typing import Any

from activities.terraform.runner import RunResult

LOCK_ERROR = "Error acquiring the state lock"
STALE_PLAN = "Saved plan is stale"
# planned_change actions -> the bucket a person thinks in (noop, read, move, import: not changes)
_BUCKETS = {"create": "add", "update": "change", "delete": "destroy", "replace": "replace"}


def _location(diag: dict[str, Any]) -> str:
    where = diag.get("range") or {}
    if not where.get("filename"):
        return ""
    start = where.get("start") or {}
    return f"{where['filename']}:{start.get('line', '?')},{start.get('column', '?')}: "


def _one_line(text: str) -> str:
    return " ".join(text.split())


def diagnostics(result: RunResult, severity: str = "error") -> list[str]:
    """Each diagnostic as `file:line,col: summary: detail`, the way Terraform's own CLI reads.

    When some point into a file, the others (init's "problems with the configuration" preamble)
    only repeat that something is wrong, so they are left out."""
    found = [
        e["diagnostic"]
        for e in result.of_type("diagnostic")
        if (e.get("diagnostic") or {}).get("severity") == severity
    ]
    if any(diag.get("range") for diag in found):
        found = [diag for diag in found if diag.get("range")]
    lines: list[str] = []
    for diag in found:
        text = f"{_location(diag)}{_one_line(diag.get('summary', ''))}"
        if diag.get("detail"):
            text += f": {_one_line(diag['detail'])}"
        if (diag.get("snippet") or {}).get("code"):
            text += f" (in: {_one_line(diag['snippet']['code'])})"
        if text not in lines:  # Terraform repeats "execution halted" once per resource
            lines.append(text)
    return lines


def error_text(result: RunResult) -> str:
    failed = [r["address"] for r in applied_resources(result) if not r["ok"]]
    found = diagnostics(result)
    if found:
        return (f"{', '.join(failed)}: " if failed else "") + "; ".join(found)
    tail = [line for line in result.stderr.splitlines() if line.strip()][-5:]
    return " ".join(tail) or f"exit status {result.rc}"


def has_diagnostic(result: RunResult, summary: str) -> bool:
    return any((e.get("diagnostic") or {}).get("summary") == summary for e in result.of_type("diagnostic"))


def has_config_error(result: RunResult) -> bool:
    """An error pointing into a .tf file: the module is broken, running it again will not help."""
    return any(
        (e.get("diagnostic") or {}).get("severity") == "error" and (e["diagnostic"].get("range") or {})
        for e in result.of_type("diagnostic")
    )


def started_changes(result: RunResult) -> bool:
    """Did the apply begin changing any resource? Until then it may safely run again."""
    return bool(result.of_type("apply_start"))


def change_summary(result: RunResult) -> tuple[str, dict[str, int]]:
    """Terraform's own one-line summary and the counts behind it."""
    for event in reversed(result.of_type("change_summary")):
        changes = event.get("changes") or {}
        counts = {key: int(changes.get(key, 0)) for key in ("add", "change", "remove", "import")}
        return event.get("@message", ""), counts
    return "", {"add": 0, "change": 0, "remove": 0, "import": 0}


def planned_resources(result: RunResult) -> dict[str, list[str]]:
    """Addresses per bucket (add, change, destroy, replace) from the plan's planned_change messages."""
    buckets: dict[str, list[str]] = {bucket: [] for bucket in _BUCKETS.values()}
    for event in result.of_type("planned_change"):
        change = event.get("change") or {}
        bucket = _BUCKETS.get(change.get("action", ""))
        if bucket:
            buckets[bucket].append((change.get("resource") or {}).get("addr", ""))
    return {bucket: sorted(addresses) for bucket, addresses in buckets.items()}


def applied_resources(result: RunResult) -> list[dict[str, Any]]:
    """One entry per resource the apply touched: address, action, seconds, and the error if it failed."""
    done: list[dict[str, Any]] = []
    for event in result.of_type("apply_complete", "apply_errored"):
        hook = event.get("hook") or {}
        entry = {
            "address": (hook.get("resource") or {}).get("addr", ""),
            "action": hook.get("action", ""),
            "seconds": hook.get("elapsed_seconds", 0),
            "ok": event["type"] == "apply_complete",
        }
        done.append(entry)
    return done


def outputs(result: RunResult) -> dict[str, Any]:
    """Root outputs after an apply; sensitive ones are shown as such, never their value."""
    for event in reversed(result.of_type("outputs")):
        shown: dict[str, Any] = {}
        for name, out in (event.get("outputs") or {}).items():
            shown[name] = "(sensitive)" if out.get("sensitive") else out.get("value")
        return shown
    return {}


def progress(event: dict[str, Any]) -> dict[str, Any] | None:
    """Heartbeat details for a UI message about a resource: what is being done to which one."""
    hook = event.get("hook") or {}
    resource = (hook.get("resource") or {}).get("addr")
    if not resource:
        return None
    return {"resource": resource, "action": hook.get("action", ""), "status": event.get("type", "")}


def text(result: RunResult) -> str:
    """The plain text a command printed (for `show -no-color`)."""
    return "\n".join(e.get("@message", "") for e in result.of_type("text")).strip("\n")
