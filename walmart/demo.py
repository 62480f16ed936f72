"""Demo configuration: the sandbox's Retail Link account and a few assignments."""

from .models import EventAssignment, RetailLinkSettings

DEMO_ASSIGNMENTS = [
    ("606100", "John Doe", "2025-10-06"),
    ("606101", "Ana Martinez", "2025-10-06"),
    ("606102", "Sam Patel", "2025-10-06"),
    ("606103", "Lee Wong", "2025-10-06"),
]


def seed():
    from .sandbox import DEMO_CREDID, DEMO_PASSWORD, DEMO_USERNAME

    lines = []
    stored = RetailLinkSettings.load()
    if not stored.username:
        stored.username, stored.password, stored.mfa_credential_id = DEMO_USERNAME, DEMO_PASSWORD, DEMO_CREDID
        stored.club_numbers = "6313,4763,8240"
        stored.save()
        lines.append("walmart: Retail Link settings point at the sandbox's demo account")
    for event_id, name, day in DEMO_ASSIGNMENTS:
        EventAssignment.objects.get_or_create(event_id=event_id, defaults={"employee_name": name, "event_date": day})
    lines.append(
        "walmart: log in at Admin > EDR reports > Retail Link login; the SMS code is in the sandbox log and at "
        "/_sandbox/retaillink/state; sandbox events are dated 2025-10-06..2025-10-15"
    )
    return lines
