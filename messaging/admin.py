"""The Django admin for operators: channels with their Redis state, and subscriptions.

Counts, recent messages and cursors are read live from Redis (inspection.py); access
and members are edited here, and users who lose access lose their subscriptions.
Users are shown with the display name the relay last saw for them (display_names).
Channel names and user ids are case-sensitive: messages about a channel start with a
word of ours, since Django's admin capitalises the first letter of every message.
"""
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.timezone import localtime

from messaging.admin_forms import ChannelMemberForm, ChannelMemberFormSet, ConfirmForm, TimeRangeForm, TrimForm
from messaging.models import Channel, ChannelMember, Subscription
from messaging.ops import inspection
from messaging.ops.access_changes import sweep_now_and_later
from messaging.ops.replay import replay
from messaging.protocol.errors import RelayError
from messaging.protocol.timestamps import ts_to_datetime
from messaging.state import backends
from messaging.state.access import load_policy
from messaging.state.backends import REDIS_ERRORS

RECENT_PAGE = 50
BACKEND_ERRORS = (RelayError, *REDIS_ERRORS)


def ts_datetime(ts: int | None) -> datetime | None:
    """A ts in ns as an aware datetime (the admin shows it in local time); None stays None."""
    return None if ts is None else ts_to_datetime(ts)


def compact_time(ts: int | None):
    """A ts in ns for a change-list column: '2026-11-29 09:41' in the admin's time zone,
    the exact time (to the microsecond) as a tooltip; '-' for None."""
    if ts is None:
        return "-"
    when = localtime(ts_to_datetime(ts))
    return format_html('<time datetime="{}" title="{}">{}</time>',
                       when.isoformat(), when.strftime("%Y-%m-%d %H:%M:%S.%f %Z"), when.strftime("%Y-%m-%d %H:%M"))


def stat_column(name: str, description: str, show=None):
    """A change-list column showing one figure of a channel's Redis stats
    (inspection.ChannelStats `name`, read by StatsChangeList for the page, shown through
    `show` when given), or '?' when Redis did not say."""
    @admin.display(description=description)
    def column(channel):
        stats = getattr(channel, "stats", None)
        if not stats:
            return "?"
        value = getattr(stats, name)
        return show(value) if show else value

    column.__name__ = f"stats_{name}"
    return column


def about_channel(name: str, text: str) -> str:
    """An admin message about one channel, e.g. 'Channel “channel1”: replayed 8 messages.'
    (starts with our word, so Django's capfirst leaves the name as it is)."""
    return f"Channel “{name}”: {text}"


def display_names(userids, messages=()) -> dict[str, str]:
    """{userid: display name} for those of `userids` the relay has seen: the PocketBase
    `name` each had at their latest subscribe (Subscription.name, any channel), else the
    name on their newest message among `messages` (newest first). Unknown users are left out."""
    wanted = set(userids)
    names = {}
    for message in messages:
        if message["userid"] in wanted and message.get("name"):
            names.setdefault(message["userid"], message["name"])
    rows = Subscription.objects.filter(userid__in=wanted).exclude(name="").order_by("pk")
    names.update(rows.values_list("userid", "name"))
    return names


class ChannelMemberInline(admin.TabularInline):
    model = ChannelMember
    form = ChannelMemberForm
    formset = ChannelMemberFormSet
    extra = 1
    verbose_name = "member"
    verbose_name_plural = "members"
    readonly_fields = ["name"]

    def get_formset(self, request, obj=None, **kwargs):
        members = obj.members.values_list("userid", flat=True) if obj else []
        self.names = display_names(members)  # this instance serves one request
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="name")
    def name(self, member):
        return self.names.get(member.userid, "") if member.pk else ""


