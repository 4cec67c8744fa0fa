"""Reading verbs and identity kinds out of action names and resource types."""

from __future__ import annotations

import pytest

from auditkeep.export.vocabulary import account_in_action, kind_of, read_action, words_of


@pytest.mark.parametrize(("segment", "words"), [
    ("CreateUser", ["create", "user"]),
    ("EnableMFADevice", ["enable", "mfa", "device"]),
    ("AddPermission20150331v2", ["add", "permission", "20150331", "v", "2"]),
    ("password_reset", ["password", "reset"]),
    ("ConsoleLogin", ["console", "login"]),
    ("SignIn", ["signin"]),
    ("CreateServiceAccountKey", ["create", "serviceaccount", "key"]),
    ("deletecollection", ["deletecollection"]),
])
def test_words_of(segment: str, words: list[str]) -> None:
    assert words_of(segment) == words


@pytest.mark.parametrize(("action", "verb"), [
    ("orders.delete", "delete"),
    ("k8s.pods.exec.create", "create"),
    ("k8s.pods.watch", "read"),
    ("k8s.secrets.deletecollection", "delete"),
    ("k8s.nonresource.get", "read"),
    ("aws.iam.CreateUser", "create"),
    ("aws.s3.ListBuckets", "list"),
    ("aws.dynamodb.BatchGetItem", "read"),
    ("aws.s3.PutObject", "update"),
    ("aws.signin.ConsoleLogin", "login"),
    ("aws.iam.AttachUserPolicy", "attach"),
    ("gcp.compute.v1.compute.instances.insert", "create"),
    ("users.login.failed", "login"),  # the last segment names no verb: the one before does
    ("iam.user.created", "create"),
    ("syslog.sshd", "other"),
    ("orders.ship", "other"),
])
def test_verb(action: str, verb: str) -> None:
    assert read_action(action).verb == verb


@pytest.mark.parametrize(("action", "kind"), [
    ("iam.user.create", "user"),
    ("k8s.serviceaccounts.create", "serviceaccount"),
    ("aws.iam.CreateUser", "user"),
    ("aws.iam.DeleteRole", "role"),
    ("aws.iam.AttachUserPolicy", "user"),
    ("aws.iam.AddUserToGroup", "user"),
    ("aws.ec2.CreateSecurityGroup", None),
    ("aws.logs.CreateLogGroup", None),
    ("gcp.iam.google.iam.admin.v1.CreateServiceAccountKey", None),
    ("orders.delete", None),
])
def test_account_in_action(action: str, kind: str | None) -> None:
    assert account_in_action(read_action(action)) == kind


@pytest.mark.parametrize(("name", "kind"), [
    ("iam:role", "role"), ("AWS::IAM::User", "user"), ("serviceaccounts", "serviceaccount"),
    ("service_account", "serviceaccount"), ("ec2:security-group", "securitygroup"),
    ("address", "address"), ("", None), (None, None), (3, None),
])
def test_kind_of(name: object, kind: str | None) -> None:
    assert kind_of(name) == kind
