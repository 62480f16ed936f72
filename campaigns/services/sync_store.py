"""The database side of a Netlife sync: a job's fetched snapshot written in one transaction.

Called by the run's own thread while the pool threads fetch the next jobs, and at
the end for the last jobs, after every fetch: that tail is on the critical path.
So what the portal's database holds (subjects with the values they are compared
on, their activity links, users, jobs, activities) is read once per run, while
the first jobs are being fetched (StoredRows), and kept current by each job's
store; an unchanged job then costs three UPDATEs ("last seen" stamps) and no
read. Rows that did not change are not written; new rows get their ids back
from the insert (RETURNING).

Each job keeps the fingerprints of its subject pages (Job.sync_pages, page_state):
a re-read page with the same url and bytes is not parsed, its stored rows stand
for its subjects. They are trusted only while nothing else that shaped those rows
changed (the job details' bytes, the portal's known activities, each subject still
stored in this job); otherwise the page is parsed here after all.

The run holds the portal's lock, so no other sync writes these rows meanwhile.
"""

import json
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, IntegerField, Q, TextField, Value, When
from django.db.models.functions import Cast

from portal.models import SetAsideRecord
from portal.setaside import resolve_items

from ..client import fingerprint, subject_records
from ..models import Activity, Job, RegisteredUser, Subject, SubjectActivity

BATCH = 500

# What the counters (and the key checks) need of a subject, kept with its page's
# fingerprint: a kept page is not parsed again.
HAS_PHONE, HAS_EMAIL, HAS_IMAGES, NO_ACTIVITY = 1, 2, 4, 8

# What a stored subject is compared on: unchanged rows are not written again.
COMPARED = ["job_id", "name", "first_name", "last_name", "external_id", "group", "country", "phone_number", "email",
            "delivery_contacts", "has_order", "image_count", "registered_user_id"]
CONTACTS = COMPARED.index("delivery_contacts")
UNREAD = object()  # a stored value not read yet (StoredRows.load): equal to nothing
_UNREAD_VALUES = (UNREAD,) * (COMPARED.index("has_order") - 1)
WRITTEN = ["job", "name", "first_name", "last_name", "external_id", "group", "country", "phone_number", "email",
           "delivery_contacts", "has_order", "image_count", "registered_user", "synced_at"]


@dataclass
class KnownRows:
    """What the database knows that spares calls: users whose details are stored, and keys."""

    users_with_details: set[str]
    # subject uuid -> whether it has a key, for keys Netlife confirmed (or their
    # absence) after NETLIFE_ACCESS_KEY_MAX_AGE_HOURS ago: not asked again
    fresh_keys: dict[str, bool]
    # subject uuid -> its stored key, for the keys to check again (decrypted only these)
    stale_keys: dict[str, str]


# A stored subject's key, as of a time (StoredRows' key_state): confirmed since then
# with a key or with none; or not, with a stored key to check again, or with none.
KEY_NONE, KEY_STALE, KEY_FRESH_NONE, KEY_FRESH = 0, 1, 2, 3


def _key_state(checked_after):
    # One integer per row, computed by the database: the key itself is encrypted, and
    # only the stale ones are read (known_rows).
    has_key = ~Q(access_key="")
    return Case(When(Q(access_key_checked_at__gt=checked_after) & has_key, then=Value(KEY_FRESH)),
                When(access_key_checked_at__gt=checked_after, then=Value(KEY_FRESH_NONE)),
                When(has_key, then=Value(KEY_STALE)), default=Value(KEY_NONE), output_field=IntegerField())


def _is_set(field_name):
    return Case(When(**{f"{field_name}__isnull": False}, then=Value(1)), default=Value(0), output_field=IntegerField())


def _ids(model, portal, uuids):
    return dict(model.objects.filter(portal=portal, uuid__in=list(uuids)).values_list("uuid", "id"))


def activity_ids(portal):
    return dict(Activity.objects.filter(portal=portal).values_list("uuid", "id"))


