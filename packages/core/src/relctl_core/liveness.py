"""Who holds a stage, and whether that process still exists.

A running stage records the identity of the worker process that holds it:
``host/boot/pid-namespace/pid/start-time``. A heartbeat says "alive" from afar, but only after it has
been silent for several intervals can a sweeper on another host conclude that its holder is gone. A
sweeper on the holder's own host (same boot, same PID namespace) needs no such wait: the process is
either there, with the same start time, or it is not. PID reuse cannot fool it, since a new process
under the old PID has another start time, and two containers that share a host name differ in their
PID namespace, so neither can judge the other's processes.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from functools import lru_cache
from pathlib import Path


def host_name() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "-"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie has exited; only its status waits to be collected
    return fields[19]  # field 22 of proc(5), counted after the command name's closing parenthesis


def process_identity(pid: int | None = None) -> str:
    """This process's (or ``pid``'s) identity as a stage holder."""
    pid = os.getpid() if pid is None else pid
    return f"{host_name()}/{_boot_id()}/{_pid_namespace()}/{pid}/{_start_time(pid) or '-'}"


def holder_is_gone(identity: str | None) -> bool:
    """True only when ``identity`` names a process of this host, boot and PID namespace that no longer
    exists. Anything this host cannot judge (another host, no /proc) is left to the heartbeat."""
    if not identity:
        return False
    parts = identity.split("/")
    if len(parts) != 5 or "-" in parts[1:3] or parts[4] == "-":
        return False
    host, boot, namespace, pid, started = parts
    if (host, boot, namespace) != (host_name(), _boot_id(), _pid_namespace()):
        return False
    return _start_time(int(pid)) != started


def host_of(identity: str | None) -> str:
    return (identity or "?").split("/", 1)[0]


def end_orphaned_training(pid: int | None, timeout: float = 10.0) -> bool:
    """Kill what is left of a training whose worker died on this host: the child process group that a
    training runs in (group leader ``pid``, a relctl trainer). It ends itself within a second of its
    worker's death, but a stage taken over at once must not have two trainings writing its folder
    meanwhile. True if one was found and killed."""
    if not pid or _start_time(pid) is None:
        return False
    try:
        is_training = os.getpgid(pid) == pid and b"relctl_trainer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ProcessLookupError):
        return False
    if not is_training:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while _start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return True
