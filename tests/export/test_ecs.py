"""ECS 8.x mapping: categorisation, users and every field of real records."""

from __future__ import annotations

import pytest

from auditkeep.export.ecs import ECS_VERSION, to_ecs
from tests.export.stored import (
    ATTACH_USER_POLICY,
    CONSOLE_LOGIN,
    CREATE_USER,
    GET_PASSWORD_DATA,
    cloudtrail_record,
    k8s_secret_create,
    stored_event,
)


class TestKubernetesRecord:
    def test_every_field(self) -> None:
        record = k8s_secret_create()
        out = to_ecs(record)
        assert out["@timestamp"] == "2020-03-24T18:53:49.025530Z"
        assert out["ecs"] == {"version": ECS_VERSION}
        assert out["event"] == {
            "kind": "event",
            "module": "auditkeep",
            "dataset": "auditkeep.audit",
            "category": ["api"],
            "type": ["creation"],
            "action": "k8s.secrets.create",
            "outcome": "success",
            "id": "k8s:263db4e4-f0bb-41b4-913d-c03815f49be5:ResponseComplete",
            "sequence": 41,
            "created": record["received"],
            "provider": "kube-apiserver",
        }
        assert out["user"] == {"id": "admin"}
        assert out["source"] == {"ip": "127.0.0.1"}
        assert out["user_agent"] == {
            "original": "kubeadm/v1.16.2 (linux/amd64) kubernetes/c97fe50"}
        assert out["service"] == {"name": "kube-apiserver"}
        assert out["http"] == {"request": {"id": "263db4e4-f0bb-41b4-913d-c03815f49be5"}}
        assert out["organization"] == {"id": "acme"}
        assert out["related"] == {"user": ["admin"], "ip": ["127.0.0.1"]}
        assert out["auditkeep"] == {
            "seq": 41, "category": "data_change", "outcome": "success",
            "actor": {"type": "user"}, "resource": record["resource"],
            "metadata": record["metadata"], "submitter": "importer", "raw": record["raw"],
            "v": 1}
        for absent in ("log", "host", "cloud", "trace", "span", "group"):
            assert absent not in out


class TestCloudTrailRecords:
    def test_a_denied_read(self) -> None:
        out = to_ecs(cloudtrail_record(GET_PASSWORD_DATA))
        assert out["@timestamp"] == "2024-07-30T21:31:21.000000Z"
        assert out["event"]["category"] == ["api"]
        assert out["event"]["type"] == ["access", "denied"]
        assert out["event"]["outcome"] == "failure"
        assert out["auditkeep"]["outcome"] == "denied"
        assert out["event"]["reason"].startswith("You are not authorized")
        assert out["event"]["provider"] == "ec2.amazonaws.com"
        assert out["user"]["name"] == "aws-go-sdk-1722375070115152000"
        assert out["auditkeep"]["actor"] == {"type": "user", "session_id": "ASIANQQHHS551LWULIWD"}
        assert out["cloud"] == {"region": "apiso-northsouth-3r"}
        assert out["http"] == {"request": {"id": "b20c2df5-71d5-441e-84c8-b424f1c78ffb"}}

    def test_a_console_sign_in_is_authentication_start(self) -> None:
        out = to_ecs(cloudtrail_record(CONSOLE_LOGIN))
        assert out["event"]["category"] == ["authentication"]
        assert out["event"]["type"] == ["start"]

    def test_create_user_is_iam_creation_of_a_user(self) -> None:
        out = to_ecs(cloudtrail_record(CREATE_USER))
        assert out["event"]["category"] == ["iam"]
        assert out["event"]["type"] == ["creation", "user"]
        # Elasticsearch would refuse the document over `source.ip: 075.050.255.67`
        assert "source" not in out
        assert "ip" not in out["related"]
        assert out["auditkeep"]["actor"]["ip"] == "075.050.255.67"

    def test_attach_user_policy_is_an_iam_and_configuration_change(self) -> None:
        out = to_ecs(cloudtrail_record(ATTACH_USER_POLICY))
        assert out["event"]["category"] == ["iam", "configuration"]
        assert out["event"]["type"] == ["change", "user"]

    def test_commitments_are_left_out(self) -> None:
        out = to_ecs(cloudtrail_record(GET_PASSWORD_DATA, personal=False))
        assert set(out["user"]) == {"id"}
        for absent in ("source", "user_agent"):
            assert absent not in out
        assert "ip" not in out["related"]