class StoredRows:
    """A portal's stored rows as a sync needs them, read in one query per table.

    subjects: uuid -> (id, the COMPARED values); of_job: job id -> subject uuids;
    links: subject id -> {activity id: link id}; users: uuid -> (id, username);
    jobs and activities: uuid -> id. store_job updates it as it writes.

    Up front a subject's values are only its job, buyer flag and user (UNREAD
    elsewhere): enough for one on a kept page. The rest, and its links, are read
    (load) for the subjects store_job compares or writes.
    """

    def __init__(self, portal, *, keys_checked_after=None, with_jobs=True):
        """`keys_checked_after`: also read which keys were confirmed since then
        (known_rows), in the same pass over the subjects and users (the first round of
        calls is on the wire meanwhile, and this process' CPU is what delays their replies).
        `with_jobs=False`: the jobs and activities are read later (read_jobs), by a sync
        once store_activities has written them."""
        self.portal = portal
        self.subjects, self.of_job, self.links, self._linked = {}, {}, {}, set()
        self.jobs, self.activities, self.activities_digest = {}, {}, ""
        self._key_states = {}
        subjects = Subject.objects.filter(portal=portal)
        columns = ["uuid", "id", "job_id", "has_order", "registered_user_id"]
        if keys_checked_after is not None:
            subjects = subjects.annotate(key_state=_key_state(keys_checked_after))
            columns.append("key_state")
        for uuid, pk, job, has_order, user, *key_state in subjects.values_list(*columns):
            self.subjects[uuid] = (pk, (job, *_UNREAD_VALUES, has_order, UNREAD, user))
            self.of_job.setdefault(job, set()).add(uuid)
            if key_state:
                self._key_states[uuid] = key_state[0]
        self.users, self._users_with_details = {}, set()
        for uuid, pk, name, has_details in RegisteredUser.objects.filter(portal=portal).annotate(
                has_details=_is_set("details_fetched_at")).values_list("uuid", "id", "username", "has_details"):
            self.users[uuid] = (pk, name)
            if has_details:
                self._users_with_details.add(uuid)
        if with_jobs:
            self.read_jobs()

    def read_jobs(self):
        """The portal's jobs and activities (again after store_activities wrote them)."""
        self.jobs = dict(Job.objects.filter(portal=self.portal).values_list("uuid", "id"))
        self.activities = activity_ids(self.portal)
        # an activity added or removed may add or drop a kept subject's links
        self.activities_digest = fingerprint("\n".join(sorted(self.activities)).encode())

    def known_rows(self) -> KnownRows:
        """The KnownRows of the keys_checked_after this was read with; only the stale
        keys are read (and decrypted) here, and only when there are some."""
        fresh = {uuid: state == KEY_FRESH for uuid, state in self._key_states.items() if state >= KEY_FRESH_NONE}
        stale = [uuid for uuid, state in self._key_states.items() if state == KEY_STALE]
        stale_keys = {}
        for start in range(0, len(stale), BATCH):
            stale_keys.update(Subject.objects.filter(portal=self.portal, uuid__in=stale[start:start + BATCH]).exclude(
                access_key="").values_list("uuid", "access_key"))
        return KnownRows(users_with_details=set(self._users_with_details), fresh_keys=fresh, stale_keys=stale_keys)

    def load(self, uuids):
        """Read the values and links of these stored subjects, where not read yet."""
        unread = [uuid for uuid in uuids if uuid in self.subjects and self.subjects[uuid][1][1] is UNREAD]
        # delivery_contacts is read as text, decoded only when the other values match
        # (unchanged): decoding every JSON value up front would cost more than the read.
        columns = [*COMPARED[:CONTACTS], "contacts_text", *COMPARED[CONTACTS + 1:]]
        for start in range(0, len(unread), BATCH):
            rows = Subject.objects.filter(portal=self.portal, uuid__in=unread[start:start + BATCH]).annotate(
                contacts_text=Cast("delivery_contacts", TextField()))
            for uuid, pk, *values in rows.values_list("uuid", "id", *columns):
                self.subjects[uuid] = (pk, tuple(values))
        pks = [self.subjects[uuid][0] for uuid in uuids if uuid in self.subjects]
        pks = [pk for pk in pks if pk not in self._linked]
        for start in range(0, len(pks), BATCH):
            for pk, subject, activity in SubjectActivity.objects.filter(subject_id__in=pks[start:start + BATCH]).values_list(
                    "id", "subject_id", "activity_id"):
                self.links.setdefault(subject, {})[activity] = pk
        self._linked.update(pks)

    def unchanged(self, uuid, values):
        """Whether the stored subject has these COMPARED values."""
        held = self.subjects.get(uuid)
        if held is None:
            return False
        stored = held[1]
        if stored[:CONTACTS] != values[:CONTACTS] or stored[CONTACTS + 1:] != values[CONTACTS + 1:]:
            return False
        contacts = stored[CONTACTS]
        return (json.loads(contacts or "[]") if isinstance(contacts, str) else contacts) == values[CONTACTS]

    def put_subject(self, uuid, pk, values):
        held = self.subjects.get(uuid)
        if held is not None and held[1][0] != values[0]:
            self.of_job.get(held[1][0], set()).discard(uuid)
        self.subjects[uuid] = (pk, values)
        self.of_job.setdefault(values[0], set()).add(uuid)
        self._linked.add(pk)  # its links are read (load) before it is written, or it has none yet

    def drop_subjects(self, uuids):
        for uuid in uuids:
            pk, values = self.subjects.pop(uuid)
            self.of_job.get(values[0], set()).discard(uuid)
            self.links.pop(pk, None)


