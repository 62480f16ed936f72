"""Retail Link operations: login steps, single EDR, EDR batch, the batch's zip,
session cleanup, event assignments. One module per concern; everything is re-exported here.

The admin, the API, the commands and the tasks all call these.
"""

from .archive import batch_zip, batch_zip_file  # noqa: F401
from .assignments import import_event_assignments, import_event_assignments_csv  # noqa: F401
from .batch import (  # noqa: F401
    KEEP_ALIVE_SECONDS,
    NOT_DONE,
    NOTHING_TO_RETRY,
    batch_failures,
    batch_params,
    output_directory,
    wait_for_batch,
    batch_summary,
    edr_batch,
    retry_batch_failures,
    retry_event,
    start_edr_batch,
    user_batch,
)
from .edr import (  # noqa: F401
    download_edr_run,
    download_one,
    employee_for,
    ems_client,
    fetch_edr,
    retaillink_target,
    store_report,
)
from .housekeeping import clear_expired_sessions  # noqa: F401
from .stats import batches_per_day  # noqa: F401
from .login import (  # noqa: F401
    CONFIGURATION_MISSING,
    AccountBusy,
    CodeTriesExhausted,
    MalformedCode,
    authenticate,
    code_tries_left,
    codes_refused_problem,
    logout,
    request_mfa,
    reset_wrong_codes,
    shared_account,
    tries_left,
)
