"""The Django integration against a real Django, a real SQLite file and its test clients:
context middleware (sync and async), and model change auditing on every ORM write path."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module", autouse=True)
def django_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Django's settings are process-global: configure them once, whoever comes first."""
    if not settings.configured:
        db = Path(tmp_path_factory.mktemp("django")) / "db.sqlite3"
        settings.configure(
            SECRET_KEY="tests-only",
            ALLOWED_HOSTS=["testserver"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                            "django.contrib.sessions", "auditkeep.integrations.django",
                            "tests.integrations.djangoapp"],
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                        "django.contrib.auth.middleware.AuthenticationMiddleware",
                        "auditkeep.integrations.django.middleware.AuditContextMiddleware"],
            ROOT_URLCONF="tests.integrations.djangoapp.urls",
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            AUDITKEEP={"MODELS": ["djangoapp.Tag"],
                       "CLIENT": "tests.integrations.djangoapp.audit.settings_client"},
        )
        django.setup()
        from django.core.management import call_command

        call_command("migrate", run_syncdb=True, verbosity=0)
    yield
    from django.db import connections

    connections.close_all()


# Imported lazily: these modules need the app registry the fixture above sets up.
def _models() -> Any:
    from tests.integrations.djangoapp import models

    return models


def _tracking() -> Any:
    from auditkeep.integrations.django import tracking

    return tracking


@pytest.fixture(autouse=True)
def clean_tables(django_db: None) -> Iterator[None]:
    yield
    m, tracking = _models(), _tracking()
    for model in (m.Book, m.Chapter, m.Author, m.Note):
        tracking.unregister(model)
    for model in (m.Chapter, m.Book, m.Author, m.Note, m.Tag):
        model._base_manager.all().delete()
    from django.contrib.auth.models import User

    User.objects.all().delete()


@pytest.fixture
def books(recorder: Any) -> Any:
    """Book registered (all fields but `secret`), recording into `recorder`."""
    m = _models()
    _tracking().register(m.Book, exclude=("secret",), client=recorder)
    return m.Book


def changes_of(event: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["field"]: (c["before"], c["after"]) for c in event.get("changes", [])}


def only(recorder: Any) -> dict[str, Any]:
    assert len(recorder.events) == 1, recorder.events
    return dict(recorder.events[0])


