"""Executor actions: one pydantic model per kind, joined in the `ActionSpec` union.

Each executor (activities/<kind>.py) implements preview, snapshot, apply and rollback for its
model. The `risk` class is what policy decides on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

Risk = Literal["read", "change", "destructive"]


class AnsibleAction(BaseModel):
    """Run an Ansible playbook through ansible-runner; preview is --check --diff.

    Targets come from the worker's inventory only. `limit` names the one inventory host to run on;
    an empty one is refused (the run would take every host as one action) unless the playbook's
    hosts are a single inventory host or the action says `all_hosts: true`.
    """

    executor: Literal["ansible"] = "ansible"
    name: str
    risk: Risk = "change"
    playbook: str
    rollback_playbook: str = ""
    extravars: dict[str, Any] = {}
    limit: str = ""
    all_hosts: bool = False


class TerraformAction(BaseModel):
    """Plan and apply a Terraform module; preview is `terraform plan`, apply applies exactly that plan.

    `module` is relative to REMEDIATOR_TERRAFORM_MODULES_DIR. Without a `workspace` the state belongs
    to this incident step alone; with one, every incident naming it shares (and locks) that state.
    Rollback `previous` re-applies the variables the state had before; `destroy` destroys what the
    incident created.
    """

    executor: Literal["terraform"] = "terraform"
    name: str
    risk: Risk = "change"
    module: str = Field(min_length=1)
    variables: dict[str, Any] = {}
    workspace: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,90}$")
    rollback: Literal["previous", "destroy"] = "previous"

    @field_validator("module")
    @classmethod
    def _inside_modules_dir(cls, module: str) -> str:
        # The executor checks the resolved path too (symlinks); this catches it at validation time.
        if module.startswith(("/", "\\")) or ".." in module.replace("\\", "/").split("/"):
            raise ValueError(f"module {module!r} must be a path inside the modules directory")
        return module


_DNS_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?([eE][0-9]+|m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
KubeName = Annotated[str, Field(pattern=_DNS_NAME, description="a Kubernetes object name")]
Quantity = Annotated[str, Field(pattern=_QUANTITY, description="a Kubernetes quantity: 250m, 1.5, 512Mi")]


class ScaleArgs(BaseModel):
    deployment: KubeName
    replicas: int = Field(ge=0, le=1000)


class RestartArgs(BaseModel):
    deployment: KubeName


class UndoArgs(BaseModel):
    deployment: KubeName
    to_revision: int = Field(default=0, ge=0, description="0: the revision before the current one")


class ResourcesArgs(BaseModel):
    """Set requests/limits of one container; keys not named keep their values."""

    deployment: KubeName
    container: KubeName
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}

    @model_validator(mode="after")
    def _something_to_set(self) -> ResourcesArgs:
        if not self.requests and not self.limits:
            raise ValueError("set_resources needs requests or limits")
        return self


class PodArgs(BaseModel):
    pod: KubeName


class NodeArgs(BaseModel):
    node: KubeName


class DrainArgs(BaseModel):
    node: KubeName
    delete_emptydir_data: bool = False
    force: bool = Field(
        default=False, description="also evict pods no controller manages (they are gone for good)"
    )
    timeout_seconds: int = Field(default=300, ge=1, le=3600)


class ApplyArgs(BaseModel):
    """One object, applied with server-side apply under the field manager `remediator`."""

    manifest: dict[str, Any]

    @field_validator("manifest")
    @classmethod
    def _one_object(cls, manifest: dict[str, Any]) -> dict[str, Any]:
        name = (manifest.get("metadata") or {}).get("name")
        if (
            not manifest.get("apiVersion")
            or not manifest.get("kind")
            or not isinstance(name, str)
            or not name
        ):
            raise ValueError("manifest needs apiVersion, kind and metadata.name (one object, not a List)")
        return manifest


KubernetesOperation = Literal[
    "scale",
    "rollout_restart",
    "rollout_undo",
    "set_resources",
    "apply",
    "delete_pod",
    "cordon",
    "uncordon",
    "drain",
]
KubernetesArgs = (
    ScaleArgs | RestartArgs | UndoArgs | ResourcesArgs | ApplyArgs | PodArgs | NodeArgs | DrainArgs
)
_ARGS: dict[str, type[BaseModel]] = {
    "scale": ScaleArgs,
    "rollout_restart": RestartArgs,
    "rollout_undo": UndoArgs,
    "set_resources": ResourcesArgs,
    "apply": ApplyArgs,
    "delete_pod": PodArgs,
    "cordon": NodeArgs,
    "uncordon": NodeArgs,
    "drain": DrainArgs,
}
_NODE_OPERATIONS = {"cordon", "uncordon", "drain"}
RISK_ORDER: dict[str, int] = {"read": 0, "change": 1, "destructive": 2}


def kubernetes_risk_floor(operation: str, args: BaseModel) -> Risk:
    """The least risk an operation can be declared with.

    destructive: what is lost cannot be brought back by a rollback. A deleted pod takes its
    emptyDir and in-memory state with it, a drain does that to every pod on the node, and scaling to
    zero is an outage until someone scales up again.
    change: the rollback restores the previous state exactly (replicas, the pod template, the node's
    schedulability, the object an apply replaced), so a failed verification undoes it.
    """
    if operation in ("delete_pod", "drain") or (isinstance(args, ScaleArgs) and args.replicas == 0):
        return "destructive"
    return "change"


class KubernetesAction(BaseModel):
    """A Kubernetes change: `operation` names it and `args` carries its typed arguments.

    Preview is a server-side dry run shown as a diff; apply marks the changed object with the
    idempotency key (annotation `remediator.io/applied`) in the same request that changes it.
    """

    executor: Literal["kubernetes"] = "kubernetes"
    name: str
    risk: Risk = "change"
    operation: KubernetesOperation
    namespace: str = Field(default="", pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$")
    args: KubernetesArgs
    wait_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="wait this long for a Deployment's rollout after apply; 0: do not",
    )

    @model_validator(mode="before")
    @classmethod
    def _typed_args(cls, data: Any) -> Any:
        """Validate `args` with the model of the operation; the risk defaults to the operation's floor."""
        model = _ARGS.get(data.get("operation", "")) if isinstance(data, dict) else None
        if model is None:
            return data
        args = data.get("args", {})
        try:
            args = args if isinstance(args, model) else model.model_validate(args)
        except ValidationError as err:  # re-raised so the message says which operation's args
            raise ValueError(f"args of {data['operation']}: {err}") from err
        return {"risk": kubernetes_risk_floor(data["operation"], args), **data, "args": args}

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesAction:
        floor = kubernetes_risk_floor(self.operation, self.args)
        if RISK_ORDER[self.risk] < RISK_ORDER[floor]:
            raise ValueError(f"risk {self.risk!r} is below {floor!r}, the least risk of {self.operation}")
        if self.operation in _NODE_OPERATIONS and self.namespace:
            raise ValueError(f"{self.operation} acts on a node, which has no namespace")
        if isinstance(self.args, ApplyArgs):
            declared = (self.args.manifest.get("metadata") or {}).get("namespace", "")
            if declared and self.namespace and declared != self.namespace:
                raise ValueError(
                    f"the manifest's namespace {declared!r} is not the action's {self.namespace!r}"
                )
        elif self.operation not in _NODE_OPERATIONS and not self.namespace:
            raise ValueError(f"{self.operation} needs a namespace")
        return self


ActionSpec = Annotated[AnsibleAction | TerraformAction | KubernetesAction, Field(discriminator="executor")]


def acted_on(action: AnsibleAction | TerraformAction | KubernetesAction) -> str:
    """The object an action changes, as the policy's service lists and the per-service limit see it.

    It comes from the validated action, not from the alert's `service` label: an alert saying
    `service: frontend` beside `deployment: payments-api` is judged, and counted, as payments-api.
    """
    if isinstance(action, KubernetesAction):
        if isinstance(action.args, ApplyArgs):
            return str(action.args.manifest["metadata"]["name"])
        for field in ("deployment", "pod", "node"):
            if value := getattr(action.args, field, ""):
                return str(value)
        return ""
    if isinstance(action, AnsibleAction):
        return str(action.extravars.get("service") or action.limit)
    return action.workspace or action.module
