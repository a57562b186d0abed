from django.urls import path

from . import views

urlpatterns = [
    path("api/channels/", views.channel_list),
    path("api/channels/<str:channel>/messages", views.channel_messages),
    path("healthz", views.healthz),
    path("readyz", views.readyz),
    path("metrics", views.metrics_view),
]
