"""AWS CloudTrail → schema v1: every real record maps to a valid event, raw bytes exact."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import auditkeep.sources.cloudtrail
from auditkeep.client.events import encode_event
from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.sources.cloudtrail import (
    decode_log_file,
    map_log_file,
    map_record,
    read_cloudtrail_paths,
)

DATA = Path(__file__).parent.parent / "data" / "cloudtrail"
STRATUS = "stratus_records.json"
PANTHER = "panther_cloudtrail_records_part.json"
FILES = (STRATUS, PANTHER)


def records(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DATA / name).read_text())["Records"])


def all_records() -> list[Any]:
    return [pytest.param(rec, id=f"{name}:{i}")
            for name in FILES for i, rec in enumerate(records(name))]


def assert_valid(event: dict[str, Any]) -> None:
    encode_event(event)  # raises naming every field the server would refuse


def test_exported_members() -> None:
    module = auditkeep.sources.cloudtrail
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name)


@pytest.mark.parametrize("obj", all_records())
def test_every_record_maps_to_a_valid_event(obj: dict[str, Any]) -> None:
    event = map_record(obj)
    assert_valid(event)
    assert event["id"].startswith("aws:")
    assert event["action"].startswith("aws.")
    assert map_record(obj) == event  # deterministic: a re-read dedups


@pytest.mark.parametrize("name", FILES)
def test_a_log_file_maps_every_record_in_order(name: str) -> None:
    obj = json.loads((DATA / name).read_text())
    mapped = map_log_file(obj)
    assert mapped.problems == []
    assert [i for i, _ in mapped.events] == list(range(len(obj["Records"])))
    mapped.raise_for_problems()


class TestHandChecked:
    def test_a_denied_call_by_an_assumed_role(self) -> None:
        e = map_record(records(STRATUS)[0])
        assert e["id"] == "aws:450230d4-b39e-4a18-a6a0-d07a6e2105cb"
        assert e["action"] == "aws.ec2.GetPasswordData"
        assert e["actor"] == {
            "id": "arn:aws:sts::457448411975:assumed-role/"
                  "stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000",
            "type": "user", "name": "aws-go-sdk-1722375070115152000",
            "session_id": "ASIANQQHHS551LWULIWD", "ip": "200.249.253.51",
            "user_agent": "stratus-red-team_5c59eb79-6dac-405c-a4c4-e19aec03c666"}
        assert e["outcome"] == "denied"  # Client.UnauthorizedOperation
        assert e["category"] == "data_access"
        assert e["time"] == "2024-07-30T21:31:21Z"
        assert e["source"] == {"service": "ec2.amazonaws.com", "region": "apiso-northsouth-3r"}
        assert e["request_id"] == "b20c2df5-71d5-441e-84c8-b424f1c78ffb"
        assert e["reason"].startswith("You are not authorized to perform this operation.")
        meta = e["metadata"]
        assert meta["errorCode"] == "Client.UnauthorizedOperation"
        assert meta["sessionIssuer"]["arn"] == (
            "arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role")
        assert meta["mfaAuthenticated"] is False
        assert meta["tlsVersion"] == "TLSv1.3"
        assert meta["requestParameters"] == {"instanceId": "i-i2jnm5swa59p4fxg"}
        assert "truncated" not in meta and "responseElements" not in meta

    def test_a_console_sign_in(self) -> None:
        e = map_record(records(STRATUS)[284])
        assert e["action"] == "aws.signin.ConsoleLogin"
        name = "stratus-red-team-nmfalu-jfzdtsvchl"
        assert e["actor"]["id"] == f"arn:aws:iam::562283505220:user/{name}"
        assert e["actor"]["name"] == name
        assert e["outcome"] == "success" and e["category"] == "auth"
        assert e["time"] == "2024-08-02T08:53:24Z"
        # anonymised upstream with zero-padded octets: still an address, so committed to
        assert e["actor"]["ip"] == "225.01.00.16"
        assert e["metadata"]["additionalEventData"] == {
            "LoginTo": "https://console.aws.amazon.com/console/home", "MFAUsed": "No",
            "MobileVersion": "No"}

    def test_a_failed_sign_in_without_id_or_time(self) -> None:
        obj = records(PANTHER)[18]
        e = map_record(obj)
        assert e["outcome"] == "denied"  # {"ConsoleLogin": "Failure"}, no errorCode
        assert e["actor"] == {"id": "alice", "type": "user", "name": "alice"}
        assert "time" not in e
        assert e["metadata"]["missing"] == ["eventID", "eventTime"]
        assert e["id"].startswith("aws:sha256:") and len(e["id"]) == len("aws:sha256:") + 32
        assert_valid(e)

    def test_root_is_a_user_named_root(self) -> None:
        e = map_record(records(PANTHER)[45])
        assert e["actor"]["id"] == "arn:aws:iam::123456789012:root"
        assert e["actor"]["type"] == "user" and e["actor"]["name"] == "root"
        assert e["outcome"] == "denied" and e["category"] == "auth"

    def test_an_aws_service_is_a_service(self) -> None:
        e = map_record(records(PANTHER)[226])
        assert e["actor"] == {"id": "lambda.amazonaws.com", "type": "service",
                              "user_agent": "lambda.amazonaws.com"}
        assert e["metadata"]["sourceIPAddress"] == "lambda.amazonaws.com"
        assert e["action"] == "aws.sts.AssumeRole" and e["category"] == "auth"
        assert e["resource"] == {"type": "AWS::IAM::Role",
                                 "id": "arn:aws:iam::123456789123:role/my_role_arn"}

    def test_a_call_made_through_cloudformation(self) -> None:
        e = map_record(records(PANTHER)[92])
        assert e["actor"]["id"] == "arn:aws:iam::123456789:user/user1"
        assert "ip" not in e["actor"]
        assert e["metadata"]["sourceIPAddress"] == "cloudformation.amazonaws.com"
        assert e["metadata"]["invokedBy"] == "cloudformation.amazonaws.com"
        assert e["category"] == "admin"  # iam.CreateAccessKey

    def test_iam_policy_and_user_changes(self) -> None:
        attach, create = (map_record(records(STRATUS)[i]) for i in (294, 296))
        assert (attach["action"], attach["category"]) == ("aws.iam.AttachUserPolicy", "policy")
        assert (create["action"], create["category"]) == ("aws.iam.CreateUser", "admin")
        assert create["actor"]["name"] == "christophe"

    def test_a_redacted_record(self) -> None:
        e = map_record(records(PANTHER)[172])
        assert e["id"] == "aws:redacted"
        assert "time" not in e and e["metadata"]["eventTime"] == "redacted"
        assert e["metadata"]["unmapped"] == ["/eventTime"]
        assert e["metadata"]["sourceIPAddress"] == "redacted"
        assert e["outcome"] == "denied"  # {"ExternalIdPDirectoryLogin": "Failure"}

    def test_a_trimmed_record_says_what_it_lacks(self) -> None:
        e = map_record(records(PANTHER)[227])
        assert e["action"] == "aws.unknown.CreateAccount"
        assert e["actor"] == {"id": "unknown", "type": "anonymous", "ip": "72.177.120.134"}
        assert e["metadata"]["missing"] == ["eventID", "eventSource", "userIdentity"]
        assert "requestParameters" not in e["metadata"]  # JSON text, not an object

    def test_stringified_booleans_and_a_garbled_resource(self) -> None:
        e = map_record(records(PANTHER)[55])
        assert e["metadata"]["readOnly"] is True and e["metadata"]["managementEvent"] is True
        assert e["metadata"]["unmapped"] == ["/resources/0"]
        assert "resource" not in e
        assert e["actor"]["id"] == "SAMPLE_PRINCIPAL_ID:lambda-name"  # AWSAccount

    def test_a_federated_user(self) -> None:
        e = map_record(records(PANTHER)[117])
        assert e["actor"]["id"] == "arn:aws:sts::123456789012:federated-user/federated-user"
        assert e["actor"]["name"] == "federated-user"
        assert e["actor"]["session_id"] == "ASIA123456789EXAMPLE"


def minimal(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "eventVersion": "1.09", "eventTime": "2024-03-01T10:00:00Z",
        "eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": "eu-west-1",
        "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2.15", "requestID": "R1",
        "eventID": "e1", "readOnly": False, "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                         "arn": "arn:aws:iam::111122223333:user/alice",
                         "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE",
                         "userName": "alice"},
        "recipientAccountId": "111122223333",
    }
    obj.update(over)
    return obj


def role(issuer: str = "arn:aws:iam::111122223333:role/Admin", session: str = "alice",
         **ctx: Any) -> dict[str, Any]:
    return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
            "arn": f"arn:aws:sts::111122223333:assumed-role/{issuer.rsplit('/', 1)[-1]}/{session}",
            "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer,
                                                 "principalId": "AROAEXAMPLE",
                                                 "accountId": "111122223333",
                                                 "userName": issuer.rsplit("/", 1)[-1]},
                               "attributes": {"mfaAuthenticated": "true",
                                              "creationDate": "2024-03-01T09:00:00Z"},
                               **ctx}}


class TestRules:
    @pytest.mark.parametrize(("code", "outcome"), [
        (None, "success"), ("", "success"), ("AccessDenied", "denied"),
        ("AccessDeniedException", "denied"), ("Client.UnauthorizedOperation", "denied"),
        ("UnauthorizedOperation", "denied"), ("VpceAccessDenied", "denied"),
        ("KMSNotAuthorizedException", "denied"), ("InvalidClientTokenId", "denied"),
        ("ExpiredToken", "denied"), ("Client.DryRunOperation", "success"),
        ("NoSuchBucket", "failure"), ("ThrottlingException", "failure"),
        ("EntityAlreadyExists", "failure")])
    def test_outcome_follows_the_error_code(self, code: str | None, outcome: str) -> None:
        e = map_record(minimal(errorCode=code))
        assert e["outcome"] == outcome
        assert e["metadata"].get("dryRun", False) is (code == "Client.DryRunOperation")

    def test_the_error_message_is_the_reason(self) -> None:
        e = map_record(minimal(errorCode="NoSuchKey", errorMessage="The key does not exist"))
        assert e["reason"] == "The key does not exist"
        assert map_record(minimal(errorCode="NoSuchKey"))["reason"] == "NoSuchKey"

    @pytest.mark.parametrize(("over", "category"), [
        ({"eventType": "AwsConsoleSignIn", "eventSource": "signin.amazonaws.com",
          "eventName": "ConsoleLogin"}, "auth"),
        ({"eventType": "AwsServiceEvent", "eventName": "KeyRotation"}, "system"),
        ({"eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
          "readOnly": True}, "auth"),
        ({"eventName": "GetObject", "readOnly": True}, "data_access"),
        ({"eventName": "GetBucketPolicy", "readOnly": True}, "data_access"),
        ({"eventName": "DescribeInstances", "readOnly": None}, "data_access"),
        ({"eventName": "PutBucketPolicy"}, "policy"),
        ({"eventName": "PutBucketAcl"}, "policy"),
        ({"eventSource": "kms.amazonaws.com", "eventName": "CreateGrant"}, "policy"),
        ({"eventSource": "ec2.amazonaws.com",
          "eventName": "AuthorizeSecurityGroupIngress"}, "policy"),
        ({"eventSource": "iam.amazonaws.com", "eventName": "PutRolePolicy"}, "policy"),
        ({"eventSource": "organizations.amazonaws.com", "eventName": "AttachPolicy"}, "policy"),
        ({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser"}, "admin"),
        ({"eventSource": "organizations.amazonaws.com", "eventName": "CreateAccount"}, "admin"),
        ({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"}, "config"),
        ({"eventSource": "ecr.amazonaws.com", "eventName": "PutLifecyclePolicy"},
         "data_change"),
        ({"eventName": "DeleteObject"}, "data_change"),
        ({"eventName": "CreateThing", "readOnly": None}, "data_change"),
    ])
    def test_category(self, over: dict[str, Any], category: str) -> None:
        assert map_record(minimal(**over))["category"] == category

    def test_an_assumed_role_is_its_session(self) -> None:
        e = map_record(minimal(userIdentity=role()))
        assert e["actor"] == {"id": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                              "type": "user", "name": "alice", "session_id": "ASIAEXAMPLE",
                              "ip": "192.0.2.1", "user_agent": "aws-cli/2.15"}
        assert e["metadata"]["sessionIssuer"]["userName"] == "Admin"
        assert e["metadata"]["mfaAuthenticated"] is True

    def test_the_source_identity_is_the_impersonator(self) -> None:
        e = map_record(minimal(userIdentity=role(sourceIdentity="alice@example.com")))
        assert e["actor"]["impersonator"] == {"id": "alice@example.com", "type": "user"}
        assert_valid(e)

    @pytest.mark.parametrize(("issuer", "session", "kind"), [
        ("arn:aws:iam::111122223333:role/aws-service-role/ecs.amazonaws.com/"
         "AWSServiceRoleForECS", "ecs-service-scheduler", "service"),
        ("arn:aws:iam::111122223333:role/web-instance", "i-0abc123def4567890", "service"),
        ("arn:aws:iam::111122223333:role/Admin", "bob", "user")])
    def test_role_sessions_of_services_and_machines(self, issuer: str, session: str,
                                                    kind: str) -> None:
        e = map_record(minimal(userIdentity=role(issuer, session)))
        assert e["actor"]["type"] == kind

    def test_an_anonymous_principal(self) -> None:
        e = map_record(minimal(userIdentity={"type": "AWSAccount", "principalId": "",
                                             "accountId": "ANONYMOUS_PRINCIPAL"}))
        assert e["actor"]["id"] == "anonymous" and e["actor"]["type"] == "anonymous"

    def test_root_without_an_arn(self) -> None:
        e = map_record(minimal(userIdentity={"type": "Root", "accountId": "111122223333"}))
        assert e["actor"]["id"] == "arn:aws:iam::111122223333:root"

    def test_an_identity_with_nothing_to_name_it(self) -> None:
        e = map_record(minimal(userIdentity={"type": "IAMUser"}))
        assert e["actor"] == {"id": "unknown", "type": "anonymous", "ip": "192.0.2.1",
                              "user_agent": "aws-cli/2.15"}
        assert e["metadata"]["missing"] == ["userIdentity.arn"]

    def test_actions_are_normalised_to_the_schema_pattern(self) -> None:
        e = map_record(minimal(eventSource="health.aws.internal", eventName="Do It.Now"))
        assert e["action"] == "aws.health_aws_internal.Do_It_Now"
        assert e["metadata"]["eventName"] == "Do It.Now"
        assert_valid(e)

    def test_an_event_id_that_is_not_id_safe_is_hashed(self) -> None:
        e = map_record(minimal(eventID="a b/c"))
        assert e["id"].startswith("aws:h:") and len(e["id"]) == len("aws:h:") + 32
        assert map_record(minimal(eventID="x" * 200))["id"].startswith("aws:h:")

    def test_without_an_event_id_the_content_decides(self) -> None:
        a = map_record(minimal(eventID=None))
        assert a["id"] == map_record(minimal(eventID=None))["id"]
        assert a["id"] != map_record(minimal(eventID=None, eventName="GetObject"))["id"]
        big = map_record(minimal(eventID=None, requestParameters={"n": 2**70}))
        assert big["id"].startswith("aws:sha256:")

    def test_resources_become_resource_and_at_most_twenty_targets(self) -> None:
        items = [{"ARN": f"arn:aws:s3:::bucket-{i}", "accountId": "1",
                  "type": "AWS::S3::Bucket"} for i in range(25)]
        items[3] = {"accountId": "1"}  # no ARN: said, not silently dropped
        e = map_record(minimal(resources=items))
        assert e["resource"] == {"type": "AWS::S3::Bucket", "id": "arn:aws:s3:::bucket-0"}
        assert len(e["targets"]) == 20 and e["targets"][0]["id"] == "arn:aws:s3:::bucket-1"
        assert e["metadata"]["unmapped"] == ["/resources/3"]
        assert e["metadata"]["truncated"] == ["/targets"]
        assert_valid(e)

    @pytest.mark.parametrize(("arn", "kind"), [
        ("arn:aws:iam::111122223333:role/Admin", "iam:role"),
        ("arn:aws:kms:eu-west-1:111122223333:key/1234", "kms:key"),
        ("arn:aws:ssm:eu-west-1:111122223333:parameter/db/password", "ssm:parameter"),
        ("arn:aws:sns:eu-west-1:111122223333:alerts", "sns"),
        ("arn:aws:s3:::bucket/key/with/slashes", "s3"),
        ("not-an-arn", "unknown")])
    def test_a_resource_without_a_type_takes_it_from_its_arn(self, arn: str, kind: str) -> None:
        e = map_record(minimal(resources=[{"ARN": arn}]))
        assert e["resource"] == {"type": kind, "id": arn}

    def test_only_small_scalar_request_parameters_are_kept(self) -> None:
        params = {"bucketName": "b", "key": "k", "big": "x" * 300, "nested": {"a": 1},
                  "list": [1], "flag": True, "n": 3, "huge": 2**60, "f": 1.5}
        params |= {f"p{i}": i for i in range(30)}
        e = map_record(minimal(requestParameters=params,
                               responseElements={"x": "y" * 10000}))
        kept = e["metadata"]["requestParameters"]
        assert list(kept)[:5] == ["bucketName", "key", "flag", "n", "f"]
        assert len(kept) == 20
        assert "responseElements" not in e["metadata"]

    def test_a_service_name_is_not_an_address(self) -> None:
        for value in ("cloudformation.amazonaws.com", "s3.amazonaws.com", "AWS Internal"):
            e = map_record(minimal(sourceIPAddress=value))
            assert "ip" not in e["actor"] and e["metadata"]["sourceIPAddress"] == value
        assert map_record(minimal(sourceIPAddress="2001:db8::1"))["actor"]["ip"] == "2001:db8::1"

    def test_the_space_separated_time_form_is_read_as_utc(self) -> None:
        e = map_record(minimal(eventTime="2025-01-21 18:12:33.000000000"))
        assert e["time"] == "2025-01-21T18:12:33.000000Z"

    def test_overlong_values_are_clipped_and_said_so(self) -> None:
        e = map_record(minimal(userAgent="u" * 2000, requestID="r" * 300))
        assert len(e["actor"]["user_agent"]) == 1024 and len(e["request_id"]) == 256
        assert e["metadata"]["truncated"] == ["/actor/user_agent", "/request_id"]
        assert_valid(e)

    def test_a_huge_event_sheds_targets_to_stay_under_64_kib(self) -> None:
        # control characters escape to six bytes each: clipped values can still be large
        items = [{"ARN": f"arn:{i}:" + "\x01" * 1100, "type": "t"} for i in range(21)]
        e = map_record(minimal(resources=items))
        assert_valid(e)
        assert "targets" not in e and "/targets" in e["metadata"]["truncated"]
        assert len(orjson.dumps(e)) <= 64 * 1024


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)
KEYS = st.sampled_from(["eventID", "eventName", "eventSource", "eventTime", "eventType",
                        "errorCode", "errorMessage", "sourceIPAddress", "userAgent",
                        "requestID", "awsRegion", "readOnly", "userIdentity", "resources",
                        "requestParameters", "responseElements", "tlsDetails",
                        "eventVersion", "managementEvent", "additionalEventData"])
IDENTITY_KEYS = st.sampled_from(["type", "arn", "principalId", "userName", "accountId",
                                 "invokedBy", "accessKeyId", "sessionContext", "onBehalfOf"])


class TestAnyInput:
    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(KEYS, JSON, max_size=6), st.dictionaries(IDENTITY_KEYS, JSON,
                                                                    max_size=4))
    def test_a_record_maps_to_a_valid_event_or_names_its_problems(
            self, over: dict[str, Any], identity: dict[str, Any]) -> None:
        base = role(sourceIdentity="alice")
        base.update(identity)
        obj = minimal(userIdentity=base, **over) if "userIdentity" not in over else minimal(
            **over)
        problems: list[FieldProblem] = []
        try:
            event = map_record(obj)
        except ValidationError as exc:
            problems = exc.problems
        if problems:
            assert all(p.pointer.startswith("/") for p in problems)
        else:
            assert_valid(event)


class TestMalformed:
    def test_every_bad_field_is_named_by_pointer(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_record(minimal(eventName=7, userIdentity={"type": "IAMUser", "arn": ["x"]},
                               readOnly="maybe", eventTime=1700000000,
                               errorCode={"c": 1}), "/Records/4")
        pointers = [p.pointer for p in err.value.problems]
        assert pointers == ["/Records/4/eventName", "/Records/4/eventTime",
                            "/Records/4/errorCode", "/Records/4/readOnly",
                            "/Records/4/userIdentity/arn"]
        assert "/Records/4/eventName: expected a string, got int" in err.value.detail

    def test_not_an_object(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_record([1, 2])
        assert [p.pointer for p in err.value.problems] == [""]

    def test_session_context_of_the_wrong_type(self) -> None:
        with pytest.raises(ValidationError) as err:
            map_record(minimal(userIdentity=role(sourceIdentity=5)))
        assert [p.pointer for p in err.value.problems] == [
            "/userIdentity/sessionContext/sourceIdentity"]

    def test_a_log_file_reports_bad_records_with_their_index(self) -> None:
        body = {"Records": [minimal(), minimal(eventName=1), "x", minimal(eventID="e4")]}
        mapped = map_log_file(body)
        assert [i for i, _ in mapped.events] == [0, 3]
        assert [(p.index, p.pointer) for p in mapped.problems] == [
            (1, "/Records/1/eventName"), (2, "/Records/2")]
        with pytest.raises(ValidationError) as err:
            mapped.raise_for_problems()
        assert "2 CloudTrail record(s)" in err.value.detail

    @pytest.mark.parametrize(("obj", "pointer"), [
        ({"records": []}, "/Records"), ({"Records": {}}, "/Records"), ([], "")])
    def test_a_log_file_needs_records(self, obj: Any, pointer: str) -> None:
        with pytest.raises(ValidationError) as err:
            map_log_file(obj)
        assert [p.pointer for p in err.value.problems] == [pointer]


def assert_exact_slices(body: bytes, raws: list[bytes]) -> None:
    """Each raw is the file's bytes for that record, and only separators lie between."""
    pos = body.index(b"[") + 1
    for raw in raws:
        start = body.index(raw, pos)
        assert body[pos:start].strip(b" \t\r\n,") == b""
        pos = start + len(raw)
    assert body[pos:].strip(b" \t\r\n").startswith(b"]")


