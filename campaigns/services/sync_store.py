"""The database side of a Netlife sync: a job's fetched snapshot written in one transaction.

Called by the run's own thread while the pool threads fetch the next jobs, and at
the end for the last jobs, after every fetch: that tail is on the critical path,
so an unchanged job costs a handful of queries (rows that did not change are not
written; what the run already knows, the activities and the open set-aside
records, is read once per run and passed in).
"""

from django.db import transaction
from django.db.models import Q

from portal.models import SetAsideRecord
from portal.setaside import resolve_items

from ..models import Activity, Job, RegisteredUser, Subject, SubjectActivity

BATCH = 500

# What a stored subject is compared on: unchanged rows are not written again.
COMPARED = ["job_id", "name", "first_name", "last_name", "external_id", "group", "country", "phone_number", "email",
            "delivery_contacts", "has_order", "image_count", "registered_user_id"]
WRITTEN = ["job", "name", "first_name", "last_name", "external_id", "group", "country", "phone_number", "email",
           "delivery_contacts", "has_order", "image_count", "registered_user", "synced_at"]


def _ids(model, portal, uuids):
    return dict(model.objects.filter(portal=portal, uuid__in=list(uuids)).values_list("uuid", "id"))


def activity_ids(portal):
    return dict(Activity.objects.filter(portal=portal).values_list("uuid", "id"))


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


def _store_users(portal, snapshot, now):
    """The job's linked users (details where fetched); their ids by uuid."""
    usernames = {link.user_uuid: link.username for link in snapshot.links}
    detailed = [RegisteredUser(portal=portal, uuid=uuid, username=usernames.get(uuid, ""), name=d.name, email=d.email,
                               phone_number=d.phone_number, details_fetched_at=now, synced_at=now)
                for uuid, d in snapshot.user_details.items()]
    RegisteredUser.objects.bulk_create(detailed, update_conflicts=True, unique_fields=["portal", "uuid"],
                                       update_fields=["username", "name", "email", "phone_number", "details_fetched_at",
                                                      "synced_at"], batch_size=BATCH)
    known = {uuid: (pk, name) for uuid, pk, name in
             RegisteredUser.objects.filter(portal=portal, uuid__in=list(usernames)).values_list("uuid", "id", "username")}
    linked_only = [RegisteredUser(portal=portal, uuid=uuid, username=name, synced_at=now) for uuid, name in usernames.items()
                   if uuid not in snapshot.user_details and (uuid not in known or known[uuid][1] != name)]
    RegisteredUser.objects.bulk_create(linked_only, update_conflicts=True, unique_fields=["portal", "uuid"],
                                       update_fields=["username", "synced_at"], batch_size=BATCH)
    # "last seen" moves for every linked user in one UPDATE (retention counts from it)
    RegisteredUser.objects.filter(portal=portal, uuid__in=list(usernames)).update(synced_at=now)
    user_ids = {uuid: pk for uuid, (pk, _name) in known.items()}
    new = [user.uuid for user in linked_only if user.uuid not in known]
    if new:
        user_ids.update(_ids(RegisteredUser, portal, new))
    return user_ids


