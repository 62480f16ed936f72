"""API tokens per integration client: each names its owner and the apps it may
use. A request with one acts as the owner, with only the owner's permissions in
those apps. Only a SHA-256 of the key is stored; the key is shown once."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

PREFIX = "pt_"
# last use is written at most this often (not one write per request)
LAST_USED_EVERY = timedelta(minutes=1)


def _digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def create_token(self, *, owner, apps, name):
        """A new token; returns (token, key). The key is not stored and cannot be shown again."""
        key = PREFIX + secrets.token_urlsafe(32)
        token = self.create(owner=owner, apps=sorted(set(apps)), name=name, key_prefix=key[:10], key_hash=_digest(key))
        return token, key

    def for_key(self, key):
        return self.select_related("owner").filter(key_hash=_digest(key), revoked_at__isnull=True).first()


class ApiToken(models.Model):
    name = models.CharField(max_length=100, help_text="The integration client, e.g. “BI warehouse export”.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    apps = models.JSONField(default=list, help_text="App labels this token may use, e.g. [\"sales\"].")
    key_prefix = models.CharField(max_length=12, editable=False, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        app_label = "portal"
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…, {self.owner})"

    def allows(self, perm):
        """`perm` ("sales.view_sale") only in the token's apps, and only if the owner has it."""
        return perm.split(".", 1)[0] in self.apps and self.owner.has_perm(perm)

    def mark_used(self):
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_EVERY:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
