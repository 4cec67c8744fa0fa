"""Models covering the value types the change tracker must turn into JSON."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "djangoapp"


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, null=True, on_delete=models.SET_NULL, related_name="books")
    price = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    pages = models.IntegerField(default=0)
    published = models.DateField(null=True)
    checked_at = models.DateTimeField(null=True)
    loan = models.DurationField(null=True)
    tags = models.JSONField(default=list)
    uid = models.UUIDField(default=uuid.uuid4)
    cover = models.BinaryField(null=True)
    secret = models.CharField(max_length=50, default="")

    class Meta:
        app_label = "djangoapp"


class Chapter(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="chapters")
    title = models.CharField(max_length=100)

    class Meta:
        app_label = "djangoapp"


class Tag(models.Model):
    """Registered through settings.AUDITKEEP rather than in code."""

    name = models.CharField(max_length=50, unique=True)

    class Meta:
        app_label = "djangoapp"


class Note(models.Model):
    """Never registered: its writes must pass through the hooks untouched."""

    text = models.CharField(max_length=100)

    class Meta:
        app_label = "djangoapp"
