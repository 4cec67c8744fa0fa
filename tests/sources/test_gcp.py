"""Google Cloud audit logs → schema v1: every sample maps to a valid event, raw bytes exact."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import auditkeep.sources.gcp
from auditkeep.client.events import encode_event
from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.sources.gcp import (
    decode_export,
    gcp_principal_type,
    map_log_entry,
    parse_pubsub_push,
    read_gcp_paths,
)

DATA = Path(__file__).parent.parent / "data" / "gcp"
ENTRY_FILES = ("activity.jsonl", "data_access.jsonl", "gcloud_logging_read.json",
               "policy_denied.json", "system_event.json")


def entries(name: str) -> list[dict[str, Any]]:
    text = (DATA / name).read_text()
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines()]
    obj = json.loads(text)
    return obj if isinstance(obj, list) else [obj]


def all_entries() -> list[Any]:
    return [pytest.param(e, id=f"{name}:{i}")
            for name in ENTRY_FILES for i, e in enumerate(entries(name))]


def pushed() -> dict[str, Any]:
    entry = parse_pubsub_push((DATA / "pubsub_push.json").read_bytes()).entry
    assert isinstance(entry, dict)
    return entry


def test_exported_members() -> None:
    module = auditkeep.sources.gcp
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name)


@pytest.mark.parametrize("obj", [*all_entries(), pytest.param(pushed(), id="pubsub_push")])
def test_every_sample_maps_to_a_valid_event(obj: dict[str, Any]) -> None:
    event = map_log_entry(obj)
    encode_event(event)  # raises naming every field the server would refuse
    assert event["id"].startswith(f"gcp:{obj['insertId']}:")
    assert event["action"].startswith("gcp.")
    assert "truncated" not in event["metadata"]
    assert map_log_entry(obj) == event  # deterministic: a re-read dedups


def test_the_samples_cover_the_audit_logs() -> None:
    kinds = {map_log_entry(e)["metadata"]["logType"] for name in ENTRY_FILES
             for e in entries(name)}
    assert kinds == {"activity", "data_access", "system_event", "policy"}
    assert sum(len(entries(name)) for name in ENTRY_FILES) + 1 >= 8


class TestHandChecked:
    def test_an_instance_created_by_a_user(self) -> None:
        e = map_log_entry(entries("activity.jsonl")[0])
        assert e["id"].startswith("gcp:-q4bxnye1z8ya:")
        assert e["action"] == "gcp.compute.v1.compute.instances.insert"
        assert e["actor"]["id"] == "alice@example.com"
        assert e["actor"]["type"] == "user" and e["actor"]["email"] == "alice@example.com"
        assert e["actor"]["ip"] == "203.0.113.10"
        assert e["outcome"] == "success" and e["category"] == "data_change"
        assert e["time"] == "2024-05-14T09:12:02.962548Z"
        assert e["severity"] == "notice"
        assert e["resource"] == {
            "type": "gce_instance",
            "id": "projects/example-prod-1234/zones/europe-west1-b/instances/web-1"}
        assert e["source"] == {"service": "compute.googleapis.com", "region": "europe-west1-b"}
        meta = e["metadata"]
        assert meta["logType"] == "activity" and meta["projectId"] == "example-prod-1234"
        assert meta["permissions"] == ["compute.instances.create", "compute.disks.create",
                                       "compute.subnetworks.use"]
        assert meta["operationFirst"] is True
        assert meta["request"]["name"] == "web-1"
        assert "networkInterfaces" not in meta["request"]  # only small scalars
        assert "response" not in meta

    def test_a_bucket_deleted(self) -> None:
        e = map_log_entry(entries("activity.jsonl")[1])
        assert e["action"] == "gcp.storage.storage.buckets.delete"
        assert e["resource"] == {"type": "gcs_bucket",
                                 "id": "projects/_/buckets/example-prod-1234-old-reports"}
        assert e["source"]["region"] == "europe-west1"

    def test_a_service_account_key_created_by_a_service_account(self) -> None:
        e = map_log_entry(entries("activity.jsonl")[2])
        assert e["action"] == "gcp.iam.google.iam.admin.v1.CreateServiceAccountKey"
        assert e["actor"]["id"] == "ci-deployer@example-prod-1234.iam.gserviceaccount.com"
        assert e["actor"]["type"] == "service"
        assert e["category"] == "admin"
        assert e["metadata"]["serviceAccountKeyName"].endswith(
            "/keys/6f1e2d3c4b5a69788796a5b4c3d2e1f001122334")

    def test_an_iam_policy_change_is_policy(self) -> None:
        e = map_log_entry(entries("activity.jsonl")[3])
        assert (e["action"], e["category"]) == ("gcp.cloudresourcemanager.SetIamPolicy",
                                                "policy")
        assert e["resource"] == {"type": "project", "id": "projects/example-prod-1234"}
        assert e["metadata"]["permissions"] == ["resourcemanager.projects.setIamPolicy"]

    def test_impersonation_through_service_account_delegation(self) -> None:
        e = map_log_entry(entries("activity.jsonl")[4])
        assert e["actor"]["id"] == "deployer@example-prod-1234.iam.gserviceaccount.com"
        assert e["actor"]["type"] == "service"
        assert e["actor"]["impersonator"] == {"id": "carol@example.com", "type": "user"}
        assert e["actor"]["ip"] == "2001:db8:4f2a::17"
        assert e["metadata"]["delegationChain"] == ["carol@example.com"]
        assert e["metadata"]["principalSubject"] == (
            "serviceAccount:deployer@example-prod-1234.iam.gserviceaccount.com")

    def test_a_failed_create(self) -> None:
        e = map_log_entry(entries("activity.jsonl")[5])
        assert e["outcome"] == "failure"  # 6 ALREADY_EXISTS
        assert e["reason"] == "Requested entity already exists"
        assert e["severity"] == "warning"  # ERROR: audit logs mark every failed call so
        assert e["metadata"]["statusCode"] == 6

    def test_a_data_read(self) -> None:
        e = map_log_entry(entries("data_access.jsonl")[0])
        assert e["action"] == "gcp.storage.storage.objects.get"
        assert e["category"] == "data_access" and e["severity"] == "info"
        assert e["actor"]["ip"] == "2001:db8:1c0::42"
        assert e["resource"]["id"] == (
            "projects/_/buckets/example-prod-1234-exports/objects/customers/2024-05.csv")

    def test_a_denied_secret_read(self) -> None:
        e = map_log_entry(entries("data_access.jsonl")[1])
        assert e["outcome"] == "denied" and e["category"] == "data_access"
        assert e["actor"]["id"] == "eve@example.net"
        assert e["reason"].startswith("Permission 'secretmanager.versions.access' denied")
        assert e["metadata"]["permissionsDenied"] == ["secretmanager.versions.access"]
        assert "permissions" not in e["metadata"]

    def test_minting_a_token_is_auth(self) -> None:
        e = map_log_entry(entries("data_access.jsonl")[2])
        assert (e["action"], e["category"]) == ("gcp.iamcredentials.GenerateAccessToken",
                                                "auth")
        assert e["actor"]["id"] == "carol@example.com"

    def test_a_gke_service_account_reading_a_secret(self) -> None:
        e = map_log_entry(entries("data_access.jsonl")[3])
        assert e["action"] == "gcp.k8s_io.io.k8s.core.v1.secrets.get"
        assert e["actor"] == {"id": "system:serviceaccount:ci:build-runner", "type": "service",
                              "ip": "10.132.0.18",
                              "user_agent": "kubectl/v1.29.4 (linux/amd64) kubernetes/55019c8"}
        assert "severity" not in e  # the entry has none
        assert e["source"] == {"service": "k8s.io", "region": "europe-west1"}
        assert e["metadata"]["labels"]["authorization.k8s.io/decision"] == "allow"
        assert e["metadata"]["operationLast"] is True

    def test_an_anonymous_read_of_a_public_object(self) -> None:
        e = map_log_entry(entries("data_access.jsonl")[4])
        assert e["actor"] == {"id": "unknown", "type": "anonymous", "ip": "192.0.2.200",
                              "user_agent": "curl/8.5.0,gzip(gfe)"}
        assert e["metadata"]["missing"] == ["protoPayload.authenticationInfo.principalEmail"]

    def test_a_system_event_by_google(self) -> None:
        e = map_log_entry(entries("system_event.json")[0])
        assert e["actor"] == {"id": "system@google.com", "type": "system",
                              "email": "system@google.com"}
        assert e["category"] == "system" and e["outcome"] == "success"
        assert e["reason"] == "Instance migrated during Compute Engine maintenance."

    def test_a_system_event_without_a_principal(self) -> None:
        e = map_log_entry(entries("gcloud_logging_read.json")[0])
        assert e["actor"] == {"id": "compute.googleapis.com", "type": "system"}
        assert e["action"] == "gcp.compute.compute.instances.preempted"
        assert "missing" not in e["metadata"]

    def test_deleting_a_log_sink_is_config(self) -> None:
        e = map_log_entry(entries("gcloud_logging_read.json")[1])
        assert e["category"] == "config"
        assert e["action"] == "gcp.logging.google.logging.v2.ConfigServiceV2.DeleteSink"

    def test_a_vpc_service_controls_denial(self) -> None:
        e = map_log_entry(entries("policy_denied.json")[0])
        assert e["outcome"] == "denied" and e["category"] == "policy"
        assert e["severity"] == "warning"
        assert e["metadata"]["violationReason"] == "NO_MATCHING_ACCESS_LEVEL"
        assert e["metadata"]["servicePerimeterName"] == (
            "accessPolicies/301882145776/servicePerimeters/prod_data")
        assert "region" not in e["source"]

    def test_a_bucket_made_public_through_pubsub(self) -> None:
        body = (DATA / "pubsub_push.json").read_bytes()
        p = parse_pubsub_push(body)
        assert p.raw == base64.b64decode(json.loads(body)["message"]["data"])
        assert orjson.loads(p.raw) == p.entry
        assert p.message_id == "11236457861254973"
        assert p.publish_time == "2024-05-15T09:30:13.121Z"
        assert p.subscription == "projects/example-prod-1234/subscriptions/auditkeep-push"
        assert p.attributes == {"logging.googleapis.com/timestamp": "2024-05-15T09:30:11.99812Z"}
        e = map_log_entry(p.entry)
        assert (e["action"], e["category"]) == ("gcp.storage.storage.setIamPermissions",
                                                "policy")
        assert e["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert e["span_id"] == "00f067aa0ba902b7"


def minimal(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {},
            "authenticationInfo": {"principalEmail": "alice@example.com"},
            "requestMetadata": {"callerIp": "192.0.2.1", "callerSuppliedUserAgent": "curl/8"},
            "serviceName": "storage.googleapis.com", "methodName": "storage.buckets.create",
            "resourceName": "projects/_/buckets/b1"},
        "insertId": "abc123",
        "resource": {"type": "gcs_bucket", "labels": {"project_id": "p1", "location": "eu"}},
        "timestamp": "2024-05-01T12:00:00.123456789Z", "severity": "NOTICE",
        "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity",
        "receiveTimestamp": "2024-05-01T12:00:01Z",
    }
    obj.update(over)
    return obj


def with_payload(**over: Any) -> dict[str, Any]:
    obj = minimal()
    obj["protoPayload"].update(over)
    return obj


class TestRules:
    @pytest.mark.parametrize(("status", "outcome"), [
        ({}, "success"), (None, "success"), ({"code": 0}, "success"), ({"code": 7}, "denied"),
        ({"code": 16}, "denied"), ({"code": 5}, "failure"), ({"code": 13}, "failure")])
    def test_outcome_follows_the_status_code(self, status: Any, outcome: str) -> None:
        assert map_log_entry(with_payload(status=status))["outcome"] == outcome

    @pytest.mark.parametrize(("severity", "want"), [
        ("DEFAULT", "info"), ("DEBUG", "info"), ("INFO", "info"), ("NOTICE", "notice"),
        ("WARNING", "warning"), ("ERROR", "warning"), ("CRITICAL", "critical"),
        ("ALERT", "critical"), ("EMERGENCY", "critical")])
    def test_severity(self, severity: str, want: str) -> None:
        assert map_log_entry(minimal(severity=severity))["severity"] == want

    @pytest.mark.parametrize("severity", [300, "LOUD", {"level": 1}])
    def test_an_unknown_severity_is_unmapped(self, severity: Any) -> None:
        e = map_log_entry(minimal(severity=severity))
        assert "severity" not in e and e["metadata"]["unmapped"] == ["/severity"]
        assert "severity" not in e["metadata"] or e["metadata"]["severity"] == "LOUD"

    @pytest.mark.parametrize(("log", "service", "method", "category"), [
        ("activity", "storage.googleapis.com", "storage.buckets.create", "data_change"),
        ("activity", "compute.googleapis.com", "v1.compute.firewalls.insert", "policy"),
        ("activity", "orgpolicy.googleapis.com",
         "google.cloud.orgpolicy.v2.OrgPolicy.CreatePolicy", "policy"),
        ("activity", "iam.googleapis.com", "google.iam.admin.v1.CreateRole", "admin"),
        ("activity", "iam.googleapis.com", "SetIamPolicy", "policy"),
        ("activity", "logging.googleapis.com",
         "google.logging.v2.ConfigServiceV2.UpdateSink", "config"),
        ("activity", "compute.googleapis.com", "v1.compute.resourcePolicies.insert",
         "data_change"),
        ("data_access", "storage.googleapis.com", "storage.objects.get", "data_access"),
        ("data_access", "cloudresourcemanager.googleapis.com", "GetIamPolicy", "data_access"),
        ("data_access", "sts.googleapis.com", "google.identity.sts.v1.SecurityTokenService"
         ".ExchangeToken", "auth"),
        ("system_event", "compute.googleapis.com", "compute.instances.preempted", "system"),
        ("policy", "storage.googleapis.com", "google.storage.objects.get", "policy")])
    def test_category(self, log: str, service: str, method: str, category: str) -> None:
        obj = with_payload(serviceName=service, methodName=method)
        obj["logName"] = f"organizations/42/logs/cloudaudit.googleapis.com%2F{log}"
        assert map_log_entry(obj)["category"] == category

    @pytest.mark.parametrize(("principal", "kind"), [
        ("alice@example.com", "user"),
        ("ci@p1.iam.gserviceaccount.com", "service"),
        ("123456789-compute@developer.gserviceaccount.com", "service"),
        ("service-123@gcp-sa-pubsub.iam.gserviceaccount.com", "system"),
        ("123456789@cloudservices.gserviceaccount.com", "system"),
        ("system@google.com", "system"),
        ("system:kube-controller-manager", "system"),
        ("system:serviceaccount:ns:app", "service"),
        ("system:anonymous", "anonymous"),
        ("principal://iam.googleapis.com/locations/global/workforcePools/corp/subject/alice",
         "user"),
        ("principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/"
         "gh/subject/repo:org/app", "service")])
    def test_principal_types(self, principal: str, kind: str) -> None:
        assert gcp_principal_type(principal) == kind

    def test_a_third_party_principal_subject_is_the_actor(self) -> None:
        subject = "principal://iam.googleapis.com/locations/global/workforcePools/corp/subject/a"
        e = map_log_entry(with_payload(authenticationInfo={"principalSubject": subject}))
        assert e["actor"]["id"] == subject and "email" not in e["actor"]
        assert "principalSubject" not in e["metadata"]

    def test_the_first_delegation_is_the_impersonator(self) -> None:
        chain = [{"firstPartyPrincipal": {"principalEmail": "alice@example.com"}},
                 {"firstPartyPrincipal": {"principalEmail": "hop@p1.iam.gserviceaccount.com"}},
                 {"thirdPartyPrincipal": {"thirdPartyClaims": {"iss": "x"}}}]
        e = map_log_entry(with_payload(authenticationInfo={
            "principalEmail": "target@p1.iam.gserviceaccount.com",
            "serviceAccountDelegationInfo": chain}))
        assert e["actor"]["impersonator"] == {"id": "alice@example.com", "type": "user"}
        assert e["metadata"]["delegationChain"] == [
            "alice@example.com", "hop@p1.iam.gserviceaccount.com", "third-party"]

    def test_an_insert_id_is_unique_only_with_its_log_and_time(self) -> None:
        a = map_log_entry(minimal())["id"]
        assert a.startswith("gcp:abc123:") and len(a) == len("gcp:abc123:") + 16
        b = map_log_entry(minimal(logName="projects/p2/logs/cloudaudit.googleapis.com%2Factivity"))
        c = map_log_entry(minimal(timestamp="2024-05-01T12:00:01Z"))
        assert len({a, b["id"], c["id"]}) == 3

    def test_an_insert_id_that_is_not_id_safe_is_hashed(self) -> None:
        for insert_id in ("a b/c", "x" * 120):
            e = map_log_entry(minimal(insertId=insert_id))
            assert e["id"].startswith("gcp:h:") and len(e["id"]) == len("gcp:h:") + 32
            encode_event(e)

    def test_without_an_insert_id_the_content_decides(self) -> None:
        a = map_log_entry(minimal(insertId=None))
        assert a["id"].startswith("gcp:sha256:")
        assert a["id"] == map_log_entry(minimal(insertId=None))["id"]
        assert a["metadata"]["missing"] == ["insertId"]

    def test_the_same_entry_by_pubsub_and_by_export_gets_the_same_event(
            self, tmp_path: Path) -> None:
        p = parse_pubsub_push((DATA / "pubsub_push.json").read_bytes())
        (tmp_path / "export.json").write_bytes(p.raw + b"\n")
        (got,) = read_gcp_paths([tmp_path])
        assert got.raw == p.raw
        assert map_log_entry(got.entry) == map_log_entry(p.entry)

    def test_action_segments_are_normalised(self) -> None:
        e = map_log_entry(with_payload(serviceName="k8s.io",
                                       methodName="io.k8s.core.v1.pods..exec create"))
        assert e["action"] == "gcp.k8s_io.io.k8s.core.v1.pods.exec_create"
        e = map_log_entry(with_payload(serviceName=None, methodName=None))
        assert e["action"] == "gcp.unknown.unknown"
        assert e["metadata"]["missing"] == ["protoPayload.serviceName",
                                            "protoPayload.methodName"]

    @pytest.mark.parametrize("word", ["private", "gce-internal-ip"])
    def test_a_caller_ip_word_is_not_an_address(self, word: str) -> None:
        e = map_log_entry(with_payload(requestMetadata={"callerIp": word}))
        assert "ip" not in e["actor"] and e["metadata"]["callerIp"] == word

    def test_a_trace_that_is_not_a_trace_id_stays_in_metadata(self) -> None:
        e = map_log_entry(minimal(trace="projects/p1/traces/xyz", spanId="00f067aa0ba902b7"))
        assert "trace_id" not in e and "span_id" not in e
        assert e["metadata"]["trace"] == "projects/p1/traces/xyz"

    def test_time_is_cut_to_microseconds(self) -> None:
        assert map_log_entry(minimal())["time"] == "2024-05-01T12:00:00.123456Z"
        e = map_log_entry(minimal(timestamp="soon"))
        assert "time" not in e and e["metadata"]["timestamp"] == "soon"
        assert e["metadata"]["unmapped"] == ["/timestamp"]

    def test_the_project_comes_from_the_log_name_when_labels_lack_it(self) -> None:
        e = map_log_entry(minimal(resource={"type": "audited_resource"}))
        assert e["metadata"]["projectId"] == "p1"
        assert "region" not in e["source"]

    def test_a_huge_event_sheds_bulky_metadata_to_stay_under_64_kib(self) -> None:
        perms = [{"permission": f"p{i}." + "\x01" * 300, "granted": True} for i in range(20)]
        perms += [{"permission": f"d{i}." + "\x01" * 300, "granted": False} for i in range(20)]
        request = {f"k{i}": "\x01" * 250 for i in range(20)}
        e = map_log_entry(with_payload(authorizationInfo=perms, request=request))
        encode_event(e)
        assert e["metadata"]["truncated"] == ["/metadata/permissions"]  # the bulkiest
        assert len(e["metadata"]["permissionsDenied"]) == len(e["metadata"]["request"]) == 20
        assert len(orjson.dumps(e)) <= 64 * 1024


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)
ENTRY_KEYS = st.sampled_from(["insertId", "logName", "timestamp", "severity", "resource",
                              "labels", "trace", "spanId", "operation", "receiveTimestamp"])
PAYLOAD_KEYS = st.sampled_from(["serviceName", "methodName", "resourceName", "status",
                                "authenticationInfo", "requestMetadata", "authorizationInfo",
                                "request", "metadata", "resourceLocation",
                                "policyViolationInfo", "numResponseItems"])


class TestAnyInput:
    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(ENTRY_KEYS, JSON, max_size=5),
           st.dictionaries(PAYLOAD_KEYS, JSON, max_size=5))
    def test_an_entry_maps_to_a_valid_event_or_names_its_problems(
            self, over: dict[str, Any], payload: dict[str, Any]) -> None:
        obj = with_payload(**payload)
        obj.update(over)
        problems: list[FieldProblem] = []
        try:
            event = map_log_entry(obj)
        except ValidationError as exc:
            problems = exc.problems
        if problems:
            assert all(p.pointer.startswith("/") for p in problems)
        else:
            encode_event(event)


class TestMalformed:
    def test_every_bad_field_is_named_by_pointer(self) -> None:
        obj = with_payload(methodName=5, authenticationInfo={"principalEmail": ["x"]},
                           status={"code": "7"}, requestMetadata="nowhere")
        obj["insertId"] = 9
        with pytest.raises(ValidationError) as err:
            map_log_entry(obj, "/items/2")
        assert [p.pointer for p in err.value.problems] == [
            "/items/2/insertId", "/items/2/protoPayload/methodName",
            "/items/2/protoPayload/authenticationInfo/principalEmail",
            "/items/2/protoPayload/requestMetadata", "/items/2/protoPayload/status/code"]
        assert "/items/2/insertId: expected a string, got int" in err.value.detail

    @pytest.mark.parametrize(("obj", "pointer", "actual"), [
        ([1], "", "array"),
        ({"jsonPayload": {"message": "hello"}}, "/protoPayload", "missing"),
        ({"protoPayload": "x"}, "/protoPayload", "str"),
        ({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.Other"}},
         "/protoPayload/@type", "type.googleapis.com/google.cloud.audit.Other")])
    def test_not_an_audit_log_entry(self, obj: Any, pointer: str, actual: str) -> None:
        with pytest.raises(ValidationError) as err:
            map_log_entry(obj)
        assert [(p.pointer, p.actual) for p in err.value.problems] == [(pointer, actual)]

    def test_bad_delegation_entries(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_log_entry(with_payload(authenticationInfo={
                "principalEmail": "sa@p1.iam.gserviceaccount.com",
                "serviceAccountDelegationInfo": ["x", {"firstPartyPrincipal": {
                    "principalEmail": 3}}]}))
        at = "/protoPayload/authenticationInfo/serviceAccountDelegationInfo"
        assert [p.pointer for p in err.value.problems] == [
            f"{at}/0", f"{at}/1/firstPartyPrincipal/principalEmail"]


def push_body(data: Any = None, **message: Any) -> bytes:
    entry = orjson.dumps(minimal())
    msg = {"data": base64.b64encode(entry).decode() if data is None else data,
           "messageId": "1", **message}
    return orjson.dumps({"message": msg, "subscription": "projects/p1/subscriptions/s"})


class TestPubSub:
    def test_url_safe_unpadded_base64_is_accepted(self) -> None:
        entry = orjson.dumps(minimal(insertId="a?b>c"))
        data = base64.urlsafe_b64encode(entry).decode().rstrip("=")
        p = parse_pubsub_push(push_body(data))
        assert p.raw == entry

    def test_snake_case_message_fields(self) -> None:
        p = parse_pubsub_push(push_body(messageId=None, message_id="7",
                                        publish_time="2024-05-01T12:00:02Z"))
        assert (p.message_id, p.publish_time) == ("7", "2024-05-01T12:00:02Z")

    @pytest.mark.parametrize(("body", "pointer"), [
        (b"not json", "/"), (b'{"message": {}}', "/message/data"),
        (b'{"subscription": "s"}', "/message"),
        (push_body("%%%"), "/message/data"),
        (push_body(base64.b64encode(b"{not json").decode()), "/message/data")])
    def test_a_bad_push_body_is_named(self, body: bytes, pointer: str) -> None:
        with pytest.raises(ValidationError) as err:
            parse_pubsub_push(body)
        assert [p.pointer for p in err.value.problems] == [pointer]


class TestReader:
    @pytest.mark.parametrize("name", ["activity.jsonl", "data_access.jsonl"])
    def test_json_lines_raw_bytes_are_the_lines(self, name: str) -> None:
        body = (DATA / name).read_bytes()
        got = list(read_gcp_paths([DATA / name]))
        assert [r.raw for r in got] == body.splitlines()
        assert [r.position for r in got] == list(range(len(got)))
        for r in got:
            assert orjson.loads(r.raw) == r.entry

    def test_a_json_array_is_sliced_exactly(self) -> None:
        body = (DATA / "gcloud_logging_read.json").read_bytes()
        got = list(read_gcp_paths([DATA / "gcloud_logging_read.json"]))
        assert [r.entry for r in got] == json.loads(body)
        pos = 0
        for r in got:
            start = body.index(r.raw, pos)
            assert body[pos:start].strip(b" \n[,") == b""
            pos = start + len(r.raw)
        assert body[pos:].strip() == b"]"

    def test_one_pretty_printed_entry(self) -> None:
        body = (DATA / "system_event.json").read_bytes()
        (got,) = read_gcp_paths([DATA / "system_event.json"])
        assert got.raw == body.strip() and got.position == 0

    def test_gzip_and_a_directory_tree_in_sorted_order(self, tmp_path: Path) -> None:
        sink = tmp_path / "cloudaudit.googleapis.com"
        (sink / "activity" / "2024" / "05" / "14").mkdir(parents=True)
        (sink / "data_access" / "2024" / "05" / "14").mkdir(parents=True)
        activity = (DATA / "activity.jsonl").read_bytes()
        (sink / "activity/2024/05/14/09:00:00_09:59:59_S0.json.gz").write_bytes(
            gzip.compress(activity))
        (sink / "data_access/2024/05/14/14:00:00_14:59:59_S0.json").write_bytes(
            (DATA / "data_access.jsonl").read_bytes())
        (sink / "notes.txt").write_text("not an export")
        got = list(read_gcp_paths([tmp_path]))
        assert [r.path.parent.parent.parent.parent.name for r in got] == (
            ["activity"] * 6 + ["data_access"] * 5)
        assert [r.raw for r in got[:6]] == activity.splitlines()

    def test_a_bad_line_goes_to_on_error_and_reading_carries_on(self, tmp_path: Path) -> None:
        lines = [orjson.dumps(minimal(insertId="a")), b"{truncated", b"",
                 orjson.dumps(minimal(insertId="b"))]
        (tmp_path / "x.jsonl").write_bytes(b"\r\n".join(lines) + b"\r\n")
        errors: list[Exception] = []
        got = list(read_gcp_paths([tmp_path / "x.jsonl", tmp_path / "gone.jsonl"],
                                  on_error=lambda path, exc: errors.append(exc)))
        assert [(r.position, r.entry["insertId"]) for r in got] == [(0, "a"), (3, "b")]
        assert got[0].raw == lines[0]  # the \r is not part of the object
        assert isinstance(errors[0], ValidationError) and errors[0].problems[0].index == 1
        assert isinstance(errors[1], FileNotFoundError)
        with pytest.raises(ValidationError):
            list(read_gcp_paths([tmp_path / "x.jsonl"]))
        with pytest.raises(ValidationError) as err:
            decode_export((tmp_path / "x.jsonl").read_bytes())
        assert "line 2" in err.value.detail

    def test_decode_export_of_the_three_forms(self) -> None:
        one, entry = orjson.dumps(minimal()), minimal()
        assert decode_export(b"  " + one + b"\n") == [(0, one, entry)]
        assert decode_export(b"[" + one + b" , " + one + b"]") == [(0, one, entry),
                                                                 (1, one, entry)]
        assert decode_export(one + b"\n\n" + one + b"\n") == [(0, one, entry), (2, one, entry)]
        assert decode_export(gzip.compress(one)) == [(0, one, entry)]
        with pytest.raises(ValidationError):
            decode_export(b"[1, 2")

    @pytest.mark.parametrize("body", [b'[{"a": 1}, {"a": "\xa1"}]',
                                      b'{"a": 1}\n{"a": "\xa1"}\n'])
    def test_an_entry_that_is_not_utf_8_is_named(self, body: bytes) -> None:
        with pytest.raises(ValidationError) as err:
            decode_export(body)
        assert err.value.problems[0].index == 1

    def test_entries_that_are_not_audit_logs_are_reported_not_dropped(
            self, tmp_path: Path) -> None:
        body = orjson.dumps(minimal()) + b"\n" + orjson.dumps({"jsonPayload": {}}) + b"\n"
        (tmp_path / "mixed.jsonl").write_bytes(body)
        problems = []
        for r in read_gcp_paths([tmp_path]):
            try:
                map_log_entry(r.entry)
            except ValidationError as exc:
                problems.append((r.position, exc.problems[0].pointer))
        assert problems == [(1, "/protoPayload")]


def test_mapping_does_not_change_its_input() -> None:
    obj = entries("activity.jsonl")[4]
    before = copy.deepcopy(obj)
    map_log_entry(obj)
    assert obj == before
