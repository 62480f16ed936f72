from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Django model permissions, reads included: a user sees an app's data only
    with its `view_` permission."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }


class HasAppPermission:
    """For endpoints without a queryset: `required_permission = "checkin.change_checkinuser"`."""

    def has_permission(self, request, view):
        perm = getattr(view, "required_permission", None)
        return bool(request.user and request.user.is_authenticated and (perm is None or request.user.has_perm(perm)))

    def has_object_permission(self, request, view, obj):
        return True
