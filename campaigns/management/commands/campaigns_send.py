from django.core.management.base import CommandError

from campaigns.models import Campaign, SendState
from campaigns.services import approve_campaign, send_campaign
from campaigns.services.sending import NotAllowed
from portal.management.base import OperationCommand
from portal.runs import OperationFailed


class Command(OperationCommand):
    help = ("Send a campaign's SMS now (by id or name). A draft needs --approve and --as a user with the "
            "campaigns.send_campaign permission; an approved one resumes where it stopped (nobody is texted twice).")

    def add_operation_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or exact name")
        parser.add_argument("--approve", action="store_true", help="approve it first (writes the outbox)")

    def run(self, options, **who):
        name = options["campaign"]
        row = Campaign.objects.filter(pk=int(name)).first() if name.isdigit() else None
        row = row or Campaign.objects.filter(name=name).first()
        if row is None:
            raise CommandError(f"No campaign {name!r}.")
        if options["approve"]:
            try:
                approve_campaign(row.pk, user=who["user"], trigger="command", queue=False)
            except (NotAllowed, OperationFailed) as exc:
                raise CommandError(str(exc)) from exc
        elif row.send_state == SendState.DRAFT:
            raise CommandError(f"Campaign {row.name!r} is not approved; pass --approve (with --as a permitted user).")
        return send_campaign(campaign=row.pk, **who)
