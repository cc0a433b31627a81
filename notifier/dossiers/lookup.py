"""A citizen asking about their own dossier (`HS <code>` by SMS, the USSD menu).

The status is told in plain words, and only to the phone the dossier belongs to: a stranger, or a
code that does not exist, gets the same polite refusal, so the answer reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.models import Dossier
from notifier.text import phones, sms
from notifier.text.textinput import clean_input

# Status key → (Vietnamese, English), phrased to follow "Hồ sơ <code> …" / "Dossier <code> …".
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "registered": ("mới đăng ký, chưa được tiếp nhận", "is registered, not yet received"),
    "received": ("đã được tiếp nhận, đang chờ xử lý", "has been received and awaits processing"),
    "not_accepted": ("không được tiếp nhận", "was not accepted"),
    "processing": ("đang được xử lý", "is being processed"),
    "supplement_requested": ("cần bổ sung giấy tờ", "needs more documents"),
    "fee_required": ("cần nộp phí, lệ phí", "has fees to pay"),
    "withdrawn": ("đã được rút theo yêu cầu", "was withdrawn at your request"),
    "stopped": ("đã dừng xử lý", "is no longer processed"),
    "ready": ("đã có kết quả, mời Ông/Bà đến nhận", "is ready: please come and collect it"),
    "returned": ("đã trả kết quả", "result has been handed over"),
}
# Statuses after which a due date no longer matters.
_SETTLED = frozenset({"not_accepted", "withdrawn", "stopped", "ready", "returned"})


def status_words(status: str, language: str = "vi", *, ascii_only: bool = False) -> str:
    """The status in plain words; `ascii_only` for screens without diacritics (USSD)."""
    vi, en = STATUS_WORDS.get(status, ("đang được xử lý", "is being processed"))
    words = en if language == "en" else vi
    return sms.fold(words) if ascii_only else words


@dataclass(frozen=True)
class DossierStatus:
    """What the owner of a dossier may be told about it."""

    code: str
    procedure: str
    status: str
    due_date: date | None
    overdue: bool

    def words(self, language: str = "vi", *, ascii_only: bool = False) -> str:
        return status_words(self.status, language, ascii_only=ascii_only)


def normalize_code(raw: str) -> str:
    """Dossier codes are accepted in any case and stored in upper case."""
    return clean_input(raw, multiline=False).upper()[:64]


def lookup_for_phone(session: Session, code: str, phone: str, today: date) -> DossierStatus | None:
    """The dossier `code` when `phone` is its citizen's number (compared as E.164), else None."""
    try:
        caller = phones.normalize(phone, allow_international=True)
    except phones.InvalidPhoneNumber:
        return None
    dossier = session.scalar(select(Dossier).where(Dossier.code == normalize_code(code)))
    if dossier is None or not dossier.phone:
        return None
    try:
        owner = phones.normalize(dossier.phone, allow_international=True)
    except phones.InvalidPhoneNumber:
        return None
    if owner != caller:
        return None
    overdue = (
        dossier.due_date is not None and dossier.due_date < today and dossier.status not in _SETTLED
    )
    return DossierStatus(
        code=dossier.code,
        procedure=dossier.procedure,
        status=dossier.status,
        due_date=dossier.due_date,
        overdue=overdue,
    )
