import time

from portal.management.base import OperationCommand
from sales.services import common, post_helix_events
from sales.services.helix import backlog

#: how long --until-empty waits, by default, for rows that are not due yet (a backoff, a lost reply's check)
MAX_WAIT_S = 300


class Command(OperationCommand):
    help = "Post pending sales to Verkada Helix (each exactly once); says what is still pending."

    def add_operation_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="post at most this many")
        parser.add_argument(
            "--until-empty", action="store_true",
            help="run again until nothing is pending: through partial runs while they make progress, waiting for "
                 "rows not due yet (backed off, or a lost reply's check) up to --max-wait seconds at a time; stops "
                 "at a failed run, or a partial one that moved nothing")
        parser.add_argument("--max-wait", type=float, default=MAX_WAIT_S,
                            help=f"with --until-empty: the longest wait for the next due row (default {MAX_WAIT_S} s)")

    def run(self, options, **who):
        records = []
        left = _left(backlog())
        while True:
            record = post_helix_events(limit=options["limit"], **who)
            waiting = backlog()
            if record is not None:
                records.append(record)
                self.stdout.write(f"run #{record.pk} {record.status}: {_describe(waiting)}")
            if not options["until_empty"]:
                break
            if record is not None and record.status in ("failed", "errored"):
                self.stdout.write(f"stopped: run #{record.pk} {record.status}; {_describe(waiting)}")
                break
            if record is not None and record.status == "partial" and _left(waiting) >= left:
                # Its refused rows are set aside; one that moved nothing would only repeat itself.
                self.stdout.write(f"stopped: run #{record.pk} partial and nothing moved; {_describe(waiting)}")
                break
            left = _left(waiting)
            if waiting["due"] and record is not None:
                continue
            if waiting["next_due"] is None:
                self.stdout.write(f"nothing pending: {_describe(waiting)}" if waiting["waiting_for_mapping"]
                                  else "nothing pending")
                break
            delay = (waiting["next_due"] - common.now()).total_seconds()
            when = waiting["next_due"].isoformat(timespec="seconds")
            if delay <= 0 and record is None:
                # Due, yet no run had anything to do: another worker holds those rows.
                self.stdout.write(f"stopped: {_describe(waiting)}, claimed by another worker")
                break
            if delay > options["max_wait"]:
                self.stdout.write(f"stopped: {_describe(waiting)}; the next is due at {when} (in {delay:.0f} s, "
                                  f"past --max-wait {options['max_wait']:.0f} s)")
                break
            if delay > 0:
                self.stdout.write(f"waiting {delay:.0f} s: {_describe(waiting)}; the next is due at {when}")
                time.sleep(delay + 0.1)
        return records


def _left(waiting):
    return waiting["pending"] + waiting["awaiting_check"]


def _describe(waiting):
    described = (f"{waiting['due']} due now, {waiting['pending']} pending, "
                 f"{waiting['awaiting_check']} waiting for their check after a lost reply")
    if waiting.get("waiting_for_mapping"):
        described += (f"; {waiting['waiting_for_mapping']} not postable until their JD camera is mapped to a "
                      "Verkada camera (set aside as `camera`)")
    return described
