"""`remediator alert send`: post an alert file, or a built-in sample, as a monitoring system would.

The sample is the `remediator dev` demo's outage: it names the demo service, and its `probe_url` is
the demo service's health URL (found in the state dir), so the incident can verify the restart it
runs and resolve. Without a demo to probe, the sample is refused rather than sent unverifiable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from activities.config import load_settings
from api.cli.incidents import ApiUrl, call, fail, full_id_column, out


def demo_health_url() -> str | None:
    from api.cli.demo import Demo  # the demo's imports (probes, Ansible inventory) only when asked

    return Demo(load_settings().state_dir.resolve()).health_url()


# Name -> (what it is, its labels and annotations). Labels only (no shorthands), so `--label` can
# override any of them.
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "servicedown": (
        "the `remediator dev` demo service is down: a restart through Ansible, verified by its /health",
        {
            "alertname": "ServiceDown",
            "labels": {"service": "demo", "severity": "critical", "environment": "dev", "job": "demo"},
            "annotations": {"summary": "demo is not answering its health check"},
        },
    ),
}


def choices() -> str:
    return "choose one of: " + "; ".join(f"{name} ({about})" for name, (about, _) in SAMPLES.items())


class _AlertCommands(TyperGroup):
    def invoke(self, ctx: Any) -> Any:  # click.Context, which typer vendors privately
        try:
            return super().invoke(ctx)
        except Exception as err:
            # `--sample` with no name: click's "requires an argument" would not say what to give.
            if getattr(err, "option_name", None) == "--sample":
                fail(f"--sample needs a NAME; {choices()}")
            raise


app = typer.Typer()
alert_app = typer.Typer(help="Send alerts to the API.", no_args_is_help=True, cls=_AlertCommands)
app.add_typer(alert_app, name="alert")


def load_json(file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        fail(f"{file}: cannot read: {err}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        fail(f"{file}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}")


def endpoint_for(payload: Any) -> str:
    """Alertmanager and Grafana payloads carry `alerts[]`; Grafana's also has `orgId`."""
    if isinstance(payload, dict) and isinstance(payload.get("alerts"), list):
        return "/alerts/grafana" if "orgId" in payload else "/alerts/alertmanager"
    return "/alerts"


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--label {pair!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def sample_payload(name: str, labels: dict[str, str], resolved: bool) -> dict[str, Any]:
    if name not in SAMPLES:
        fail(f"unknown sample {name!r}; {choices()}")
    health = demo_health_url()
    if health is None:
        state = load_settings().state_dir.resolve()
        fail(
            f"the {name} sample probes the `remediator dev` demo service, and {state} has none: start "
            "`remediator dev` first (or set REMEDIATOR_STATE_DIR to its --state-dir)"
        )
    base = SAMPLES[name][1]
    return {
        **base,
        "labels": {**base["labels"], **labels},
        "annotations": {**base["annotations"], "probe_url": health},
        "status": "resolved" if resolved else "firing",
    }


@alert_app.command()
def send(
    file: Annotated[
        Path | None, typer.Argument(help="JSON file (generic, Alertmanager or Grafana); - for stdin")
    ] = None,
    sample: Annotated[str | None, typer.Option(help=f"Send a built-in sample: {', '.join(SAMPLES)}.")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE added to the sample's labels (repeatable).")
    ] = None,
    resolved: Annotated[bool, typer.Option(help="Send the sample as resolved.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Post an alert to the API, as Alertmanager, Grafana or a script would."""
    if (file is None) == (sample is None):
        fail(f"give either a FILE or --sample NAME; for --sample, {choices()}")
    if file is not None:
        if label or resolved:
            fail("--label and --resolved apply to --sample only; edit the file instead")
        payload = load_json(file)
    else:
        payload = sample_payload(sample or "", parse_labels(label or []), resolved)
    outcomes = call(api_url, "POST", endpoint_for(payload), json=payload)
    table = Table("alert", "status", "outcome")
    table.columns.insert(0, full_id_column())
    for o in outcomes:
        table.add_row(o["incident_id"], o["alertname"], o["status"], o["outcome"])
    out.print(table)
