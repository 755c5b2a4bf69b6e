"""What a sender's credential vouches for (api/trust.py): alert labels never choose it themselves."""

from __future__ import annotations

import pytest

from api.auth.principal import Principal, Role
from api.trust import Refused, check
from workflows.alerts import Alert, label_fingerprint, prometheus_fingerprint
from workflows.policy import Policy

LABELS = {"alertname": "ServiceDown", "service": "web", "environment": "dev"}


def sender(environments: tuple[str, ...] = ("prod",), services: tuple[str, ...] = ("*",)) -> Principal:
    return Principal(
        name="am-prod",
        source="key",
        roles=frozenset({Role.SENDER}),
        environments=environments,
        services=services,
    )


def alert(labels: dict[str, str] = LABELS, fingerprint: str = "", source: str = "alertmanager") -> Alert:
    return Alert(
        fingerprint=fingerprint or prometheus_fingerprint(labels),
        labels=labels,
        source=source,  # type: ignore[arg-type]
    )


def test_the_empty_label_set_has_prometheus_own_fingerprint() -> None:
    # prometheus/common: emptyLabelSignature = hashNew() = FNV-1a 64's offset basis.
    assert prometheus_fingerprint({}) == "cbf29ce484222325"


def test_a_dev_label_from_a_prod_only_sender_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        check(alert(), sender(), Policy())
    assert refused.value.field == ("labels", "environment")
    assert "'dev' is not one 'am-prod' may speak for (prod)" in str(refused.value)


def test_the_environment_comes_from_the_credential() -> None:
    unlabelled = {k: v for k, v in LABELS.items() if k != "environment"}
    assert check(alert(unlabelled), sender(), Policy()) == "prod"
    assert check(alert(), sender(("*",)), Policy()) == "dev"  # only a key for any environment trusts labels
    assert check(alert(unlabelled), sender(()), Policy()) == "prod"  # no environments: the policy default
    with pytest.raises(Refused, match="speaks for several"):
        check(alert(unlabelled), sender(("prod", "staging")), Policy())


def test_a_borrowed_fingerprint_is_refused() -> None:
    other = {**LABELS, "service": "payments"}
    with pytest.raises(Refused) as refused:
        check(alert(fingerprint=prometheus_fingerprint(other)), sender(("*",)), Policy())
    assert refused.value.field == ("fingerprint",)
    # Either label fingerprint is accepted: Alertmanager's and the one we compute ourselves.
    assert check(alert(fingerprint=label_fingerprint(LABELS)), sender(("*",)), Policy()) == "dev"


def test_a_service_outside_the_senders_scope_is_refused() -> None:
    with pytest.raises(Refused, match="'web' is not one 'am-prod' may speak for"):
        check(alert(), sender(("*",), ("payments-*",)), Policy())
    assert check(alert(), sender(("*",), ("we*",)), Policy()) == "dev"