class TestSave:
    def test_create_records_every_value_as_json(self, books: Any, recorder: Any) -> None:
        uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
        book = books.objects.create(
            title="Dune", price=Decimal("12.5"), pages=412, published=dt.date(1965, 8, 1),
            checked_at=dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
            loan=dt.timedelta(days=14), tags=["sf", {"award": "Hugo"}], uid=uid,
            cover=b"\x89PNG", secret="s3cret")
        ev = only(recorder)
        assert ev["action"] == "djangoapp.book.create"
        assert ev["resource"] == {"type": "djangoapp.book", "id": str(book.pk)}
        assert ev["category"] == "data_change"
        assert ev["outcome"] == "success"
        assert ev["metadata"] == {"operation": "save"}
        assert changes_of(ev) == {
            "title": (None, "Dune"),
            "price": (None, "12.5"),
            "pages": (None, 412),
            "published": (None, "1965-08-01"),
            "checked_at": (None, "2024-05-01T12:30:00+00:00"),
            "loan": (None, "P14DT00H00M00S"),
            "tags": (None, ["sf", {"award": "Hugo"}]),
            "uid": (None, str(uid)),
            "cover": (None, "sha256:" + hashlib.sha256(b"\x89PNG").hexdigest()),
        }

    def test_update_records_only_what_changed(self, books: Any, recorder: Any) -> None:
        book = books.objects.create(title="Dune", price=Decimal("12.50"), pages=412)
        recorder.events.clear()
        book = books.objects.get(pk=book.pk)
        book.title = "Dune Messiah"
        book.price = Decimal("9.99")
        book.save()
        ev = only(recorder)
        assert ev["action"] == "djangoapp.book.update"
        assert changes_of(ev) == {"title": ("Dune", "Dune Messiah"),
                                  "price": ("12.50", "9.99")}

    def test_save_without_changes_records_nothing(self, books: Any, recorder: Any) -> None:
        book = books.objects.create(title="Dune", price=Decimal("12.5"))
        recorder.events.clear()
        book.price = Decimal("12.50")  # equal value, other spelling
        book.save()
        assert recorder.events == []

    def test_before_comes_from_the_database_not_the_instance(self, books: Any,
                                                             recorder: Any) -> None:
        book = books.objects.create(title="Dune")
        books.objects.filter(pk=book.pk).update(title="Changed elsewhere")
        recorder.events.clear()
        book.title = "Mine"  # the instance never saw the other change
        book.save()
        assert changes_of(only(recorder)) == {"title": ("Changed elsewhere", "Mine")}

    def test_update_fields_limits_what_is_compared(self, books: Any, recorder: Any) -> None:
        book = books.objects.create(title="Dune", pages=1)
        recorder.events.clear()
        book.title, book.pages = "Dune II", 2
        book.save(update_fields=["pages"])
        assert changes_of(only(recorder)) == {"pages": (1, 2)}
        assert books.objects.get(pk=book.pk).title == "Dune"

    def test_expression_values_are_read_back(self, books: Any, recorder: Any) -> None:
        from django.db.models import F

        book = books.objects.create(title="Dune", pages=10)
        recorder.events.clear()
        book.pages = F("pages") + 5
        book.save()
        assert changes_of(only(recorder)) == {"pages": (10, 15)}

    def test_string_for_integer_is_normalised(self, books: Any, recorder: Any) -> None:
        book = books.objects.create(title="Dune", pages=7)
        recorder.events.clear()
        book.pages = "7"
        book.save()
        assert recorder.events == []

    def test_foreign_key_records_the_key(self, books: Any, recorder: Any) -> None:
        m = _models()
        a, b = m.Author.objects.create(name="A"), m.Author.objects.create(name="B")
        book = books.objects.create(title="Dune", author=a)
        assert changes_of(only(recorder))["author"] == (None, a.pk)
        recorder.events.clear()
        book.author = b
        book.save()
        assert changes_of(only(recorder)) == {"author": (a.pk, b.pk)}

    def test_excluded_and_selected_fields(self, recorder: Any) -> None:
        m = _models()
        _tracking().register(m.Book, fields=["title", "secret"], exclude=["secret"],
                             client=recorder)
        m.Book.objects.create(title="Dune", pages=3, secret="x")
        assert changes_of(only(recorder)) == {"title": (None, "Dune")}


class TestDelete:
    def test_instance_delete_records_the_last_values(self, books: Any, recorder: Any) -> None:
        book = books.objects.create(title="Dune", pages=3)
        pk = book.pk
        recorder.events.clear()
        book.delete()
        ev = only(recorder)
        assert ev["action"] == "djangoapp.book.delete"
        assert ev["resource"]["id"] == str(pk)
        assert ev["metadata"] == {"operation": "delete"}
        assert changes_of(ev)["title"] == ("Dune", None)
        assert changes_of(ev)["pages"] == (3, None)

    def test_queryset_delete_records_each_row(self, books: Any, recorder: Any) -> None:
        kept = books.objects.create(title="keep", pages=500)
        gone = [books.objects.create(title=f"gone {i}", pages=i) for i in range(3)]
        recorder.events.clear()
        books.objects.filter(pages__lt=100).delete()
        assert sorted(e["resource"]["id"] for e in recorder.events) == sorted(
            str(b.pk) for b in gone)
        assert {e["metadata"]["operation"] for e in recorder.events} == {"queryset.delete"}
        assert str(kept.pk) not in {e["resource"]["id"] for e in recorder.events}

    def test_cascade_delete_is_recorded_as_such(self, books: Any, recorder: Any) -> None:
        m = _models()
        _tracking().register(m.Chapter, client=recorder)
        book = books.objects.create(title="Dune")
        ch = m.Chapter.objects.create(book=book, title="One")
        recorder.events.clear()
        book.delete()
        by_action = {e["action"]: e for e in recorder.events}
        assert set(by_action) == {"djangoapp.book.delete", "djangoapp.chapter.delete"}
        assert by_action["djangoapp.chapter.delete"]["resource"]["id"] == str(ch.pk)
        assert by_action["djangoapp.chapter.delete"]["metadata"]["operation"] == "cascade.delete"

    def test_set_null_on_delete_records_the_update(self, books: Any, recorder: Any) -> None:
        m = _models()
        author = m.Author.objects.create(name="Herbert")
        book = books.objects.create(title="Dune", author=author)
        author_pk = author.pk
        recorder.events.clear()
        author.delete()
        ev = only(recorder)
        assert ev["action"] == "djangoapp.book.update"
        assert ev["resource"]["id"] == str(book.pk)
        assert changes_of(ev) == {"author": (author_pk, None)}


