"""What a Netlife portal's replies hold, read into records (the client's other half).

Every reader here is lenient where the seed's client was (lists or objects keyed
by uuid, images as dicts or bare uuids, links in several forms) and strict where
a row cannot be keyed: it raises UpstreamBadResponse, and the caller sets the row
aside. `fingerprint` names a reply's exact bytes: a re-read page with the same
bytes is not parsed again (SubjectPage, services/sync_store.page_state).
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from portal.http import UpstreamBadResponse


PER_PAGE = 100  # what we ask for; a portal may send fewer and page on


def fingerprint(body: bytes) -> str:
    """A reply's exact bytes as a short digest: equal only when every byte is."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _text(value, limit=255):
    return str(value).strip()[:limit] if value not in (None, "") else ""


def _when(value):
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value.replace(" ", "T"))
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _rows(body, what):
    """Rows from `data`, `results` or a bare list (all three are seen)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "results"):
            if isinstance(body.get(key), list):
                return body[key]
            if isinstance(body.get(key), dict):
                return list(body[key].values())  # keyed by uuid
    raise UpstreamBadResponse(f"netlife's {what} reply holds no list", upstream="netlife")


def _object(body, what):
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return body["data"]
    if isinstance(body, dict) and "data" not in body:
        return body
    raise UpstreamBadResponse(f"netlife's {what} reply holds no object", upstream="netlife")


def _values(container):
    """`subjects` and `images` come as a list or as an object keyed by uuid;
    an image may also be a bare uuid string (the seed's client reads those)."""
    if isinstance(container, list):
        return [item if isinstance(item, dict) else {"uuid": item} for item in container
                if isinstance(item, dict) or (isinstance(item, str) and item)]
    if isinstance(container, dict):
        rows = []
        for key, item in container.items():
            if isinstance(item, dict):
                rows.append({"uuid": key, **item})
        return rows
    return []


def _activity_of(image):
    activity = image.get("activity")
    uuid = activity.get("uuid") if isinstance(activity, dict) else activity if isinstance(activity, str) else None
    return uuid or image.get("activity_uuid")


@dataclass(frozen=True)
class ActivityRecord:
    uuid: str
    name: str
    job_uuid: str
    job_name: str
    status: str
    starting: datetime | None
    ending: datetime | None

    @classmethod
    def parse(cls, raw):
        job = raw.get("job") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or not raw.get("uuid") or not isinstance(job, dict) or not job.get("uuid"):
            raise UpstreamBadResponse("netlife sent an activity without a uuid or job uuid", upstream="netlife")
        status = raw.get("status")
        return cls(
            uuid=_text(raw["uuid"], 64),
            name=_text(raw.get("name")),
            job_uuid=_text(job["uuid"], 64),
            job_name=_text(job.get("name")),
            status=_text(status.get("id") if isinstance(status, dict) else status, 60),
            starting=_when(raw.get("starting")),
            ending=_when(raw.get("ending")),
        )


@dataclass(frozen=True)
class JobDetails:
    name: str
    # subject uuid -> activity uuids its images were taken in (images naming their subject)
    subject_activities: dict[str, set[str]]
    # image uuid -> activity uuid: subjects whose images come as bare uuids are joined through it
    image_activities: dict[str, str] = field(default_factory=dict)
    digest: str = ""  # fingerprint of the reply: kept subject pages are trusted only while it is the same

    @classmethod
    def parse(cls, raw, digest=""):
        subject_activities: dict[str, set[str]] = {}
        image_activities: dict[str, str] = {}
        for image in _values(raw.get("images")):
            activity_uuid = _activity_of(image)
            subject = image.get("subject")
            subject_uuid = subject.get("uuid") if isinstance(subject, dict) else image.get("subject_uuid")
            if activity_uuid and image.get("uuid"):
                image_activities[str(image["uuid"])] = str(activity_uuid)
            if activity_uuid and subject_uuid:
                subject_activities.setdefault(str(subject_uuid), set()).add(str(activity_uuid))
        for subject in _values(raw.get("subjects")):
            if subject.get("uuid") and subject.get("activity_uuid"):
                subject_activities.setdefault(str(subject["uuid"]), set()).add(str(subject["activity_uuid"]))
        return cls(name=_text(raw.get("name")), subject_activities=subject_activities, image_activities=image_activities,
                   digest=digest)

    def activities_of(self, subject: "SubjectRecord") -> set[str]:
        """Every activity a subject was photographed in, whatever shape its images came in."""
        found = set(subject.activity_uuids) | self.subject_activities.get(subject.uuid, set())
        found.update(self.image_activities[i] for i in subject.image_uuids if i in self.image_activities)
        return found

    @property
    def activity_digest(self):
        """All that activities_of takes from this reply, as a digest: the same while no image changed activity."""
        return fingerprint(json.dumps([sorted((s, sorted(a)) for s, a in self.subject_activities.items()),
                                       sorted(self.image_activities.items())]).encode())

    def read(self):
        return self


@dataclass(frozen=True)
class UnreadJobDetails:
    """Job details with the bytes of the last sync's (`digest`): decoded only if needed."""

    digest: str
    body: bytes
    name: str = ""  # unknown, and unchanged: the stored job keeps its name

    def read(self) -> JobDetails:
        return JobDetails.parse(_object(json.loads(self.body), "job"), digest=self.digest)


@dataclass(frozen=True)
class SubjectRecord:
    uuid: str
    name: str
    first_name: str
    last_name: str
    external_id: str
    group: str
    country: str
    phone_number: str
    email: str
    delivery_contacts: list = field(default_factory=list)
    image_count: int = 0
    activity_uuids: frozenset = frozenset()
    image_uuids: frozenset = frozenset()

    @classmethod
    def parse(cls, raw):
        if not isinstance(raw, dict) or not raw.get("uuid"):
            raise UpstreamBadResponse("netlife sent a subject without a uuid", upstream="netlife")
        deliveries = []
        for key in ("delivery_1", "delivery_2"):
            contact = raw.get(key)
            if isinstance(contact, dict) and any(contact.get(k) for k in ("name", "email_address", "mobile_phone")):
                deliveries.append({k: _text(contact.get(k)) for k in ("name", "email_address", "mobile_phone")})
        images = _values(raw.get("images")) + _values(raw.get("group_images"))
        activities = {str(raw["activity_uuid"])} if raw.get("activity_uuid") else set()
        image_uuids = set()
        for image in images:
            if _activity_of(image):
                activities.add(str(_activity_of(image)))
            if image.get("uuid"):
                image_uuids.add(str(image["uuid"]))
        single = raw.get("image")
        single = single.get("uuid") if isinstance(single, dict) else single
        for extra in (single, raw.get("favorite_image_uuid")):
            if isinstance(extra, str) and extra:
                image_uuids.add(extra)
        has_single_image = bool(single or raw.get("favorite_image_uuid"))
        group = raw.get("group")
        return cls(
            uuid=_text(raw["uuid"], 64),
            name=_text(raw.get("name")),
            first_name=_text(raw.get("first_name"), 120),
            last_name=_text(raw.get("last_name"), 120),
            external_id=_text(raw.get("external_id"), 120),
            group=_text(group.get("name") if isinstance(group, dict) else group, 120),
            country=_text(raw.get("country"), 60),
            phone_number=_text(raw.get("phone_number"), 40),
            email=_text(raw.get("email"), 254).lower(),
            delivery_contacts=deliveries,
            image_count=len(images) or int(has_single_image),
            activity_uuids=frozenset(activities),
            image_uuids=frozenset(image_uuids),
        )


@dataclass(frozen=True)
class UserLink:
    subject_uuid: str
    user_uuid: str
    username: str

    @classmethod
    def parse(cls, raw):
        # camelCase here, unlike the rest of the API; the client also tries uuid/email.
        if not isinstance(raw, dict):
            return None
        subject_uuid = raw.get("subjectUuid") or raw.get("subject_uuid")
        user_uuid = raw.get("userUuid") or raw.get("uuid")
        if not subject_uuid or not user_uuid:
            return None
        return cls(_text(subject_uuid, 64), _text(user_uuid, 64), _text(raw.get("userUsername") or raw.get("email"), 254).lower())


@dataclass(frozen=True)
class UserDetails:
    name: str
    email: str
    phone_number: str

    @classmethod
    def parse(cls, raw):
        return cls(_text(raw.get("name")), _text(raw.get("email_address") or raw.get("email"), 254).lower(),
                   _text(raw.get("phone_number"), 40))


@dataclass(frozen=True)
class RejectedRow:
    """A list row the client could not read: its best label, why, and what came."""

    label: str
    reason: str
    raw: object


@dataclass
class SubjectPage:
    """One page of a job's subject list as read now; `digest` fingerprints its bytes.

    A page whose url and bytes are those of `known` (the last sync's entry for it,
    see job_subjects) is not decoded: `kept` is that entry's {uuid: flags} and
    `body` is held, should the store need the records after all."""

    url: str
    digest: str
    next_url: str | None
    uuids: list
    kept: dict | None = None
    body: bytes = b""
    readable: bool = True  # every row read: only such a page is fingerprinted


def capped_reason(what, cap, url):
    return (f"netlife's {what} list has more than NETLIFE_MAX_PAGES={cap} pages (stopped before {url}): "
            "not read whole, so nothing of this job is deleted")


class SubjectList(list):
    """SubjectRecords, with the rows that could not be read in `.rejected` and
    every page read in `.pages` (the subjects of a kept page are not in the list)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.rejected: list[RejectedRow] = []
        self.pages: list[SubjectPage] = []
        # why the list is not whole though every page read went through (the page cap), else ""
        self.capped = ""


def subject_records(body: bytes) -> list[SubjectRecord]:
    """The records of a kept page (every row of it was read when it was kept)."""
    return [SubjectRecord.parse(row) for row in _rows(json.loads(body), "subjects")]


def _row_label(row, position, has_order):
    # A row without a uuid still needs a name that stays the same from run to
    # run, so a re-failing row updates its set-aside record instead of adding one.
    if isinstance(row, dict) and row.get("external_id"):
        return f"external_id={_text(row['external_id'], 120)}"
    which = {True: "buyers", False: "non-buyers", None: "all"}[has_order]
    return f"{which}#{position}"


def _keys(body):
    """Access keys come as a list or {access_keys|data: [...]}, of {access_key}, {key} or strings."""
    items = body
    if isinstance(body, dict):
        items = body.get("access_keys") if isinstance(body.get("access_keys"), list) else body.get("data")
        if isinstance(items, dict):
            items = [items]
    if not isinstance(items, list):
        raise UpstreamBadResponse("netlife's access keys reply holds no list", upstream="netlife")
    keys = []
    for item in items:
        key = item.get("access_key") or item.get("key") if isinstance(item, dict) else item
        if isinstance(key, str) and key.strip():
            keys.append(key.strip())
    return keys


def _first_key(body):
    keys = _keys(body)
    return keys[0] if keys else None
