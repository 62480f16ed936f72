"""DRF authentication for portal.api_tokens.ApiToken (`Authorization: Token pt_…`
or `Bearer pt_…`). Keys without the pt_ prefix are left to DRF's own tokens."""

import copy

from rest_framework import authentication, exceptions

from portal.api_tokens import PREFIX, ApiToken


def scoped_user(token):
    """The owner, with permissions cut down to the token's apps: every permission
    check (DjangoModelPermissions, HasAppPermission, views) goes through has_perm.

    A token is never a superuser, even a superuser's: code that asks
    `user.is_superuser` (the runs a user sees, the operations he may run) would
    otherwise skip the token's scope. Its powers are its apps' permissions, which
    has_perm grants a superuser owner as before. The copy is never saved (it would
    write the cut-down flag over the owner's).
    """
    user = copy.copy(token.owner)
    user.is_superuser = False
    user.has_perm = lambda perm, obj=None: token.allows(perm)
    user.has_perms = lambda perms, obj=None: all(token.allows(p) for p in perms)
    user.has_module_perms = lambda app_label: app_label in token.apps and token.owner.has_module_perms(app_label)
    user.get_all_permissions = lambda obj=None: {p for p in token.owner.get_all_permissions() if token.allows(p)}
    user.save = _refuse_save
    user.api_token = token
    return user


def _refuse_save(*args, **kwargs):
    raise RuntimeError("A token's scoped user is a view of its owner and is never saved.")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower().decode() not in self.keywords:
            return None
        key = parts[1].decode(errors="replace")
        if not key.startswith(PREFIX):
            return None
        token = ApiToken.objects.for_key(key)
        if token is None or not token.owner.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        token.mark_used()
        return scoped_user(token), token

    def authenticate_header(self, request):
        return "Token"


try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiTokenScheme(OpenApiAuthenticationExtension):
        target_class = "portal.api.authentication.ApiTokenAuthentication"
        name = "apiToken"

        def get_security_definition(self, auto_schema):
            return {"type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Token pt_…`: an API token (manage.py portal_create_token), limited to its apps."}
except ImportError:  # the schema is optional at run time
    pass