class TestBulkPaths:
    def test_bulk_create_records_each_row_as_stored(self, books: Any, recorder: Any) -> None:
        made = books.objects.bulk_create([books(title=f"b{i}", pages=i) for i in range(3)])
        assert len(recorder.events) == 3
        for book, ev in zip(made, recorder.events, strict=True):
            assert ev["action"] == "djangoapp.book.create"
            assert ev["resource"]["id"] == str(book.pk)
            assert ev["metadata"] == {"operation": "bulk_create"}
            changes = changes_of(ev)
            assert changes["title"] == (None, book.title)
            assert changes["price"] == (None, "0.00")  # as the column stores the default

    def test_bulk_create_with_ignored_conflicts_is_unknown(self, recorder: Any) -> None:
        from tests.integrations.djangoapp.audit import settings_client

        m = _models()
        m.Tag.objects.create(name="sf")
        settings_client.events.clear()
        m.Tag.objects.bulk_create([m.Tag(name="sf"), m.Tag(name="new")],
                                  ignore_conflicts=True)
        assert [(e["outcome"], e["resource"]["id"], changes_of(e)["name"])
                for e in settings_client.events] == [("unknown", "unknown", (None, "sf")),
                                                     ("unknown", "unknown", (None, "new"))]
        assert {e["metadata"]["on_conflict"] for e in settings_client.events} == {"ignore"}

    def test_bulk_update_records_each_changed_row_once(self, books: Any,
                                                        recorder: Any) -> None:
        objs = [books.objects.create(title=f"b{i}", pages=i) for i in range(4)]
        recorder.events.clear()
        objs[0].title = "renamed"
        objs[1].pages = 100
        objs[2].price = Decimal("3")  # not among the fields bulk_update writes
        assert books.objects.bulk_update(objs, ["title", "pages"], batch_size=2) == 4
        by_id = {e["resource"]["id"]: e for e in recorder.events}
        assert len(recorder.events) == 2  # once each, not again for update() inside it
        assert changes_of(by_id[str(objs[0].pk)]) == {"title": ("b0", "renamed")}
        assert changes_of(by_id[str(objs[1].pk)]) == {"pages": (1, 100)}
        assert {e["metadata"]["operation"] for e in recorder.events} == {"bulk_update"}

    def test_queryset_update_records_before_and_after(self, books: Any,
                                                      recorder: Any) -> None:
        from django.db.models import F

        low = [books.objects.create(title=f"low {i}", pages=i) for i in range(3)]
        high = books.objects.create(title="high", pages=1000)
        recorder.events.clear()
        n = books.objects.filter(pages__lt=100).update(pages=F("pages") + 10, title="bumped")
        assert n == 3
        by_id = {e["resource"]["id"]: e for e in recorder.events}
        assert set(by_id) == {str(b.pk) for b in low}
        for b in low:
            assert changes_of(by_id[str(b.pk)]) == {"pages": (b.pages, b.pages + 10),
                                                    "title": (b.title, "bumped")}
        assert str(high.pk) not in by_id
        assert {e["metadata"]["operation"] for e in recorder.events} == {"queryset.update"}

    def test_update_of_the_filtered_field_still_reads_back(self, books: Any,
                                                            recorder: Any) -> None:
        book = books.objects.create(title="draft")
        recorder.events.clear()
        books.objects.filter(title="draft").update(title="final")
        assert changes_of(only(recorder)) == {"title": ("draft", "final")}
        assert only(recorder)["resource"]["id"] == str(book.pk)

    def test_update_through_a_related_manager(self, books: Any, recorder: Any) -> None:
        m = _models()
        author = m.Author.objects.create(name="A")
        book = books.objects.create(title="t", author=author)
        recorder.events.clear()
        author.books.update(pages=9)
        assert changes_of(only(recorder)) == {"pages": (0, 9)}
        assert only(recorder)["resource"]["id"] == str(book.pk)

    def test_update_of_untracked_fields_records_nothing(self, books: Any,
                                                        recorder: Any) -> None:
        books.objects.create(title="t", secret="a")
        recorder.events.clear()
        assert books.objects.update(secret="b") == 1
        assert recorder.events == []
        assert books.objects.get().secret == "b"

    def test_async_update_is_recorded(self, books: Any, recorder: Any) -> None:
        book = books.objects.create(title="t", pages=1)
        recorder.events.clear()
        asyncio.run(books.objects.filter(pk=book.pk).aupdate(pages=2))
        assert changes_of(only(recorder)) == {"pages": (1, 2)}

    def test_unregistered_models_are_untouched(self, books: Any, recorder: Any) -> None:
        m = _models()
        notes = m.Note.objects.bulk_create([m.Note(text="a"), m.Note(text="b")])
        for n in notes:
            n.text += "!"
        m.Note.objects.bulk_update(notes, ["text"])
        assert m.Note.objects.update(text="c") == 2
        m.Note.objects.all().delete()
        assert recorder.events == []

    def test_unregister_stops_recording(self, books: Any, recorder: Any) -> None:
        _tracking().unregister(books)
        books.objects.create(title="t")
        books.objects.update(title="u")
        assert recorder.events == []


