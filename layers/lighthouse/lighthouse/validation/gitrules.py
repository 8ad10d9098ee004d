"""git: which invocations destroy history or uncommitted work (deny classes) and which are everyday."""

from __future__ import annotations

from collections.abc import Callable

from lighthouse.validation import shell
from lighthouse.validation.vocabulary import READ_ONLY_GIT
from lighthouse.validation.where import Verdict, Where, deny, short_flags

_GIT_VALUE_OPTIONS = frozenset({"-c", "-C", "--git-dir", "--work-tree", "--namespace", "--exec-path"})


def _git_words(args: list[str]) -> tuple[str, list[str]]:
    """The subcommand and its arguments, after git's own options (`git -C dir -c k=v sub ...`)."""
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 2 if args[index] in _GIT_VALUE_OPTIONS else 1
    return (args[index].lower(), args[index + 1 :]) if index < len(args) else ("", [])


def git(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    sub, args = _git_words(command.args)
    lowered = [a.lower() for a in args]
    rule = _GIT_RULES[sub](args, lowered, where) if sub in _GIT_RULES else None
    if sub == "push":
        verdict.push_branches += _pushed_branches(args)
    if rule:
        deny(verdict, rule, command)
    elif sub in READ_ONLY_GIT or not sub:
        verdict.everyday = "everyday_read"
    elif sub in _GIT_EVERYDAY:
        verdict.everyday = "everyday_git"


def _pushed_branches(args: list[str]) -> list[str]:
    """The branch names a push's refspecs write (`src:dst` -> dst, `+b` -> b)."""
    refspecs = [a for a in args if not a.startswith("-")][1:]
    return [r.lstrip("+").rsplit(":", 1)[-1].removeprefix("refs/heads/") for r in refspecs]


def _git_reset(args: list[str], lowered: list[str], where: Where) -> str | None:
    return "git_reset_hard" if {"--hard", "--merge", "--keep"} & set(lowered) else None


def _git_checkout(args: list[str], lowered: list[str], where: Where) -> str | None:
    if "--" in args and args.index("--") < len(args) - 1:
        return "git_discard_worktree"
    if "." in args or "-f" in lowered or "--force" in lowered:
        return "git_discard_worktree"
    return None


def _git_restore(args: list[str], lowered: list[str], where: Where) -> str | None:
    staged_only = ("--staged" in lowered or "-S" in args) and "--worktree" not in lowered and "-W" not in args
    return None if staged_only else "git_discard_worktree"


def _git_clean(args: list[str], lowered: list[str], where: Where) -> str | None:
    flags = short_flags(args)
    forced = "f" in flags or "--force" in lowered
    return "git_clean_force" if forced and "n" not in flags and "--dry-run" not in lowered else None


def _git_push(args: list[str], lowered: list[str], where: Where) -> str | None:
    flags = short_flags(args)
    refspecs = [a for a in args if not a.startswith("-")][1:]
    if _forced(lowered, flags, refspecs):
        return "git_push_force"
    deleting = "--delete" in lowered or "d" in flags or any(r.startswith(":") for r in refspecs)
    # A push to a protected branch is the policy's call: it sees the branch names.
    return "git_push_delete" if deleting else None


def _forced(lowered: list[str], flags: set[str], refspecs: list[str]) -> bool:
    """--force, -f, --mirror, or a `+refspec` not guarded by --force-with-lease/--force-if-includes."""
    leased = any(a.startswith(("--force-with-lease", "--force-if-includes")) for a in lowered)
    plus = any(r.startswith("+") for r in refspecs)
    return "--force" in lowered or "f" in flags or "--mirror" in lowered or (plus and not leased)


def _git_branch(args: list[str], lowered: list[str], where: Where) -> str | None:
    flags = short_flags(args)
    forced_delete = "D" in flags or ("d" in flags and ("f" in flags or "--force" in lowered))
    return "git_branch_force_delete" if forced_delete or ("--delete" in lowered and "--force" in lowered) else None


def _git_stash(args: list[str], lowered: list[str], where: Where) -> str | None:
    return "git_stash_destroy" if lowered[:1] in (["drop"], ["clear"]) else None


def _git_reflog(args: list[str], lowered: list[str], where: Where) -> str | None:
    return "git_reflog_expire" if lowered[:1] in (["expire"], ["delete"]) else None


def _git_gc(args: list[str], lowered: list[str], where: Where) -> str | None:
    return "git_reflog_expire" if any(a in ("--prune=now", "--prune=all") for a in lowered) else None


def _git_update_ref(args: list[str], lowered: list[str], where: Where) -> str | None:
    return "git_update_ref_delete" if "-d" in lowered or "--delete" in lowered else None


def _git_worktree(args: list[str], lowered: list[str], where: Where) -> str | None:
    removing = lowered[:1] in (["remove"], ["prune"])
    return "git_worktree_force_remove" if removing and ({"-f", "--force"} & set(lowered)) else None


_GIT_RULES: dict[str, Callable[[list[str], list[str], Where], str | None]] = {
    "reset": _git_reset,
    "checkout": _git_checkout,
    "restore": _git_restore,
    "clean": _git_clean,
    "push": _git_push,
    "branch": _git_branch,
    "stash": _git_stash,
    "reflog": _git_reflog,
    "gc": _git_gc,
    "filter-branch": lambda a, lo, w: "git_history_rewrite",
    "filter-repo": lambda a, lo, w: "git_history_rewrite",
    "update-ref": _git_update_ref,
    "worktree": _git_worktree,
}
_GIT_EVERYDAY = frozenset(
    {"add", "commit", "checkout", "reset", "switch", "branch", "stash", "fetch", "pull", "push", "merge", "rebase",
     "tag", "remote", "config", "init", "clone", "cherry-pick", "revert", "restore", "mv", "rm", "grep", "reflog",
     "worktree", "notes", "bisect", "am", "apply", "format-patch", "submodule", "lfs", "sparse-checkout", "clean"}
)  # fmt: skip
