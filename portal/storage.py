"""Where the portal's files live, and how a user gets one.

`storage_settings()` builds STORAGES["default"]: django-storages' S3 backend when
`STORAGE_URL=s3://bucket/prefix?endpoint_url=…&region=…` or
`AWS_STORAGE_BUCKET_NAME` is set (every machine then sees every file), else
local files under MEDIA_ROOT that only the portal's user can read.

`serve_file()` is the one way a file leaves the portal: the caller's view checks
permissions first, then the file is streamed from the storage (FileResponse over
storage.open) or, with `STORAGE_DOWNLOADS=redirect` on S3, the browser is sent to
a presigned URL valid for `STORAGE_URL_SECONDS`. Objects are private: a file is
never a public link.
"""

import posixpath
from urllib.parse import parse_qs, urlsplit

S3_BACKEND = "storages.backends.s3.S3Storage"


def _s3_options_from_url(url):
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options = {"bucket_name": parts.netloc}
    if parts.path.strip("/"):
        options["location"] = parts.path.strip("/")
    for key, option in (("endpoint_url", "endpoint_url"), ("region", "region_name"),
                        ("region_name", "region_name"), ("addressing_style", "addressing_style")):
        if query.get(key):
            options[option] = query[key]
    return options


def storage_settings(env):
    """STORAGES["default"] from the environment (see the module's docstring)."""
    url = env.str("STORAGE_URL", default="")
    bucket = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    if url or bucket:
        if url and not url.startswith("s3://"):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"STORAGE_URL must be s3://bucket[/prefix]?endpoint_url=…&region=…, not {url.split('://')[0]}://")
        options = _s3_options_from_url(url) if url else {
            "bucket_name": bucket,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        }
        options.update({
            # credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the machine's role (boto3's chain)
            "default_acl": None,  # the bucket's policy: private
            "querystring_auth": True,  # every URL is presigned
            "querystring_expire": env.int("STORAGE_URL_SECONDS", default=60),
            "file_overwrite": False,  # two machines writing the same name get two objects
            "signature_version": "s3v4",  # presigned URLs every region and S3-compatible store accepts
        })
        return {"BACKEND": S3_BACKEND, "OPTIONS": {k: v for k, v in options.items() if v is not None or k == "default_acl"}}
    # No fixed location: FileSystemStorage follows settings.MEDIA_ROOT (and its
    # permission settings, 0600/0700), also when a test or deployment changes it.
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    }


def is_s3(storage):
    from django.utils.functional import LazyObject, empty

    if isinstance(storage, LazyObject):  # default_storage
        if storage._wrapped is empty:
            storage._setup()
        storage = storage._wrapped
    return type(storage).__module__.startswith("storages.backends.s3")


def serve_file(request, name, *, storage=None, filename=None, content_type=None, as_attachment=True):
    """The response that hands `name` to the user. Check permissions before calling.

    404 when the file is not in the storage. Streams by default; with
    STORAGE_DOWNLOADS=redirect and S3, a 302 to a short-lived presigned URL.
    """
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.http import FileResponse, Http404, HttpResponseRedirect

    storage = storage or default_storage
    filename = filename or posixpath.basename(name)
    if not name or not storage.exists(name):
        raise Http404(f"No file {filename}")
    if is_s3(storage) and getattr(settings, "STORAGE_DOWNLOADS", "stream") == "redirect":
        disposition = "attachment" if as_attachment else "inline"
        params = {"ResponseContentDisposition": f'{disposition}; filename="{filename}"'}
        if content_type:
            params["ResponseContentType"] = content_type
        return HttpResponseRedirect(storage.url(name, parameters=params, expire=settings.STORAGE_URL_SECONDS))
    response = FileResponse(storage.open(name, "rb"), as_attachment=as_attachment, filename=filename,
                            content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


def _static_base():
    from whitenoise.storage import CompressedManifestStaticFilesStorage

    return CompressedManifestStaticFilesStorage


class StaticFilesStorage(_static_base()):
    """whitenoise's compressed, hashed static files once `collectstatic` wrote its
    manifest (production); before any collectstatic (development, unit tests)
    the plain names, served by runserver's finders."""

    def stored_name(self, name):
        if not self.hashed_files:
            return name
        return super().stored_name(name)
