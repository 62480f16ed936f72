"""The SMS account's "send a test message to my phone" (admin action, API, one operation)."""

import logging

from portal.runs import OperationFailed, operation

from ..models import OptOut, SmsAccount
from ..twilio_client import TwilioClient, TwilioRefused

logger = logging.getLogger(__name__)


def refusal_for_test_phone(phone):
    """Why `phone` may not get a test message, or "": an opted-out number is never texted, not even a test."""
    if phone and OptOut.blocked_numbers([phone]):
        return "This number is on the opt-out list: it is never texted, not even a test message."
    return ""


@operation("campaigns", "send_test_sms", lock=False, target=lambda params: str(params.get("account", "")))
def send_test_sms(run, account, phone=""):
    """Send one test text from the account to `phone` (default: its test phone). Not idempotent: one text per call."""
    row = SmsAccount.objects.filter(pk=account).first()
    if row is None:
        raise OperationFailed(f"No SMS account #{account}.")
    phone = phone or row.test_phone
    if not phone:
        raise OperationFailed("Set the account's test phone first.")
    refusal = refusal_for_test_phone(phone)
    if refusal:
        raise OperationFailed(refusal)
    sender = row.sender_for(phone)
    if sender is None:
        raise OperationFailed("An alphanumeric sender cannot text a US or Canadian number; set the US/CA sender.")
    try:
        message = TwilioClient.for_account(row).create_message(
            to=phone, body=f"Test message from the operations portal ({row.name}).", sender=sender)
    except TwilioRefused as exc:
        # Twilio quotes the number ("Invalid 'To' Phone Number: +1…"): the run's error is
        # kept for months, the number is personal data, so it never goes in
        raise OperationFailed(f"Twilio refused the test message (code {exc.code}): "
                              f"{str(exc).replace(phone, '<the test phone>')}") from None
    run.count("sent")
    run.ok()
    logger.info("test message sent: %s", message.sid)
    return {"sid": message.sid, "status": message.status}
