"""The admin's forms: a channel's member rows (new ids must be PocketBase users) and
the actions' time range, trim size and confirmation."""
import time

from django import forms

from auth_pocketbase.users import NotUsers, require_users
from messaging.models import ChannelMember
from messaging.protocol.timeparse import empty_range, parse_time
from messaging.protocol.validation import is_valid_id


class ChannelMemberForm(forms.ModelForm):
    class Meta:
        model = ChannelMember
        fields = ["userid"]
        labels = {"userid": "PocketBase user id"}


class ChannelMemberFormSet(forms.BaseInlineFormSet):
    """The channel's member rows; new or changed ids must be PocketBase users
    (auth_pocketbase.users), else nothing of the page is saved."""

    def clean(self):
        super().clean()
        added = [form.cleaned_data["userid"] for form in self.forms
                 if form.has_changed() and form.cleaned_data.get("userid") and not form.cleaned_data.get("DELETE")]
        if added:
            try:
                require_users(added)
            except NotUsers as exc:
                raise forms.ValidationError(str(exc)) from None


class TimeRangeForm(forms.Form):
    since = forms.CharField(required=False, help_text="Exclusive. Unix ns, ISO 8601 (2026-11-29T09:00:00Z) or 15m / 2h / 7d back.")
    until = forms.CharField(required=False, help_text="Inclusive, same forms. Empty: up to now.")
    user = forms.CharField(required=False, help_text="Only this PocketBase user id; empty: every subscriber.")

    def _time(self, name):
        value = self.cleaned_data[name].strip()
        if not value:
            return None
        try:
            return parse_time(value, time.time_ns())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_since(self):
        return self._time("since")

    def clean_until(self):
        return self._time("until")

    def clean_user(self):
        user = self.cleaned_data["user"].strip() or None
        if user is not None and not is_valid_id(user):
            raise forms.ValidationError("1 to 64 of A-Z a-z 0-9 _ -")
        if user is not None:
            try:
                require_users([user])
            except NotUsers as exc:
                raise forms.ValidationError(str(exc)) from None
        return user

    def clean(self):
        data = super().clean()
        reason = empty_range(data.get("since"), data.get("until"))
        if reason:
            raise forms.ValidationError(reason)
        return data


class TrimForm(forms.Form):
    keep = forms.IntegerField(min_value=0, initial=1000, help_text="Keep only this many newest messages.")


class ConfirmForm(forms.Form):
    pass
