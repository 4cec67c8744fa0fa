"""OCSF 1.1.0 mapping: class and activity selection, and every field of real records."""

from __future__ import annotations

from typing import Any

import pytest

from auditkeep import __version__
from auditkeep.export.ocsf import to_ocsf
from tests.export.stored import (
    ATTACH_USER_POLICY,
    CONSOLE_LOGIN,
    CREATE_USER,
    GET_PASSWORD_DATA,
    cloudtrail_record,
    k8s_secret_create,
    stored_event,
)

PRODUCT = {"name": "auditkeep", "vendor_name": "auditkeep", "version": __version__}



class TestKubernetesRecord:
    def test_a_secret_create_is_an_api_activity_create(self) -> None:
        record = k8s_secret_create()
        out = to_ocsf(record)
        assert out["class_uid"] == 6003
        assert out["class_name"] == "API Activity"
        assert out["category_uid"] == 6
        assert out["category_name"] == "Application Activity"
        assert out["activity_id"] == 1
        assert out["activity_name"] == "Create"
        assert out["type_uid"] == 600301
        assert out["type_name"] == "API Activity: Create"
        assert out["time"] == 1585076029025  # 2020-03-24T18:53:49.025530Z, floored to ms
        assert out["severity_id"] == 0
        assert out["severity"] == "Unknown"
        assert out["status_id"] == 1
        assert out["status"] == "Success"
        assert "message" not in out
        assert out["actor"] == {"user": {"uid": "admin", "type_id": 1, "type": "User"}}
        assert out["src_endpoint"] == {"ip": "127.0.0.1"}
        assert out["http_request"] == {
            "user_agent": "kubeadm/v1.16.2 (linux/amd64) kubernetes/c97fe50"}
        assert out["api"] == {"operation": "k8s.secrets.create",
                              "service": {"name": "kube-apiserver"},
                              "request": {"uid": "263db4e4-f0bb-41b4-913d-c03815f49be5"}}
        assert out["dst_endpoint"] == {"svc_name": "kube-apiserver"}
        assert out["resources"] == [{"type": "secrets", "uid": "kube-system/bootstrap-token-ne7bxu",
                                     "name": "bootstrap-token-ne7bxu"}]
        assert out["metadata"] == {
            "uid": "k8s:263db4e4-f0bb-41b4-913d-c03815f49be5:ResponseComplete",
            "version": "1.1.0",
            "product": PRODUCT,
            "log_name": "acme",
            "sequence": 41,
            "original_time": "2020-03-24T18:53:49.025530Z",
            "logged_time": out["metadata"]["logged_time"],
        }
        assert isinstance(out["metadata"]["logged_time"], int)
        assert out["unmapped"] == {
            "outcome": "success", "category": "data_change", "metadata": record["metadata"],
            "submitter": "importer", "raw": record["raw"]}
        assert "user" not in out  # API Activity has no `user`; the actor is in `actor.user`


