"""Phone numbers to E.164 for SMS, through Google's libphonenumber (`phonenumbers`).

Netlife stores what parents typed: "(201) 555-0101", "201.555.0101",
"+1 201 555 0101", "12015550101", "0047 912 34 567". A number with a "+" or
"00" prefix keeps its country code; otherwise it is read in the subject's
country, or the portal's default calling code. Only numbers that can receive
an SMS are kept: MOBILE, or FIXED_LINE_OR_MOBILE where the numbering plan does
not tell the two apart (US/Canada). A landline is reported with its reason,
never texted.
"""

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

SMS_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

# Reasons a number is not texted (also the export's counter suffixes).
INVALID = "invalid"
LANDLINE = "landline"
NOT_MOBILE = "not_mobile"  # valid but neither mobile nor landline: VoIP, pager, premium rate, ...

# Country names Netlife's `country` field carries besides ISO codes.
_COUNTRY_NAMES = {
    "USA": "US", "UNITED STATES": "US", "CANADA": "CA", "NORWAY": "NO", "NORGE": "NO", "NOR": "NO",
    "SWEDEN": "SE", "SVERIGE": "SE", "DENMARK": "DK", "DANMARK": "DK", "FINLAND": "FI", "UK": "GB",
    "UNITED KINGDOM": "GB", "GERMANY": "DE", "DEUTSCHLAND": "DE",
}


@dataclass(frozen=True)
class PhoneCheck:
    """E.164 when the number can take an SMS; otherwise "" and why not."""

    e164: str
    reason: str = ""

    def __bool__(self):
        return bool(self.e164)


def region_for(country, default_code="1"):
    """An ISO region for parsing a national number: the subject's country, else the calling code's main region."""
    text = (country or "").strip().upper()
    text = _COUNTRY_NAMES.get(text, text)
    if len(text) == 2 and text in phonenumbers.SUPPORTED_REGIONS:
        return text
    code = str(default_code or "1").lstrip("+")
    return phonenumbers.region_code_for_country_code(int(code)) if code.isdigit() else "US"


def check(raw, *, country="", default_code="1") -> PhoneCheck:
    text = str(raw or "").strip()
    if not text:
        return PhoneCheck("", INVALID)
    if text.startswith("00"):
        text = "+" + text[2:]
    region = region_for(country, default_code)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return PhoneCheck("", INVALID)
    if not phonenumbers.is_valid_number(number):
        return PhoneCheck("", INVALID)
    kind = phonenumbers.number_type(number)
    if kind not in SMS_TYPES:
        return PhoneCheck("", LANDLINE if kind == PhoneNumberType.FIXED_LINE else NOT_MOBILE)
    return PhoneCheck(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def normalise(raw, *, country="", default_code="1"):
    """E.164 ("+12015550101") or "" when the value is not a number that takes an SMS."""
    return check(raw, country=country, default_code=default_code).e164


def to_e164(raw, *, default_code="1"):
    """Any valid number in E.164, landlines included, or "" (for lists of numbers not to
    text, such as opt-outs: a number is listed as the send will see it, whatever its type)."""
    text = str(raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region_for("", default_code))
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.format_number(number, PhoneNumberFormat.E164) if phonenumbers.is_valid_number(number) else ""
