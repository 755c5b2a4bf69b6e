"""The Keyword search attributes that make incidents filterable in the Temporal Web UI."""

from temporalio.common import SearchAttributeKey

ALERT_NAME = SearchAttributeKey.for_keyword("AlertName")
SERVICE = SearchAttributeKey.for_keyword("Service")
SEVERITY = SearchAttributeKey.for_keyword("Severity")
ENVIRONMENT = SearchAttributeKey.for_keyword("Environment")
INCIDENT_PHASE = SearchAttributeKey.for_keyword("IncidentPhase")

ALL = (ALERT_NAME, SERVICE, SEVERITY, ENVIRONMENT, INCIDENT_PHASE)
