"""The USSD menu: dossier status and reception booking from any phone, by dialling a short code.

Aggregators post every step of a session with the whole path of inputs (`text`, joined by `*`),
so the menu is a small state machine replayed from the main menu on each request: `SCREENS`
says where each input leads, `_VIEWS` what each screen shows. Only the screen the path ends on is
shown, and only it may act (book, cancel, change consent): an input after a final screen ends the
session instead, so replaying a path never acts twice. `0` goes back, `00` to the main menu.

Everything a screen does goes through the domain the SMS keywords use (`reception`,
`dossier_lookup`, `consent`). Redis keeps, for `USSD_STATE_TTL_SECONDS`, only the rows a list
screen showed last (so a digit picks the row the caller saw, whatever changed since; forgotten
rows end the session rather than guess) and the answers given (a repeated request gets the same
answer and changes nothing).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from notifier import reception
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.dossiers import lookup
from notifier.inbound import conversation
from notifier.messaging import consent, outbox
from notifier.models import Message
from notifier.schemas.ussd import MAX_SCREEN
from notifier.text import phones, sms

log = logging.getLogger(__name__)

MAX_INPUTS: Final = 40  # a longer path is no human's session
BACK: Final = "0"
HOME: Final = "00"
SWITCH_LANGUAGE: Final = "9"  # on the main menu
LANGUAGES: Final = ("vi", "en")
CHANNEL: Final = "ussd"
SESSIONS_SHOWN: Final = conversation.SESSIONS_LISTED
BOOKINGS_SHOWN: Final = 3
_FIELD_CHARS: Final = 48  # host, place, office name: cut so the screen keeps its options
_KEY_PREFIX: Final = "notifier:ussd"

MAIN: Final = "main"


@dataclass(frozen=True)
class Screen:
    """Where input leads from a screen: `go` maps fixed digits to screens; `pick` is the screen
    a row chosen from the list leads to (its id goes along); `read` the screen free text leads to;
    an `end` screen is final (it acts, and the session ends)."""

    go: Mapping[str, str] = field(default_factory=dict)
    pick: str | None = None
    read: str | None = None
    end: bool = False


SCREENS: Final[Mapping[str, Screen]] = {
    MAIN: Screen(go={"1": "dossier_code", "2": "sessions", "3": "bookings", "4": "consent"}),
    "dossier_code": Screen(read="dossier"),
    "dossier": Screen(end=True),
    "sessions": Screen(pick="session"),
    "session": Screen(go={"1": "book"}),
    "book": Screen(end=True),
    "bookings": Screen(pick="booking"),
    "booking": Screen(go={"1": "cancel"}),
    "cancel": Screen(end=True),
    "consent": Screen(go={"1": "opt_in", "2": "opt_out"}),
    "opt_in": Screen(end=True),
    "opt_out": Screen(end=True),
}

# Written with diacritics like every other text; screens are folded to ASCII when shown.
TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "vi": {
        "main": "{office}",
        "main.options": (
            "1. Tra cứu hồ sơ\n2. Đặt lịch tiếp công dân\n3. Hủy lịch đã đặt\n"
            "4. Nhận/ngừng nhận tin nhắc\n9. English"
        ),
        "back": "0. Quay lại",
        "home": "00. Menu chính",
        "invalid": "Lựa chọn không hợp lệ.",
        "ended": "Phiên làm việc đã kết thúc. Xin Ông/Bà quay số lại.",
        "bad_phone": "Xin lỗi, số điện thoại này không dùng được dịch vụ. Xin liên hệ Bộ phận Một cửa.",
        "dossier_code": "Nhập mã hồ sơ (ví dụ 000.00.31.H26-250714-0001):",
        "dossier_found": "Hồ sơ {code} {status}.",
        "dossier_due": " Ngày hẹn trả: {due}.",
        "dossier_overdue": " Hồ sơ đã quá hạn, chúng tôi xin lỗi Ông/Bà.",
        "dossier_refused": (
            "Không tra cứu được hồ sơ này từ số điện thoại của Ông/Bà. "
            "Xin kiểm tra lại mã hồ sơ hoặc liên hệ Bộ phận Một cửa."
        ),
        "sessions": "Chọn buổi tiếp công dân:",
        "sessions.row": "{index}. {weekday} {day} {time}",
        "full_mark": " (hết chỗ)",
        "no_sessions": "Hiện chưa có buổi tiếp công dân nào nhận đặt lịch. Xin Ông/Bà quay lại sau.",
        "session": (
            "Buổi tiếp công dân {weekday} {date} lúc {start}, {host}, tại {location}. "
            "Còn {remaining} chỗ."
        ),
        "session.options": "1. Đồng ý đặt lịch",
        "booked": (
            "Đã đặt lịch. Mã: {booking_code}. Mời Ông/Bà đến lúc {time}, {weekday} {date}, "
            "tại {location}. Mã đã được gửi qua SMS."
        ),
        "already_booked": (
            "Ông/Bà đã có lịch buổi này. Mã: {booking_code}, đến lúc {time}, {weekday} {date}."
        ),
        "full": "Buổi {weekday} {date} đã hết chỗ. Xin Ông/Bà chọn buổi khác.",
        "past": "Buổi này đã bắt đầu hoặc đã diễn ra, không đặt lịch được nữa.",
        "session_cancelled": "Buổi này đã bị hủy. Xin Ông/Bà chọn buổi khác.",
        "unknown_session": "Không tìm thấy buổi này. Xin Ông/Bà quay số lại.",
        "phone_refused": (
            "Số điện thoại này không đặt lịch được. Xin Ông/Bà liên hệ Bộ phận Một cửa."
        ),
        "bookings": "Chọn lịch cần hủy:",
        "bookings.row": "{index}. {booking_code} {weekday} {day} {time}",
        "nothing_to_cancel": "Ông/Bà không có lịch nào sắp tới để hủy.",
        "booking": "Hủy lịch {booking_code}, {weekday} {date} lúc {time}?",
        "booking.options": "1. Đồng ý hủy",
        "cancelled": "Đã hủy lịch {booking_code}. Cảm ơn Ông/Bà đã báo trước.",
        "cancel_past": "Lịch {booking_code} đã qua, không hủy được nữa.",
        "consent": "Tin nhắc lịch và thông báo chung: Ông/Bà {state}.",
        "consent.on": "đang nhận",
        "consent.off": "đã ngừng nhận",
        "consent.options": "1. Nhận tin nhắc\n2. Ngừng nhận tin nhắc",
        "opted_in": "Ông/Bà sẽ nhận lại tin nhắc lịch và thông báo chung.",
        "opted_out": (
            "Ông/Bà đã ngừng nhận tin nhắc lịch và thông báo chung. Kết quả hồ sơ vẫn được gửi."
        ),
    },
    "en": {
        "main": "{office}",
        "main.options": (
            "1. Dossier status\n2. Book citizen reception\n3. Cancel a booking\n"
            "4. Reminders on/off\n9. Tiếng Việt"
        ),
        "back": "0. Back",
        "home": "00. Main menu",
        "invalid": "Invalid choice.",
        "ended": "This session has ended. Please dial again.",
        "bad_phone": "Sorry, this phone number cannot use the service. Please contact the office.",
        "dossier_code": "Enter the dossier code (e.g. 000.00.31.H26-250714-0001):",
        "dossier_found": "Dossier {code} {status}.",
        "dossier_due": " Due date: {due}.",
        "dossier_overdue": " It is overdue; we apologise.",
        "dossier_refused": (
            "This dossier cannot be looked up from your phone number. "
            "Please check the code or contact the one-stop desk."
        ),
        "sessions": "Choose a reception session:",
        "sessions.row": "{index}. {weekday} {day} {time}",
        "full_mark": " (full)",
        "no_sessions": "No reception session is open for booking yet. Please try again later.",
        "session": (
            "Citizen reception {weekday} {date} at {start}, {host}, {location}. "
            "{remaining} places left."
        ),
        "session.options": "1. Book it",
        "booked": (
            "Booked. Code: {booking_code}. Please come at {time} on {weekday} {date} "
            "to {location}. The code was sent by SMS."
        ),
        "already_booked": (
            "You already have this session booked. Code: {booking_code}, at {time} {weekday} "
            "{date}."
        ),
        "full": "The session on {weekday} {date} is full. Please choose another one.",
        "past": "This session has started or taken place: it can no longer be booked.",
        "session_cancelled": "This session was cancelled. Please choose another one.",
        "unknown_session": "This session was not found. Please dial again.",
        "phone_refused": "This phone number cannot book. Please contact the one-stop desk.",
        "bookings": "Choose the booking to cancel:",
        "bookings.row": "{index}. {booking_code} {weekday} {day} {time}",
        "nothing_to_cancel": "You have no upcoming booking to cancel.",
        "booking": "Cancel booking {booking_code}, {weekday} {date} at {time}?",
        "booking.options": "1. Yes, cancel it",
        "cancelled": "Booking {booking_code} is cancelled. Thank you for letting us know.",
        "cancel_past": "Booking {booking_code} is past and can no longer be cancelled.",
        "consent": "Reminders and general notices: {state}.",
        "consent.on": "you receive them",
        "consent.off": "you stopped them",
        "consent.options": "1. Receive reminders\n2. Stop reminders",
        "opted_in": "You will receive reminders and general notices again.",
        "opted_out": (
            "You will no longer receive reminders or general notices. Dossier results still arrive."
        ),
    },
}


@dataclass(frozen=True)
class UssdRequest:
    session_id: str
    service_code: str
    phone: str  # as the aggregator sends it
    text: str  # the inputs so far, joined by "*"


# -- the state machine ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    screen: str
    arg: str | None = None  # the row picked or the text read on the way here


@dataclass(frozen=True)
class _Place:
    """Where a path leads: the screens on the way back to the main menu, the language, whether
    the last input was refused, and whether the session is over (None: not over)."""

    stack: tuple[_Step, ...]
    language: str = "vi"
    invalid: bool = False
    over: str | None = None


@dataclass
class _Call:
    """One request being answered."""

    session: Session
    settings: Settings
    services: Services
    request: UssdRequest
    phone: str  # E.164
    now: datetime
    language: str = "vi"

    def text(self, key: str, **fields: object) -> str:
        return TEXTS[self.language][key].format(**fields)


def walk(call: _Call, inputs: Sequence[str]) -> _Place:
    """Replay the inputs from the main menu."""
    stack: list[_Step] = [_Step(MAIN)]
    language, invalid = LANGUAGES[0], False
    for raw in inputs:
        part = raw.strip()
        top = stack[-1]
        screen = SCREENS[top.screen]
        if screen.end:
            return _Place(tuple(stack), language, over="ended")
        invalid = False
        if part == HOME:
            stack = [_Step(MAIN)]
        elif part == BACK and len(stack) > 1:
            stack.pop()
        elif top.screen == MAIN and part == SWITCH_LANGUAGE:
            language = LANGUAGES[(LANGUAGES.index(language) + 1) % len(LANGUAGES)]
        elif part in screen.go:
            stack.append(_Step(screen.go[part], top.arg))
        elif screen.pick is not None and _is_choice(part):
            rows = _shown_rows(call, top.screen)
            if rows is None:
                return _Place(tuple(stack), language, over="ended")
            if int(part) <= len(rows):
                stack.append(_Step(screen.pick, rows[int(part) - 1]))
            else:
                invalid = True
        elif screen.read is not None and part:
            stack.append(_Step(screen.read, part))
        else:
            invalid = True
    return _Place(tuple(stack), language, invalid)


def _is_choice(part: str) -> bool:
    return part.isascii() and part.isdigit() and len(part) <= 3 and int(part) > 0


# -- screens ----------------------------------------------------------------------------------


@dataclass
class _View:
    body: str
    options: list[str] = field(default_factory=list)
    end: bool = False
    rows: list[str] | None = None  # what a list screen's digits stand for
    notices: list[Message] = field(default_factory=list)


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _FIELD_CHARS else value[: _FIELD_CHARS - 2].rstrip() + ".."


def _main(call: _Call, _: str | None) -> _View:
    office = _short(call.settings.OFFICE_NAME)
    return _View(call.text("main", office=office), call.text("main.options").split("\n"))


def _dossier_code(call: _Call, _: str | None) -> _View:
    return _View(call.text("dossier_code"))


def _dossier(call: _Call, code: str | None) -> _View:
    today = call.now.astimezone(call.settings.tz).date()
    found = lookup.lookup_for_phone(call.session, code or "", call.phone, today)
    if found is None:
        return _View(call.text("dossier_refused"), end=True)
    status = found.words(call.language, ascii_only=True)
    body = call.text("dossier_found", code=found.code, status=status)
    if found.due_date is not None:
        body += call.text("dossier_due", due=found.due_date.strftime("%d/%m/%Y"))
    if found.overdue:
        body += call.text("dossier_overdue")
    return _View(body, end=True)


def _when(call: _Call, moment: datetime) -> dict[str, str]:
    return reception.local_fields(moment, call.settings, call.language)


def _sessions(call: _Call, _: str | None) -> _View:
    upcoming = reception.upcoming_sessions(call.session, call.now, limit=SESSIONS_SHOWN)
    if not upcoming:
        return _View(call.text("no_sessions"), end=True)
    lines = [
        call.text("sessions.row", index=index, **_when(call, info.starts_at))
        + (call.text("full_mark") if info.remaining == 0 else "")
        for index, info in enumerate(upcoming, start=1)
    ]
    return _View(call.text("sessions"), lines, rows=[str(info.id) for info in upcoming])


def _session(call: _Call, session_id: str | None) -> _View:
    try:
        info = reception.get_session(call.session, int(session_id or 0))
    except reception.ReceptionError:
        return _View(call.text("unknown_session"), end=True)
    fields = reception.notice_fields(call.settings, info, call.language)
    body = call.text(
        "session",
        **{**fields, "host": _short(info.host), "location": _short(info.location)},
        remaining=info.remaining,
    )
    return _View(body, [call.text("session.options")])


_BOOK_REFUSALS: Final = {
    reception.BookStatus.FULL: "full",
    reception.BookStatus.PAST: "past",
    reception.BookStatus.CANCELLED: "session_cancelled",
    reception.BookStatus.UNKNOWN: "unknown_session",
}


def _book(call: _Call, session_id: str | None) -> _View:
    try:
        outcome = reception.book(
            call.session,
            call.settings,
            phone=call.phone,
            channel=CHANNEL,
            session_id=int(session_id or 0),
            now=call.now,
        )
    except reception.ReceptionError:
        return _View(call.text("phone_refused"), end=True)
    booking, held = outcome.booking, outcome.session
    if booking is None or held is None:
        fields = reception.notice_fields(call.settings, held, call.language) if held else {}
        return _View(call.text(_BOOK_REFUSALS[outcome.status], **fields), end=True)
    fields = reception.booking_fields(call.settings, booking, held, call.language)
    fields["location"] = _short(held.location)
    if outcome.status is not reception.BookStatus.BOOKED:
        return _View(call.text("already_booked", **fields), end=True)
    notice = reception.confirmation(
        call.session, call.settings, booking.id, language=call.language, now=call.now
    )
    return _View(call.text("booked", **fields), end=True, notices=[notice])


def _upcoming(call: _Call) -> list[reception.BookingInfo]:
    try:
        return reception.upcoming_bookings(call.session, call.settings, call.phone, call.now)
    except reception.ReceptionError:
        return []  # a number that cannot book has nothing booked


def _bookings(call: _Call, _: str | None) -> _View:
    upcoming = _upcoming(call)[:BOOKINGS_SHOWN]
    if not upcoming:
        return _View(call.text("nothing_to_cancel"), end=True)
    lines = [
        call.text("bookings.row", index=index, booking_code=b.code, **_when(call, b.expected_at))
        for index, b in enumerate(upcoming, start=1)
    ]
    return _View(call.text("bookings"), lines, rows=[b.code for b in upcoming])


def _booking(call: _Call, code: str | None) -> _View:
    mine = {b.code: b for b in _upcoming(call)}
    found = mine.get(code or "")
    if found is None:
        return _View(call.text("nothing_to_cancel"), end=True)
    body = call.text("booking", booking_code=found.code, **_when(call, found.expected_at))
    return _View(body, [call.text("booking.options")])


def _cancel(call: _Call, code: str | None) -> _View:
    try:
        outcome = reception.cancel_for_phone(
            call.session, call.settings, call.phone, code=code or "", now=call.now
        )
    except reception.ReceptionError:
        return _View(call.text("nothing_to_cancel"), end=True)
    Status = reception.CancelStatus
    booking = outcome.booking
    if booking is not None and outcome.status in (Status.CANCELLED, Status.ALREADY_CANCELLED):
        return _View(call.text("cancelled", booking_code=booking.code), end=True)
    if booking is not None and outcome.status is Status.PAST:
        return _View(call.text("cancel_past", booking_code=booking.code), end=True)
    return _View(call.text("nothing_to_cancel"), end=True)


def _consent(call: _Call, _: str | None) -> _View:
    state = "consent.off" if outbox.is_opted_out(call.session, call.phone) else "consent.on"
    body = call.text("consent", state=call.text(state))
    return _View(body, call.text("consent.options").split("\n"))


def _opt_in(call: _Call, _: str | None) -> _View:
    consent.opt_in(call.session, call.phone, channel=CHANNEL, now=call.now)
    return _View(call.text("opted_in"), end=True)


def _opt_out(call: _Call, _: str | None) -> _View:
    consent.opt_out(call.session, call.phone, channel=CHANNEL, now=call.now)
    return _View(call.text("opted_out"), end=True)


_VIEWS: Final[Mapping[str, Callable[[_Call, str | None], _View]]] = {
    MAIN: _main,
    "dossier_code": _dossier_code,
    "dossier": _dossier,
    "sessions": _sessions,
    "session": _session,
    "book": _book,
    "bookings": _bookings,
    "booking": _booking,
    "cancel": _cancel,
    "consent": _consent,
    "opt_in": _opt_in,
    "opt_out": _opt_out,
}


# -- answering --------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the aggregator gets back; `notices` are the SMS to enqueue once committed."""

    reply: str
    screen: str = MAIN
    rows: list[str] | None = None
    notices: list[Message] = field(default_factory=list)


