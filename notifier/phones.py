"""The public Python API for phone numbers: `notifier.phones.normalize` and friends.

The code lives in `notifier.text.phones`; this import path is part of the published contract.
"""

from notifier.text.phones import (
    OLD_MOBILE_PREFIXES,
    REASON_TEXT,
    InvalidPhoneNumber,
    mask,
    mask_text,
    normalize,
)

__all__ = [
    "OLD_MOBILE_PREFIXES",
    "REASON_TEXT",
    "InvalidPhoneNumber",
    "mask",
    "mask_text",
    "normalize",
]
