"""Views that show the bound context and make a model change inside a request."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from auditkeep import context
from tests.integrations.djangoapp.models import Book


def bound(request: HttpRequest) -> HttpResponse:
    return JsonResponse(context.current())


def add_book(request: HttpRequest) -> HttpResponse:
    book = Book.objects.create(title=request.POST["title"])
    return JsonResponse({"id": book.pk}, status=201)


async def abound(request: HttpRequest) -> HttpResponse:
    return JsonResponse(context.current())


urlpatterns = [
    path("ctx", bound),
    path("actx", abound),
    path("books", add_book),
]
