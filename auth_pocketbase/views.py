"""Log in, sign up and log out through PocketBase, for the server-rendered page.

Both forms are throttled (throttle.py): over a limit they answer 429 with `Retry-After`
and say on the form how long to wait, without asking PocketBase.
"""
from django.conf import settings
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import failures, throttle
from .client import PocketBaseClient, PocketBaseRefused, PocketBaseUnavailable
from .forms import LoginForm, SignupForm
from .sessions import log_in, session_user
from .verification import Unauthorized, user_from_record

UNAVAILABLE = "PocketBase, which signs users in, is unavailable right now. Please try again in a moment."
LIMITS_UNAVAILABLE = "Signing in is unavailable right now (its limits cannot be checked). Please try again in a moment."


def _client() -> PocketBaseClient:
    return PocketBaseClient(settings.POCKETBASE_URL)


def _log_in_with_password(request, form, email: str, password: str) -> int | None:
    """Log in; on failure add a form error and return the HTTP status to answer with
    (the failure counted, failures.py)."""
    try:
        with failures.counted():
            body = _client().login(email, password)
            user = user_from_record(body.get("record") or {}, body.get("token", ""))
        log_in(request, user)
    except PocketBaseRefused:
        form.add_error(None, "Wrong email or password.")
        return 400
    except PocketBaseUnavailable:
        form.add_error(None, UNAVAILABLE)
        return 503
    except Unauthorized:
        form.add_error(None, "This account cannot use the chat.")
        return 403
    return None


def _refusal(request, template: str, form, limits, email: str):
    """Count an attempt against `limits` (throttle.attempt); None when it may go ahead,
    else the page to answer with: 429 with `Retry-After`, or 503 when Redis fails."""
    try:
        throttle.attempt(request, limits, email)
    except throttle.Throttled as exc:
        form.add_error(None, str(exc))
        response = render(request, template, {"form": form}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except throttle.ThrottleUnavailable:
        form.add_error(None, LIMITS_UNAVAILABLE)
        return render(request, template, {"form": form}, status=503)
    return None


def login_view(request):
    """GET: the login form; POST: log in with PocketBase and go to the chat (throttled:
    throttle.LOGIN counts failed logins per account and per client address)."""
    if request.method == "GET" and session_user(request):
        return redirect("chat")
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            email = form.cleaned_data["email"]
            refusal = _refusal(request, "login.html", form, throttle.LOGIN, email)
            if refusal is not None:
                return refusal
            status = _log_in_with_password(request, form, email, form.cleaned_data["password"])
            if status != 400:  # only a wrong email or password is a failed login
                throttle.take_back(request, throttle.LOGIN, email)
            if status is None:
                return redirect("chat")
    return render(request, "login.html", {"form": form}, status=status)


def signup_view(request):
    """GET: the sign-up form; POST: create a PocketBase user, log in, go to the chat
    (throttled: throttle.SIGNUP counts every sign-up per client address)."""
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            refusal = _refusal(request, "signup.html", form, throttle.SIGNUP, data["email"])
            if refusal is not None:
                return refusal
            try:
                _client().sign_up(data["email"], data["password"], data["name"])
            except PocketBaseRefused as exc:
                form.add_error(None, _signup_refusal(exc))
            except PocketBaseUnavailable:
                form.add_error(None, UNAVAILABLE)
                status = 503
            else:
                status = _log_in_with_password(request, form, data["email"], data["password"])
                if status is None:
                    return redirect("chat")
    return render(request, "signup.html", {"form": form}, status=status)


def _signup_refusal(exc: PocketBaseRefused) -> str:
    if "email" in exc.data:
        return "That email cannot be used (it may already be registered)."
    return exc.args[0] or "PocketBase refused the sign-up."


@require_POST
def logout_view(request):
    """End the session (the PocketBase token is forgotten) and go to the login page."""
    request.session.flush()
    return redirect("login")
