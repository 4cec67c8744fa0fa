"""Generic JSON sources: a declarative map turns any producer's object into an event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import auditkeep.sources.generic
from auditkeep.errors import ConfigError, ValidationError
from auditkeep.pipeline.validate import decode_events
from auditkeep.sources.generic import (
    REQUIRED_TARGETS,
    TARGETS,
    FieldRule,
    GenericMapping,
    missing_targets,
    parse_map,
    parse_pointer,
)

GITHUB_MAP = {
    "id": "/delivery_id",
    "action": "/action",
    "actor.id": "/sender/login",
    "actor.type": {"const": "user"},
    "time": "/created_at",
    "outcome": {"const": "success"},
    "resource.type": {"const": "repo"},
    "resource.id": "/repository/full_name",
    "metadata.installation": {"pointer": "/installation/id", "optional": True},
    "metadata.labels": {"pointer": "/labels", "default": []},
}

GITHUB_EVENT = {
    "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "action": "opened",
    "sender": {"login": "octocat", "id": 1},
    "created_at": "2024-05-01T10:00:00Z",
    "repository": {"full_name": "octo/hello", "id": 1296269},
}


def github() -> GenericMapping:
    return GenericMapping.from_config("github", GITHUB_MAP)


def test_exported_members() -> None:
    module = auditkeep.sources.generic
    for name in module.__all__:
        assert hasattr(module, name), name


class TestMapping:
    def test_an_object_becomes_a_valid_event(self) -> None:
        event = github()(GITHUB_EVENT)
        assert event == {
            "id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "action": "opened",
            "actor": {"id": "octocat", "type": "user"},
            "time": "2024-05-01T10:00:00Z",
            "outcome": "success",
            "resource": {"type": "repo", "id": "octo/hello"},
            "metadata": {"labels": []},
        }
        decode_events(orjson.dumps(event), ndjson=False)
        assert github().raw_format == "generic.github"

    def test_optional_and_default_values(self) -> None:
        event = github()({**GITHUB_EVENT, "installation": {"id": 9}, "labels": ["a"]})
        assert event["metadata"] == {"installation": 9, "labels": ["a"]}

    def test_every_missing_pointer_is_named(self) -> None:
        with pytest.raises(ValidationError) as info:
            github()({"action": "opened", "sender": {"login": None}, "repository": []},
                     "/3")
        problems = info.value.problems
        assert [(p.pointer, p.actual) for p in problems] == [
            ("/3/delivery_id", "missing"), ("/3/sender/login", "null"),
            ("/3/created_at", "missing"), ("/3/repository/full_name", "missing")]
        assert problems[1].detail == "/sender/login is null: map actor.id needs it"
        assert "/delivery_id is missing: map id needs it" in info.value.detail

    def test_not_an_object_at_all(self) -> None:
        with pytest.raises(ValidationError) as info:
            github()(["a list"])
        assert len(info.value.problems) == 5

    def test_integers_read_into_string_fields_become_text(self) -> None:
        m = GenericMapping.from_config("hook", {
            "id": "/hook_id", "action": {"const": "hook.ping"}, "actor.id": "/sender/id",
            "actor.type": {"const": "service"}, "outcome": {"const": "success"},
            "metadata.count": "/count", "metadata.flag": "/flag"})
        event = m({"hook_id": 12345, "sender": {"id": 7}, "count": 3, "flag": True})
        assert event["id"] == "12345" and event["actor"]["id"] == "7"
        assert event["metadata"] == {"count": 3, "flag": True}  # free-form: as sent

    def test_without_an_id_the_content_decides(self) -> None:
        spec = {k: v for k, v in GITHUB_MAP.items() if k != "id"}
        m = GenericMapping.from_config("github", spec)
        first = m(GITHUB_EVENT)["id"]
        assert first.startswith("github:sha256:") and len(first) == len("github:sha256:") + 32
        assert m(dict(reversed(list(GITHUB_EVENT.items()))))["id"] == first
        assert m({**GITHUB_EVENT, "action": "closed"})["id"] != first
        assert m({**GITHUB_EVENT, "big": 2**70})["id"] != first  # beyond 64-bit integers

    def test_constants_are_not_shared_between_events(self) -> None:
        m = GenericMapping.from_config("x", {
            "action": {"const": "a.b"}, "actor": {"const": {"id": "svc", "type": "service"}},
            "outcome": {"const": "success"}, "metadata": {"const": {"tags": ["a"]}}})
        first, second = m({}), m({})
        first["metadata"]["tags"].append("changed")
        first["actor"]["id"] = "changed"
        assert second["metadata"] == {"tags": ["a"]} and second["actor"]["id"] == "svc"

    def test_pointers_follow_rfc_6901(self) -> None:
        m = GenericMapping.from_config("x", {
            "action": "/a~1b", "actor.id": "/m~0n", "actor.type": "/list/1",
            "outcome": "/list/0", "reason": "/", "metadata.whole": {"pointer": "/nest"}})
        event = m({"a/b": "x.y", "m~n": "u", "list": ["success", "user"], "": "empty key",
                   "nest": {"deep": [1]}})
        assert (event["action"], event["actor"], event["outcome"]) == (
            "x.y", {"id": "u", "type": "user"}, "success")
        assert event["reason"] == "empty key"
        assert event["metadata"] == {"whole": {"deep": [1]}}
        for bad_index in ({"list": {"1": "x"}}, {"list": ["a"]}, {"list": ["a", "b", "c"]}):
            m2 = GenericMapping("y", (FieldRule("actor.type", pointer="/list/01"),))
            with pytest.raises(ValidationError):
                m2(bad_index)

    def test_the_whole_object_as_metadata(self) -> None:
        m = GenericMapping("y", (FieldRule("metadata", pointer=""),))
        assert m({"a": 1})["metadata"] == {"a": 1}


class TestParseMap:
    def test_a_good_map(self) -> None:
        rules, problems = parse_map(GITHUB_MAP)
        assert problems == []
        assert rules[0] == FieldRule("id", pointer="/delivery_id")
        assert FieldRule("actor.type", const="user") in rules
        assert FieldRule("metadata.labels", pointer="/labels", default=[]) in rules

    @pytest.mark.parametrize(("spec", "expected"), [
        (None, [((), "expected a mapping of event fields (at least action, actor.id, "
                     "actor.type, outcome) to JSON pointers or {const: ...}, got None")]),
        ({}, [((), "expected a mapping of event fields (at least action, actor.id, "
                   "actor.type, outcome) to JSON pointers or {const: ...}, got an empty "
                   "mapping")]),
        ({"action": "/a", "actor.id": "/b", "actor.type": "/c"},
         [((), "missing outcome (required by schema v1; use {const: ...} for a fixed value)")]),
        ({"action": "/a", "actor": "/actor", "outcome": "/o", "tenant": "/t",
          "actr.id": "/x", "metadata.": "/y"},
         [(("tenant",), "not a schema v1 field a map may set (e.g. action, actor.id, "
                        "resource.type, metadata.<key>), got 'tenant'"),
          (("actr.id",), "not a schema v1 field a map may set (e.g. action, actor.id, "
                         "resource.type, metadata.<key>), got 'actr.id'"),
          (("metadata.",), "not a schema v1 field a map may set (e.g. action, actor.id, "
                           "resource.type, metadata.<key>), got 'metadata.'")]),
        ({"action": "a", "actor": "/a", "outcome": "/o~2"},
         [(("action",), 'expected a JSON pointer (RFC 6901: "" or "/a/b", ~0 for ~ and ~1 '
                        "for /), got 'a'"),
          (("outcome",), 'expected a JSON pointer (RFC 6901: "" or "/a/b", ~0 for ~ and ~1 '
                         "for /), got '/o~2'")]),
        ({"action": {"const": "a", "pointer": "/a"}, "actor": "/a", "outcome": {"x": 1}},
         [(("action",), "give exactly one of pointer or const"),
          (("outcome", "x"), "unknown key (expected one of pointer, const, optional, "
                             "default)"),
          (("outcome",), "give exactly one of pointer or const")]),
        ({"action": {"const": None}, "actor": "/a", "outcome": {"const": "x",
                                                                 "optional": True}},
         [(("action", "const"), "expected a value, got null (leave the field out)"),
          (("outcome", "optional"), "only with pointer")]),
        ({"action": {"pointer": "/a", "optional": True, "default": "x"}, "actor": "/a",
          "outcome": {"pointer": 5}},
         [(("action", "default"), "give optional or default, not both"),
          (("outcome", "pointer"), 'expected a JSON pointer (RFC 6901: "" or "/a/b", ~0 for ~ '
                                   "and ~1 for /), got 5")]),
        ({"action": "/a", "actor": "/a", "actor.id": "/b", "outcome": 3},
         [(("outcome",), 'expected a JSON pointer such as "/sender/login" or a mapping with '
                         "pointer or const, got 3"),
          (("actor.id",), "conflicts with 'actor', which sets the whole object")]),
        ({"action": "/a", "actor.id": "/b", "actor.type": "/c", "outcome": "/d",
          "resource.id": "/r", "actor.impersonator.id": "/i"},
         [((), "missing actor.impersonator.type, resource.type (required by schema v1; use "
               "{const: ...} for a fixed value)")]),
    ])
    def test_every_problem_is_reported(self, spec: Any,
                                       expected: list[tuple[tuple[Any, ...], str]]) -> None:
        assert parse_map(spec)[1] == expected

    def test_from_config_raises_with_every_problem(self) -> None:
        with pytest.raises(ConfigError) as info:
            GenericMapping.from_config("Bad Name", {"action": "x"})
        err = info.value
        assert [p.pointer for p in err.problems] == ["/map", "/map/action", "/map"]
        assert err.detail.startswith("generic source 'Bad Name': map: name must match")

    def test_targets_come_from_schema_v1(self) -> None:
        assert REQUIRED_TARGETS == ("action", "actor.id", "actor.type", "outcome")
        assert {"action", "actor.email", "actor.impersonator.type", "resource.name",
                "source.region", "severity", "metadata", "targets", "changes"} <= TARGETS
        assert "tenant" not in TARGETS
        assert missing_targets({"action", "actor", "outcome", "resource"}) == []

    def test_pointer_syntax(self) -> None:
        assert parse_pointer("") == ()
        assert parse_pointer("/") == ("",)
        assert parse_pointer("/a~1b/c~0d/0") == ("a/b", "c~d", "0")
        assert parse_pointer("a") is None
        assert parse_pointer("/a~") is None
