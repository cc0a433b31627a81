"""Failure reason codes, in plain words for staff (Vietnamese first, English second)."""

from __future__ import annotations

from notifier.text.phones import REASON_TEXT as PHONE_REASONS

REASONS: dict[str, tuple[str, str]] = {
    **PHONE_REASONS,
    "opted_out": ("Người nhận đã từ chối nhận tin", "Recipient opted out"),
    "invalid_number": ("Số điện thoại không hợp lệ", "Invalid phone number"),
    "region_not_permitted": ("Nhà mạng không cho gửi tới vùng này", "Region not permitted"),
    "unreachable": ("Không liên lạc được số này", "Number unreachable"),
    "provider_rejected": ("Nhà cung cấp từ chối tin nhắn", "Provider refused the message"),
    "provider_unavailable": (
        "Nhà cung cấp không phản hồi sau nhiều lần thử",
        "Provider unavailable after several attempts",
    ),
    "provider_not_configured": ("Chưa cấu hình kênh gửi", "Provider not configured"),
    "network_error": ("Lỗi mạng khi gửi", "Network error while sending"),
    "undelivered": ("Nhà mạng không chuyển được tin", "Carrier could not deliver"),
    "message_too_long": ("Tin nhắn quá dài", "Message too long"),
    "template_error": ("Mẫu tin nhắn lỗi", "Template error"),
}


def describe(reason: str | None, language: str = "vi") -> str:
    if not reason:
        return ""
    vi, en = REASONS.get(reason, (reason, reason))
    return vi if language == "vi" else en
