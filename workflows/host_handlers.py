"""The handlers every workflow running on a `Host` (workflows/host.py) answers, in one mixin.

They are the public contract of a remediation, whatever started it: the `state` query, the `approve`
and `reject` signals ({"approver": ..., "reason": ...}) and the `decide` update whose validator refuses
a decision that would not count. Temporal collects handlers from base classes, so a workflow gets
them all by inheriting `HostHandlers` and keeping its host in `self._host`:

    @workflow.defn(name="DiskJanitor")
    class DiskJanitor(HostHandlers):
        @workflow.init
        def __init__(self, request: JanitorRequest) -> None:
            self._host = Host(IncidentState(...), IncidentConfig(), Policy())
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.host import Host
    from workflows.models import Decision, DecisionRequest, IncidentState


class HostHandlers:
    _host: Host

    @workflow.query
    def state(self) -> IncidentState:
        return self._host.state

    # Signals are the Temporal CLI's path, open to whoever may signal workflows (trusted operators):
    # they are recorded `via: temporal`, whatever the payload claims.
    @workflow.signal
    def approve(self, decision: Decision) -> None:
        self._host.decide(decision.model_copy(update={"via": "temporal"}), approved=True)

    @workflow.signal
    def reject(self, decision: Decision) -> None:
        self._host.decide(decision.model_copy(update={"via": "temporal"}), approved=False)

    @workflow.update
    def decide(self, request: DecisionRequest) -> IncidentState:
        self._host.decide(request, request.approve)
        return self._host.state

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        if refusal := self._host.refusal(request, request.approve):
            raise ValueError(refusal)
