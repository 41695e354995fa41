"""Which commit a repository has checked out: its git HEAD, read with dulwich.

dulwich (pure Python) reads HEAD, loose and packed refs, and finds the git
directory of a worktree or of a repository whose root is above the indexed
directory, without a git binary and in well under a millisecond once
imported. It is imported on first use: runmcp does not pay its 45 ms unless
a status is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

REFS_HEADS = b"refs/heads/"


@dataclass(frozen=True)
class GitHead:
    """The commit checked out, and its branch (None when HEAD is detached)."""

    commit: str
    branch: str | None


def git_head(*, root: str) -> GitHead | None:
    """Return the HEAD of the git work tree holding `root`, or None if there is none."""
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    try:
        repo = Repo.discover(root)
    except (NotGitRepository, OSError, ValueError):
        return None
    try:
        chain, sha = repo.refs.follow(b"HEAD")
    except (KeyError, OSError, ValueError):
        return None
    finally:
        repo.close()
    if sha is None:
        # A branch with no commit yet.
        return None
    branch = None
    if chain and len(chain) > 1 and chain[-1].startswith(REFS_HEADS):
        branch = chain[-1][len(REFS_HEADS) :].decode(errors="replace")
    return GitHead(commit=sha.decode(), branch=branch)
