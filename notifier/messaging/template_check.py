"""Every SMS template, measured with typical and worst-case personalisation.

Run at start-up (a template or an office setting that would break the hard length limit stops
the app with a clear message) and in the tests (every template within one GSM segment, folded,
for typical data; within the hard limit for the worst case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.core.config import Settings
from notifier.messaging.outbox import office_personalisation
from notifier.text import sms, templating

# (typical, worst case) for every variable a template may use. The worst cases are the longest
# values the service lets in: a 300-character procedure name, a 64-character dossier code...
SAMPLES: dict[str, tuple[Any, Any]] = {
    "code": ("000.00.31.H26-250714-0001", "000.00.31.H26-250714-0001".ljust(64, "9")),
    "procedure": (
        "Chứng thực bản sao từ bản chính",
        (
            "Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản khác gắn liền "
            "với đất cho hộ gia đình, cá nhân, cộng đồng dân cư, người Việt Nam định cư ở nước "
            "ngoài được sở hữu nhà ở tại Việt Nam đã đăng ký quyền sử dụng đất lần đầu"
        ).ljust(300, "."),
    ),
    "due_date": ("2025-07-16", "2025-12-31"),
    "new_due_date": ("2025-07-21", "2025-12-31"),
    "note": ("Thiếu bản sao giấy khai sinh", "Bổ sung giấy tờ theo quy định. ".ljust(300, "x")),
    "citizen_name": ("Nguyễn Văn An", "Tôn Nữ Thị Phương Hoàng Ngọc Diễm Lệ".ljust(200, "a")),
    # Reminders (notifier.reminders): a reception booking, a result waiting to be collected.
    "ready_date": ("2025-07-14", "2025-12-31"),
    # Reception replies and notices (notifier.reception, notifier.inbound).
    "number": (2, 999_999),
    "weekday": ("Thứ 4", "Chủ nhật"),
    "date": ("16/07/2025", "31/12/2025"),
    "time": ("08:15", "23:59"),
    "location": ("Phòng tiếp công dân UBND xã", "Phòng tiếp công dân ".ljust(300, ".")),
    "booking_code": ("K7M4PX", "K7M4PX"),
    "reason": ("Chủ tịch đi họp tại tỉnh", "Chủ tịch đi họp đột xuất. ".ljust(500, "x")),
    "sessions": (
        [
            {"number": 2, "weekday": "Thứ 4", "day": "16/07", "start": "08:00", "remaining": 4},
            {"number": 3, "weekday": "Thứ 4", "day": "23/07", "start": "08:00", "remaining": 0},
            {"number": 4, "weekday": "Thứ 4", "day": "30/07", "start": "14:00", "remaining": 10},
        ],
        [
            {
                "number": 999_999,
                "weekday": "Chủ nhật",
                "day": "31/12",
                "start": "23:59",
                "remaining": 0,
            }
        ]
        * 3,
    ),
    "count": (2, 999),
    "bookings": (
        [
            {"code": "K7M4PX", "day": "16/07", "time": "08:15"},
            {"code": "Q2W9ZD", "day": "23/07", "time": "09:30"},
        ],
        [{"code": "K7M4PX", "day": "31/12", "time": "23:59"}] * 5,
    ),
    "status_text": ("cần bổ sung giấy tờ", "đã có kết quả, mời Ông/Bà đến nhận"),
    "overdue": (False, True),
}
GENERIC_WORST = "x" * 40


@dataclass(frozen=True)
class Measurement:
    template: str
    language: str
    typical: sms.SmsAnalysis
    worst: sms.SmsAnalysis
    unknown_variables: frozenset[str]


def _values(settings: Settings, variables: set[str], index: int) -> dict[str, Any]:
    values = {
        name: SAMPLES[name][index] if name in SAMPLES else GENERIC_WORST for name in variables
    }
    return {**values, **office_personalisation(settings)}


def measure(settings: Settings) -> list[Measurement]:
    """Render every template in every language with typical and worst-case data, folded."""
    rows = []
    for name in templating.template_names():
        for language in templating.LANGUAGES:
            variables = templating.required_variables(name, language)
            typical, worst = (
                sms.analyze(
                    sms.fold(templating.render(name, _values(settings, variables, i), language))
                )
                for i in (0, 1)
            )
            unknown = variables - SAMPLES.keys() - office_personalisation(settings).keys()
            rows.append(Measurement(name, language, typical, worst, frozenset(unknown)))
    return rows


def check(settings: Settings) -> list[Measurement]:
    """Raise TemplateError naming every template whose worst case breaks the hard limit."""
    rows = measure(settings)
    too_long = [
        f"{row.language}/{row.template}: {row.worst.segments} segments, {row.worst.characters} characters"
        for row in rows
        if row.worst.segments > settings.SMS_MAX_SEGMENTS
        or row.worst.characters > settings.SMS_MAX_CHARACTERS
    ]
    if too_long:
        raise templating.TemplateError(
            f"SMS templates exceed the hard limit ({settings.SMS_MAX_SEGMENTS} segments / "
            f"{settings.SMS_MAX_CHARACTERS} characters) with worst-case data: "
            + "; ".join(too_long)
        )
    return rows
