"""CADF mapping: taxonomy actions and every field of real records."""

from __future__ import annotations

from typing import Any

import pytest

from auditkeep.export.cadf import EVENT_TYPE_URI, OBSERVER, to_cadf
from tests.export.stored import (
    CONSOLE_LOGIN,
    CREATE_USER,
    GET_PASSWORD_DATA,
    cloudtrail_record,
    k8s_secret_create,
    stored_event,
)


def _attachments(out: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {a["name"]: (a["typeURI"], a["content"]) for a in out["attachments"]}


class TestKubernetesRecord:
    def test_every_field(self) -> None:
        record = k8s_secret_create()
        out = to_cadf(record)
        assert out["typeURI"] == EVENT_TYPE_URI == "http://schemas.dmtf.org/cloud/audit/1.0/event"
        assert out["id"] == "k8s:263db4e4-f0bb-41b4-913d-c03815f49be5:ResponseComplete"
        assert out["eventType"] == "activity"
        assert out["eventTime"] == "2020-03-24T18:53:49.025530Z"
        assert out["action"] == "create"
        assert out["outcome"] == "success"
        assert out["initiator"] == {
            "id": "admin", "typeURI": "service/security/account/user",
            "host": {"address": "127.0.0.1",
                     "agent": "kubeadm/v1.16.2 (linux/amd64) kubernetes/c97fe50"}}
        assert out["target"] == {"id": "kube-system/bootstrap-token-ne7bxu",
                                 "typeURI": "data/security/credential",
                                 "name": "bootstrap-token-ne7bxu"}
        assert out["observer"] == OBSERVER == {"id": "auditkeep", "typeURI": "service/security",
                                               "name": "auditkeep"}
        assert "reason" not in out
        assert "severity" not in out
        att = _attachments(out)
        assert list(att) == ["action", "metadata", "auditkeep"]
        assert att["action"] == ("auditkeep:action", "k8s.secrets.create")
        assert att["metadata"] == ("application/json", record["metadata"])
        assert att["auditkeep"] == ("application/json", {
            "tenant": "acme", "seq": 41, "category": "data_change", "outcome": "success",
            "received": record["received"],
            "request_id": "263db4e4-f0bb-41b4-913d-c03815f49be5",
            "actor": {"type": "user"}, "resource_type": "secrets",
            "source": {"service": "kube-apiserver"}, "submitter": "importer",
            "raw": record["raw"]})


class TestCloudTrailRecords:
    def test_a_denied_read_fails_with_its_reason(self) -> None:
        out = to_cadf(cloudtrail_record(GET_PASSWORD_DATA))
        assert out["action"] == "read"
        assert out["outcome"] == "failure"
        assert out["reason"] == {"reasonType": "auditkeep:outcome", "reasonCode": "denied"}
        att = _attachments(out)
        assert att["reason"][0] == "text/plain"
        assert att["reason"][1].startswith("You are not authorized")
        assert out["initiator"]["name"] == "aws-go-sdk-1722375070115152000"
        assert out["initiator"]["host"]["address"] == "200.249.253.51"
        # no resource: the reporting service is the target
        assert out["target"] == {"id": "ec2.amazonaws.com", "typeURI": "service"}
        assert att["auditkeep"][1]["actor"]["session_id"] == "ASIANQQHHS551LWULIWD"

    def test_a_console_sign_in_authenticates(self) -> None:
        out = to_cadf(cloudtrail_record(CONSOLE_LOGIN))
        assert out["action"] == "authenticate/login"

    def test_create_user_creates(self) -> None:
        out = to_cadf(cloudtrail_record(CREATE_USER))
        assert out["action"] == "create"
        assert _attachments(out)["action"][1] == "aws.iam.CreateUser"

    def test_commitments_are_left_out(self) -> None:
        out = to_cadf(cloudtrail_record(GET_PASSWORD_DATA, personal=False))
        assert "name" not in out["initiator"]
        assert "host" not in out["initiator"]


class TestTaxonomy:
    @pytest.mark.parametrize(("action", "category", "cadf"), [
        ("orders.create", "data_change", "create"),
        ("orders.get", "data_access", "read"),
        ("orders.list", "data_access", "read/list"),
        ("orders.patch", "data_change", "update"),
        ("orders.delete", "data_change", "delete"),
        ("users.login", "auth", "authenticate/login"),
        ("users.logout", "auth", "authenticate/logout"),
        ("tokens.create", "auth", "authenticate"),
        ("users.enable", "admin", "enable"),
        ("users.disable", "admin", "disable"),
        ("jobs.start", "system", "start"),
        ("jobs.stop", "system", "stop"),
        ("keys.revoke", "admin", "revoke"),
        ("orders.ship", "data_change", "unknown"),
    ])
    def test_action(self, action: str, category: str, cadf: str) -> None:
        assert to_cadf(stored_event(action=action, category=category))["action"] == cadf

    @pytest.mark.parametrize(("outcome", "cadf", "reason"), [
        ("success", "success", None), ("failure", "failure", "failure"),
        ("denied", "failure", "denied"), ("unknown", "unknown", None)])
    def test_outcome_and_reason(self, outcome: str, cadf: str, reason: str | None) -> None:
        out = to_cadf(stored_event(outcome=outcome))
        assert out["outcome"] == cadf
        assert out.get("reason", {}).get("reasonCode") == reason

    @pytest.mark.parametrize(("actor_type", "type_uri"), [
        ("user", "service/security/account/user"), ("service", "service"),
        ("system", "service"), ("anonymous", "unknown")])
    def test_initiator_type(self, actor_type: str, type_uri: str) -> None:
        out = to_cadf(stored_event(actor={"id": "x", "type": actor_type}))
        assert out["initiator"]["typeURI"] == type_uri

    @pytest.mark.parametrize(("resource_type", "type_uri"), [
        ("user", "data/security/account/user"), ("iam:role", "data/security/role"),
        ("AWS::IAM::Group", "data/security/group"), ("configmaps", "data/config"),
        ("pods", "data/workload/app"), ("ec2:instance", "compute/machine"),
        ("invoice", "data")])
    def test_target_type(self, resource_type: str, type_uri: str) -> None:
        out = to_cadf(stored_event(resource={"type": resource_type, "id": "r1"}))
        assert out["target"] == {"id": "r1", "typeURI": type_uri}

    def test_severity_changes_and_metadata(self) -> None:
        changes = [{"field": "status", "before": "open", "after": "closed"}]
        out = to_cadf(stored_event(severity="warning", changes=changes, metadata={"amount": 120.5}))
        assert out["severity"] == "warning"
        att = _attachments(out)
        assert att["changes"] == ("application/json", changes)
        assert att["metadata"] == ("application/json", {"amount": 120.5})
