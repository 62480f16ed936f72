"""Benchmark: post pending sales to the Verkada sandbox as Helix events.

    .venv/bin/python bench/helix_post.py [--events 10000] [--latency-ms 50] [--per-second 50]

Sets Django up on its own (a temporary PORTAL_VAR_DIR and SQLite unless
DATABASE_URL is set), serves the sandboxes from a thread with the Verkada latency
and rate limit raised as asked, backfills enough JD Sports sales to have N pending
events, then posts them through the real service (`post_helix_events`) and prints
events/s, the 429s Verkada answered, the ratio to the limit, the headroom used and
the duplicates. Footage links of a tenth as many sales are fetched in the same run
(their own 20% share of the limit), so the ratio counts every Verkada request.
Sales are routed to two event types (a rule sends sales of 300 or more to "big
sale", the default takes the rest), so routing is part of what is measured.
Target: >= 90% of the limit, zero 429s, zero duplicates, each sale under its type.
"""

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchsetup import setup_django

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--per-second", type=int, default=50, help="Verkada's limit in the sandbox (requests/s)")
    parser.add_argument("--concurrency", type=int, default=8, help="posts in flight")
    parser.add_argument("--headroom", type=int, default=5, help="percent under the limit the client paces at")
    parser.add_argument("--single-type", action="store_true",
                        help="no routing rule: every sale as the default type (to compare with routing)")
    parser.add_argument("--footage-sales", type=int, default=None,
                        help="sales whose footage links are fetched during the posting (default: a tenth of --events)")
    args = parser.parse_args()

    setup_django(os.environ.get("PORTAL_VAR_DIR") or tempfile.mkdtemp(prefix="bench-helix-"), keep_env=True, migrate=True)
    # The sandbox server's access log (one line per request, ~3,000 of them) would drown the figures.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from django.conf import settings

    from portal.sandbox import start_in_thread
    from sales import mapping
    from sales.models import CameraMapping, HelixEventType, HelixOutbox, HelixRoutingRule, SalesSettings, Store
    from sales.sandbox import JDSportsSandbox, VerkadaSandbox, catalog
    from sales.sandbox.jdsports import API_KEY
    from sales.services import fetch_footage_links, post_helix_events, sync_sales

    server = start_in_thread(sandboxes=[JDSportsSandbox(), VerkadaSandbox()])
    settings.SANDBOX_URL = server.url
    per_minute = args.per_second * 60
    verkada = server["verkada"]

    config = SalesSettings.load()
    config.jdsports_api_key, config.verkada_api_key = API_KEY, "verkada-sandbox-key"
    config.verkada_requests_per_minute = per_minute
    config.verkada_rate_headroom_percent = args.headroom
    config.posting_concurrency = args.concurrency
    config.save()
    # The sandbox's Verkada knows JD Sports' cameras by the same ids: map them (an unmapped
    # camera's sales are set aside, never posted).
    CameraMapping.objects.bulk_create([CameraMapping(jd_camera_id=c, verkada_camera_id=c, source="id")
                                       for c in catalog.CAMERA_IDS], ignore_conflicts=True)
    # The stores' zones as an admin enters them: the tills report their local clocks.
    for store_id, zone in catalog.STORE_ZONES.items():
        Store.objects.update_or_create(store_id=store_id, defaults={"time_zone": zone})

    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    start = end - timedelta(seconds=catalog.TRANSACTION_EVERY * args.events)
    verkada.set_limit(10**9)  # setting up is not what we measure
    record = sync_sales(trigger="command", start=start.isoformat(), end=end.isoformat())
    assert record.status == "succeeded", record.error
    pending = HelixOutbox.objects.filter(status="pending").count()
    print(f"pending events: {pending} (backfilled {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC)")

    # Two types, chosen per sale by a threshold rule and the default.
    sale_type = HelixEventType.objects.create(name="JD Sports sale", event_schema=mapping.DEFAULT_SCHEMA,
                                              attribute_mapping=mapping.DEFAULT_MAPPING, is_default=True)
    big_type = HelixEventType.objects.create(name="JD Sports big sale", event_schema=mapping.DEFAULT_SCHEMA,
                                             attribute_mapping=mapping.DEFAULT_MAPPING)
    if not args.single_type:
        HelixRoutingRule.objects.create(name="Big sales", priority=10, match="sale", amount_at_least=300,
                                        event_type=big_type)

    verkada.reset()
    verkada.set_limit(per_minute)
    verkada.latency_ms = args.latency_ms
    footage_sales = args.events // 10 if args.footage_sales is None else args.footage_sales
    footage_runs = []

    def fetch_links():
        from django.db import connection

        try:
            footage_runs.append(fetch_footage_links(trigger="command", limit=footage_sales))
        finally:
            connection.close()

    # Footage links in the same run, through their own share of the limit (20%).
    fetcher = threading.Thread(target=fetch_links, name="footage")
    seen_before = verkada.requests_seen
    began = time.monotonic()
    fetcher.start()
    record = post_helix_events(trigger="command", max_seconds=3600)
    posting_elapsed = time.monotonic() - began
    fetcher.join()
    elapsed = time.monotonic() - began
    state = verkada.state()
    all_requests = verkada.requests_seen - seen_before
    server.stop()
    links = footage_runs[0].counters.get("fetched", 0) if footage_runs else 0
    print(f"footage links:  {links} sales ({2 * links} requests) fetched in the same run, {footage_runs[0].status if footage_runs else 'no run'}")

    posted = record.counters.get("posted", 0)
    requests_per_s = all_requests / elapsed  # posts, footage links, tokens, the event type
    events_per_s = posted / posting_elapsed
    print(f"run #{record.pk} {record.status} {record.error}".rstrip())
    print(f"posted:         {posted} of {pending} in {posting_elapsed:.1f} s (all done in {elapsed:.1f} s)")
    print(f"events/s:       {events_per_s:.1f}")
    print(f"requests/s:     {requests_per_s:.1f} (limit {args.per_second}/s, latency {args.latency_ms} ms, {args.concurrency} in flight)")
    print(f"ratio to limit: {requests_per_s / args.per_second:.1%} (all requests; posting alone {events_per_s / args.per_second:.1%})")
    print(f"headroom:       {args.headroom}% asked (client paces at {args.per_second * (100 - args.headroom) / 100:.1f}/s), "
          f"{1 - requests_per_s / args.per_second:.1%} of the limit left unused")
    print(f"429s received:  {state['rate_limited']}")
    print(f"duplicates:     {len(state['duplicates'])}")
    uid_of = dict(HelixEventType.objects.values_list("event_type_uid", "name"))
    by_type = {}
    for event in state["events"]:
        by_type[uid_of.get(event["event_type_uid"], "?")] = by_type.get(uid_of.get(event["event_type_uid"], "?"), 0) + 1
    big = set(HelixOutbox.objects.filter(transaction__amount__gte=300).values_list("transaction__transaction_id", flat=True))
    misrouted = sum(1 for e in state["events"]
                    if (uid_of.get(e["event_type_uid"]) == big_type.name) != (e["attributes"]["transaction_id"] in big))
    print(f"event types:    {', '.join(f'{n} {name}' for name, n in sorted(by_type.items()))}"
          + ("" if args.single_type else f"; {misrouted} under the wrong type"))
    ok = (requests_per_s >= 0.9 * args.per_second and state["rate_limited"] == 0 and not state["duplicates"]
          and posted == pending and (args.single_type or (not misrouted and len(by_type) == 2)))
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