class TestTransactionsAndContext:
    def test_rolled_back_changes_are_never_reported(self, books: Any, recorder: Any) -> None:
        from django.db import transaction

        def changes_then_fails() -> None:
            with transaction.atomic():
                books.objects.create(title="ghost")
                books.objects.update(pages=5)
                raise RuntimeError("rollback")

        with pytest.raises(RuntimeError):
            changes_then_fails()
        assert recorder.events == []
        assert not books.objects.exists()

    def test_events_wait_for_the_commit(self, books: Any, recorder: Any) -> None:
        from django.db import transaction

        with transaction.atomic():
            books.objects.create(title="t")
            assert recorder.events == []
        assert len(recorder.events) == 1

    def test_context_is_the_one_bound_at_change_time(self, books: Any,
                                                     recorder: Any) -> None:
        from django.db import transaction

        from auditkeep import context

        with transaction.atomic():
            with context.scope(actor="alice", request_id="r-5", trace_id="a" * 32,
                               span_id="b" * 16):
                books.objects.create(title="t")
            with context.scope(actor="bob"):
                books.objects.update(title="u")
        create, update = recorder.events
        assert create["actor"] == {"id": "alice", "type": "user"}
        assert (create["request_id"], create["trace_id"], create["span_id"]) == (
            "r-5", "a" * 32, "b" * 16)
        assert update["actor"] == {"id": "bob", "type": "user"}
        assert "request_id" not in update

    def test_without_an_actor_changes_are_anonymous(self, books: Any, recorder: Any) -> None:
        books.objects.create(title="t")
        assert only(recorder)["actor"] == {"id": "anonymous", "type": "anonymous"}


class TestRegistration:
    def test_settings_models_are_registered_at_start(self) -> None:
        from tests.integrations.djangoapp.audit import settings_client

        settings_client.events.clear()
        tag = _models().Tag.objects.create(name="sf")
        assert [e["action"] for e in settings_client.events] == ["djangoapp.tag.create"]
        assert settings_client.events[0]["resource"]["id"] == str(tag.pk)

    def test_bad_register_reports_every_problem(self, recorder: Any) -> None:
        from auditkeep.errors import ConfigError

        with pytest.raises(ConfigError) as err:
            _tracking().register(_models().Book, fields=["title", "nope"], exclude=["nada"],
                                 client=recorder)
        assert [p.pointer for p in err.value.problems] == ["/fields/1", "/exclude/0"]
        assert _tracking().tracker_for(_models().Book) is None

    def test_registering_twice_is_refused(self, books: Any, recorder: Any) -> None:
        from auditkeep.errors import ConfigError

        with pytest.raises(ConfigError, match="already registered"):
            _tracking().register(books, client=recorder)

    def test_bad_settings_report_every_problem_and_register_nothing(self, recorder: Any
                                                                    ) -> None:
        from auditkeep.errors import ConfigError

        config = {"MODELS": ["djangoapp.Book", "djangoapp.Missing", 7,
                             {"model": "djangoapp.Author", "fields": ["nme"], "extra": 1}],
                  "CLIENT": lambda: recorder, "WHAT": 1}
        with pytest.raises(ConfigError) as err:
            _tracking().register_from_settings(config)
        assert [p.pointer for p in err.value.problems] == [
            "/WHAT", "/MODELS/1/model", "/MODELS/2", "/MODELS/3/extra", "/MODELS/3/fields/0"]
        assert _tracking().tracker_for(_models().Book) is None

    def test_settings_client_may_be_a_factory(self, recorder: Any) -> None:
        m = _models()
        _tracking().register_from_settings({"MODELS": [{"model": "djangoapp.Note"}],
                                            "CLIENT": lambda: recorder})
        m.Note.objects.create(text="hi")
        assert [e["action"] for e in recorder.events] == ["djangoapp.note.create"]

    def test_register_needs_a_client(self) -> None:
        from auditkeep.client import set_default_client
        from auditkeep.errors import ConfigError

        set_default_client(None)
        with pytest.raises(ConfigError, match="no client"):
            _tracking().register(_models().Book)
        assert _tracking().tracker_for(_models().Book) is None

    def test_a_model_label_may_be_registered(self, recorder: Any) -> None:
        _tracking().register("djangoapp.Author", client=recorder)
        _models().Author.objects.create(name="Le Guin")
        assert [e["action"] for e in recorder.events] == ["djangoapp.author.create"]


