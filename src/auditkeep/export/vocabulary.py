"""What an action does and what kind of thing it touches, read from its name and its
resource type: the one reading that the OCSF, ECS and CADF mappings pick their
activities, event types and CADF actions from, so the three never disagree.

Actions are free-form (`orders.delete`, `k8s.pods.exec.create`, `aws.iam.CreateUser`,
`gcp.compute.v1.compute.instances.insert`), so the verb is found by words: each dotted
segment is split at `_`, `-` and camelCase, segments are read from the last one back,
and the first word that is a known verb decides. Nothing here raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: Word of an action -> neutral verb. Anything else is "other".
VERBS: dict[str, str] = {
    **dict.fromkeys(("create", "created", "add", "added", "insert", "inserted", "new",
                     "register", "registered", "import", "upload", "post", "generate",
                     "issue", "provision", "allocate", "clone", "copy", "invite"), "create"),
    **dict.fromkeys(("get", "read", "describe", "head", "lookup", "search", "query", "scan",
                     "view", "show", "fetch", "download", "export", "watch", "access",
                     "open", "select", "check", "verify", "decrypt"), "read"),
    **dict.fromkeys(("list", "listed", "enumerate"), "list"),
    **dict.fromkeys(("update", "updated", "patch", "patched", "modify", "modified", "set",
                     "put", "change", "changed", "edit", "edited", "replace", "rename",
                     "tag", "untag", "move", "assign", "unassign", "apply", "upsert",
                     "save", "scale", "rotate", "refund", "approve", "reject", "cancel"),
                    "update"),
    **dict.fromkeys(("delete", "deleted", "deletecollection", "remove", "removed", "destroy",
                     "destroyed", "purge", "purged", "terminate", "drop", "erase",
                     "unregister", "deregister", "deprovision", "release"), "delete"),
    **dict.fromkeys(("login", "logon", "signin", "authenticate", "authenticated"), "login"),
    **dict.fromkeys(("logout", "logoff", "signout"), "logout"),
    **dict.fromkeys(("enable", "enabled", "activate", "activated", "unsuspend"), "enable"),
    **dict.fromkeys(("disable", "disabled", "deactivate", "deactivated", "suspend"),
                    "disable"),
    **dict.fromkeys(("start", "started", "run", "launch", "restart", "reboot", "resume"),
                    "start"),
    **dict.fromkeys(("stop", "stopped", "halt", "shutdown", "pause"), "stop"),
    **dict.fromkeys(("lock", "locked"), "lock"),
    **dict.fromkeys(("unlock", "unlocked"), "unlock"),
    **dict.fromkeys(("attach", "attached", "associate", "bind", "link"), "attach"),
    **dict.fromkeys(("detach", "detached", "disassociate", "unbind", "unlink"), "detach"),
    **dict.fromkeys(("grant", "granted", "authorize", "allow"), "grant"),
    **dict.fromkeys(("revoke", "revoked", "deny"), "revoke"),
    **dict.fromkeys(("reset",), "reset"),
}

#: Neutral verbs that change state without creating or deleting.
CHANGES = frozenset({"update", "enable", "disable", "lock", "unlock", "attach", "detach",
                     "grant", "revoke", "reset"})

#: Resource kinds that are identities (OCSF's "user/role", ECS's `user.target`).
ACCOUNT_KINDS = frozenset({"user", "account", "role", "group", "serviceaccount"})

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Two-word spellings of one word ("SignIn", "LogOut", "ServiceAccount").
_JOINED = {("sign", "in"): "signin", ("sign", "out"): "signout", ("log", "in"): "login",
           ("log", "out"): "logout", ("log", "on"): "logon", ("log", "off"): "logoff",
           ("service", "account"): "serviceaccount"}


@dataclass(frozen=True, slots=True)
class ActionReading:
    """How an action name reads.

    `verb`: a neutral verb (a value of `VERBS`) or "other". `rest`: the words after
    the verb in its segment (`user, policy` in `AttachUserPolicy`). `words`: every
    word of the action, lowercased. `segments`: each dotted segment lowercased with
    `_` and `-` removed (`iam.user.password_reset` -> iam, user, passwordreset)."""

    verb: str
    rest: tuple[str, ...]
    words: frozenset[str]
    segments: tuple[str, ...]


def words_of(segment: str) -> list[str]:
    """The lowercased words of one action segment, two-word spellings joined."""
    raw = [w.lower() for w in _WORD.findall(segment)]
    out: list[str] = []
    for w in raw:
        if out and (out[-1], w) in _JOINED:
            out[-1] = _JOINED[(out[-1], w)]
        else:
            out.append(w)
    return out


@lru_cache(maxsize=4096)  # an export repeats a few hundred action names millions of times
def read_action(action: str) -> ActionReading:
    """Read an action name (see the module docstring)."""
    parts = action.split(".")
    split = [words_of(p) for p in parts]
    verb = "other"
    rest: tuple[str, ...] = ()
    for ws in reversed(split):
        hit = next((i for i, w in enumerate(ws) if w in VERBS), None)
        if hit is not None:
            verb, rest = VERBS[ws[hit]], tuple(ws[hit + 1 :])
            break
    return ActionReading(verb, rest, frozenset(w for ws in split for w in ws),
                         tuple(p.lower().replace("_", "").replace("-", "") for p in parts))


def kind_of(name: object) -> str | None:
    """The singular, lowercased kind a resource type or action word names, with any
    namespace cut off: `iam:role` -> role, `AWS::IAM::User` -> user, `serviceaccounts`
    -> serviceaccount, `service_account` -> serviceaccount. None for a non-string."""
    if not isinstance(name, str) or not name:
        return None
    tail = re.split(r"[:/]", name)[-1].lower().replace("_", "").replace("-", "")
    return tail[:-1] if tail.endswith("s") and not tail.endswith("ss") else tail


def account_kind(name: object) -> str | None:
    """`kind_of(name)` if it is an identity kind (see `ACCOUNT_KINDS`), else None."""
    kind = kind_of(name)
    return kind if kind in ACCOUNT_KINDS else None


def account_in_action(reading: ActionReading) -> str | None:
    """The identity kind an action is about, if its name says so: a whole segment
    before the last (`iam.user.create`, `k8s.serviceaccounts.create`), or the verb's
    object when that is the identity itself (`aws.iam.CreateUser`, `DeleteRole`,
    `AttachUserPolicy`, `AddUserToGroup`). Other words do not count, so
    `CreateSecurityGroup`, `CreateLogGroup` and `CreateServiceAccountKey` are not
    about identities."""
    for seg in reading.segments[:-1]:
        kind = account_kind(seg)
        if kind is not None:
            return kind
    rest = reading.rest
    if rest and (len(rest) == 1 or rest[1] in _ACCOUNT_OBJECT_TAILS):
        return account_kind(rest[0])
    return None


# Words that may follow the identity in a verb's object and keep it about the identity.
_ACCOUNT_OBJECT_TAILS = frozenset({"policy", "to", "from", "password", "tags"})
