"""The rules for MFA codes, event ids and date-or-ids live once: the admin form
and the API serializer give the same answer in the same words."""

import pytest

from walmart.api.serializers import AuthenticateSerializer, BatchDownloadSerializer
from walmart.forms import DownloadEdrsForm, MfaCodeForm


def form_errors(form):
    form.is_valid()
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def serializer_errors(serializer):
    serializer.is_valid()
    return " ".join(str(e) for errors in serializer.errors.values() for e in errors)


# Arabic-Indic and Devanagari digits: `\d` takes them, Retail Link would count them as a wrong code.
@pytest.mark.parametrize("code", ["12", "1234", "12345678", "abcdef", "123456789", "", "\u0661\u0662\u0663\u0664\u0665\u0666",
                                  "\u0967\u0968\u0969\u096a\u096b\u096c", "\uff11\uff12"])
def test_a_bad_mfa_code_is_refused_alike(code):
    form, api = form_errors(MfaCodeForm({"mfa_code": code})), serializer_errors(AuthenticateSerializer(data={"mfa_code": code}))
    assert form and api
    if code:
        assert "6 digits from the SMS" in form and "6 digits from the SMS" in api


def test_a_good_mfa_code_passes_both():
    assert MfaCodeForm({"mfa_code": " 123456 "}).is_valid()
    assert AuthenticateSerializer(data={"mfa_code": "123456"}).is_valid()


def test_a_code_typed_in_full_width_digits_is_sent_as_ascii_by_both():
    full_width = "\uff11\uff12\uff13\uff14\uff15\uff16"
    form, api = MfaCodeForm({"mfa_code": full_width}), AuthenticateSerializer(data={"mfa_code": full_width})
    assert form.is_valid() and api.is_valid()
    assert form.cleaned_data["mfa_code"] == api.validated_data["mfa_code"] == "123456"


def test_bad_event_ids_are_named_alike():
    form = form_errors(DownloadEdrsForm({"event_ids": "606100, x12, 7y"}))
    api = serializer_errors(BatchDownloadSerializer(data={"event_ids": ["606100", "x12", "7y"]}))
    assert form == api == "Event ids are numbers; not: x12, 7y."


@pytest.mark.parametrize("data", [{}, {"date": "2025-10-06", "event_ids": ["606100"]}])
def test_date_or_ids_alike(data):
    form_data = {**data, "event_ids": " ".join(data.get("event_ids", []))}
    form = form_errors(DownloadEdrsForm(form_data))
    api = serializer_errors(BatchDownloadSerializer(data=data))
    assert form == api == "Give either a date (YYYY-MM-DD) or a list of event ids, not both or neither."
