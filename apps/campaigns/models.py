from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.audience.models import Recipient, Segment, Topic
from apps.audience.validators import validate_timezone
from apps.content.models import Template
from apps.core.channels import Channel
from apps.preferences.models import Category


class CampaignStatus(models.TextChoices):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class AudienceKind(models.TextChoices):
    ALL = "all", "All users"
    TOPIC = "topic", "Followers of a topic"
    SEGMENT = "segment", "A segment"
    UPLOAD = "upload", "Uploaded list (CSV of user ids)"


class ScheduleKind(models.TextChoices):
    NOW = "now", "Now, when launched"
    AT = "at", "Once, at a date and time"
    RECURRING = "recurring", "Recurring (crontab)"
    LOCAL = "local", "Once, at a time of day in each recipient's timezone"


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT)
    template = models.ForeignKey(Template, on_delete=models.PROTECT)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list)
    context = models.JSONField(default=dict, blank=True, help_text="Values for the template, e.g. {\"discount\": 20}")
    audience_kind = models.CharField(max_length=16, choices=AudienceKind.choices, default=AudienceKind.TOPIC)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.PROTECT, help_text="Followers of.")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.PROTECT)
    schedule_kind = models.CharField(max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.NOW)
    send_at = models.DateTimeField(null=True, blank=True, help_text="For a one-off schedule.")
    crontab = models.CharField(max_length=100, blank=True,
                               help_text='For a recurring one: "minute hour day-of-month month day-of-week"')
    crontab_timezone = models.CharField(max_length=64, blank=True, default="UTC", validators=[validate_timezone])
    local_date = models.DateField(null=True, blank=True, help_text="For a local-time send: the day.")
    local_time = models.TimeField(null=True, blank=True,
                                  help_text="For a local-time send: the time of day in each recipient's timezone.")
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True, blank=True, editable=False,
                                         on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT,
                              editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("launch_campaign", "Can launch, pause, resume and cancel campaigns")]

    def audience(self) -> dict:
        """The notification audience this campaign targets."""
        if self.audience_kind == AudienceKind.TOPIC:
            return {"topic": self.topic.slug}
        if self.audience_kind == AudienceKind.SEGMENT:
            return {"segment": self.segment_id}
        if self.audience_kind == AudienceKind.UPLOAD:
            return {"campaign": self.pk}
        return {"all": True}

    def __str__(self) -> str:
        return self.name


class CampaignVariant(models.Model):
    """One arm of an A/B test: recipients whose id % 100 falls in this variant's share get its template."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    template = models.ForeignKey(Template, on_delete=models.PROTECT)
    share = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(99)],
                                             help_text="Percent of the audience; the shares add up to 100.")

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.template} ({self.share}%)"


class CampaignMember(models.Model):
    """One user of an uploaded audience list."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members", db_index=False)
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, db_constraint=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "recipient"], name="campaign_member_uniq")]

    def __str__(self) -> str:
        return f"{self.recipient_id} in {self.campaign_id}"


class CampaignRun(models.Model):
    """One occurrence of a campaign: the unique key makes each occurrence launch exactly once."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    occurrence = models.CharField(max_length=40, help_text='"once", or the scheduled minute of a recurring one')
    notification = models.OneToOneField("delivery.Notification", null=True, on_delete=models.SET_NULL)
    launched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "occurrence"], name="campaign_run_uniq")]

    def __str__(self) -> str:
        return f"{self.campaign_id} @ {self.occurrence}"


class PartState(models.TextChoices):
    PENDING = "pending"
    RELEASED = "released"
    CANCELLED = "cancelled"


class CampaignPart(models.Model):
    """One notification of a run that is split: a local-time wave (one timezone) and/or an A/B variant.

    A wave is released at its due time; the notification's idempotency key names the part, so a retried
    release makes it once."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="parts")
    timezone = models.CharField(max_length=64, blank=True, help_text='The wave\'s timezone ("" if not local-time)')
    zones = ArrayField(models.CharField(max_length=64), default=list, help_text="Recipient timezone values it takes")
    variant = models.ForeignKey(CampaignVariant, null=True, blank=True, on_delete=models.SET_NULL)
    share = ArrayField(models.PositiveSmallIntegerField(), default=list, help_text="[from, to) of id % 100")
    template = models.ForeignKey(Template, on_delete=models.PROTECT)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=PartState.choices, default=PartState.PENDING)
    notification = models.OneToOneField("delivery.Notification", null=True, blank=True, on_delete=models.SET_NULL)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False,
                                         help_text="A releaser holds the part until then (a lease: a crash frees it)")

    class Meta:
        ordering = ["due_at", "timezone", "pk"]
        constraints = [models.UniqueConstraint(fields=["run", "timezone", "variant"], name="campaign_part_uniq")]
        # the sweeper's one query: waves still pending, by due time (released ones are not in the index)
        indexes = [models.Index(fields=["due_at"], condition=models.Q(state="pending"),
                                name="campaign_part_pending_due")]

    def __str__(self) -> str:
        return f"{self.run} {self.timezone or 'all'} {self.variant_id or ''}".strip()


class CampaignEvent(models.Model):
    """Audit: who did what to a campaign, and when."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=32)
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.action} by {self.user or 'system'}"
