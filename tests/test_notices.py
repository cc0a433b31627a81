"""Notices from the console: one phone, a session's bookers, a CSV file checked before sending."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notifier.core.config import Settings
from notifier.core.runtime import Services
from notifier.models import AuditLog, Contact, Message
from notifier.notices import composer, rows
from tests.support.console import seed_console_data, staff_client
from tests.support.helpers import run_jobs

BODY = "Kính gửi Ông/Bà {{ ten }}, hồ sơ {{ ma }} đã có kết quả. Mời Ông/Bà đến nhận."


def all_messages(services: Services) -> list[Message]:
    with services.db.session() as session:
        return list(session.scalars(select(Message).order_by(Message.created_at)).all())


def upload(client: FlaskClient, token: str, csv_text: str | bytes, **form: str) -> Any:
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    return client.post(
        "/notices/new/csv",
        data={
            "csrf_token": token,
            "template": "",
            "body": BODY,
            "language": "vi",
            **form,
            "file": (__import__("io").BytesIO(data), "danh-sach.csv"),
        },
        content_type="multipart/form-data",
    )


def csv_rows(count: int, bad: dict[int, tuple[str, str, str]] | None = None) -> str:
    lines = ["Số điện thoại,Tên,Mã"]
    for index in range(count):
        row = (f"09{index:08d}", f"Người {index}", f"HS-{index}")
        lines.append(",".join((bad or {}).get(index, row)))
    return "\n".join(lines) + "\n"


def test_notice_to_one_phone(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    response = client.post(
        "/notices/new/one",
        data={
            "csrf_token": token,
            "phone": "091.234.5678",
            "template": "",
            "body": BODY,
            "language": "vi",
            "personalisation": "ten = Nguyễn Văn An\nma: HS-1",
        },
    )
    assert response.status_code == 200
    assert "Đã tạo 1 tin nhắn" in response.text
    run_jobs(services)
    [message] = all_messages(services)
    assert message.phone == "+84912345678"
    assert message.body == (
        "Kinh gui Ong/Ba Nguyen Van An, ho so HS-1 da co ket qua. Moi Ong/Ba den nhan."
    )
    assert message.status == "delivered"
    assert message.kind == "notice"
    with services.db.session() as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "notice_sent")).one()
    assert entry.target == f"message:{message.id}"


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"phone": "024 3825 1234"}, "Số máy bàn"),
        ({"phone": "abc"}, "Không phải số điện thoại"),
        ({"personalisation": "ten = An"}, "Thiếu giá trị cho ma"),
        ({"personalisation": "không có dấu bằng"}, "không đúng dạng"),
        ({"body": "", "template": ""}, "Chọn một mẫu tin"),
        ({"template": "no_such_template"}, "Không có mẫu tin này"),
        ({"template": "dossier_received", "personalisation": ""}, "Thiếu giá trị cho code"),
        ({"body": "{{ ten "}, "placeholder error"),
        ({"body": "{{ ten.__class__ }}"}, ""),
        ({"body": "x" * 1000}, "Tin nhắn quá dài"),
    ],
)
def test_notice_to_one_phone_refuses_bad_input(
    client: FlaskClient, services: Services, form: dict[str, str], expected: str
) -> None:
    client, token = staff_client(services, client, "officer")
    data = {
        "csrf_token": token,
        "phone": "0912345678",
        "template": "",
        "body": BODY,
        "language": "vi",
        "personalisation": "ten = An\nma = HS-1",
        **form,
    }
    response = client.post("/notices/new/one", data=data)
    assert response.status_code == 400
    assert expected in response.text
    assert all_messages(services) == []


def test_notice_to_a_sessions_bookers(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, token = staff_client(services, client, "officer")
    response = client.post(
        "/notices/new/session",
        data={
            "csrf_token": token,
            "session_id": str(ids["session_id"]),
            "template": "",
            "body": "{{ name }}: buổi tiếp số {{ session_number }} ngày {{ date }} lúc {{ time }}.",
            "language": "vi",
        },
    )
    assert response.status_code == 200
    sent = [m for m in all_messages(services) if m.kind == "notice"]
    assert len(sent) == 2
    assert {m.booking_id for m in sent} == {1, 2} or all(m.booking_id for m in sent)
    assert sent[0].body.startswith("Cong dan")  # type: ignore[union-attr]
    assert len({m.batch_id for m in sent}) == 1


def test_csv_of_20_rows_with_2_bad_rows(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    text = csv_rows(20, bad={4: ("024 3825 1234", "Bàn", "HS-4"), 11: ("0912000011", "", "HS-11")})
    report = upload(client, token, text)
    assert report.status_code == 200
    assert re.search(r'data-valid="18" data-bad="2"', report.text)
    assert "Số máy bàn" in report.text  # line 6: the landline
    assert "Thiếu giá trị cho ten" in report.text  # line 13: no name
    assert "<td>6</td>" in report.text
    assert "<td>13</td>" in report.text
    assert "Chưa gửi tin nào" in report.text
    assert all_messages(services) == []  # nothing before confirming

    confirm = re.search(r'action="(/notices/csv/[^"]+/send)"', report.text).group(1)  # type: ignore[union-attr]
    done = client.post(confirm, data={"csrf_token": token})
    assert done.status_code == 200
    assert "Đã tạo 18 tin nhắn" in done.text
    # Confirming twice sends once.
    again = client.post(confirm, data={"csrf_token": token})
    assert "Đã tạo 18 tin nhắn" in again.text
    run_jobs(services)
    sent = all_messages(services)
    assert len(sent) == 18
    assert {m.status for m in sent} == {"delivered"}
    assert sent[0].priority == "bulk"
    assert sent[0].essential is False


def test_csv_confirmation_belongs_to_its_uploader(
    app: Flask, client: FlaskClient, services: Services
) -> None:
    client, token = staff_client(services, client, "officer")
    report = upload(client, token, csv_rows(3))
    confirm = re.search(r'action="(/notices/csv/[^"]+/send)"', report.text).group(1)  # type: ignore[union-attr]
    other, other_token = staff_client(services, app.test_client(), "admin")
    assert other.post(confirm, data={"csrf_token": other_token}).status_code == 404
    assert client.post("/notices/csv/short/send", data={"csrf_token": token}).status_code == 404
    assert all_messages(services) == []


def test_csv_respects_opt_outs(client: FlaskClient, services: Services) -> None:
    with services.db.transaction() as session:
        session.add(Contact(phone="+84900000001", opted_out=True, channel="sms"))
    client, token = staff_client(services, client, "officer")
    report = upload(client, token, csv_rows(3))
    confirm = re.search(r'action="(/notices/csv/[^"]+/send)"', report.text).group(1)  # type: ignore[union-attr]
    client.post(confirm, data={"csrf_token": token})
    by_phone = {m.phone: m for m in all_messages(services)}
    assert by_phone["+84900000001"].status == "rejected"
    assert by_phone["+84900000001"].failure_reason == "opted_out"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "Tệp trống"),
        (b"ten,ma\nAn,1\n", "đúng một cột số điện thoại"),
        (b"phone,phone\n0912345678,0912345678\n", "đúng một cột số điện thoại"),
        ("Số điện thoại,ten,ten\n0912345678,a,b\n".encode(), "Cột bị trùng"),
        ("phone,ten\n0912345678,Nguyễn\n".encode("utf-16"), "UTF-8"),
        (b"phone,ten,ma\n" + b"0912345678,a,b\n" * 6, "hơn 5 dòng"),
    ],
)
def test_csv_file_errors(make_app: Any, content: bytes, expected: str) -> None:
    app: Flask = make_app(NOTICE_CSV_MAX_ROWS=5)
    services: Services = app.extensions["notifier"]
    client, token = staff_client(services, app.test_client(), "officer")
    response = upload(client, token, content)
    assert response.status_code == 400
    assert expected in response.text
    assert all_messages(services) == []


def test_csv_row_errors_are_reported_per_row() -> None:
    content = composer.Content(body=BODY)
    data = (
        "phone;ten;ma\n"
        "0912345678;An;1\n"
        "0912 345 678;An lần hai;2\n"  # the same number again
        "0912345679;An\n"  # a cell missing
        "\n"
        "0912345680;Bình;3\n"
    ).encode()
    result = composer.validate_csv(Settings(), content, data)
    assert [r.row for r in result.valid] == [2, 6]
    assert [(e.line, e.field) for e in result.errors] == [(3, "phone"), (4, "row")]
    assert "dòng 2" in result.errors[0].vi


def test_a_value_the_template_cannot_use_is_a_row_error() -> None:
    content = composer.Content(template="dossier_received")
    data = (
        b"phone,code,procedure,due_date\n"
        b"0912345678,HS-1,Khai sinh,2025-07-16\n"
        b"0912345679,HS-2,Khai sinh,next week\n"  # the date filter cannot read it
    )
    result = composer.validate_csv(Settings(), content, data)
    assert [r.row for r in result.valid] == [2]
    assert [(e.line, e.field) for e in result.errors] == [(3, "template")]


def test_the_console_and_the_api_report_the_same_problems_of_a_row() -> None:
    """One pipeline, two reports: the console's lines in Vietnamese, the API's JSON rows."""
    content = rows.Content(template="dossier_received", fill_body=False)
    given = [rows.Row(2, "024 3825 1234", {"code": "HS-1"})]  # a landline, two values missing
    console = rows.check(Settings(), content, given, rows.console_report)
    api = rows.check(Settings(), content, given, rows.api_errors)
    assert [(e.line, e.field) for e in console.errors] == [(2, "phone"), (2, "due_date")]
    assert "Số máy bàn" in console.errors[0].vi
    assert console.errors[1].vi == "Thiếu giá trị cho due_date, procedure"
    assert [(e["row"], e["field"]) for e in api.errors] == [
        (2, "phone"),
        (2, "personalisation.due_date"),
        (2, "personalisation.procedure"),
    ]
    assert console.total == api.total == 1
    assert console.valid == api.valid == []


def test_csv_of_10000_rows_is_checked_and_10001_refused() -> None:
    content = composer.Content(body=BODY)
    settings = Settings()
    rows = csv_rows(10_000)
    result = composer.validate_csv(settings, content, rows.encode())
    assert len(result.valid) == 10_000
    assert result.errors == []
    with pytest.raises(composer.NoticeError, match="more than 10000 rows"):
        composer.validate_csv(settings, content, (rows + "0899999999,X,Y\n").encode())


def test_csv_upload_over_the_app_body_limit_works(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    text = csv_rows(3000)
    assert len(text.encode()) > 64 * 1024
    report = upload(client, token, text)
    assert report.status_code == 200
    assert 'data-valid="3000"' in report.text


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_any_upload_gets_a_report_and_sends_nothing(
    client: FlaskClient, services: Services, data: bytes
) -> None:
    if not hasattr(test_any_upload_gets_a_report_and_sends_nothing, "token"):
        _, token = staff_client(services, client, "officer")
        test_any_upload_gets_a_report_and_sends_nothing.token = token  # type: ignore[attr-defined]
    token = test_any_upload_gets_a_report_and_sends_nothing.token  # type: ignore[attr-defined]
    response = upload(client, token, b"phone,ten,ma\n" + data)
    assert response.status_code in (200, 400)
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
