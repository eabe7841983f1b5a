"""A small Django project in one file, for test_wsgi: a view, a form POST
with Django's CSRF protection, and a static file (django.views.static,
which answers with a FileResponse: wsgi.file_wrapper).  Served as
djangoapp:application, as Django's own wsgi.py would export it."""

import os

from django.conf import settings

BASE = os.path.dirname(os.path.abspath(__file__))

settings.configure(
    DEBUG=False,
    SECRET_KEY="forkd-test-only-not-a-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    INSTALLED_APPS=[],
    USE_TZ=True,
)

from django import forms  # noqa: E402  (after settings, as Django wants)
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.static import serve  # noqa: E402


class NameForm(forms.Form):
    name = forms.CharField(max_length=20)


def index(request):
    return HttpResponse("django says hello\n", content_type="text/plain")


def form(request):
    if request.method == "POST":
        f = NameForm(request.POST)
        if not f.is_valid():
            return HttpResponse("invalid\n", status=400,
                                content_type="text/plain")
        return HttpResponse("hello %s\n" % f.cleaned_data["name"],
                            content_type="text/plain")
    return HttpResponse(
        '<form method="post"><input type="hidden" '
        'name="csrfmiddlewaretoken" value="%s"><input name="name"></form>\n'
        % get_token(request))


urlpatterns = [
    path("", index),
    path("form", form),
    path("static/<path:path>", serve,
         {"document_root": os.path.join(BASE, "static")}),
]

application = get_wsgi_application()
