"""One training at a time per project: ``workspace/<name>/runs/.training.lock``.

Two jobs of one project would fight over the feature cache and the GPU. The lock file holds the process id
and run id of the job that owns it; it is created exclusively (``O_EXCL``), so two starts at the same moment
cannot both win. A lock whose process is gone (a crash, ``kill -9``, a power cut) is stale and taken over.
The service takes the lock before spawning a job and hands it to the job's process (same run id); the job
releases it when it ends.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from studio.errors import TrainingError
from studio.workspace import atomic_write_json

LOCK_NAME = ".training.lock"


@dataclass(frozen=True)
class LockHolder:
    pid: int
    run_id: str


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True


class ProjectLock:
    def __init__(self, runs_dir: Path, project: str) -> None:
        self.path = Path(runs_dir) / LOCK_NAME
        self.project = project

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or None when it is free or stale."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            holder = LockHolder(int(data["pid"]), str(data["run_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return holder if pid_alive(holder.pid) else None

    def acquire(self, pid: int, run_id: str) -> None:
        """Take the lock for ``run_id`` in process ``pid``; a live holder of another run refuses it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is not None and holder.run_id != run_id:
                    raise TrainingError(
                        f"Another training of '{self.project}' is running (run {holder.run_id}, process "
                        f"{holder.pid}); two at once would fight over the same files and memory.",
                        hint="Wait for it to finish, or stop it first (Stop in the Train tab, or Ctrl-C).",
                    ) from None
                if holder is not None:  # the same run: hand the lock over to this process
                    self._write(pid, run_id)
                    return
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"pid": pid, "run_id": run_id}, fh)
            return
        raise TrainingError(f"Could not take the training lock {self.path}.", hint="Try again in a moment.")

    def hand_over(self, pid: int, run_id: str) -> None:
        """Give the lock (held by this process for ``run_id``) to the job process ``pid``."""
        self._write(pid, run_id)

    def release(self, pid: int) -> None:
        """Drop the lock if ``pid`` holds it (a job never removes another job's lock)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("pid") == pid:
            self.path.unlink(missing_ok=True)

    def _write(self, pid: int, run_id: str) -> None:
        atomic_write_json(self.path, {"pid": pid, "run_id": run_id})
