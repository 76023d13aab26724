"""Where a run came from, as MLflow's own tags: the command that made it (the runs table's Source column)
and the git commit of the folder it ran in (the Version column), where that folder is a git repository.

MLflow's client adds these only to runs that its fluent API or Lightning's logger start, and then names the
Python file that happens to be ``sys.argv[0]``; runs made with ``MlflowClient.create_run`` — a sweep's parent
and trial runs, a multi-seed run's — get none. Every run the toolkit makes gets them from here instead.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from . import tags as T

#: the commands a run can come from, as the Source column shows them (no "/": MLflow shows a name's last part)
TRAIN, SWEEP, COMPARE, EVALUATE = (f"lightning-attn {c}" for c in ("train", "sweep", "compare", "evaluate"))


def source_tags(command: str, folder: Path | None = None) -> dict[str, str]:
    """MLflow's source tags of a run that ``command`` made in ``folder`` (default: the working folder): its
    name, type LOCAL, and the folder's git commit when it is in a git repository with one."""
    tags = {T.SOURCE_NAME: command, T.SOURCE_TYPE: "LOCAL"}
    commit = git_commit(str((folder or Path.cwd()).resolve()))
    if commit:
        tags[T.GIT_COMMIT] = commit
    return tags


@functools.lru_cache(maxsize=8)
def git_commit(folder: str) -> str | None:
    """The commit checked out in the git repository holding ``folder``; None outside one, in a repository
    without commits, or where git is not installed."""
    try:
        found = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and len(commit) >= 40 else None
