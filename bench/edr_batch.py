"""Benchmark: a 100-event EDR batch against the sandbox vs bare xhtml2pdf.

    .venv/bin/python bench/edr_batch.py [--events 100] [--rounds 3]

Sets itself up (temporary PORTAL_VAR_DIR and SQLite, the sandbox served by its
own process, a real browser login), then, `--rounds` times in turn:
  1. the real service `walmart.services.edr_batch` for N event ids: fetch each
     EDR over HTTP, render, store the PDF and the per-event rows, track progress;
  2. bare xhtml2pdf rendering of the same N documents, one after another.
Each round's ratio compares the two measured back to back, so a load change
from the other processes on the machine moves both. Target: batch / bare <= 0.7
with 2 render processes (the fetch and the stores run in the calling process
while the render processes, started in the background, never wait for work).

The sandbox plays the remote Retail Link: it runs in a process of its own, in a
session of its own (Linux schedules CPU per session with autogroup), so serving
the EDRs is not counted as the portal's work. Round 1 also starts the fork
server the render processes come from (xhtml2pdf imported once, for the life of
the worker process); later rounds show a worker's steady state.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchsetup import setup_django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sandbox_process(var_dir):
    """`manage.py runsandboxes` in a new session; returns (process, base URL) once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runsandboxes", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=open(Path(var_dir) / "sandbox.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/_sandbox/retaillink/state", timeout=2).raise_for_status()
            return process, url
        except requests.RequestException:
            if process.poll() is not None:
                sys.exit(f"the sandbox process ended (see {var_dir}/sandbox.log)")
            time.sleep(0.2)
    process.terminate()
    sys.exit("the sandbox process did not answer within 60 s")


def load_average():
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edr-bench-") as var_dir:
        setup_django(var_dir, unset=("WALMART_EDR_USERNAME", "WALMART_EDR_PASSWORD", "WALMART_EDR_MFA_CREDENTIAL_ID"))
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from walmart import conf, demo, services
        from walmart.client import Edr
        from walmart.models import EdrReport
        from walmart.pdf import render_html
        from walmart.pdf_render import html_to_pdf
        from walmart.sandbox.catalogue import build_catalogue

        call_command("migrate", verbosity=0)
        sandbox, settings.SANDBOX_URL = start_sandbox_process(var_dir)
        try:
            demo.seed()
            user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
            event_ids = [str(e) for e in sorted(build_catalogue())][: args.events]  # the sandbox's own catalogue
            if len(event_ids) < args.events:
                sys.exit(f"the sandbox holds only {len(event_ids)} events")

            services.request_mfa(user)  # the real login, in headless Chromium (not timed)
            code = requests.get(f"{settings.SANDBOX_URL}/_sandbox/retaillink/state", timeout=10).json()["last_code"]
            services.authenticate(user, code)

            n = len(event_ids)
            print(f"EDR batch of {n} events, {conf.PDF_WORKERS} render processes, vs bare serial xhtml2pdf; "
                  f"load average {load_average()} at the start")
            ratios = []
            for round_number in range(1, args.rounds + 1):
                started, cpu_started = time.perf_counter(), time.process_time()
                record = services.edr_batch(trigger="command", user_id=user.pk, event_ids=event_ids)
                batch_seconds = time.perf_counter() - started
                caller_cpu = time.process_time() - cpu_started  # fetch, HTML, stores, rows (not the renders)
                if record.status != "succeeded" or record.counters.get("successful") != n:
                    sys.exit(f"batch run #{record.pk} {record.status}: {record.error} {record.counters}")

                # The same documents, rendered bare: HTML prepared first, only xhtml2pdf timed.
                reports = sorted(EdrReport.objects.all(), key=lambda r: event_ids.index(r.event_id))
                documents = [render_html(Edr.from_json(r.data), r.employee_name) for r in reports]
                started, cpu_started = time.perf_counter(), time.process_time()
                for html in documents:
                    html_to_pdf(html)
                bare_seconds = time.perf_counter() - started
                bare_cpu = time.process_time() - cpu_started
                ratio = batch_seconds / bare_seconds
                ratios.append(ratio)
                print(f"round {round_number}{' (fork server starts)' if round_number == 1 else ''}: "
                      f"batch {batch_seconds:.2f} s ({1000 * batch_seconds / n:.0f} ms/event, "
                      f"fetch+render+store+progress; calling process CPU {caller_cpu:.2f} s), "
                      f"bare {bare_seconds:.2f} s ({1000 * bare_seconds / n:.0f} ms/document; CPU {bare_cpu:.2f} s): "
                      f"ratio {ratio:.2f}x; "
                      f"load average {load_average()}")
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)

    print(f"ratio batch / bare: median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x over "
          f"{len(ratios)} rounds (target <= 0.7x with 2 render processes)")


if __name__ == "__main__":
    main()
