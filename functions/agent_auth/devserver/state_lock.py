"""One `agent-auth dev` per folder: `.agent-auth/dev.lock` holds the running server's PID, locked.

Two servers in one folder would share `.agent-auth/dev.json` (the CLI's `--dev` would talk to whichever
wrote last) and the first to stop would delete the other's state. The lock is an advisory `flock` on the
file, which the kernel releases when its process dies: a lock file left by a server that was killed is
simply taken over, and a PID that was reused by another program locks nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from agent_auth.operations import OperationFailed

LOCK_FILE = Path(".agent-auth") / "dev.lock"


class StateLock:
    def __init__(self, state_dir: Path, state_file: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._state = state_dir / state_file
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock the folder for this process, or refuse naming the server that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OperationFailed(self._refusal(holder)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing releases the lock
        self._fd = None

    def _refusal(self, pid: str) -> str:
        where = self.path.parent.parent
        try:
            issuer = f" at {json.loads(self._state.read_text())['issuer']}"
        except (OSError, ValueError, KeyError):
            issuer = ""  # still starting
        return (
            f"another agent-auth dev (PID {pid}){issuer} is running in {where}: stop it first "
            f"(Ctrl-C, or kill {pid}), or start this one in another folder"
        )
