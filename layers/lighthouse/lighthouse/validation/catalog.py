"""The named classes of tool call the default policy decides without experts.

Each deny class is a rule name the rule layer reports in `matched_rules` (and in the Cedar context),
with the danger it names and the safer alternative; the shipped Cedar policies forbid them by family
(`policies/default.cedar`), so a project changes a class's outcome by editing its policies, not
code. Everyday classes mark work a careful engineer allows at a glance; a call made only of them,
inside the allowed roots, is permitted by the `permit-everyday-work` policy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleClass:
    name: str
    family: str
    danger: str
    alternative: str = ""


_DENY = [
    # git: history and working-tree destruction
    RuleClass("git_reset_hard", "git", "discards uncommitted changes (git reset --hard/--merge)",
              "git stash (recoverable), or git reset --soft / --mixed"),
    RuleClass("git_discard_worktree", "git", "discards uncommitted changes to files (git checkout -- / checkout . / restore)",
              "git stash, or git restore --staged to unstage only"),
    RuleClass("git_clean_force", "git", "deletes untracked files for good (git clean -f)",
              "git clean -n to see what would go, then remove those files by name"),
    RuleClass("git_push_force", "git", "overwrites the remote branch's history (git push --force / --mirror / +refspec)",
              "git push --force-with-lease"),
    RuleClass("git_push_delete", "git", "deletes a remote branch or tag (git push --delete / :ref)",
              "ask the branch's owner; delete it in the forge's UI where it can be restored"),
    RuleClass("git_push_protected", "git", "pushes straight to a protected branch",
              "push a feature branch and open a pull request"),
    RuleClass("git_branch_force_delete", "git", "deletes a branch even if unmerged (git branch -D)",
              "git branch -d (refuses an unmerged branch)"),
    RuleClass("git_stash_destroy", "git", "drops stashed work for good (git stash drop / clear)",
              "git stash list, and keep the stash until its work is committed"),
    RuleClass("git_reflog_expire", "git", "erases the reflog or prunes unreachable commits (git reflog expire / gc --prune=now)",
              "leave reflog expiry to git gc's defaults"),
    RuleClass("git_history_rewrite", "git", "rewrites the whole history (git filter-branch / filter-repo)",
              "do it in a fresh clone, reviewed, never in the working repository"),
    RuleClass("git_update_ref_delete", "git", "deletes a ref directly (git update-ref -d)", "git branch -d / git tag -d"),
    RuleClass("git_worktree_force_remove", "git", "removes a worktree with uncommitted changes (git worktree remove --force)",
              "git worktree remove (refuses a dirty worktree)"),
    # deletion beyond the project
    RuleClass("find_delete_outside", "deletion", "deletes files found outside the project (find -delete / -exec rm)",
              "run the find without -delete first, and delete inside the project only"),
    RuleClass("xargs_rm_outside", "deletion", "deletes files found outside the project (find | xargs rm)",
              "list the files first, and delete inside the project only"),
    RuleClass("shred", "deletion", "destroys file contents beyond recovery (shred)", "rm inside the project"),
    RuleClass("truncate_outside", "deletion", "empties a file outside the project (truncate -s 0)", ""),
    RuleClass("rsync_delete_outside", "deletion", "deletes files at a target outside the project (rsync --delete)",
              "rsync without --delete, or --dry-run first"),
    # code run from inline scripts, decoded or downloaded payloads
    RuleClass("inline_script_danger", "payload", "an inline script (python -c, node -e, a heredoc) runs a destructive command or deletes files",
              "write the script to a file in the project and review it"),
    RuleClass("decoded_payload_to_shell", "payload", "decoded or downloaded content fed to a shell or interpreter",
              "download to a file, read it, then run it"),
    # infrastructure and data
    RuleClass("kubectl_delete", "infrastructure", "deletes Kubernetes resources (kubectl delete)", "kubectl delete --dry-run=client first"),
    RuleClass("helm_uninstall", "infrastructure", "uninstalls a Helm release", "helm uninstall --dry-run"),
    RuleClass("terraform_destroy", "infrastructure", "destroys infrastructure (terraform destroy / apply -destroy)",
              "terraform plan -destroy, reviewed"),
    RuleClass("pulumi_destroy", "infrastructure", "destroys a Pulumi stack's resources", "pulumi preview --diff"),
    RuleClass("cloud_delete", "infrastructure", "deletes cloud resources or data (aws/gcloud/az delete, s3 rm --recursive, s3 rb --force)",
              "the same command with --dryrun / --dry-run, reviewed"),
    RuleClass("docker_prune", "infrastructure", "deletes Docker data and volumes (system prune -a / --volumes, volume rm / prune)",
              "docker system df, then remove named images or containers"),
    RuleClass("sql_destruction", "data", "drops or empties a database, schema or table (DROP / TRUNCATE / DELETE without WHERE)",
              "a DELETE with a WHERE clause, in a transaction, after a backup"),
    RuleClass("redis_flush", "data", "empties a Redis database (FLUSHALL / FLUSHDB)", "delete the keys you mean by pattern"),
    RuleClass("mongo_drop", "data", "drops a MongoDB database or collection", "export it first (mongodump)"),
    RuleClass("http_delete_remote", "data", "sends an HTTP DELETE to a remote host", "do it through the service's reviewed tooling"),
    # publishing and credentials
    RuleClass("package_publish", "publishing", "publishes a package to a public registry (npm publish, twine upload, cargo publish, ...)",
              "the same with --dry-run; publish from CI on a tag"),
    RuleClass("forge_destruction", "publishing", "deletes a repository or release on the forge (gh repo delete / gh release delete)", ""),
]  # fmt: skip

DENY: dict[str, RuleClass] = {rule.name: rule for rule in _DENY}

# Everyday work: a call made only of these (and inside the roots) needs no review.
EVERYDAY = frozenset(
    {
        "everyday_read",  # listing, reading, searching, status of anything
        "everyday_build",  # build, test, lint, format, type-check, run the project's scripts
        "everyday_install",  # packages into the project's own environment
        "everyday_file_change",  # create, copy, move, edit, delete files inside the roots or temp dirs
        "everyday_git",  # local git work and ordinary pushes
        "everyday_help",  # --help / --version / --dry-run of any tool
        "everyday_script",  # an inline script that neither deletes nor runs commands
    }
)


def describe(rule: str, matched: str) -> str:
    """The reason a deny gives: the danger, what matched, and what to do instead."""
    known = DENY.get(rule)
    if known is None:
        return f"{rule}: {matched}"
    reason = f"{known.danger}; matched `{matched}`"
    return f"{reason}; instead: {known.alternative}" if known.alternative else reason
