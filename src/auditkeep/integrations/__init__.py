"""Framework integrations of the SDK: bind who is acting and in which request, and record
what a web request or an ORM write changed.

    auditkeep.integrations.asgi      AuditContextMiddleware for Starlette/FastAPI-style apps
    auditkeep.integrations.flask     AuditKeep, a Flask extension
    auditkeep.integrations.django    a Django app: context middleware and model change tracking
    auditkeep.integrations.logging   AuditLogHandler: `logger.info(..., extra={"audit": {...}})`

Each module imports its framework, so import the one you use; see docs/integrations.md.
"""
