from django.urls import path

from messaging.deliver.websocket import ChatConsumer

websocket_urlpatterns = [path("ws/", ChatConsumer.as_asgi())]
