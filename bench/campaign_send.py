"""Benchmark: send a 10,000-recipient campaign through the Twilio sandbox.

    .venv/bin/python bench/campaign_send.py [--recipients 10000] [--latency-ms 50] [--per-second 50]

Sets Django up on its own (a temporary PORTAL_VAR_DIR and SQLite unless
DATABASE_URL is set), serves the Twilio sandbox from a thread with its latency
and throughput as asked, writes N families (one subject each, a tenth with a
sibling), approves the campaign and sends it through the real service
(`send_campaign`). Prints messages/s against the limit and the duplicates (two
texts to one number in the sandbox).
Target: >= 90% of the limit, zero duplicates.
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter

from benchsetup import setup_django


def make_families(n):
    from campaigns.models import Activity, Campaign, Job, Portal, Subject, SubjectActivity

    portal = Portal.objects.create(key="nowandforeverphoto", name="Now and Forever")
    job = Job.objects.create(portal=portal, uuid="bench-job", name="Bench")
    activity = Activity.objects.create(portal=portal, job=job, uuid="bench-act", name="Portraits", in_webshop=True)
    subjects = []
    for i in range(n):
        phone = f"+1{201 + i // 10000}555{i % 10000:04d}"  # 555-0000..9999 per area code
        subjects.append(Subject(portal=portal, job=job, uuid=f"s{i}", first_name="Emma", last_name=f"N{i}",
                                phone_number=phone, country="US", access_key=f"K{i}"))
        if i % 10 == 0:
            subjects.append(Subject(portal=portal, job=job, uuid=f"s{i}b", first_name="Liam", last_name=f"N{i}",
                                    phone_number=phone, country="US", access_key=f"K{i}b"))
    Subject.objects.bulk_create(subjects, batch_size=2000)
    SubjectActivity.objects.bulk_create([SubjectActivity(subject=s, activity=activity) for s in Subject.objects.all()],
                                        batch_size=2000)
    campaign = Campaign.objects.create(name="Bench", audience=Campaign.Audience.ALL,
                                       message_template="Hi! Photos of {children} are ready.")
    campaign.portals.add(portal)
    return campaign


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--per-second", type=int, default=50, help="the sender's throughput and the sandbox's limit")
    args = parser.parse_args()

    setup_django(os.environ.get("PORTAL_VAR_DIR") or tempfile.mkdtemp(prefix="bench-sms-"), keep_env=True, migrate=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from campaigns.models import CampaignMessage, SmsAccount
    from campaigns.sandbox.twilio import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, TwilioSandbox
    from campaigns.services import approve_campaign, send_campaign
    from portal.sandbox import start_in_thread

    server = start_in_thread(sandboxes=[TwilioSandbox()])
    settings.SANDBOX_URL = server.url
    twilio = server["twilio"]
    twilio.callbacks = False  # delivery callbacks are not what we measure
    campaign = make_families(args.recipients)
    account = SmsAccount.objects.create(name="Bench", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sender=NUMBERS[0],
                                        messages_per_second=args.per_second, quiet_start="00:00", quiet_end="23:59")
    campaign.sms_account = account
    campaign.save()
    user = get_user_model().objects.create_user("bench", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="send_campaign"))
    user = get_user_model().objects.get(pk=user.pk)
    approve_campaign(campaign.pk, user=user, queue=False)
    recipients = CampaignMessage.objects.filter(campaign=campaign).count()
    print(f"recipients: {recipients} (outbox written at approval)")

    twilio.per_second = args.per_second
    twilio.latency_ms = args.latency_ms
    began = time.monotonic()
    record = send_campaign(trigger="command", campaign=campaign.pk)
    elapsed = time.monotonic() - began
    state = twilio.state()
    server.stop()

    per_number = Counter(m["to"] for m in state["messages"])
    duplicates = sum(n - 1 for n in per_number.values() if n > 1)
    sent = len(per_number)
    rate = sent / elapsed
    # The sandbox refuses one well-formed number that does not exist (21211), as Twilio would.
    refused = CampaignMessage.objects.filter(campaign=campaign, status="failed", error_code__isnull=False).count()
    print(f"run #{record.pk} {record.status} {record.error}".rstrip())
    print(f"sent:           {sent} of {recipients} in {elapsed:.1f} s ({refused} refused by Twilio)")
    print(f"messages/s:     {rate:.1f} (limit {args.per_second}/s, latency {args.latency_ms} ms)")
    print(f"ratio to limit: {rate / args.per_second:.1%}")
    print(f"429s received:  {state['rate_limited']}")
    print(f"duplicates:     {duplicates}")
    ok = rate >= 0.9 * args.per_second and duplicates == 0 and sent + refused == recipients
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
