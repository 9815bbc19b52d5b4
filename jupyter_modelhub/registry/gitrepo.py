"""A thin wrapper over the ``git`` command line: the only place that runs git.

The registry needs a handful of operations (commit given paths, create annotated tags, list
tags fast, read a file at a commit). Running the git CLI keeps us exactly compatible with what
git, GTO and DVC read, and costs a few milliseconds per call.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from ..errors import BackendError, Conflict

_FIELD = "\x1f"
_RECORD = "\x1e"


class TagObject(NamedTuple):
    """What an annotated tag says: the commit it points at, who made it, when, and why."""

    commit: str
    tagger: str
    email: str
    timestamp: int
    subject: str


class GitRepo:
    """Runs git commands in one working tree."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._identity: tuple[str, str] | None = None

    # -- plumbing -------------------------------------------------------------------------
    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run ``git ARGS`` in the repository and return its standard output."""
        if shutil.which("git") is None:
            raise BackendError("git is not installed.", hint="Install git (apt-get install git).")
        full_env = None
        if env:
            full_env = {**os.environ, **env}
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
        )
        if check and proc.returncode != 0:
            message = proc.stderr.strip() or proc.stdout.strip()
            if "index.lock" in message or ".lock': File exists" in message:
                raise Conflict(
                    f"git is locked in {self.root}: {message.splitlines()[0]}",
                    hint="If no other git command is running there, run `modelhub doctor --repair`.",
                )
            raise BackendError(f"git {args[0]} failed: {message}")
        return proc.stdout

    @property
    def git_dir(self) -> Path:
        return self.root / ".git"

    def identity(self) -> tuple[str, str]:
        """The user's git name and e-mail, falling back to the login name when unset."""
        if self._identity is None:
            name = self.run("config", "user.name", check=False).strip()
            email = self.run("config", "user.email", check=False).strip()
            user = _login_name()
            self._identity = (name or user, email or f"{user}@localhost")
        return self._identity

    def _identity_env(self) -> dict[str, str]:
        name, email = self.identity()
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    # -- porcelain used by the registry -------------------------------------------------------
    @classmethod
    def init(cls, root: Path) -> GitRepo:
        root.mkdir(parents=True, exist_ok=True)
        repo = cls(root)
        repo.run("init", "-q", "-b", "main")
        return repo

    def is_repo(self) -> bool:
        return (self.root / ".git").exists()

    def head(self) -> str | None:
        out = self.run("rev-parse", "--verify", "-q", "HEAD", check=False).strip()
        return out or None

    def commit_paths(self, paths: Sequence[str], message: str) -> str:
        """Stage exactly ``paths`` and commit only them; return the new commit's hash."""
        self.run("add", "-f", "--", *paths)
        self.run(
            "commit", "-q", "--no-verify", "-m", message, "--", *paths, env=self._identity_env()
        )
        return self.run("rev-parse", "HEAD").strip()

    def commit_all(self, message: str) -> str:
        self.run("add", "-A")
        self.run("commit", "-q", "--no-verify", "-m", message, env=self._identity_env())
        return self.run("rev-parse", "HEAD").strip()

    def create_tag(
        self, name: str, commit: str, message: str, timestamp: int | None = None
    ) -> None:
        """Create an annotated tag (dated ``timestamp`` if given); fail if it exists."""
        env = self._identity_env()
        if timestamp is not None:
            env["GIT_COMMITTER_DATE"] = f"{timestamp} +0000"
        self.run("tag", "-a", name, "-m", message, commit, env=env)

    def delete_tags(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            self.run("tag", "-d", *names)

    def tag_objects(self) -> dict[str, str]:
        """Every annotated tag's name mapped to its tag object id (cheap: reads refs only)."""
        out = self.run(
            "for-each-ref",
            f"--format=%(objecttype){_FIELD}%(objectname){_FIELD}%(refname)",
            "refs/tags",
        )
        result: dict[str, str] = {}
        for line in out.splitlines():
            kind, oid, ref = line.split(_FIELD, 2)
            if kind == "tag":  # lightweight tags are not registry events (GTO ignores them too)
                result[ref[len("refs/tags/") :]] = oid
        return result

    def read_tag_objects(self, oids: Iterable[str]) -> dict[str, TagObject]:
        """Parse annotated tag objects by id with one ``git cat-file --batch`` call."""
        oids = list(oids)
        if not oids:
            return {}
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input=("\n".join(oids) + "\n").encode(),
            capture_output=True,
        )
        if proc.returncode != 0:
            raise BackendError(f"git cat-file failed: {proc.stderr.decode().strip()}")
        data = proc.stdout
        result: dict[str, TagObject] = {}
        pos = 0
        for oid in oids:
            header_end = data.index(b"\n", pos)
            header = data[pos:header_end].split()
            if len(header) < 3 or header[1] != b"tag":
                pos = header_end + 1 + (int(header[2]) + 1 if len(header) >= 3 else 0)
                continue
            size = int(header[2])
            body = data[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
            pos = header_end + 1 + size + 1
            result[oid] = _parse_tag_body(body)
        return result

    def show_file(self, commit: str, path: str) -> str:
        return self.run("show", f"{commit}:{path}")

    def show_files(self, specs: Sequence[tuple[str, str]]) -> list[str | None]:
        """Read many ``commit:path`` blobs with one ``git cat-file --batch`` call."""
        if not specs:
            return []
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input=("".join(f"{c}:{p}\n" for c, p in specs)).encode(),
            capture_output=True,
        )
        data = proc.stdout
        out: list[str | None] = []
        pos = 0
        for _ in specs:
            header_end = data.index(b"\n", pos)
            header = data[pos:header_end].split()
            if header[-1] == b"missing" or len(header) < 3:
                out.append(None)
                pos = header_end + 1
                continue
            size = int(header[2])
            out.append(data[header_end + 1 : header_end + 1 + size].decode("utf-8"))
            pos = header_end + 1 + size + 1
        return out

    def pack_refs_if_many(self, threshold: int = 256) -> None:
        """Pack loose tag refs once they are many: listing packed refs is far faster."""
        tags_dir = self.git_dir / "refs" / "tags"
        try:
            count = sum(1 for _ in os.scandir(tags_dir))
        except FileNotFoundError:
            return
        if count >= threshold:
            self.run("pack-refs", "--all", check=False)

    def status_porcelain(self, *paths: str) -> list[str]:
        out = self.run("status", "--porcelain", "--untracked-files=all", "--", *paths)
        return [line for line in out.splitlines() if line.strip()]

    def commits_touching(self, path: str) -> list[str]:
        return self.run("log", "--format=%H", "--", path).split()

    def restore(self, *paths: str) -> None:
        """Put ``paths`` back as they are in HEAD (tracked files) and drop untracked ones."""
        if self.head():
            self.run("checkout", "-q", "HEAD", "--", *paths, check=False)
        self.run("clean", "-q", "-f", "-d", "--", *paths, check=False)


def _parse_tag_body(body: str) -> TagObject:
    headers, _, message = body.partition("\n\n")
    commit = tagger = email = ""
    timestamp = 0
    for line in headers.splitlines():
        if line.startswith("object "):
            commit = line[7:].strip()
        elif line.startswith("tagger "):
            rest = line[7:]
            lt, gt = rest.rfind("<"), rest.rfind(">")
            tagger = rest[:lt].strip()
            email = rest[lt + 1 : gt]
            stamp = rest[gt + 1 :].split()
            timestamp = int(stamp[0]) if stamp else 0
    return TagObject(commit, tagger, email, timestamp, message.strip().split("\n", 1)[0])


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "modelhub"
