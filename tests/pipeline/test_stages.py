"""Pipeline stages: each one alone, then the pipeline that runs them over a batch."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import auditkeep.pipeline.stages
from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.pipeline.stages import (
    Drop,
    Enrich,
    Normalise,
    Pipeline,
    Sample,
    StageRejection,
    Validate,
    is_protected,
    parse_user_agent,
    sample_hash,
)
from auditkeep.pipeline.validate import decode_events

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"action": "orders.delete", "actor": {"id": "alice", "type": "user"},
                            "outcome": "success"}
    base.update(fields)
    return base


def test_exported_members() -> None:
    module = auditkeep.pipeline.stages
    for name in module.__all__:
        assert hasattr(module, name), name


class TestValidate:
    def test_a_valid_event_passes_unchanged(self) -> None:
        ev = event(time="2024-05-01T10:00:00Z", metadata={"k": [1, 2.5]})
        before = copy.deepcopy(ev)
        assert Validate()(ev) is ev
        assert ev == before

    def test_an_invalid_event_is_rejected_naming_the_field(self) -> None:
        with pytest.raises(StageRejection) as info:
            Validate()(event(outcome="maybe"))
        err = info.value
        assert isinstance(err, ValidationError) and err.status == 400
        assert err.stage == "validate"
        (p,) = err.problems
        assert p.pointer == "/outcome"
        with pytest.raises(StageRejection) as info:
            Validate()(event(actor={"id": "a", "type": "user", "shoe": 9}))
        assert info.value.problems[0].pointer == "/actor/shoe"

    def test_metadata_limits_are_checked_too(self) -> None:
        deep: dict[str, Any] = {}
        node = deep
        for _ in range(10):
            node["x"] = {}
            node = node["x"]
        with pytest.raises(StageRejection) as info:
            Validate()(event(metadata=deep))
        assert info.value.problems[0].detail == "nested too deeply"


class TestNormalise:
    def test_free_text_is_trimmed_and_nfc(self) -> None:
        ev = Normalise()(event(
            action="  orders.delete\n", reason=" Cafe\u0301 ", time=" 2024-05-01T10:00:00Z ",
            actor={"id": "alice", "type": "user", "name": " Ame\u0301lie "},
            resource={"type": " order ", "id": "42", "name": "  "},
            targets=[{"type": " user ", "id": "7", "name": " Bob "}, "not an object"],
            source={"service": " shop ", "region": "\t"}))
        assert ev["action"] == "orders.delete"
        assert ev["reason"] == "Caf\u00e9"
        assert ev["time"] == "2024-05-01T10:00:00Z"
        assert ev["actor"]["name"] == "Am\u00e9lie"
        assert ev["resource"] == {"type": "order", "id": "42"}  # blank optional name removed
        assert ev["targets"] == [{"type": "user", "id": "7", "name": "Bob"}, "not an object"]
        assert ev["source"] == {"service": "shop"}

    def test_enums_are_lower_cased(self) -> None:
        ev = Normalise()(event(outcome=" Success", category="ADMIN", severity="Critical",
                               actor={"id": "a", "type": "User",
                                      "impersonator": {"id": "root", "type": "SYSTEM"}}))
        assert (ev["outcome"], ev["category"], ev["severity"]) == ("success", "admin",
                                                                    "critical")
        assert ev["actor"]["type"] == "user"
        assert ev["actor"]["impersonator"] == {"id": "root", "type": "system"}
        decode_events(orjson.dumps(ev), ndjson=False)  # now valid schema v1

    @pytest.mark.parametrize(("option", "expected"), [
        ("domain", "Alice.Smith@example.com"),
        ("lower", "alice.smith@example.com"),
        ("keep", "Alice.Smith@Example.COM"),
    ])
    def test_email(self, option: Any, expected: str) -> None:
        ev = Normalise(email=option)(event(actor={"id": "a", "type": "user",
                                                  "email": " Alice.Smith@Example.COM "}))
        assert ev["actor"]["email"] == expected

    @pytest.mark.parametrize(("raw", "expected"), [
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("[::1]", "::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        (" 192.168.001.2 ", "192.168.001.2"),  # leading zeros: not an address, only trimmed
        ("10.0.0.1", "10.0.0.1"),
        ("unknown", "unknown"),
    ])
    def test_ip_addresses_get_their_canonical_text(self, raw: str, expected: str) -> None:
        ev = Normalise()(event(actor={"id": "a", "type": "user", "ip": raw}))
        assert ev["actor"]["ip"] == expected

    def test_action_case_is_kept_unless_asked(self) -> None:
        assert Normalise()(event(action="aws.s3.PutObject"))["action"] == "aws.s3.PutObject"
        assert Normalise(action="lower")(event(action=" aws.s3.PutObject"))["action"] == \
            "aws.s3.putobject"
        assert Normalise(text=False, action="lower")(event(action="A.B"))["action"] == "a.b"

    def test_ids_are_never_changed(self) -> None:
        ids = event(id=" Ev-1 ", request_id=" Req ", trace_id=" T ", span_id=" S ",
                    tenant=" Acme ",
                    actor={"id": " Alice ", "type": "user", "session_id": " S1 ",
                           "impersonator": {"id": " Root ", "type": "system"}},
                    resource={"type": "order", "id": " 42 "},
                    targets=[{"type": "user", "id": " U7 "}],
                    metadata={"note": "  spaced  ", "Case": "KEEP"},
                    changes=[{"field": " f ", "before": " x ", "after": "Y"}])
        ev = Normalise(email="lower", action="lower")(copy.deepcopy(ids))
        for key in ("id", "request_id", "trace_id", "span_id", "tenant", "metadata",
                    "changes"):
            assert ev[key] == ids[key], key
        assert ev["actor"]["id"] == " Alice " and ev["actor"]["session_id"] == " S1 "
        assert ev["actor"]["impersonator"]["id"] == " Root "
        assert ev["resource"]["id"] == " 42 " and ev["targets"][0]["id"] == " U7 "

    def test_values_of_the_wrong_type_are_left_for_validation(self) -> None:
        odd = {"action": 7, "actor": "alice", "outcome": ["ok"], "resource": None,
               "targets": {"x": 1}, "source": 3}
        assert Normalise()(copy.deepcopy(odd)) == odd
        assert Normalise()({}) == {}

    def test_off_means_off(self) -> None:
        ev = event(outcome="Success", reason=" r ",
                   actor={"id": "a", "type": "User", "email": "A@B.C", "ip": "[::1]"})
        out = Normalise(text=False, enums=False, email="keep", ip=False)(copy.deepcopy(ev))
        assert out == ev


class TestEnrich:
    def test_static_fields_are_set_only_when_absent(self) -> None:
        stage = Enrich(static={"source.environment": "prod", "source.region": "eu-west-1",
                               "metadata.team": "payments", "metadata.cost.centre": 42})
        ev = stage(event(source={"region": "us-east-1"}, metadata={"team": "core"}))
        assert ev["source"] == {"region": "us-east-1", "environment": "prod"}
        assert ev["metadata"] == {"team": "core", "cost": {"centre": 42}}
        assert stage(event())["source"] == {"environment": "prod", "region": "eu-west-1"}

    def test_a_parent_of_the_wrong_type_is_left_for_validation(self) -> None:
        ev = Enrich(static={"source.environment": "prod", "metadata.a.b": 1})(
            event(source="web", metadata={"a": "text"}))
        assert ev["source"] == "web" and ev["metadata"] == {"a": "text"}

    def test_user_agents_are_parsed(self) -> None:
        stage = Enrich(user_agent=True)
        ev = stage(event(actor={"id": "a", "type": "user", "user_agent": CHROME}))
        assert ev["metadata"]["user_agent"] == {"browser": "Chrome", "browser_version": "120.0.0",
                                                "os": "Windows", "os_version": "10"}
        ev = stage(event(actor={"id": "a", "type": "user", "user_agent": IPHONE}))
        assert ev["metadata"]["user_agent"] == {
            "browser": "Mobile Safari", "browser_version": "17.0", "os": "iOS",
            "os_version": "17.0", "device": "iPhone"}
        assert ev["actor"]["user_agent"] == IPHONE  # the original stays (as a commitment)

    def test_unknown_or_absent_user_agents_add_nothing(self) -> None:
        stage = Enrich(user_agent=True)
        assert "metadata" not in stage(event(actor={"id": "a", "type": "user",
                                                    "user_agent": "x-unknown-tool"}))
        assert "metadata" not in stage(event())
        assert parse_user_agent("x-unknown-tool") == ()

    def test_a_producers_own_user_agent_metadata_wins(self) -> None:
        ev = Enrich(user_agent=True)(event(actor={"id": "a", "type": "user",
                                                  "user_agent": CHROME},
                                           metadata={"user_agent": "mine"}))
        assert ev["metadata"] == {"user_agent": "mine"}

    def test_the_sources_own_metadata(self) -> None:
        stage = Enrich(ingest={"source": "k8s", "cluster": "eu-1"})
        first, second = stage(event()), stage(event())
        assert first["metadata"] == {"ingest": {"source": "k8s", "cluster": "eu-1"}}
        first["metadata"]["ingest"]["cluster"] = "changed later"  # no event shares it
        assert second["metadata"]["ingest"]["cluster"] == "eu-1"

    def test_enriched_events_stay_valid(self) -> None:
        stage = Enrich(static={"source.environment": "prod", "metadata.team": "x"},
                       user_agent=True, ingest={"source": "api"})
        ev = stage(event(actor={"id": "a", "type": "user", "user_agent": IPHONE}))
        decode_events(orjson.dumps(ev), ndjson=False)


PROTECTED = [
    {"severity": "critical"},
    {"severity": " Critical "},
    {"category": "admin"},
    {"category": "auth"},
    {"category": "POLICY"},
    {"severity": "info", "category": "policy"},
]


class TestSample:
    @pytest.mark.parametrize("marks", PROTECTED)
    def test_protected_events_are_never_sampled_away(self, marks: dict[str, str]) -> None:
        stage = Sample(0.0)
        for i in range(200):
            ev = event(id=f"e{i}", **marks)
            assert stage(ev) is ev
            assert is_protected(ev)

    @given(st.sampled_from(PROTECTED), st.text(max_size=20), st.floats(0, 1),
           st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
    def test_no_rate_and_no_event_drops_a_protected_one(
            self, marks: dict[str, str], event_id: str, rate: float,
            extra: dict[str, str]) -> None:
        ev = {**extra, "id": event_id, "action": "k8s.pods.get", **marks}
        assert Sample(rate, actions=["k8s.*"])(ev) is ev

    def test_unprotected_events(self) -> None:
        assert not is_protected(event())
        assert not is_protected(event(severity="warning", category="data_access"))
        assert not is_protected({"severity": 1, "category": ["admin"]})

    def test_rate_zero_drops_and_rate_one_keeps(self) -> None:
        ev = event(id="e1")
        assert Sample(0.0)(ev) == Drop("sampled")
        assert Sample(1.0)(ev) is ev
        assert Sample(0.0, reason="reads")(ev) == Drop("reads")

    def test_the_decision_is_the_same_on_every_try(self) -> None:
        a, b = Sample(0.3), Sample(0.3)
        for i in range(500):
            ev = event(id=f"evt-{i}")
            assert (a(ev) is ev) == (b(copy.deepcopy(ev)) == copy.deepcopy(ev))
        # without an id, the content decides
        ev = event(reason="no id")
        assert sample_hash(ev) == sample_hash(copy.deepcopy(ev))
        assert sample_hash(ev) != sample_hash(event(reason="another"))
        assert sample_hash({"n": 2**70}) == sample_hash({"n": 2**70})  # beyond orjson

    def test_the_kept_fraction_is_the_rate(self) -> None:
        stage = Sample(0.1)
        kept = sum(1 for i in range(20_000) if isinstance(stage(event(id=f"id-{i}")), dict))
        assert 1_800 < kept < 2_200

    def test_only_matching_actions_are_sampled(self) -> None:
        stage = Sample(0.0, actions=["k8s.*.get", "k8s.*.list"])
        for action in ("k8s.pods.get", "k8s.pods.log.get", "k8s.secrets.list"):
            assert stage(event(action=action)) == Drop("sampled"), action
        for action in ("k8s.pods.create", "k8s.get", "orders.get", "xk8s.pods.get"):
            ev = event(action=action)
            assert stage(ev) is ev, action
        odd = {"action": 5}
        assert stage(odd) is odd

    def test_the_rate_is_checked(self) -> None:
        with pytest.raises(ValueError, match="from 0 to 1"):
            Sample(1.5)


class TestPipeline:
    def test_stages_run_in_order_and_drops_are_counted(self) -> None:
        p = Pipeline([Normalise(), Sample(0.0, actions=["k8s.*.get"], reason="k8s-reads"),
                      Enrich(static={"source.environment": "prod"})])
        events = [event(id="1", action="k8s.pods.get"),
                  event(id="2", outcome=" Denied"),
                  event(id="3", action="k8s.pods.get", category="auth"),
                  event(id="4", action="k8s.nodes.get")]
        result = p(events)
        assert [e["id"] for e in result.events] == ["2", "3"]
        assert result.positions == [1, 2]
        assert result.events[0]["outcome"] == "denied"
        assert all(e["source"] == {"environment": "prod"} for e in result.events)
        assert result.dropped == [(0, "k8s-reads"), (3, "k8s-reads")]
        assert result.drop_counts == {"k8s-reads": 2}
        assert result.problems == [] and result.rejected == []
        result.raise_for_problems()  # nothing to raise
        assert p.kinds == ["normalise", "sample", "enrich"]
        assert repr(p) == "Pipeline(normalise -> sample -> enrich)"

    def test_a_dropped_or_rejected_event_goes_no_further(self) -> None:
        seen: list[str] = []

        def spy(ev: dict[str, Any]) -> dict[str, Any]:
            seen.append(ev["id"])
            return ev

        p = Pipeline([Validate(), Sample(0.0, actions=["drop.*"]), spy])
        result = p([event(id="a"), event(id="b", outcome="nope"), event(id="c",
                                                                        action="drop.me")])
        assert seen == ["a"]
        assert result.positions == [0] and result.dropped == [(2, "sampled")]
        assert result.rejected == [1]

    def test_rejections_carry_index_pointer_and_stage(self) -> None:
        def picky(ev: dict[str, Any]) -> dict[str, Any]:
            if ev.get("reason") == "bad":
                raise StageRejection("no", problems=[FieldProblem("/reason", "not allowed")])
            if ev.get("reason") == "worse":
                raise StageRejection("refused outright")
            return ev

        p = Pipeline([picky, Validate()])
        result = p([event(), event(reason="bad"), "not an object", event(reason="worse"),
                    event(severity="loud")])
        assert [(q.index, q.pointer) for q in result.problems] == [
            (1, "/1/reason"), (2, "/2"), (3, "/3"), (4, "/4/severity")]
        assert result.problems[0].detail == "picky: not allowed"
        assert result.problems[1].detail == "expected an event object"
        assert result.problems[2].detail == "picky: refused outright"
        assert result.problems[3].detail.startswith("validate: ")
        assert result.rejected == [1, 2, 3, 4]
        assert result.positions == [0]
        with pytest.raises(StageRejection) as info:
            result.raise_for_problems()
        assert info.value.detail.startswith("4 event(s) rejected by the pipeline: /1/reason: ")
        assert len(info.value.problems) == 4

    def test_a_single_object_body_has_pointers_from_the_event(self) -> None:
        result = Pipeline([Validate()])([event(outcome="x")], single=True)
        assert result.problems[0].pointer == "/outcome"
        assert result.problems[0].index == 0
        result = Pipeline([Validate()])([[]], single=True)
        assert result.problems[0].pointer == "/"

    def test_process_one_event(self) -> None:
        p = Pipeline([Sample(0.0)])
        assert p.process(event(id="x")) == Drop("sampled")
        with pytest.raises(StageRejection) as info:
            Pipeline([Validate()]).process({})
        assert info.value.stage == "validate"

    def test_no_stages(self) -> None:
        evs = [event(), event()]
        result = Pipeline()(evs)
        assert result.events == evs and result.positions == [0, 1]
        assert repr(Pipeline()) == "Pipeline(no stages)"