def store_activities(portal, activities, now):
    """Upsert jobs and activities; activities gone from the list leave the webshop."""
    with transaction.atomic():
        Job.objects.bulk_create(
            [Job(portal=portal, uuid=uuid, name=name) for uuid, name in {a.job_uuid: a.job_name for a in activities}.items()],
            ignore_conflicts=True, batch_size=BATCH,
        )
        job_ids = _ids(Job, portal, {a.job_uuid for a in activities})
        Activity.objects.bulk_create(
            [Activity(portal=portal, job_id=job_ids[a.job_uuid], uuid=a.uuid, name=a.name, status=a.status or "in-webshop",
                      starting=a.starting, ending=a.ending, in_webshop=True, last_seen_at=now) for a in activities],
            update_conflicts=True, unique_fields=["portal", "uuid"],
            update_fields=["job", "name", "status", "starting", "ending", "in_webshop", "last_seen_at"], batch_size=BATCH,
        )
        left = Activity.objects.filter(portal=portal, in_webshop=True).exclude(uuid__in=[a.uuid for a in activities])
        return left.update(in_webshop=False)


def _store_users(portal, snapshot, now, stored):
    """The job's linked users (details where fetched); their ids by uuid."""
    usernames = {link.user_uuid: link.username for link in snapshot.links}
    detailed = [RegisteredUser(portal=portal, uuid=uuid, username=usernames.get(uuid, ""), name=d.name, email=d.email,
                               phone_number=d.phone_number, details_fetched_at=now, synced_at=now)
                for uuid, d in snapshot.user_details.items()]
    linked_only = [RegisteredUser(portal=portal, uuid=uuid, username=name, synced_at=now) for uuid, name in usernames.items()
                   if uuid not in snapshot.user_details and stored.users.get(uuid, (None, None))[1] != name]
    if detailed:  # (an empty bulk_create still checks its options: a re-run has 20 jobs x 2 of them)
        RegisteredUser.objects.bulk_create(detailed, update_conflicts=True, unique_fields=["portal", "uuid"],
                                           update_fields=["username", "name", "email", "phone_number",
                                                          "details_fetched_at", "synced_at"], batch_size=BATCH)
    if linked_only:
        RegisteredUser.objects.bulk_create(linked_only, update_conflicts=True, unique_fields=["portal", "uuid"],
                                           update_fields=["username", "synced_at"], batch_size=BATCH)
    for user in detailed + linked_only:  # the insert gave their ids back
        stored.users[user.uuid] = (user.pk, user.username)
    user_ids = {uuid: stored.users[uuid][0] for uuid in usernames}
    if user_ids:  # "last seen" moves for every linked user in one UPDATE (retention counts from it)
        RegisteredUser.objects.filter(pk__in=list(user_ids.values())).update(synced_at=now)
    return user_ids


