from django import forms
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from . import validation


def _rule(rule, value):
    try:
        return rule(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from exc


class MfaCodeForm(forms.Form):
    # The length is checked by the shared rule (same words as the API); the
    # browser's maxlength only helps typing.
    mfa_code = forms.CharField(label="MFA code", widget=UnfoldAdminTextInputWidget(
        attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6}))

    def clean_mfa_code(self):
        return _rule(validation.mfa_code, self.cleaned_data["mfa_code"])


class DownloadEdrsForm(forms.Form):
    date = forms.DateField(required=False, input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD: the approved events of that date.",
                           widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}),
                           error_messages={"invalid": validation.MALFORMED_DATE})
    event_ids = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
                                help_text="Or event ids, separated by commas, spaces or new lines.")

    def clean_event_ids(self):
        ids = validation.split_event_ids(self.cleaned_data["event_ids"])
        return _rule(validation.event_ids, ids) if ids else []

    def clean(self):
        data = super().clean()
        if not self.errors:
            _rule(lambda _: validation.date_or_ids(data.get("date"), data.get("event_ids")), None)
        return data


class AssignmentImportForm(forms.Form):
    csv_file = forms.FileField(label="CSV file", widget=UnfoldAdminFileFieldWidget, help_text="Columns: event_id, employee_name and optionally event_date (YYYY-MM-DD).")
