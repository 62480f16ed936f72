from django.core.management.base import BaseCommand, CommandError

from campaigns.services.optouts import import_opt_outs


class Command(BaseCommand):
    help = "Add the numbers of a CSV (a `phone` column, or the first column) to the SMS opt-out list."

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file ('-' for stdin)")
        # the admin's and the API's default too: the service picks it when none is given
        parser.add_argument("--default-code", default=None,
                            help="calling code for numbers without one (default: the portals' most common one)")

    def handle(self, *args, **options):
        import sys

        try:
            if options["path"] == "-":
                result = import_opt_outs(sys.stdin, default_code=options["default_code"])
            else:
                with open(options["path"], encoding="utf-8-sig", newline="") as handle:
                    result = import_opt_outs(handle, default_code=options["default_code"])
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"added={result['added']} already_listed={result['already_listed']} invalid={result['invalid']}")
        if result["invalid"]:
            self.stderr.write(f"not phone numbers on lines: {', '.join(map(str, result['invalid_lines']))}")