def store_job(portal, snapshot, now, run, stored=None):
    """One job's rows in one transaction: user links, subjects, their activities.
    `stored` (StoredRows) is the portal's, read once per run when given."""
    stored = StoredRows(portal) if stored is None else stored
    with transaction.atomic(savepoint=False):  # inside store_job_snapshot's transaction: no savepoint needed
        fields = {"subjects_count": len(snapshot.subjects) + len(snapshot.kept), "buyers_count": len(snapshot.buyers),
                  "synced_at": now, **({"name": snapshot.name} if snapshot.name else {})}
        job_id = stored.jobs.get(snapshot.uuid)
        if job_id is None or not Job.objects.filter(pk=job_id).update(**fields):
            job_id = stored.jobs[snapshot.uuid] = Job.objects.update_or_create(portal=portal, uuid=snapshot.uuid,
                                                                                defaults=fields)[0].pk
        activity_map = _parse_untrusted_pages(snapshot, stored, job_id)
        details = snapshot.details.read() if snapshot.subjects else snapshot.details  # parsed subjects need it
        user_ids = _store_users(portal, snapshot, now, stored)
        user_of_subject = {link.subject_uuid: user_ids[link.user_uuid] for link in snapshot.links}

        current = snapshot.subject_uuids
        listed = set(current)
        created = [uuid for uuid in current if uuid not in stored.subjects]
        # this job's stored rows missing from its lists
        missing = [uuid for uuid in stored.of_job.get(job_id, ()) if uuid not in listed]
        # a kept subject is written only when its key was checked or its job, buyer flag or user changed
        kept = [(uuid, (job_id, *held[1:10], uuid in snapshot.buyers, held[11], user_of_subject.get(uuid)))
                for uuid, held in ((uuid, stored.subjects[uuid][1]) for uuid in snapshot.kept)]
        kept = [(uuid, values) for uuid, values in kept if uuid in snapshot.keys_checked or values != stored.subjects[uuid][1]]
        stored.load([s.uuid for s in snapshot.subjects] + [uuid for uuid, _values in kept])
        rows = {True: [], False: []}
        for s in snapshot.subjects:
            checked = s.uuid in snapshot.keys_checked
            values = (job_id, s.name, s.first_name, s.last_name, s.external_id, s.group, s.country, s.phone_number, s.email,
                      s.delivery_contacts, s.uuid in snapshot.buyers, s.image_count, user_of_subject.get(s.uuid))
            if not checked and stored.unchanged(s.uuid, values):
                continue  # unchanged (built as a tuple: a model instance per subject costs more than the compare)
            rows[checked].append((values, Subject(
                portal=portal, uuid=s.uuid, **dict(zip(COMPARED, values)),
                access_key=snapshot.access_keys.get(s.uuid, ""), access_key_checked_at=now if checked else None, synced_at=now,
            )))
        for uuid, (job, *_unread, has_order, _image_count, user) in kept:  # its stored values, but for those
            held = stored.subjects[uuid][1]
            contacts = held[CONTACTS]
            values = (job, *held[1:CONTACTS], json.loads(contacts or "[]") if isinstance(contacts, str) else contacts,
                      has_order, held[11], user)
            checked = uuid in snapshot.keys_checked
            rows[checked].append((values, Subject(
                portal=portal, uuid=uuid, **dict(zip(COMPARED, values)),
                access_key=snapshot.access_keys.get(uuid, ""), access_key_checked_at=now if checked else None, synced_at=now,
            )))
        # Only a key Netlife was asked about now overwrites the stored one (a
        # revoked key becomes ""); the others keep their key and its check time.
        for checked, batch in ((checked, batch) for checked, batch in rows.items() if batch):
            Subject.objects.bulk_create([subject for _values, subject in batch], update_conflicts=True,
                                        unique_fields=["portal", "uuid"], batch_size=BATCH,
                                        update_fields=WRITTEN + (["access_key", "access_key_checked_at"] if checked else []))
            for values, subject in batch:  # the insert gave their ids back
                stored.put_subject(subject.uuid, subject.pk, values)
        removed = 0
        if snapshot.complete and missing:  # only after a complete read of the job
            _total, per_model = Subject.objects.filter(pk__in=[stored.subjects[uuid][0] for uuid in missing]).delete()
            removed = per_model.get(Subject._meta.label, 0)  # not the cascaded activity links
            stored.drop_subjects(missing)
        # After the upsert every listed subject is in this job; after a complete read
        # nothing else is, and the job names them more cheaply than 250 uuids do.
        of_job = Subject.objects.filter(job=job_id) if snapshot.complete else Subject.objects.filter(portal=portal, uuid__in=current)
        of_job.update(synced_at=now)

        # A kept subject's links stay as they are (its images and the job's did not change).
        subject_ids = {s.uuid: stored.subjects[s.uuid][0] for s in snapshot.subjects}
        activity_sets = {s.uuid: details.activities_of(s) for s in snapshot.subjects}
        pairs = {(subject_ids[uuid], stored.activities[activity]) for uuid, found in activity_sets.items()
                 for activity in found if activity in stored.activities}
        held = {(subject, activity): pk for subject in subject_ids.values()
                for activity, pk in stored.links.get(subject, {}).items()}
        gone = [pair for pair in held if pair not in pairs]
        if gone:
            SubjectActivity.objects.filter(pk__in=[held[pair] for pair in gone]).delete()
            for subject, activity in gone:
                stored.links[subject].pop(activity, None)
        new_links = SubjectActivity.objects.bulk_create(
            [SubjectActivity(subject_id=s, activity_id=a) for s, a in pairs - set(held)], batch_size=BATCH)
        for link in new_links:
            stored.links.setdefault(link.subject_id, {})[link.activity_id] = link.pk

        flags = {s.uuid: _flags(s, activity_sets[s.uuid]) for s in snapshot.subjects}
        flags.update(snapshot.kept)
        state = page_state(snapshot, stored, flags, activity_map)
        if state != snapshot.state:
            Job.objects.filter(pk=job_id).update(sync_pages=state)

    _count(run, snapshot, created=len(created), removed=removed, flags=flags)


