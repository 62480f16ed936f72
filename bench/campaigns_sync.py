"""Benchmark: syncing a big Netlife portal, parallel jobs vs one at a time, then the export.

    .venv/bin/python bench/campaigns_sync.py [--jobs 6] [--subjects 200] [--latency-ms 15] [--threads 10]

Sets itself up (temporary PORTAL_VAR_DIR and SQLite, the sandbox in a thread
with a generated portal of N jobs x M subjects and a per-request latency), then
times:
  1. `campaigns.services.sync_portal` with max_concurrent_jobs=1;
  2. the same on a fresh database with max_concurrent_jobs=--threads;
  3. a re-run of (2) (known users and keys are not fetched again; no new rows);
  4. `build_export` of every subject.
Target: (2) at least 3x faster than (1) with 10 threads; (3) creates nothing.
Measured (2 cores, SQLite): 6 x 200 subjects, 1,903 requests: serial 38.5 s,
parallel 7.4 s (5.2x), re-run 3.5 s with nothing created, export of 1,200
subjects 0.3 s (1,086 contacts).
The portal's rate is set high so latency, not pacing, is what is measured.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchsetup import setup_django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_PORTAL = "benchportal"


def fresh_database():
    from django.core.management import call_command

    from campaigns.models import Job, RegisteredUser

    call_command("migrate", verbosity=0)
    Job.objects.all().delete()  # subjects and activities go with their jobs
    RegisteredUser.objects.all().delete()


def timed_sync(threads):
    from campaigns.models import Portal
    from campaigns.services import sync_portal

    Portal.objects.filter(key=BENCH_PORTAL).update(max_concurrent_jobs=threads)
    started = time.perf_counter()
    record = sync_portal(trigger="command", portal=BENCH_PORTAL)
    elapsed = time.perf_counter() - started
    if record.status != "succeeded":
        raise SystemExit(f"sync {record.status}: {record.error}")
    return elapsed, record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=15)
    parser.add_argument("--threads", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="campaigns-bench-") as var_dir:
        setup_django(var_dir)
        from django.conf import settings

        from campaigns.sandbox import DEMO_PASSWORD, DEMO_USERNAME, data
        from portal.sandbox import start_in_thread

        data.PORTALS[BENCH_PORTAL] = [(f"Bench job {n}", args.subjects, [("Picture day", "in-webshop")]) for n in range(args.jobs)]
        data.ALL_PORTALS.append(BENCH_PORTAL)
        server = start_in_thread()
        server["netlife"].per_second = 0
        server["netlife"].latency_ms = args.latency_ms
        settings.SANDBOX_URL = server.url
        try:
            from campaigns.models import Campaign, Portal, Subject
            from campaigns.services import build_export

            fresh_database()
            Portal.objects.create(key=BENCH_PORTAL, username=DEMO_USERNAME, password=DEMO_PASSWORD, requests_per_second=10000)
            serial, record = timed_sync(1)
            calls = sum(server["netlife"].state()["calls"].values())
            fresh_database()
            parallel, record = timed_sync(args.threads)
            rerun, again = timed_sync(args.threads)
            subjects = Subject.objects.count()
            campaign = Campaign.objects.create(name="bench", audience=Campaign.Audience.ALL)
            campaign.portals.add(Portal.objects.get(key=BENCH_PORTAL))
            started = time.perf_counter()
            export = build_export(trigger="command", campaign=campaign.pk)
            export_time = time.perf_counter() - started
        finally:
            server.stop()

    print(f"portal: {args.jobs} jobs x {args.subjects} subjects, {args.latency_ms} ms per request, {calls} requests per first sync")
    print(f"1. serial sync (1 job at a time):      {serial:7.2f} s")
    print(f"2. parallel sync ({args.threads} jobs at a time):  {parallel:7.2f} s  ({serial / parallel:.1f}x faster)")
    print(f"3. re-run:                             {rerun:7.2f} s  created={again.counters.get('subjects_created')} "
          f"user_details_fetched={again.counters.get('user_details_fetched')}")
    print(f"4. export of {subjects} subjects:          {export_time:7.2f} s  contacts={export.counters.get('contacts')}")
    ok = serial / parallel >= 3 and again.counters.get("subjects_created") == 0 and subjects == args.jobs * args.subjects
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
