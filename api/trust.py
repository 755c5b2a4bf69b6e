"""What a sender's credential vouches for: alert text never chooses its own environment or scope.

Each alert is checked on its own before anything of it is delivered (a refused one is listed in the
answer with its reason, api/ingest.py): an Alertmanager or Grafana fingerprint must be the
one its labels give (FNV-64a, or our sha256), so one alert cannot borrow another's incident;
its environment and service must be ones the sender's credential may speak for.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from api.auth.principal import ANY, Principal
from workflows.alerts import Alert, fingerprint_matches
from workflows.policy import Policy


class Refused(ValueError):
    """An alert the sender may not send: `field` is where, the message says why."""

    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def environment_for(alert: Alert, sender: Principal, policy: Policy) -> str:
    """The environment whose policy applies, from the credential; the label only picks among its own."""
    label, allowed = alert.environment, sender.environments
    if ANY in allowed:
        return label or policy.default_environment
    own = allowed or (policy.default_environment,)
    if label and label not in own:
        raise Refused(
            ("labels", "environment"),
            f"{label!r} is not one {sender.name!r} may speak for ({', '.join(own)})",
        )
    if label:
        return label
    if len(own) > 1:
        raise Refused(
            ("labels", "environment"), f"missing, and {sender.name!r} speaks for several ({', '.join(own)})"
        )
    return own[0]


def check(alert: Alert, sender: Principal, policy: Policy) -> str:
    """The trusted environment of `alert`, or Refused."""
    # Alertmanager and Grafana always send their labels' fingerprint; a generic sender may name its
    # own dedup key, which the incident then binds to its first labels (other labels are refused).
    if alert.source != "generic" and not fingerprint_matches(alert.fingerprint, alert.labels):
        raise Refused(
            ("fingerprint",),
            f"{alert.fingerprint!r} is not the fingerprint of its labels; "
            "omit it or send the one Alertmanager computes",
        )
    scope = sender.services
    if ANY not in scope and not any(fnmatchcase(alert.service, glob) for glob in scope):
        raise Refused(
            ("labels", "service"), f"{alert.service or '(none)'!r} is not one {sender.name!r} may speak for"
        )
    return environment_for(alert, sender, policy)