class TestReader:
    @pytest.mark.parametrize("name", FILES)
    def test_raw_bytes_are_exactly_the_records_in_the_file(self, name: str) -> None:
        body = (DATA / name).read_bytes()
        got = list(read_cloudtrail_paths([DATA / name]))
        want = json.loads(body)["Records"]
        assert [r.position for r in got] == list(range(len(want)))
        assert all(r.path == DATA / name for r in got)
        for r, record in zip(got, want, strict=True):
            assert orjson.loads(r.raw) == record == r.record
        assert_exact_slices(body, [r.raw for r in got])

    def test_gzip_files_are_read(self, tmp_path: Path) -> None:
        body = (DATA / STRATUS).read_bytes()
        (tmp_path / "x.json.gz").write_bytes(gzip.compress(body))
        got = list(read_cloudtrail_paths([tmp_path / "x.json.gz"]))
        assert [(r.raw, r.record) for r in got] == decode_log_file(body)
        assert len(got) == 310

    def test_a_directory_tree_is_walked_in_sorted_order(self, tmp_path: Path) -> None:
        base = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail"
        names = ["eu-west-1/2024/03/02/b.json.gz", "eu-west-1/2024/03/01/a.json",
                 "us-east-1/2024/03/01/c.json"]
        for i, name in enumerate(names):
            path = base / name
            path.parent.mkdir(parents=True)
            body = orjson.dumps({"Records": [minimal(eventID=f"e{i}")]})
            path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
        digest = base.parent / "CloudTrail-Digest" / "eu-west-1"
        digest.mkdir(parents=True)
        (digest / "111122223333_CloudTrail-Digest_eu-west-1_t_x.json.gz").write_bytes(
            gzip.compress(b'{"awsAccountId": "111122223333"}'))
        (base / "README.txt").write_text("not a log")
        got = list(read_cloudtrail_paths([tmp_path]))
        assert [r.path.relative_to(base).as_posix() for r in got] == sorted(names)
        assert [r.record["eventID"] for r in got] == ["e1", "e0", "e2"]

    def test_a_bad_file_goes_to_on_error_and_reading_carries_on(self, tmp_path: Path) -> None:
        (tmp_path / "a.json").write_bytes(b'{"Records": [{"eventID": "x"}')
        (tmp_path / "b.json.gz").write_bytes(b"\x1f\x8bnot gzip")
        (tmp_path / "c.json").write_bytes(b'{"Records": [{"eventID": "c"}]}')
        (tmp_path / "d.json").write_bytes(b'{"eventID": "not a log file"}')
        errors: list[tuple[str, Exception]] = []
        got = list(read_cloudtrail_paths(
            [tmp_path, tmp_path / "missing.json"],
            on_error=lambda path, exc: errors.append((path.name, exc))))
        assert [r.record for r in got] == [{"eventID": "c"}]
        assert [name for name, _ in errors] == ["a.json", "b.json.gz", "d.json", "missing.json"]
        assert isinstance(errors[0][1], ValidationError)
        assert [p.pointer for p in errors[2][1].problems] == ["/Records"]  # type: ignore[attr-defined]
        assert isinstance(errors[3][1], FileNotFoundError)

    def test_without_on_error_a_bad_file_raises(self, tmp_path: Path) -> None:
        (tmp_path / "a.json").write_bytes(b"[]")
        with pytest.raises(ValidationError):
            list(read_cloudtrail_paths([tmp_path]))

    def test_a_records_exact_spacing_and_key_order_are_kept(self) -> None:
        body = b'{"Records":[ {"b": 1,  "a":"\\u00e9"} ,{"eventID":"x"}\n]}'
        assert decode_log_file(body) == [(b'{"b": 1,  "a":"\\u00e9"}', {"b": 1, "a": "\u00e9"}),
                                         (b'{"eventID":"x"}', {"eventID": "x"})]

    def test_a_record_that_is_not_utf_8_fails_its_file_naming_the_record(self) -> None:
        with pytest.raises(ValidationError) as err:
            decode_log_file(b'{"Records": [{"a": "ok"}, {"a": "\xa1"}]}')
        assert [(p.pointer, p.index) for p in err.value.problems] == [("/Records/1", 1)]
        with pytest.raises(ValidationError):
            decode_log_file(b'{"Rec\xa1ords": []}')
