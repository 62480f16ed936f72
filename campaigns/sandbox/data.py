"""The sandbox's portals: deterministic jobs, activities, subjects, users, keys.

Built from a fixed seed so tests can state the ground truth. Phone numbers are
in the 555-01xx range reserved for fiction; e-mails are @example.com.
"""

import uuid

NAMESPACE = uuid.UUID("6f1d3c52-9a57-4c6b-9a7e-1d2f0b5c8e41")

FIRST = ["Emma", "Liam", "Olivia", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas", "Harper", "Mason"]
LAST = ["Hansen", "Johnson", "Olsen", "Smith", "Larsen", "Brown", "Berg", "Miller", "Dahl", "Davis", "Moen", "Garcia"]

# portal -> jobs: (name, subjects, [(activity name, status)])
PORTALS = {
    "nowandforeverphoto": [
        ("Lincoln High Seniors 2026", 130, [("Senior portraits", "in-webshop"), ("Retakes", "in-webshop")]),
        ("Oak Ridge Elementary Fall", 40, [("Fall picture day", "in-webshop")]),
        ("Riverside Soccer Club", 15, [("Team photos", "in-production")]),
    ],
    "legacyphoto": [("Westfield Academy Class of 2026", 25, [("Cap and gown", "in-webshop")])],
    "westpointportraits": [("USMA Plebe Portraits", 12, [("Reception day", "in-webshop")])],
    "coastguardportraits": [("USCGA Swab Summer", 8, [("Swab portraits", "in-webshop")])],
}
EMPTY_PORTALS = ["generationsphotos", "nowandgen", "legacyseniorphotos", "legacyphotos", "midshipmenportraits"]

# How each portal shapes its replies. The contract allows each of these; every
# one is served by at least one portal so the client's branches all run:
# - links: the next-page link form (absolute, host-relative "/netlife/.../users?page=2",
#   path-relative "users?page=2", query-only "?page=2");
# - images: subject images as dicts carrying their activity, or as bare uuid
#   strings (the seed's client's shape) whose activity is only in the job's
#   images; in the "uuids" shape neither the subject nor the job's images name
#   the other side, so only the image-uuid join finds the activity;
# - favorite: whether subject rows carry `image` and `favorite_image_uuid` (one more
#   image uuid to join on). Without them (westpointportraits) a subject's uuid-string
#   images are its only link to its activity: a client dropping string images loses it;
# - keyed: the job's `subjects` and `images` as objects keyed by uuid.
SHAPES = {
    "nowandforeverphoto": {"links": "absolute", "images": "dicts", "keyed": False, "favorite": True},
    "legacyphoto": {"links": "query", "images": "uuids", "keyed": True, "favorite": True},
    "westpointportraits": {"links": "path", "images": "uuids", "keyed": False, "favorite": False},
    "coastguardportraits": {"links": "host", "images": "dicts", "keyed": True, "favorite": True},
}
DEFAULT_SHAPE = {"links": "absolute", "images": "dicts", "keyed": False, "favorite": True}
LINK_FORMS = ("absolute", "host", "path", "query")
IMAGE_SHAPES = ("dicts", "uuids")
# Keys of a generated subject that are the sandbox's own bookkeeping, never served (see _subject_row).
PRIVATE_SUBJECT_KEYS = ("_has_order",)

# legacyphoto has a few international families whose only number of their own
# is a Norwegian landline (Oslo 22 xx xx xx): valid, but it takes no SMS.
LANDLINE_EVERY = 8


def shape_of(key):
    return dict(SHAPES.get(key, DEFAULT_SHAPE))
ALL_PORTALS = list(PORTALS) + EMPTY_PORTALS


def _uuid(*parts):
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


# Real US area codes (libphonenumber rejects unassigned ones such as 211 or 221);
# the 555-01xx lines are the range reserved for fiction.
AREA_CODES = [201, 202, 212, 213, 303, 305, 312, 313, 415, 503, 602, 617, 702, 713, 801, 907, 404, 206, 214, 216,
              225, 239, 240, 248, 251, 253, 256, 260, 262, 267]


def _area(offset):
    return AREA_CODES[offset % len(AREA_CODES)]


def _phone(offset, n, style):
    area = _area(offset)
    line = f"01{n % 100:02d}"
    return [f"({area}) 555-{line}", f"{area}.555.{line}", f"+1 {area} 555 {line}", f"1{area}555{line}"][style % 4]


def build_portal(key):
    """One portal's data: activities, jobs (with subjects, user links, keys), users."""
    activities, jobs, users = [], {}, {}
    for job_index, (job_name, subject_count, job_activities) in enumerate(PORTALS.get(key, [])):
        job_uuid = _uuid(key, "job", job_index)
        activity_rows = []
        for a_index, (a_name, status) in enumerate(job_activities):
            activity_rows.append({
                "uuid": _uuid(key, job_uuid, "activity", a_index),
                "name": a_name,
                "status": {"id": status, "name": status.replace("-", " ").title()},
                "starting": f"2026-0{(a_index % 9) + 1}-1{job_index}T09:00:00+00:00",
                "ending": None,
                "job": {"uuid": job_uuid, "name": job_name},
            })
        activities.extend(activity_rows)
        subjects, links, keys = [], [], {}
        area = job_index * 3 + ALL_PORTALS.index(key) * 10  # an offset into AREA_CODES
        for i in range(subject_count):
            subject_uuid = _uuid(key, job_uuid, "subject", i)
            first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST) + job_index) % len(LAST)]
            # Siblings: subjects 10k and 10k+1 share a parent, so the same mobile shows up twice.
            parent_n = i - 1 if i % 10 == 1 else i
            parent_phone = _phone(area + (parent_n // 100), parent_n, parent_n)
            activity = activity_rows[i % len(activity_rows)]
            has_images = i % 7 != 6
            images = [
                {"uuid": _uuid(subject_uuid, "image", n), "activity": {"uuid": activity["uuid"]}, "subject_uuid": subject_uuid}
                for n in range(2 if has_images else 0)
            ]
            phone = "" if i % 5 == 4 else _phone(area + (i // 100), i, i + 1) if i % 3 == 2 else parent_phone
            country = "US"
            if key == "legacyphoto" and i % LANDLINE_EVERY == 7:
                phone, country = f"22 12 34 {i:02d}", "NO"
            subjects.append({
                "uuid": subject_uuid,
                "name": f"{first} {last}",
                "first_name": first,
                "last_name": last,
                "external_id": f"S{job_index}{i:04d}",
                "group": f"Class {chr(65 + i % 4)}",
                "country": country,
                # A fifth have no phone of their own; the delivery contact may still have one.
                "phone_number": phone,
                "email": f"{first}.{last}.{i}@example.com".lower() if i % 4 != 3 else None,
                "delivery_1": {"name": f"Parent of {first}", "email_address": f"parent.{parent_n}.{job_index}@example.com",
                               "mobile_phone": parent_phone} if i % 6 != 5 and country == "US" else None,
                "delivery_2": {"name": "", "email_address": "", "mobile_phone": parent_phone} if i % 9 == 0 and country == "US" else None,
                "images": images,
                "group_images": [],
                "image": images[0]["uuid"] if images else None,
                "favorite_image_uuid": images[0]["uuid"] if images else None,
                "activity_uuid": activity["uuid"],
                "_has_order": i % 3 == 0,
            })
            if i % 5 != 3:  # most families register; the big job's links straddle a 100-row page
                user_uuid = _uuid(key, "user", parent_n, job_index)
                users[user_uuid] = {"name": f"Parent of {first} {last}", "email_address": f"Parent.{parent_n}.{job_index}@Example.com",
                                    "phone_number": parent_phone if i % 4 == 0 else ""}
                links.append({"subjectUuid": subject_uuid, "userUuid": user_uuid, "userUsername": f"parent.{parent_n}.{job_index}@example.com"})
            if has_images and i % 4 == 0:
                keys[subject_uuid] = [f"K{job_index}{i:03d}{key[:3].upper()}"]
        jobs[job_uuid] = {"uuid": job_uuid, "name": job_name, "subjects": subjects, "links": links, "keys": keys}
        # a private key not listed in PRIVATE_SUBJECT_KEYS would be served to the client
        unlisted = {k for k in (subjects[0] if subjects else {}) if k.startswith("_")} - set(PRIVATE_SUBJECT_KEYS)
        assert not unlisted, f"add {unlisted} to PRIVATE_SUBJECT_KEYS"
    return {"activities": activities, "jobs": jobs, "users": users}