class TestCloudTrailRecords:
    def test_a_denied_read_is_an_api_activity_read_failure(self) -> None:
        record = cloudtrail_record(GET_PASSWORD_DATA)
        out = to_ocsf(record)
        assert (out["class_uid"], out["activity_id"], out["type_uid"]) == (6003, 2, 600302)
        assert (out["status_id"], out["status"]) == (2, "Failure")
        assert out["unmapped"]["outcome"] == "denied"
        assert out["message"].startswith("You are not authorized to perform this operation.")
        assert out["time"] == 1722375081000
        session = "aws-go-sdk-1722375070115152000"
        assert out["actor"] == {
            "user": {"uid": "arn:aws:sts::457448411975:assumed-role/"
                            f"stratus-red-team-ec2-get-password-data-role/{session}",
                     "name": session, "type_id": 1, "type": "User"},
            "session": {"uid": "ASIANQQHHS551LWULIWD"},
        }
        assert out["src_endpoint"] == {"ip": "200.249.253.51"}
        assert out["api"]["operation"] == "aws.ec2.GetPasswordData"
        assert out["api"]["service"] == {"name": "ec2.amazonaws.com"}
        assert out["api"]["request"] == {"uid": "b20c2df5-71d5-441e-84c8-b424f1c78ffb"}
        assert "resources" not in out  # the record names none
        assert out["unmapped"]["source"] == {"region": "apiso-northsouth-3r"}
        assert out["unmapped"]["metadata"]["eventName"] == "GetPasswordData"

    def test_a_console_sign_in_is_an_authentication_logon(self) -> None:
        out = to_ocsf(cloudtrail_record(CONSOLE_LOGIN))
        assert (out["class_uid"], out["category_uid"]) == (3002, 3)
        assert out["category_name"] == "Identity & Access Management"
        assert (out["activity_id"], out["activity_name"], out["type_uid"]) == (1, "Logon", 300201)
        who = out["actor"]["user"]
        assert who["uid"] == "arn:aws:iam::562283505220:user/stratus-red-team-nmfalu-jfzdtsvchl"
        assert out["user"] == who  # the subject authenticating
        assert out["service"] == {"name": "signin.amazonaws.com"}
        assert out["dst_endpoint"] == {"svc_name": "signin.amazonaws.com"}

    def test_create_user_is_an_account_change_create(self) -> None:
        out = to_ocsf(cloudtrail_record(CREATE_USER))
        assert (out["class_uid"], out["activity_id"], out["type_uid"]) == (3001, 1, 300101)
        assert out["type_name"] == "Account Change: Create"
        assert "user" not in out  # CloudTrail names the new user only in requestParameters
        assert "dst_endpoint" not in out
        # a zero-padded sample address is no IP address: kept aside, not in `src_endpoint`
        assert "src_endpoint" not in out
        assert out["unmapped"]["ip"] == "075.050.255.67"
        assert out["unmapped"]["metadata"]["requestParameters"] == {
            "userName": "malicious-iam-user"}

    def test_attach_user_policy_is_an_account_change_attach_policy(self) -> None:
        out = to_ocsf(cloudtrail_record(ATTACH_USER_POLICY))
        assert (out["class_uid"], out["activity_id"]) == (3001, 7)
        assert out["activity_name"] == "Attach Policy"

    def test_commitments_are_left_out(self) -> None:
        record = cloudtrail_record(GET_PASSWORD_DATA, personal=False)
        assert set(record["actor"]["name"]) == {"$c"}
        out = to_ocsf(record)
        assert "name" not in out["actor"]["user"]
        assert "src_endpoint" not in out
        assert "http_request" not in out
        assert out["actor"]["user"]["uid"].startswith("arn:aws:sts::")


class TestClassSelection:
    @pytest.mark.parametrize(("fields", "class_uid", "activity_id"), [
        ({"action": "users.login", "category": "auth"}, 3002, 1),
        ({"action": "session.logout", "category": "auth"}, 3002, 2),
        ({"action": "aws.sts.GetSessionToken", "category": "auth"}, 3002, 99),
        # a logon or logoff verb is Authentication whatever the producer's category
        ({"action": "users.login", "category": "data_change"}, 3002, 1),
        ({"action": "portal.session.logout", "category": "data_access"}, 3002, 2),
        ({"action": "iam.user.create", "category": "admin"}, 3001, 1),
        ({"action": "iam.user.delete", "category": "admin"}, 3001, 6),
        ({"action": "iam.user.disable", "category": "admin"}, 3001, 5),
        ({"action": "iam.user.enable", "category": "admin"}, 3001, 2),
        ({"action": "iam.user.lock", "category": "admin"}, 3001, 9),
        ({"action": "iam.user.password_reset", "category": "admin"}, 3001, 4),
        ({"action": "aws.iam.ChangePassword", "category": "admin"}, 3001, 3),
        ({"action": "aws.ec2.GetPasswordData", "category": "data_access"}, 6003, 2),
        ({"action": "iam.user.password.change", "category": "admin"}, 3001, 3),
        ({"action": "aws.iam.EnableMFADevice", "category": "admin"}, 3001, 10),
        ({"action": "aws.iam.DeactivateMFADevice", "category": "admin"}, 3001, 11),
        ({"action": "aws.iam.DetachRolePolicy", "category": "policy"}, 3001, 8),
        ({"action": "aws.iam.AddUserToGroup", "category": "admin"}, 3001, 99),
        ({"action": "accounts.update", "category": "data_change",
          "resource": {"type": "account", "id": "a1"}}, 3001, 99),
        ({"action": "k8s.serviceaccounts.create", "category": "data_change",
          "resource": {"type": "serviceaccounts", "id": "ns/sa"}}, 3001, 1),
        # not identities, or not admin/data_change: API Activity
        ({"action": "k8s.roles.create", "category": "policy",
          "resource": {"type": "roles", "id": "ns/r"}}, 6003, 1),
        ({"action": "aws.ec2.CreateSecurityGroup", "category": "data_change"}, 6003, 1),
        ({"action": "aws.iam.GetUser", "category": "data_access"}, 6003, 2),
        ({"action": "aws.s3.ListBuckets", "category": "data_access"}, 6003, 2),
        ({"action": "orders.update", "category": "data_change"}, 6003, 3),
        ({"action": "orders.delete", "category": "data_change"}, 6003, 4),
        ({"action": "orders.ship", "category": "data_change"}, 6003, 99),
    ])
    def test_class_and_activity(self, fields: dict[str, Any], class_uid: int,
                                activity_id: int) -> None:
        out = to_ocsf(stored_event(**fields))
        assert (out["class_uid"], out["activity_id"]) == (class_uid, activity_id)
        assert out["type_uid"] == class_uid * 100 + activity_id

    def test_other_activities_are_named_other(self) -> None:
        out = to_ocsf(stored_event(action="orders.ship"))
        assert out["activity_name"] == "Other"
        assert out["type_name"] == "API Activity: Other"

    def test_account_change_user_is_the_identity_changed(self) -> None:
        out = to_ocsf(stored_event(action="iam.user.disable", category="admin",
                             resource={"type": "user", "id": "u-9", "name": "bob"},
                             source={"service": "iam", "host": "idp-1"}))
        assert out["user"] == {"uid": "u-9", "name": "bob", "type": "user"}
        assert out["unmapped"]["resource"] == {"type": "user", "id": "u-9", "name": "bob"}
        assert out["unmapped"]["source"] == {"host": "idp-1"}


