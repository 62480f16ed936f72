"""Demo configuration: the CheckOut sandbox's autosysop key in the settings row."""

from .models import CheckinSettings
from .sandbox import DEMO_CHECKOUT_API_KEY


def seed():
    settings_row = CheckinSettings.load()
    if settings_row.checkout_api_key:
        return ["checkin: CheckOut API key already set (left as is)."]
    settings_row.checkout_api_key = DEMO_CHECKOUT_API_KEY
    settings_row.save()
    return ["checkin: CheckOut API key set to the sandbox's demo key; use 'Fetch users now' in the admin."]
