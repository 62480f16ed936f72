"""Phone numbers to E.164 for SMS, without guessing beyond what the digits say.

Netlife stores what parents typed: "(201) 555-0101", "201.555.0101",
"+1 201 555 0101", "12015550101", "0047 912 34 567". A number with a "+" or
"00" prefix keeps its country code; otherwise the subject's country (or the
portal's default calling code) is prefixed, dropping a national trunk "0".
Anything outside 8-15 digits is not a phone number an SMS gateway accepts.
"""

import re

# Countries the portals serve (US military academies, Norwegian studios, ...).
CALLING_CODES = {
    "US": "1", "USA": "1", "UNITED STATES": "1", "CA": "1", "CANADA": "1",
    "NO": "47", "NOR": "47", "NORWAY": "47", "NORGE": "47",
    "SE": "46", "SWEDEN": "46", "DK": "45", "DENMARK": "45", "FI": "358", "FINLAND": "358",
    "GB": "44", "UK": "44", "UNITED KINGDOM": "44", "DE": "49", "GERMANY": "49",
}
NATIONAL_LENGTH = {"1": 10, "47": 8, "46": 9, "45": 8, "358": 9, "44": 10, "49": 11}


def calling_code(country, default="1"):
    return CALLING_CODES.get((country or "").strip().upper(), default)


def normalise(raw, *, country="", default_code="1"):
    """E.164 ("+12015550101") or "" when the value cannot be a mobile number."""
    if not raw:
        return ""
    text = str(raw).strip()
    international = text.startswith(("+", "00"))
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not international:
        code = calling_code(country, default_code)
        national = NATIONAL_LENGTH.get(code)
        if digits.startswith(code) and national and len(digits) == len(code) + national:
            pass  # already carries its country code (e.g. 12015550101)
        else:
            if code != "1" and digits.startswith("0"):
                digits = digits[1:]  # trunk prefix
            digits = code + digits
    if not 8 <= len(digits) <= 15:
        return ""
    if digits.startswith("1") and len(digits) != 11:
        return ""  # NANP numbers are exactly 1 + 10 digits
    return "+" + digits
