"""The Django app config: registers the models named in `settings.AUDITKEEP` once the app
registry is ready."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class AuditkeepConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "auditkeep.integrations.django"
    label = "auditkeep"  # the default, "django", would read as Django's own
    verbose_name = "auditkeep"

    def ready(self) -> None:
        from django.conf import settings  # type: ignore[import-untyped]

        from auditkeep.integrations.django.tracking import register_from_settings

        config = getattr(settings, "AUDITKEEP", None)
        if config is not None:
            register_from_settings(config)