def screen(body: str, options: Sequence[str] = (), *, end: bool = False) -> str:
    """`CON `/`END ` + body + options, in ASCII, at most MAX_SCREEN characters: the body is cut
    when it must be, the options never."""
    prefix = "END " if end else "CON "
    tail = "".join("\n" + sms.fold(line, ascii_only=True) for line in options)
    text = sms.fold(body, ascii_only=True)
    room = MAX_SCREEN - len(prefix) - len(tail)
    if len(text) > room:
        text = text[: max(room - 2, 0)].rstrip() + ".."
    return (prefix + text + tail)[:MAX_SCREEN]


def _answer(call: _Call, inputs: Sequence[str]) -> Answer:
    place = walk(call, inputs)
    call.language = place.language
    if place.over is not None:
        return Answer(screen(call.text(place.over), end=True))
    step = place.stack[-1]
    view = _VIEWS[step.screen](call, step.arg)
    body = view.body
    if place.invalid:
        body = call.text("invalid") + "\n" + body
    options = list(view.options)
    if not view.end and len(place.stack) > 1:
        options.append(call.text("back"))
        if len(place.stack) > 2:
            options.append(call.text("home"))
    return Answer(screen(body, options, end=view.end), step.screen, view.rows, view.notices)


def respond(services: Services, request: UssdRequest, now: datetime | None = None) -> str:
    """The answer to one request of a USSD session (`CON …` or `END …`)."""
    inputs = request.text.split("*") if request.text else []
    try:
        phone = phones.normalize(request.phone, allow_international=True)
    except phones.InvalidPhoneNumber:
        return screen(TEXTS["vi"]["bad_phone"], end=True)
    if len(inputs) > MAX_INPUTS:
        return screen(TEXTS["vi"]["ended"], end=True)
    reply_key = _key("reply", request.session_id, phone, request.text)
    cached = _get(services, reply_key)
    if cached is not None:
        return cached
    answer = reception.Reception(services).run(
        lambda session, settings: _answer(
            _Call(session, settings, services, request, phone, now or utcnow()), inputs
        )
    )
    ttl = services.settings.USSD_STATE_TTL_SECONDS
    if answer.rows is not None:
        rows_key = _key("rows", request.session_id, phone, answer.screen)
        _set(services, rows_key, json.dumps(answer.rows), ttl)
    _set(services, reply_key, answer.reply, ttl)
    return answer.reply


