"""What alert text may put into an Ansible run, checked before it gets there (activities/ansible/executor.py
says why): extravars, which reach Ansible untemplatable, and the one target host.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import yaml
from temporalio.exceptions import ApplicationError

from activities.errors import PermanentError
from workflows.error_types import ErrorType

# `#jinja2:` is a template header that can redefine the other three markers.
_TEMPLATE_MARKERS = ("{{", "{%", "{#", "#jinja2:")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_PREFIXES = ("ansible_", "remediator_")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_GROUP_NAMES = frozenset({"all", "ungrouped"})


class _Untrusted(dict[str, Any]):
    """Variables Ansible must never template. The whole mapping is tagged `!unsafe`, which marks every
    value inside as untrusted and keeps quoted strings strings (a tagged scalar would turn '123' into
    an int)."""


class _VarsDumper(yaml.SafeDumper):
    pass


_VarsDumper.add_representer(_Untrusted, lambda dumper, data: dumper.represent_mapping("!unsafe", data))


def untrusted_extravars(extravars: dict[str, Any]) -> str:
    """The `-e @file` extravars, as YAML whose values Ansible will not render as templates."""
    return yaml.dump(_Untrusted(extravars), Dumper=_VarsDumper, sort_keys=False)


def _unsafe(message: str) -> ApplicationError:
    return PermanentError(message, type=ErrorType.UNSAFE_INPUT)


def _refuse_templates(value: Any, where: str) -> None:
    if isinstance(value, str) and any(m in value for m in _TEMPLATE_MARKERS):
        raise _unsafe(f"extravar {where} contains a Jinja template marker; refusing to run it")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_templates(key, f"{where} (a key)")
            _refuse_templates(item, f"{where}.{key}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_templates(item, f"{where}[{i}]")


def check_extravars(extravars: dict[str, Any]) -> None:
    for key, value in extravars.items():
        if not _VAR_NAME.fullmatch(key) or key.startswith(_RESERVED_PREFIXES):
            raise _unsafe(
                f"extravar name {key!r} is not allowed: it must be an identifier not starting with "
                f"{' or '.join(_RESERVED_PREFIXES)}"
            )
        _refuse_templates(value, repr(key))


def target_host(value: str) -> str:
    """The one host an alert label names: `web1`, `10.0.0.5`, or an `instance` label with its port.

    Anything else is refused: `,:*!&~@[]` make an Ansible host pattern, `all` names every host, and a
    leading `-` would reach ssh as an option.
    """
    host = value.strip()
    if bracketed := re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::\d+)?", host):
        host = bracketed[1]
    elif host.count(":") == 1 and host.rpartition(":")[2].isdigit():
        host = host.rpartition(":")[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) <= 253 and host not in _GROUP_NAMES and all(_HOST_LABEL.fullmatch(p) for p in labels):
        return host
    raise _unsafe(f"alert host {value!r} is not a hostname or IP address; refusing to target it")