def _flags(subject, activities):
    return ((HAS_PHONE if subject.phone_number or any(c.get("mobile_phone") for c in subject.delivery_contacts) else 0)
            | (HAS_EMAIL if subject.email or any(c.get("email_address") for c in subject.delivery_contacts) else 0)
            | (HAS_IMAGES if subject.image_count else 0)
            | (NO_ACTIVITY if subject.image_count and not activities else 0))


def _parse_untrusted_pages(snapshot, stored, job_id):
    """Parse the kept pages whose stored rows cannot stand for them: which images are
    in which activity (in the job details) or the portal's known activities changed
    since they were fingerprinted, or one of their subjects is not stored in this job
    (deleted by retention, or moved by another job's list). The job details' activity
    digest is returned (the last one while their bytes are the same)."""
    state, details = snapshot.state, snapshot.details
    activity_map = state.get("activity_map") if details.digest == state.get("details") else details.read().activity_digest
    trusted = bool(activity_map) and activity_map == state.get("activity_map") and (
        state.get("activities") == stored.activities_digest)
    parsed = {s.uuid for s in snapshot.subjects}
    for page in (page for pages in snapshot.pages.values() for page in pages if page.kept is not None):
        if trusted and all(uuid in parsed or stored.subjects.get(uuid, (None, (None,)))[1][0] == job_id
                           for uuid in page.uuids):
            continue
        page.kept = None
        for record in subject_records(page.body):
            snapshot.kept.pop(record.uuid, None)
            if record.uuid not in parsed:
                parsed.add(record.uuid)
                snapshot.subjects.append(record)
        page.body = b""
    return activity_map


def page_state(snapshot, stored, flags, activity_map):
    """What the next sync compares its subject pages with (Job.sync_pages): per list,
    each page read whole (a page with an unreadable row is always parsed) with its
    url, the fingerprint of its bytes, its next link and its subjects' flags."""
    state = {"details": snapshot.details.digest, "activity_map": activity_map, "activities": stored.activities_digest}
    for kind, pages in snapshot.pages.items():
        state[kind] = [{"url": page.url, "digest": page.digest, "next": page.next_url,
                        "subjects": page.kept if page.kept is not None else {uuid: flags[uuid] for uuid in page.uuids}}
                       for page in pages if page.readable]
    return state


