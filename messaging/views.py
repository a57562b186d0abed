"""The server-rendered chat page (the HTTP API is in api.py)."""
from django.conf import settings
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie

from auth_pocketbase.sessions import session_user


@ensure_csrf_cookie
def chat(request):
    """The chat page for the logged-in user; the browser talks to /ws/ with the session."""
    user = session_user(request)
    if user is None:
        return redirect("login")
    return render(request, "chat.html", {"user": user, "max_chars": settings.RELAY_MAX_MESSAGE_CHARS})