class TestJsonSafe:
    @pytest.mark.parametrize(("value", "expected"), [
        (Decimal("1.10"), "1.10"),
        (dt.time(9, 30), "09:30:00"),
        (dt.timedelta(seconds=90), "P0DT00H01M30S"),
        (math.inf, "inf"),
        (1.5, 1.5),
        (True, True),
        (memoryview(b"ab"), "sha256:" + hashlib.sha256(b"ab").hexdigest()),
        ({"when": dt.date(2024, 1, 2), 3: [Decimal("2")]}, {"when": "2024-01-02", "3": ["2"]}),
    ])
    def test_values(self, value: Any, expected: Any) -> None:
        assert _tracking().json_safe(value) == expected

    def test_int_subclass_becomes_int(self) -> None:
        from django.db.models import IntegerChoices

        class Level(IntegerChoices):
            LOW = 1

        got = _tracking().json_safe(Level.LOW)
        assert got == 1 and type(got) is int


class TestMiddleware:
    def test_authenticated_user_is_the_actor(self) -> None:
        from django.contrib.auth.models import User
        from django.test import Client

        user = User.objects.create_user("alice", password="pw")
        c = Client()
        c.force_login(user)
        got = c.get("/ctx", headers={"X-Request-Id": "req-1", "traceparent": TRACEPARENT}).json()
        assert got == {"actor": {"id": str(user.pk), "type": "user", "name": "alice"},
                       "request_id": "req-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                       "span_id": "00f067aa0ba902b7"}

    def test_anonymous_user_binds_no_actor(self) -> None:
        from django.test import Client

        got = Client().get("/ctx").json()
        assert "actor" not in got
        assert len(got["request_id"]) == 32

    def test_model_change_in_a_view_carries_user_and_request(self, books: Any,
                                                             recorder: Any) -> None:
        from django.contrib.auth.models import User
        from django.test import Client

        user = User.objects.create_user("bob", password="pw")
        c = Client()
        c.force_login(user)
        r = c.post("/books", {"title": "Dune"}, headers={"X-Request-Id": "req-2"})
        assert r.status_code == 201
        ev = only(recorder)
        assert ev["actor"] == {"id": str(user.pk), "type": "user", "name": "bob"}
        assert ev["request_id"] == "req-2"
        assert ev["resource"]["id"] == str(r.json()["id"])

    def test_binding_is_reset_after_the_request(self) -> None:
        from django.contrib.auth.models import User
        from django.test import Client

        from auditkeep import context

        c = Client()
        c.force_login(User.objects.create_user("carol", password="pw"))
        c.get("/ctx")
        assert context.current() == {}

    def test_async_stack_uses_auser(self) -> None:
        from django.contrib.auth.models import User
        from django.test import AsyncClient

        user = User.objects.create_user("dave", password="pw")

        async def call() -> Any:
            c = AsyncClient()
            await c.aforce_login(user)
            return (await c.get("/actx", headers={"X-Request-Id": "req-3"})).json()

        got = asyncio.run(call())
        assert got["actor"] == {"id": str(user.pk), "type": "user", "name": "dave"}
        assert got["request_id"] == "req-3"
