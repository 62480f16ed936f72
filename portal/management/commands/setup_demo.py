import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo superuser (login printed once) and seed every app's demo configuration."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username, f"{username}@example.com", password)
            self.stdout.write(self.style.SUCCESS(
                f"\n  Demo admin created: http://127.0.0.1:8000/admin/  user {username!r}  password {password!r}\n"
                "  (shown once; change it in the admin or with `manage.py changepassword`)\n"
            ))
        else:
            self.stdout.write(f"Demo admin {username!r} exists (password as set before).")
        from portal import demo

        for line in demo.seed_all():
            self.stdout.write(line)