def _count(run, snapshot, *, created, removed, flags):
    # the seed client's statistics, by its names
    total = len(flags)
    run.count("subjects_total", total)
    run.count("subjects_buyers", len(snapshot.buyers))
    run.count("subjects_non_buyers", total - len(snapshot.buyers))
    run.count("subjects_with_phones", sum(1 for f in flags.values() if f & HAS_PHONE))
    run.count("subjects_with_emails", sum(1 for f in flags.values() if f & HAS_EMAIL))
    run.count("subjects_with_images", sum(1 for f in flags.values() if f & HAS_IMAGES))
    run.count("registered_users_checked", total)
    run.count("registered_users_found", len(snapshot.links))
    run.count("access_keys_existing", sum(1 for k in snapshot.access_keys.values() if k) - snapshot.keys_created)
    run.count("access_keys_created", snapshot.keys_created)
    run.count("access_keys_revoked", snapshot.keys_revoked)
    run.count("access_keys_reused", snapshot.keys_reused)
    # photographed, yet no activity found: such a subject drops out of every campaign
    run.count("subjects_without_activity", sum(1 for f in flags.values() if f & NO_ACTIVITY))
    # ours
    run.count("subjects_created", created)
    run.count("subject_pages_read", sum(len(pages) for pages in snapshot.pages.values()))
    run.count("subject_pages_unchanged", sum(1 for pages in snapshot.pages.values() for page in pages
                                             if page.kept is not None))
    run.count("user_details_fetched", len(snapshot.user_details))
    if removed:
        run.count("subjects_removed", removed)
    if not snapshot.complete:
        run.count("subject_removal_skipped_jobs")


def open_set_aside_keys(portal):
    """(kind, key) of this portal's open set-aside records, read once per run."""
    return set(SetAsideRecord.objects.filter(app="campaigns", status=SetAsideRecord.Status.OPEN,
                                             key__startswith=f"{portal.key}/").values_list("kind", "key"))


def store_job_snapshot(run, row, snapshot, started, *, stored=None, open_keys=None):
    """Store one fetched job (store_job_snapshots of one)."""
    store_job_snapshots(run, row, [snapshot], started, stored=stored, open_keys=open_keys)


def store_job_snapshots(run, row, snapshots, started, *, stored=None, open_keys=None):
    """Store fetched jobs with their failed users and keys set aside, in one transaction;
    close the open records of the users, keys, subject rows and jobs that went through.
    `stored` (StoredRows) and `open_keys` (from open_set_aside_keys) are read once per
    run and passed in; `open_keys` spares the queries for records that are not open.
    Without them they are read here.

    A run stores together the jobs whose fetches ended while it stored the last ones:
    the last jobs of a run end nearly together, and each one's own transaction (its
    begin and commit) was most of an unchanged job's store, on the run's critical path."""
    stored = StoredRows(row) if stored is None else stored
    with transaction.atomic():
        for snapshot in snapshots:
            store_job(row, snapshot, started, run, stored)
            for kind, key, reason, context, payload in snapshot.failures:
                run.set_aside(kind, key, reason, context=context, payload=payload)
    for snapshot in snapshots:
        _close_went_through(run, row, snapshot, open_keys)


def _close_went_through(run, row, snapshot, open_keys):
    failed = {(kind, key) for kind, key, *_ in snapshot.failures}
    run.count("subjects_failed", sum(1 for kind, _ in failed if kind == "subject"))
    run.count("users_failed", sum(1 for kind, _ in failed if kind == "user"))
    run.count("access_keys_failed", sum(1 for kind, _ in failed if kind == "access_key"))
    went_through = {
        "job": [key for key in [f"{row.key}/{snapshot.uuid}"] if ("job", key) not in failed],  # not when capped
        "user": [f"{row.key}/{u}" for u in snapshot.user_details],
        "access_key": [f"{row.key}/{s}" for s in snapshot.keys_checked],
    }
    # A subject row is keyed by a label, not a uuid: every open row of this job
    # that did not fail this time was read.
    still_bad = {key for kind, key in failed if kind == "subject"}
    job_rows = f"{row.key}/{snapshot.uuid}/"
    if open_keys is None:
        went_through["subject"] = list(SetAsideRecord.objects.filter(
            app="campaigns", kind="subject", status=SetAsideRecord.Status.OPEN, key__startswith=job_rows,
        ).exclude(key__in=still_bad).values_list("key", flat=True))
    else:
        went_through["subject"] = [key for kind, key in open_keys
                                   if kind == "subject" and key.startswith(job_rows) and key not in still_bad]
    for kind, keys in went_through.items():
        if open_keys is not None:
            keys = [key for key in keys if (kind, key) in open_keys]
        resolve_items(run.record, "campaigns", kind, keys)