def first_request(services: Services, request: UssdRequest) -> bool:
    """True the first time a session id is seen (a new session of this phone starts)."""
    key = _key("seen", request.session_id, request.phone, "")
    try:
        return bool(
            services.redis.set(key, 1, nx=True, ex=services.settings.USSD_STATE_TTL_SECONDS)
        )
    except RedisError as exc:
        log.warning("USSD session state unavailable: %s", exc)
        return True


# -- Redis ------------------------------------------------------------------------------------


def _key(kind: str, session_id: str, phone: str, path: str) -> str:
    # Hashed: neither the phone number nor what was typed is readable in Redis.
    digest = hashlib.sha256("\x00".join((session_id, phone, path)).encode()).hexdigest()[:40]
    return f"{_KEY_PREFIX}:{kind}:{digest}"


def _shown_rows(call: _Call, screen_name: str) -> list[str] | None:
    """The rows list screen `screen_name` showed last in this session; None once forgotten."""
    key = _key("rows", call.request.session_id, call.phone, screen_name)
    stored = _get(call.services, key)
    if stored is None:
        return None
    rows = json.loads(stored)
    return [str(row) for row in rows] if isinstance(rows, list) else None


def _get(services: Services, key: str) -> str | None:
    try:
        value = services.redis.get(key)
    except RedisError as exc:
        log.warning("USSD session state unavailable: %s", exc)
        return None
    return value.decode() if isinstance(value, bytes) else None


def _set(services: Services, key: str, value: str, ttl: int) -> None:
    try:
        services.redis.set(key, value, ex=ttl)
    except RedisError as exc:
        log.warning("USSD session state not kept: %s", exc)
