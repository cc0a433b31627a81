"""The public Python API for SMS text: `notifier.sms.analyze`, `notifier.sms.fold` and friends.

The code lives in `notifier.text.sms`; this import path is part of the published contract.
"""

from notifier.text.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    POLICIES,
    MessageTooLong,
    PreparedSms,
    SmsAnalysis,
    analyze,
    apply_policy,
    check_limit,
    clean,
    fold,
    is_gsm7,
    prepare,
    split,
)

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "POLICIES",
    "MessageTooLong",
    "PreparedSms",
    "SmsAnalysis",
    "analyze",
    "apply_policy",
    "check_limit",
    "clean",
    "fold",
    "is_gsm7",
    "prepare",
    "split",
]