class AccessFilter(admin.ChoicesFieldListFilter):
    """The access filter, listing the short values (open, members, readonly)."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            for value, label in self.field.flatchoices:
                if choice["display"].startswith(label):
                    choice["display"] = value + choice["display"][len(label):]
            yield choice


class StatsChangeList(ChangeList):
    """Fetches the Redis stats of the listed page of channels in one round trip."""

    def get_results(self, request):
        super().get_results(request)
        try:
            stats = backends.run_sync(inspection.channel_stats, [c.name for c in self.result_list])
        except BACKEND_ERRORS as exc:
            messages.warning(request, f"Redis is unavailable, counts are not shown: {exc}")
            stats = {}
        for channel in self.result_list:
            channel.stats = stats.get(channel.name)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "access_value", stat_column("messages", "messages"),
                    stat_column("last_ts", "last activity", compact_time), stat_column("subscribers", "subscribers"),
                    stat_column("oldest_ts", "retained since", compact_time)]
    list_filter = [("access", AccessFilter), "created_at"]
    search_fields = ["name"]
    inlines = [ChannelMemberInline]
    actions = ["replay_range", "trim_history", "delete_history"]
    change_form_template = "admin/messaging/channel/change_form.html"

    def get_changelist(self, request, **kwargs):
        return StatsChangeList

    def get_readonly_fields(self, request, obj=None):
        return ["name", "created_at"] if obj else []

    @admin.display(description="access", ordering="access")
    def access_value(self, obj):
        """The short value (the choice's description is in the form and as a tooltip)."""
        return format_html('<span title="{}">{}</span>', obj.get_access_display(), obj.access)


    def change_view(self, request, object_id, form_url="", extra_context=None):
        channel = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if channel is not None:
            extra_context.update(self.inspect(request, channel))
        return super().change_view(request, object_id, form_url, extra_context)

    def inspect(self, request, channel) -> dict:
        """Recent messages (newest first, paged with ?before=<ts>) and subscribers
        ({"userid", "name", "cursor"}: name "" when unknown, cursor a datetime or None)."""
        before = request.GET.get("before")
        before = int(before) if before and before.isascii() and before.isdigit() else None
        subscribers = list(channel.subscriptions.values_list("userid", flat=True))
        try:
            recent, more = backends.run_sync(inspection.recent_messages, channel.name, before, RECENT_PAGE)
            cursors = backends.run_sync(inspection.cursors, channel.name, subscribers)
        except BACKEND_ERRORS as exc:
            messages.warning(request, f"Redis is unavailable: {exc}")
            return {}
        names = display_names(subscribers, recent)
        return {
            "recent_messages": [dict(m, when=ts_datetime(m["ts"])) for m in recent],
            "older_before": recent[-1]["ts"] if more and recent else None,
            "subscribers": [
                {"userid": u, "name": names.get(u, ""), "cursor": ts_datetime(cursors.get(u))} for u in subscribers
            ],
        }

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        try:
            sweep_now_and_later(form.instance.name)  # the second sweep runs in the background
        except BACKEND_ERRORS as exc:
            messages.warning(request, f"Saved, but subscriptions of users who lost access could not be ended yet: {exc}")

    def action_page(self, request, queryset, form, title, action, button, danger=False):
        """An intermediate page that asks for the action's parameters or confirmation;
        `danger`: the action destroys data (a red button, as Django's delete confirmation)."""
        context = {
            **self.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset,
            "action": action, "button": button, "danger": danger, "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/messaging/channel/action_form.html", context)

    def run_on_each(self, request, queryset, work, done):
        """`work(channel name)` for each channel, then one message per channel: `done(result)`
        or the error."""
        for channel in queryset:
            try:
                result = work(channel.name)
            except BACKEND_ERRORS as exc:
                self.message_user(request, about_channel(channel.name, str(exc)), messages.ERROR)
            else:
                self.message_user(request, about_channel(channel.name, done(result)), messages.SUCCESS)

    @admin.action(description="Replay a time range to the subscribers")
    def replay_range(self, request, queryset):
        form = TimeRangeForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self.action_page(request, queryset, form, "Replay messages", "replay_range", "Replay")
        data = form.cleaned_data
        self.run_on_each(
            request, queryset,
            lambda name: backends.run_sync(replay, name, data["since"], data["until"], data["user"], False, load_policy(name)),
            lambda n: f"replayed {n} message{'s' if n != 1 else ''}.",
        )

    @admin.action(description="Trim history (keep the newest N)")
    def trim_history(self, request, queryset):
        form = TrimForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self.action_page(request, queryset, form, "Trim history", "trim_history", "Trim", danger=True)
        keep = form.cleaned_data["keep"]
        self.run_on_each(
            request, queryset,
            lambda name: backends.run_sync(inspection.trim_history, name, keep),
            lambda n: f"removed {n} old message{'s' if n != 1 else ''}, kept at most {keep}.",
        )

    @admin.action(description="Delete history")
    def delete_history(self, request, queryset):
        if "apply" not in request.POST:
            return self.action_page(
                request, queryset, ConfirmForm(), "Delete history: are you sure?", "delete_history",
                "Yes, delete every stored message of these channels", danger=True,
            )
        self.run_on_each(
            request, queryset,
            lambda name: backends.run_sync(inspection.delete_history, name),
            lambda n: f"deleted {n} message{'s' if n != 1 else ''}.",
        )


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["channel", "userid", "name", "created_at"]
    list_filter = ["channel__access"]
    search_fields = ["userid", "name", "channel__name"]
    list_select_related = ["channel"]

    def has_add_permission(self, request):
        return False  # subscriptions are made by users, through the relay

    def has_change_permission(self, request, obj=None):
        return False
