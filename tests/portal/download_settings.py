"""The portal's settings plus one test view that hands out files through
portal.storage.serve_file, as the apps' download views will."""

from portal.settings import *  # noqa: F401,F403

ROOT_URLCONF = "tests.portal.download_urls"
