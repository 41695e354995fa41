"""URL routes: the admin, the REST API and Prometheus metrics."""

from django.contrib import admin
from django.urls import path

from config.api import api
from operations.views import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("metrics", metrics_view, name="metrics"),
]
