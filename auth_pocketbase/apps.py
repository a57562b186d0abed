from django.apps import AppConfig


class AuthPocketbaseConfig(AppConfig):
    name = "auth_pocketbase"
    verbose_name = "PocketBase authentication"