def store_job(portal, snapshot, now, run, activities=None):
    """One job's rows in one transaction: user links, subjects, their activities.
    `activities` (uuid -> id) is the portal's, read once per run when given."""
    with transaction.atomic():
        job, _ = Job.objects.update_or_create(
            portal=portal, uuid=snapshot.uuid,
            defaults={"subjects_count": len(snapshot.subjects), "buyers_count": len(snapshot.buyers), "synced_at": now,
                      **({"name": snapshot.name} if snapshot.name else {})},
        )
        user_ids = _store_users(portal, snapshot, now)
        user_of_subject = {link.subject_uuid: user_ids[link.user_uuid] for link in snapshot.links}

        current = [s.uuid for s in snapshot.subjects]
        listed = set(current)
        # One read finds both the stored rows to compare and this job's rows missing from its lists.
        stored, missing = {}, []
        for uuid, pk, *values in Subject.objects.filter(Q(portal=portal, uuid__in=current) | Q(job=job)).values_list(
                "uuid", "id", *COMPARED):
            if uuid in listed:
                stored[uuid] = (pk, tuple(values))
            else:
                missing.append(pk)
        rows = {True: [], False: []}
        for s in snapshot.subjects:
            checked = s.uuid in snapshot.keys_checked
            values = (job.pk, s.name, s.first_name, s.last_name, s.external_id, s.group, s.country, s.phone_number, s.email,
                      s.delivery_contacts, s.uuid in snapshot.buyers, s.image_count, user_of_subject.get(s.uuid))
            if not checked and s.uuid in stored and stored[s.uuid][1] == values:
                continue  # unchanged (built as a tuple: a model instance per subject costs more than the compare)
            rows[checked].append(Subject(
                portal=portal, uuid=s.uuid, **dict(zip(COMPARED, values)),
                access_key=snapshot.access_keys.get(s.uuid, ""), access_key_checked_at=now if checked else None, synced_at=now,
            ))
        # Only a key Netlife was asked about now overwrites the stored one (a
        # revoked key becomes ""); the others keep their key and its check time.
        for checked, batch in rows.items():
            Subject.objects.bulk_create(batch, update_conflicts=True, unique_fields=["portal", "uuid"],
                                        update_fields=WRITTEN + (["access_key", "access_key_checked_at"] if checked else []),
                                        batch_size=BATCH)
        removed = 0
        if snapshot.complete and missing:  # only after a complete read of the job
            _total, per_model = Subject.objects.filter(pk__in=missing).delete()
            removed = per_model.get(Subject._meta.label, 0)  # not the cascaded activity links
        # After the upsert every listed subject is in this job; after a complete read
        # nothing else is, and the job names them more cheaply than 250 uuids do.
        of_job = Subject.objects.filter(job=job) if snapshot.complete else Subject.objects.filter(portal=portal, uuid__in=current)
        of_job.update(synced_at=now)

        subject_ids = {uuid: pk for uuid, (pk, _values) in stored.items()}
        created = [uuid for uuid in current if uuid not in stored]
        if created:
            subject_ids.update(_ids(Subject, portal, created))
        activities = activity_ids(portal) if activities is None else activities
        pairs = set()
        for s in snapshot.subjects:
            for activity_uuid in snapshot.details.activities_of(s):
                if activity_uuid in activities:
                    pairs.add((subject_ids[s.uuid], activities[activity_uuid]))
        links = SubjectActivity.objects.filter(subject__job=job) if snapshot.complete else \
            SubjectActivity.objects.filter(subject_id__in=subject_ids.values())
        held = {(subject, activity): pk for pk, subject, activity in links.values_list("id", "subject_id", "activity_id")}
        gone = [pk for pair, pk in held.items() if pair not in pairs]
        if gone:
            SubjectActivity.objects.filter(pk__in=gone).delete()
        SubjectActivity.objects.bulk_create([SubjectActivity(subject_id=s, activity_id=a) for s, a in pairs - set(held)],
                                            batch_size=BATCH)

    _count(run, snapshot, created=len(created), removed=removed)


def _count(run, snapshot, *, created, removed):
    # the seed client's statistics, by its names
    subjects = snapshot.subjects
    run.count("subjects_total", len(subjects))
    run.count("subjects_buyers", len(snapshot.buyers))
    run.count("subjects_non_buyers", len(subjects) - len(snapshot.buyers))
    run.count("subjects_with_phones", sum(1 for s in subjects
                                          if s.phone_number or any(c.get("mobile_phone") for c in s.delivery_contacts)))
    run.count("subjects_with_emails", sum(1 for s in subjects
                                          if s.email or any(c.get("email_address") for c in s.delivery_contacts)))
    run.count("subjects_with_images", sum(1 for s in subjects if s.image_count))
    run.count("registered_users_checked", len(subjects))
    run.count("registered_users_found", len(snapshot.links))
    run.count("access_keys_existing", sum(1 for k in snapshot.access_keys.values() if k) - snapshot.keys_created)
    run.count("access_keys_created", snapshot.keys_created)
    run.count("access_keys_revoked", snapshot.keys_revoked)
    run.count("access_keys_reused", snapshot.keys_reused)
    # photographed, yet no activity found: such a subject drops out of every campaign
    run.count("subjects_without_activity", sum(1 for s in subjects if s.image_count and not snapshot.details.activities_of(s)))
    # ours
    run.count("subjects_created", created)
    run.count("user_details_fetched", len(snapshot.user_details))
    if removed:
        run.count("subjects_removed", removed)
    if not snapshot.complete:
        run.count("subject_removal_skipped_jobs")


def open_set_aside_keys(portal):
    """(kind, key) of this portal's open set-aside records, read once per run."""
    return set(SetAsideRecord.objects.filter(app="campaigns", status=SetAsideRecord.Status.OPEN,
                                             key__startswith=f"{portal.key}/").values_list("kind", "key"))


def store_job_snapshot(run, row, snapshot, started, *, activities=None, open_keys=None):
    """Store one fetched job with its failed users and keys set aside, in one transaction;
    close the open records of the users, keys, subject rows and job that went through.
    `open_keys` (from open_set_aside_keys at the run's start) spares the queries for
    records that are not open; without it they are looked up."""
    with transaction.atomic():
        store_job(row, snapshot, started, run, activities)
        for kind, key, reason, context, payload in snapshot.failures:
            run.set_aside(kind, key, reason, context=context, payload=payload)
    failed = {(kind, key) for kind, key, *_ in snapshot.failures}
    run.count("subjects_failed", sum(1 for kind, _ in failed if kind == "subject"))
    run.count("users_failed", sum(1 for kind, _ in failed if kind == "user"))
    run.count("access_keys_failed", sum(1 for kind, _ in failed if kind == "access_key"))
    went_through = {
        "job": [f"{row.key}/{snapshot.uuid}"],
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
