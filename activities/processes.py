"""Process trees read from /proc (Linux): what a tool started, so that all of it can be stopped.

Standard library only, because `activities.ansible.supervisor` imports it at the start of every run.
"""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int | str) -> list[str]:
    # The command name in `stat` may hold spaces and parentheses; the fields after its `)` do not.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def alive(pid: int) -> bool:
    """Running, that is: a zombie has done all it will ever do."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def process_tree(root: int) -> list[int]:
    """`root` and its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = _stat_fields(entry.name)[:2]
        except OSError:
            continue  # it exited while we looked
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if alive(pid):
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
