"""What the project's SQL database holds about channels: access policy and members.

Messages, subscriptions and cursors live in Redis (see history.py, subscriptions.py);
the database holds what operators edit: a channel's access and its listed users.
"""
from django.core.validators import RegexValidator
from django.db import models

channel_id_validator = RegexValidator(r"\A[A-Za-z0-9_-]{1,64}\Z", "1 to 64 of A-Z a-z 0-9 _ -")


class ChannelQuerySet(models.QuerySet):
    def readable_by(self, userid: str) -> "ChannelQuerySet":
        """The channels `userid` may read (access.Policy.may_read, in SQL): `open`,
        `readonly`, and `members` ones that list the user."""
        listed = ChannelMember.objects.filter(channel=models.OuterRef("pk"), userid=userid)
        return self.filter(~models.Q(access=Channel.MEMBERS) | models.Exists(listed))


class Channel(models.Model):
    """A named conversation, recorded on its first accepted publish or subscribe."""

    OPEN = "open"
    MEMBERS = "members"
    READONLY = "readonly"
    ACCESS_CHOICES = [
        (OPEN, "open: every signed-in user reads and publishes"),
        (MEMBERS, "members: only listed users do anything"),
        (READONLY, "readonly: everyone reads, listed users publish"),
    ]

    name = models.CharField(max_length=64, unique=True, validators=[channel_id_validator])
    access = models.CharField(max_length=16, choices=ACCESS_CHOICES, default=OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ChannelMember(models.Model):
    """A PocketBase user (record id of the `users` collection) listed on a channel."""

    channel = models.ForeignKey(Channel, related_name="members", on_delete=models.CASCADE)
    userid = models.CharField(max_length=64, validators=[channel_id_validator])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "userid"], name="unique_member")]
        ordering = ["userid"]

    def __str__(self):
        return f"{self.userid} in {self.channel.name}"


class Subscription(models.Model):
    """A user's subscription to a channel, mirrored from Redis for the admin.

    Redis (subscriptions.py) is what fan-out and cursors use; this row is written when a
    subscription starts and deleted when it ends. The admin reads cursors from Redis.
    `name` is the user's PocketBase display name at their latest subscribe (from the
    verified token's record), so the admin can show who a user id is.
    """

    channel = models.ForeignKey(Channel, related_name="subscriptions", on_delete=models.CASCADE)
    userid = models.CharField(max_length=64, validators=[channel_id_validator])
    name = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "userid"], name="unique_subscription")]
        ordering = ["channel__name", "userid"]

    def __str__(self):
        return f"{self.userid} on {self.channel.name}"
