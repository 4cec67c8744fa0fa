"""Kubernetes audit events → schema v1: every real sample maps to a valid event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

import auditkeep.sources
import auditkeep.sources.k8s
from auditkeep.errors import ValidationError
from auditkeep.pipeline.validate import decode_events
from auditkeep.sources.k8s import K8sEventMapper, map_event, map_event_list, parse_time

DATA = Path(__file__).parent.parent / "data" / "k8s"
FILES = ("falco_k8s_audit_events.jsonl", "panther_k8s_audit_events_part.jsonl")


def sample(name: str, line: int) -> dict[str, Any]:
    """Line `line` (1-based, as `grep -n` shows it) of a sample file."""
    with open(DATA / name, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            if n == line:
                return dict(json.loads(text))
    raise LookupError(line)


def all_samples() -> list[Any]:
    out = []
    for name in FILES:
        with open(DATA / name, encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                out.append(pytest.param(json.loads(text), id=f"{name}:{n}"))
    return out


def assert_valid(event: dict[str, Any]) -> None:
    (decoded,) = decode_events(orjson.dumps(event), ndjson=False)
    assert decoded.id == event["id"]


def test_exported_members() -> None:
    for module in (auditkeep.sources, auditkeep.sources.k8s):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name)


@pytest.mark.parametrize("obj", all_samples())
def test_every_sample_maps_to_a_valid_event(obj: dict[str, Any]) -> None:
    event = map_event(obj, stages=None)
    assert event is not None
    assert_valid(event)
    assert event["id"].startswith("k8s:")
    assert event["source"] == {"service": "kube-apiserver"}
    assert map_event(obj, stages=None) == event  # deterministic: a re-read dedups


def test_the_event_list_maps_each_item() -> None:
    obj = json.loads((DATA / "eventlist_v1_from_falco.json").read_text())
    events = map_event_list(obj)
    assert [e["id"] for e in events] == [map_event(i)["id"]  # type: ignore[index]
                                         for i in obj["items"]]
    assert len(events) == 4
    for e in events:
        assert_valid(e)


class TestHandChecked:
    def test_anonymous_namespace_create(self) -> None:
        e = map_event(sample("falco_k8s_audit_events.jsonl", 1))
        assert e == {
            "id": "k8s:841d3e6d-90d2-43df-8da4-684738bee3d5:ResponseComplete",
            "action": "k8s.namespaces.create",
            "actor": {"id": "system:anonymous", "type": "anonymous", "ip": "192.168.99.1"},
            "outcome": "success", "category": "data_change",
            "time": "2018-10-25T13:58:49.736141Z",
            "resource": {"type": "namespaces", "id": "foo", "name": "foo"},
            "source": {"service": "kube-apiserver"},
            "request_id": "841d3e6d-90d2-43df-8da4-684738bee3d5",
            "metadata": {
                "verb": "create", "requestURI": "/api/v1/namespaces",
                "stage": "ResponseComplete", "level": "Request", "apiVersion": "v1",
                "auditAPIVersion": "audit.k8s.io/v1beta1", "code": 201,
                "groups": ["system:masters", "system:authenticated"],
                "requestReceivedTimestamp": "2018-10-25T13:58:49.730588Z",
                "annotations": {"authorization.k8s.io/decision": "allow",
                                "authorization.k8s.io/reason": ""}},
        }

    def test_exec_into_a_pod_is_a_subresource_action(self) -> None:
        # exec is logged at ResponseStarted (session opened) and ResponseComplete (closed)
        assert map_event(sample("falco_k8s_audit_events.jsonl", 48)) is None
        e = map_event(sample("falco_k8s_audit_events.jsonl", 48), stages=None)
        assert e is not None
        assert e["action"] == "k8s.pods.exec.create"
        assert e["outcome"] == "success"  # 101 Switching Protocols
        assert e["resource"] == {"type": "pods", "id": "default/nginx-deployment-7998647bdf-phvq7",
                                 "name": "nginx-deployment-7998647bdf-phvq7"}
        assert e["metadata"]["subresource"] == "exec"

    def test_a_service_account_is_a_service(self) -> None:
        e = map_event(sample("falco_k8s_audit_events.jsonl", 22))
        assert e is not None
        assert e["actor"]["id"] == "system:serviceaccount:kube-system:replicaset-controller"
        assert e["actor"]["type"] == "service"
        assert e["action"] == "k8s.pods.create"

    def test_a_forbidden_probe_is_denied(self) -> None:
        e = map_event(sample("panther_k8s_audit_events_part.jsonl", 3))
        assert e is not None
        assert e["outcome"] == "denied"
        assert e["action"] == "k8s.nonresource.get"
        assert e["category"] == "data_access"
        assert e["resource"] == {"type": "nonresource",
                                 "id": "/vendor/phpunit/src/Util/PHP/eval-stdin.php"}
        assert e["actor"]["user_agent"] == "Custom-AsyncHttpClient"
        assert e["time"] == "2024-11-13T23:50:32.673504Z"  # space form, read as UTC
        assert e["metadata"]["reason"] == "Forbidden"

    def test_a_node_requesting_a_token_is_system_auth(self) -> None:
        e = map_event(sample("panther_k8s_audit_events_part.jsonl", 6))
        assert e is not None
        assert e["action"] == "k8s.serviceaccounts.token.create"
        assert e["category"] == "auth"
        assert e["actor"]["type"] == "system"
        assert e["time"] == "2025-08-26T17:40:49.330617Z"

    def test_a_trimmed_event_says_what_it_lacks(self) -> None:
        obj = sample("panther_k8s_audit_events_part.jsonl", 23)
        e = map_event(obj)
        assert e is not None
        assert e["actor"] == {"id": "unknown", "type": "anonymous"}
        assert "time" not in e and e["outcome"] == "success"
        assert e["metadata"]["missing"] == ["auditID", "stage", "user"]
        assert e["id"].startswith("k8s:sha256:") and len(e["id"]) == len("k8s:sha256:") + 32
        assert_valid(e)

    def test_a_missing_verb_becomes_unknown(self) -> None:
        e = map_event(sample("panther_k8s_audit_events_part.jsonl", 1))
        assert e is not None
        assert e["action"] == "k8s.pods.unknown"
        assert e["metadata"]["missing"] == ["verb"]


def minimal(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "a1", "stage": "ResponseComplete", "verb": "get",
        "requestURI": "/api/v1/namespaces/ns/secrets/s",
        "user": {"username": "alice", "groups": ["dev"]},
        "sourceIPs": ["10.0.0.1", "10.0.0.2"],
        "objectRef": {"resource": "secrets", "namespace": "ns", "name": "s",
                      "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2024-01-02T03:04:05.123456Z",
        "stageTimestamp": "2024-01-02T03:04:05.223456789Z",
    }
    obj.update(over)
    return obj


class TestRules:
    def test_impersonation_puts_the_real_user_in_impersonator(self) -> None:
        e = map_event(minimal(impersonatedUser={"username": "system:serviceaccount:ns:bot",
                                                "groups": ["system:serviceaccounts"]}))
        assert e is not None
        assert e["actor"] == {"id": "system:serviceaccount:ns:bot", "type": "service",
                              "ip": "10.0.0.1",
                              "impersonator": {"id": "alice", "type": "user"}}
        assert e["metadata"]["impersonatedGroups"] == ["system:serviceaccounts"]
        assert e["metadata"]["groups"] == ["dev"]
        assert_valid(e)

    @pytest.mark.parametrize(("code", "outcome"), [
        (200, "success"), (201, "success"), (101, "success"), (401, "denied"),
        (403, "denied"), (404, "failure"), (409, "failure"), (500, "failure")])
    def test_outcome_follows_the_response_code(self, code: int, outcome: str) -> None:
        e = map_event(minimal(responseStatus={"code": code}))
        assert e is not None and e["outcome"] == outcome

    def test_no_response_status_is_unknown(self) -> None:
        e = map_event(minimal(responseStatus=None))
        assert e is not None and e["outcome"] == "unknown"

    @pytest.mark.parametrize(("resource", "sub", "verb", "category"), [
        ("tokenreviews", None, "create", "auth"),
        ("selfsubjectaccessreviews", None, "create", "auth"),
        ("serviceaccounts", "token", "create", "auth"),
        ("secrets", None, "get", "data_access"),
        ("pods", None, "watch", "data_access"),
        ("clusterrolebindings", None, "create", "policy"),
        ("clusterrolebindings", None, "list", "data_access"),
        ("configmaps", None, "update", "config"),
        ("deployments", None, "patch", "data_change"),
        ("pods", "exec", "create", "data_change"),
    ])
    def test_category(self, resource: str, sub: str | None, verb: str, category: str) -> None:
        ref = {"resource": resource, "namespace": "ns", "name": "x",
               **({"subresource": sub} if sub else {})}
        e = map_event(minimal(objectRef=ref, verb=verb))
        assert e is not None and e["category"] == category

    def test_time_prefers_the_stage_timestamp_cut_to_microseconds(self) -> None:
        e = map_event(minimal())
        assert e is not None and e["time"] == "2024-01-02T03:04:05.223456Z"
        e = map_event(minimal(stageTimestamp=None))
        assert e is not None and e["time"] == "2024-01-02T03:04:05.123456Z"

    @pytest.mark.parametrize(("raw", "want"), [
        ("2024-11-13 18:34:10.595141000", "2024-11-13T18:34:10.595141Z"),
        ("2022-11-29 00:09:04.38", "2022-11-29T00:09:04.38Z"),
        ("2018-10-25T13:58:49Z", "2018-10-25T13:58:49Z"),
        ("2018-10-25T13:58:49.5+02:00", "2018-10-25T13:58:49.5+02:00"),
        ("2018-13-25T13:58:49Z", None), ("yesterday", None)])
    def test_parse_time(self, raw: str, want: str | None) -> None:
        assert parse_time(raw) == want

    def test_only_final_stages_by_default(self) -> None:
        assert map_event(minimal(stage="RequestReceived")) is None
        assert map_event(minimal(stage="ResponseStarted")) is None
        assert map_event(minimal(stage="Panic")) is not None
        mapper = K8sEventMapper(stages=["RequestReceived"])
        e = mapper(minimal(stage="RequestReceived"))
        assert e is not None and e["id"] == "k8s:a1:RequestReceived"

    def test_collections_and_cluster_scoped_objects(self) -> None:
        e = map_event(minimal(objectRef={"resource": "pods", "namespace": "ns"}, verb="list"))
        assert e is not None and e["resource"] == {"type": "pods", "id": "ns/*"}
        e = map_event(minimal(objectRef={"resource": "nodes", "name": "n1"}))
        assert e is not None and e["resource"] == {"type": "nodes", "id": "n1", "name": "n1"}
        e = map_event(minimal(objectRef={"resource": "nodes"}, verb="list"))
        assert e is not None and e["resource"] == {"type": "nodes", "id": "*"}

    def test_a_create_takes_the_name_from_the_request_body(self) -> None:
        e = map_event(minimal(objectRef={"resource": "pods", "namespace": "ns"}, verb="create",
                              requestObject={"metadata": {"name": "web-1"}}))
        assert e is not None
        assert e["resource"] == {"type": "pods", "id": "ns/web-1", "name": "web-1"}

    def test_an_audit_id_that_is_not_id_safe_is_hashed(self) -> None:
        e = map_event(minimal(auditID="a b/c"))
        assert e is not None
        assert e["id"].startswith("k8s:h:") and e["id"].endswith(":ResponseComplete")
        assert e["request_id"] == "a b/c"
        assert_valid(e)

    def test_overlong_values_are_clipped_and_said_so(self) -> None:
        e = map_event(minimal(userAgent="x" * 5000))
        assert e is not None
        assert len(e["actor"]["user_agent"]) == 1024
        assert e["metadata"]["truncated"] == ["/actor/user_agent"]
        assert_valid(e)


    def test_a_huge_event_sheds_bulky_metadata_to_stay_under_64_kib(self) -> None:
        e = map_event(minimal(annotations={f"k{i}": "v" * 1024 for i in range(80)},
                              requestURI="/api/" + "x" * 5000,
                              user={"username": "alice", "groups": ["g" * 300] * 500}))
        assert e is not None
        assert_valid(e)
        assert e["metadata"]["truncated"] == ["/metadata/annotations"]
        assert len(e["metadata"]["groups"]) == 100 and len(e["metadata"]["requestURI"]) == 4096


class TestMalformed:
    def test_every_bad_field_is_named_by_pointer(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_event(minimal(verb=7, user={"username": ["x"]}, objectRef="pods",
                              responseStatus={"code": "200"}, stageTimestamp="soon"))
        pointers = [p.pointer for p in err.value.problems]
        assert pointers == ["/verb", "/objectRef", "/user/username", "/responseStatus/code",
                            "/stageTimestamp"]
        assert "/verb: expected a string, got int" in err.value.detail

    def test_not_an_object(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_event([1, 2])
        assert [p.pointer for p in err.value.problems] == [""]

    def test_wrong_kind_or_version(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_event(minimal(kind="Pod", apiVersion="v1"))
        assert [p.pointer for p in err.value.problems] == ["/kind", "/apiVersion"]

    def test_event_list_problems_carry_the_item_index(self) -> None:
        body = {"kind": "EventList", "items": [minimal(), minimal(verb=1), "x"]}
        with pytest.raises(ValidationError) as err:
            map_event_list(body)
        assert [p.pointer for p in err.value.problems] == ["/items/1/verb", "/items/2"]

    def test_event_list_needs_items(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_event_list({"kind": "EventList"})
        assert [p.pointer for p in err.value.problems] == ["/items"]
