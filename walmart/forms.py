import re

from django import forms

EVENT_ID = re.compile(r"^\d{1,20}$")


class MfaCodeForm(forms.Form):
    mfa_code = forms.RegexField(regex=r"^\d{4,8}$", label="MFA code", max_length=8,
                                error_messages={"invalid": "The MFA code is the 6 digits from the SMS."},
                                widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))


class DownloadEdrsForm(forms.Form):
    date = forms.DateField(required=False, input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD: the approved events of that date.",
                           widget=forms.DateInput(attrs={"type": "date"}),
                           error_messages={"invalid": "Malformed date; use YYYY-MM-DD."})
    event_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                help_text="Or event ids, separated by commas, spaces or new lines.")

    def clean_event_ids(self):
        ids = [v for v in re.split(r"[\s,;]+", self.cleaned_data["event_ids"]) if v]
        bad = [v for v in ids if not EVENT_ID.match(v)]
        if bad:
            raise forms.ValidationError(f"Event ids are numbers; not: {', '.join(bad[:5])}.")
        return ids

    def clean(self):
        data = super().clean()
        if bool(data.get("date")) == bool(data.get("event_ids")):
            if not self.errors:
                raise forms.ValidationError("Give either a date or a list of event ids.")
        return data


class AssignmentImportForm(forms.Form):
    csv_file = forms.FileField(label="CSV file", help_text="Columns: event_id, employee_name and optionally event_date (YYYY-MM-DD).")
