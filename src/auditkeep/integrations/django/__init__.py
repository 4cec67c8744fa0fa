"""The Django integration: add `"auditkeep.integrations.django"` to INSTALLED_APPS and
`"auditkeep.integrations.django.middleware.AuditContextMiddleware"` to MIDDLEWARE (after
AuthenticationMiddleware), then register models to audit in code or in settings:

    AUDITKEEP = {"MODELS": ["shop.Order", {"model": "shop.Customer", "exclude": ["notes"]}],
                 "CLIENT": "myproject.audit.client"}

See `auditkeep.integrations.django.tracking` for what a model change records.
"""
