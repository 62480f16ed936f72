"""Benchmark: a 100-event EDR batch against the sandbox vs bare xhtml2pdf.

    .venv/bin/python bench/edr_batch.py [--events 100]

Sets itself up (temporary PORTAL_VAR_DIR and SQLite, the sandbox in a thread, a
real browser login), then times:
  1. the real service `walmart.services.edr_batch` for N event ids: fetch each
     EDR over HTTP, render, store the PDF and the per-event rows, track progress;
  2. bare xhtml2pdf rendering of the same N documents, one after another.
Target: batch / bare <= 0.7 with 2 render processes (fetch, render and store overlap:
the workers fork warm from a fork server that preloaded xhtml2pdf and start at once,
while fetching, storing and tracking happen in the calling process).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchsetup import setup_django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edr-bench-") as var_dir:
        setup_django(var_dir, unset=("WALMART_EDR_USERNAME", "WALMART_EDR_PASSWORD", "WALMART_EDR_MFA_CREDENTIAL_ID"))
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from portal.sandbox import start_in_thread
        from walmart import conf, demo, services
        from walmart.client import Edr
        from walmart.models import EdrReport
        from walmart.pdf import render_html
        from walmart.pdf_render import html_to_pdf

        call_command("migrate", verbosity=0)
        sandbox = start_in_thread()
        settings.SANDBOX_URL = sandbox.url
        demo.seed()
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
        rl = sandbox["retaillink"]
        event_ids = [str(e) for e in sorted(rl.events)][: args.events]
        if len(event_ids) < args.events:
            sys.exit(f"the sandbox holds only {len(event_ids)} events")

        services.request_mfa(user)  # the real login, in headless Chromium (not timed)
        services.authenticate(user, rl.state()["last_code"])

        started = time.perf_counter()
        record = services.edr_batch(trigger="command", user_id=user.pk, event_ids=event_ids)
        batch_seconds = time.perf_counter() - started
        if record.status != "succeeded" or record.counters.get("successful") != len(event_ids):
            sys.exit(f"batch run #{record.pk} {record.status}: {record.error} {record.counters}")

        # The same documents, rendered bare: HTML prepared first, only xhtml2pdf timed.
        documents = [render_html(Edr.from_json(r.data), r.employee_name)
                     for r in sorted(EdrReport.objects.all(), key=lambda r: event_ids.index(r.event_id))]
        started = time.perf_counter()
        for html in documents:
            html_to_pdf(html)
        bare_seconds = time.perf_counter() - started
        sandbox.stop()

    n = len(event_ids)
    print(f"EDR batch ({n} events, {conf.PDF_WORKERS} render processes, fetch+render+store+progress): "
          f"{batch_seconds:.2f} s ({1000 * batch_seconds / n:.0f} ms/event)")
    print(f"bare xhtml2pdf, serial ({n} documents): {bare_seconds:.2f} s ({1000 * bare_seconds / n:.0f} ms/document)")
    print(f"ratio batch / bare: {batch_seconds / bare_seconds:.2f}x (target <= 0.7x with 2 render processes)")


if __name__ == "__main__":
    main()