class TestFields:
    @pytest.mark.parametrize(("severity", "severity_id", "name"), [
        ("info", 1, "Informational"), ("notice", 2, "Low"), ("warning", 3, "Medium"),
        ("critical", 5, "Critical")])
    def test_severity(self, severity: str, severity_id: int, name: str) -> None:
        out = to_ocsf(stored_event(severity=severity))
        assert (out["severity_id"], out["severity"]) == (severity_id, name)

    @pytest.mark.parametrize(("outcome", "status_id", "status"), [
        ("success", 1, "Success"), ("failure", 2, "Failure"), ("denied", 2, "Failure"),
        ("unknown", 0, "Unknown")])
    def test_status(self, outcome: str, status_id: int, status: str) -> None:
        out = to_ocsf(stored_event(outcome=outcome))
        assert (out["status_id"], out["status"]) == (status_id, status)

    @pytest.mark.parametrize(("actor_type", "type_id", "name"), [
        ("user", 1, "User"), ("system", 3, "System"), ("service", 99, "Service"),
        ("anonymous", 99, "Anonymous")])
    def test_actor_type(self, actor_type: str, type_id: int, name: str) -> None:
        out = to_ocsf(stored_event(actor={"id": "x", "type": actor_type}))
        assert out["actor"]["user"] == {"uid": "x", "type_id": type_id, "type": name}

    def test_trace_email_targets_changes_and_impersonator(self) -> None:
        record = stored_event(
            actor={"id": "alice", "type": "user", "email": "alice@example.com",
                   "impersonator": {"id": "root-admin", "type": "user"}},
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7",
            resource={"type": "order", "id": "42"}, targets=[{"type": "invoice", "id": "7"}],
            changes=[{"field": "status", "before": "open", "after": "closed"}],
            source={"service": "shop", "region": "eu-1", "version": "2.1"})
        out = to_ocsf(record)
        assert out["actor"]["user"]["email_addr"] == "alice@example.com"
        assert out["metadata"]["correlation_uid"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert out["resources"] == [{"type": "order", "uid": "42", "region": "eu-1"},
                                    {"type": "invoice", "uid": "7", "region": "eu-1"}]
        assert out["unmapped"]["impersonator"] == {"id": "root-admin", "type": "user"}
        assert out["unmapped"]["span_id"] == "00f067aa0ba902b7"
        assert out["unmapped"]["changes"] == record["changes"]
        assert out["unmapped"]["source"] == {"version": "2.1", "region": "eu-1"}
