from django.urls import path, re_path

from messaging import views
from messaging.http import api

urlpatterns = [
    path("", views.chat, name="chat"),
    path("api/channels/", api.channel_list),
    # Any channel text (empty, with slashes) reaches the view, which answers invalid_channel.
    re_path(r"^api/channels/(?P<channel>[\s\S]*)/messages\Z", api.channel_messages),
    path("healthz", api.healthz),
    path("readyz", api.readyz),
    path("metrics", api.metrics_view),
]