class TestCategorisation:
    @pytest.mark.parametrize(("category", "action", "categories", "types"), [
        ("auth", "users.login", ["authentication"], ["start"]),
        ("auth", "users.logout", ["authentication"], ["end"]),
        ("auth", "tokens.create", ["authentication"], ["info"]),
        ("admin", "tenants.create", ["iam"], ["creation", "admin"]),
        ("admin", "groups.delete", ["iam"], ["deletion", "group"]),
        ("admin", "tenants.get", ["iam"], ["info", "admin"]),
        ("policy", "roles.update", ["iam", "configuration"], ["change", "admin"]),
        ("config", "settings.get", ["configuration"], ["access"]),
        ("config", "settings.set", ["configuration"], ["change"]),
        ("data_access", "orders.list", ["api"], ["access"]),
        ("data_change", "orders.delete", ["api"], ["deletion"]),
        ("data_change", "orders.ship", ["api"], ["info"]),
        ("system", "jobs.start", ["api"], ["start"]),
    ])
    def test_category_and_type(self, category: str, action: str, categories: list[str],
                               types: list[str]) -> None:
        out = to_ecs(stored_event(category=category, action=action))
        assert out["event"]["category"] == categories
        assert out["event"]["type"] == types

    @pytest.mark.parametrize(("outcome", "ecs"), [
        ("success", "success"), ("failure", "failure"), ("denied", "failure"),
        ("unknown", "unknown")])
    def test_outcome(self, outcome: str, ecs: str) -> None:
        assert to_ecs(stored_event(outcome=outcome))["event"]["outcome"] == ecs

    @pytest.mark.parametrize(("severity", "number"), [
        ("info", 1), ("notice", 2), ("warning", 3), ("critical", 5)])
    def test_severity(self, severity: str, number: int) -> None:
        out = to_ecs(stored_event(severity=severity))
        assert out["event"]["severity"] == number
        assert out["log"] == {"level": severity}


class TestUsers:
    def test_impersonation_puts_the_real_caller_in_user(self) -> None:
        out = to_ecs(stored_event(actor={
            "id": "system:serviceaccount:ci:deployer", "type": "service",
            "impersonator": {"id": "alice", "type": "user"}}))
        assert out["user"] == {"id": "alice",
                               "effective": {"id": "system:serviceaccount:ci:deployer"}}
        assert out["related"]["user"] == ["system:serviceaccount:ci:deployer", "alice"]

    @pytest.mark.parametrize("ip", ["10.0.0.7", "2001:db8::1"])
    def test_an_address_is_the_source_ip(self, ip: str) -> None:
        out = to_ecs(stored_event(actor={"id": "bob", "type": "user", "ip": ip}))
        assert out["source"] == {"ip": ip}
        assert out["related"]["ip"] == [ip]
        assert "ip" not in out["auditkeep"]["actor"]

    def test_a_user_resource_is_the_target_user(self) -> None:
        out = to_ecs(stored_event(action="users.disable", category="admin",
                            actor={"id": "alice", "type": "user", "name": "Alice",
                                   "email": "alice@example.com"},
                            resource={"type": "user", "id": "u-7", "name": "bob"}))
        assert out["user"] == {"id": "alice", "name": "Alice", "email": "alice@example.com",
                               "target": {"id": "u-7", "name": "bob"}}
        assert out["event"]["type"] == ["change", "user"]
        assert out["related"]["user"] == ["alice", "u-7"]

    def test_a_group_resource_is_the_group(self) -> None:
        out = to_ecs(stored_event(action="groups.update", category="admin",
                            resource={"type": "group", "id": "g-1", "name": "ops"}))
        assert out["group"] == {"id": "g-1", "name": "ops"}
        assert "target" not in out["user"]

    def test_source_trace_and_custom_fields(self) -> None:
        record = stored_event(source={"service": "shop", "version": "2.1", "environment": "prod",
                                "host": "web-3", "region": "eu-1"},
                        trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7",
                        targets=[{"type": "invoice", "id": "7"}],
                        changes=[{"field": "status", "before": "open", "after": "closed"}],
                        metadata={"amount": 120.5})
        out = to_ecs(record)
        assert out["service"] == {"name": "shop", "version": "2.1", "environment": "prod"}
        assert out["host"] == {"hostname": "web-3"}
        assert out["cloud"] == {"region": "eu-1"}
        assert out["trace"] == {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}
        assert out["span"] == {"id": "00f067aa0ba902b7"}
        assert out["auditkeep"]["targets"] == [{"type": "invoice", "id": "7"}]
        assert out["auditkeep"]["changes"] == record["changes"]
        assert out["auditkeep"]["metadata"] == {"amount": 120.5}
