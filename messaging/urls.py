from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("api/channels/", api.channel_list),
    path("api/channels/<str:channel>/messages", api.channel_messages),
    path("healthz", api.healthz),
    path("readyz", api.readyz),
    path("metrics", api.metrics_view),
]
