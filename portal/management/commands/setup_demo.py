import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the demo superuser and seed every app's demo configuration (idempotent). "
        "The generated login is kept in $PORTAL_VAR_DIR/demo-login.txt (mode 600) and printed "
        "on every start until its password is changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        login_file = settings.VAR_DIR / "demo-login.txt"
        user = User.objects.filter(username=username).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username, f"{username}@example.com", password)
            fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password)
        elif login_file.exists() and user.check_password(login_file.read_text().strip()):
            password = login_file.read_text().strip()
        if password:
            self.stdout.write(self.style.SUCCESS(
                f"\n  Demo admin: http://127.0.0.1:8000/admin/  user {username!r}  password {password!r}\n"
                "  (change it in the admin; a changed password is no longer printed)\n"
            ))
        else:
            self.stdout.write(f"Demo admin {username!r} exists; its password was changed, so it is not printed.")
            login_file.unlink(missing_ok=True)
        from portal import demo

        for line in demo.seed_all():
            self.stdout.write(line)
        if os.environ.get("CHECKIN_API_KEY"):
            self.stdout.write(
                "  CheckOut's view of the portal: curl -H \"x-checkout-key: $CHECKIN_API_KEY\" "
                "http://127.0.0.1:8000/api/checkin/v1/state   (the key is in .env)"
            )
