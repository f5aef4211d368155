"""Python face of the test bed (tests/bed/bed), for pytest fixtures.

Every function shells out to the bash tool, so the two can never disagree::

    sys.path.insert(0, str(REPO / "tests" / "bed"))   # e.g. in a conftest.py
    import bed

    inventory = bed.up(3)        # Path to the Ansible inventory (group "bed")
    bed.cut(2); bed.heal(2)
    bed.run_on(1, "cat /srv/app/current/REVISION").stdout
    bed.down()

Needs root, like the tool. The state dir follows $CAPSTAN_BED_STATE and
$CAPSTAN_BED_ID, as the tool does (default /var/lib/capstan-bed, or
/var/lib/capstan-bed-K for bed K).
"""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from pathlib import Path
from typing import Sequence, Union

BED = Path(__file__).resolve().with_name("bed")
# Bounds: nothing the bed does may block a test session (a hung command raises TimeoutExpired,
# naming it). The tool's longest job, `up 50`, takes about a minute; a command on a host may be a
# whole playbook's worth of work.
TOOL_TIMEOUT = 900
RUN_TIMEOUT = 600
# cut, heal and slow take a second or two. One that hangs (`bed slow` once waited for good on its
# delay.py) is killed after this long and run once more, with a warning; each of them starts by
# undoing what it set before, so a second run is safe.
FAULT_TIMEOUT = 60


def state_dir() -> Path:
    """Where the tool keeps keys, configs, inventory.ini and ssh_config."""
    bed_id = os.environ.get("CAPSTAN_BED_ID", "")
    default = "/var/lib/capstan-bed" + ("-" + bed_id if bed_id else "")
    return Path(os.environ.get("CAPSTAN_BED_STATE") or default)


def _bed(*args: str, timeout: int = TOOL_TIMEOUT) -> str:
    """Run the tool; raise CalledProcessError (with its message) on failure.

    It runs in a session of its own: after ``timeout`` s the whole session is
    killed (a child left holding its output would keep the wait going), and
    TimeoutExpired raised. What the tool means to outlive it (sshd, delay.py)
    is in sessions of their own.
    """
    with subprocess.Popen(
        [str(BED), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return out


def up(n: int) -> Path:
    """Make exactly hosts 1..n, reachable and fault-free; return the inventory path."""
    return Path(_bed("up", str(n)).strip().splitlines()[-1])


def down() -> None:
    """Remove everything the bed made; fine when nothing is up."""
    _bed("down")


def _fault(*args: str) -> None:
    """A fault command (cut, heal, slow), bounded by FAULT_TIMEOUT and run again once if it hangs."""
    try:
        _bed(*args, timeout=FAULT_TIMEOUT)
    except subprocess.TimeoutExpired:
        warnings.warn("bed %s hung for %d s: killed and run again" % (" ".join(args), FAULT_TIMEOUT))
        _bed(*args, timeout=FAULT_TIMEOUT)


def cut(i: int) -> None:
    """Take host i off the network."""
    _fault("cut", str(i))


def heal(i: int) -> None:
    """Put host i back on the network."""
    _fault("heal", str(i))


def slow(i: int, ms: int) -> None:
    """Delay host i's outgoing packets by ms milliseconds (0 removes it)."""
    _fault("slow", str(i), str(ms))


def status() -> str:
    """The tool's status table."""
    return _bed("status")


def inventory() -> Path:
    return state_dir() / "inventory.ini"


def ssh_config() -> Path:
    """For `ssh -F <this> host1 ...`."""
    return state_dir() / "ssh_config"


def run_on(
    i: int, cmd: Union[str, Sequence[str]], **kwargs
) -> subprocess.CompletedProcess:
    """Run cmd inside host i's namespaces: it sees the host's /srv, /tmp, /root.

    A string runs under ``sh -c``; a list runs as is. Defaults: text output
    captured, no exception on failure (check the returncode); any
    subprocess.run keyword overrides them; it is ended after RUN_TIMEOUT s
    unless ``timeout`` says otherwise.
    """
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    check = kwargs.pop("check", False)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", RUN_TIMEOUT)
    return subprocess.run([str(BED), "exec", str(i), *argv], check=check, **kwargs)
