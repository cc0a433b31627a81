"""The console's words: Vietnamese first, English second. A small table, no catalogue tooling.

Templates call ``t("English text")``; in Vietnamese the table below gives the translation.
Codes (statuses, roles, errors) go through ``label(code)``. A test checks every text used in a
template has its Vietnamese here.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("vi", "en")

VI: dict[str, str] = {
    # layout and navigation
    "Staff console": "Trang quản trị",
    "Dashboard": "Tổng quan",
    "Dossiers": "Hồ sơ",
    "Messages": "Tin nhắn",
    "Reception": "Tiếp công dân",
    "New notice": "Gửi thông báo",
    "Simulator": "Giả lập điện thoại",
    "Development only: what each phone received from the console provider, and a box to answer as that citizen.": (
        "Chỉ dùng khi phát triển: tin nhắn mỗi số điện thoại nhận được qua kênh console, "
        "và ô để trả lời thay công dân."
    ),
    "Reply as this citizen": "Trả lời thay công dân",
    "Send as the citizen": "Gửi như công dân",
    "Users": "Người dùng",
    "API keys": "Khóa API",
    "Audit log": "Nhật ký thao tác",
    "Log out": "Đăng xuất",
    "Signed in as {name} ({role})": "Đang đăng nhập: {name} ({role})",
    "Tiếng Việt": "Tiếng Việt",
    "English": "English",
    "Skip to content": "Bỏ qua đến nội dung",
    # login
    "Sign in": "Đăng nhập",
    "Username": "Tên đăng nhập",
    "Password": "Mật khẩu",
    "Wrong username or password.": "Sai tên đăng nhập hoặc mật khẩu.",
    "Too many failed attempts. Try again in a few minutes.": (
        "Đăng nhập sai quá nhiều lần. Xin thử lại sau ít phút."
    ),
    # errors
    "Error": "Lỗi",
    "You may not do this with your role.": "Vai trò của Ông/Bà không được phép thực hiện thao tác này.",
    "Not found.": "Không tìm thấy.",
    "The form has expired or did not come from this site. Go back, reload the page and try again.": (
        "Biểu mẫu đã hết hạn hoặc không gửi từ trang này. Xin quay lại, tải lại trang và thử lại."
    ),
    "This message cannot be sent again.": "Không thể gửi lại tin nhắn này.",
    "This upload has expired or was already used. Upload the file again.": (
        "Tệp tải lên đã hết hạn hoặc đã được dùng. Xin tải tệp lên lại."
    ),
    "Back": "Quay lại",
    # dashboard
    "Period": "Khoảng thời gian",
    "From": "Từ ngày",
    "To": "Đến ngày",
    "Show": "Xem",
    "The period is not valid; showing the last 30 days.": (
        "Khoảng thời gian không hợp lệ; đang hiển thị 30 ngày gần nhất."
    ),
    "Received": "Đã tiếp nhận",
    "Resolved": "Đã giải quyết",
    "On time": "Đúng hạn",
    "In progress": "Đang xử lý",
    "Waiting on the citizen": "Chờ công dân bổ sung",
    "Closed without result": "Dừng, rút, không tiếp nhận",
    "Overdue": "Quá hạn",
    "Sent": "Đã gửi",
    "Delivered": "Đã nhận",
    "Failed": "Lỗi",
    "Refused": "Bị từ chối",
    "Waiting": "Đang chờ",
    "Segments": "Số phần tin",
    "Estimated cost": "Chi phí ước tính",
    "{price} per segment": "{price} mỗi phần tin",
    "Messages per day": "Tin nhắn theo ngày",
    "sent": "đã gửi",
    "failed or refused": "lỗi hoặc bị từ chối",
    "Bookings per session": "Lượt đăng ký theo buổi tiếp",
    "Includes the sessions of the next 14 days.": "Gồm cả các buổi tiếp trong 14 ngày tới.",
    "No reception session in this period.": "Không có buổi tiếp nào trong khoảng thời gian này.",
    "Session": "Buổi",
    "Date": "Ngày",
    "Host": "Người chủ trì",
    "Capacity": "Số chỗ",
    "Booked": "Đã đăng ký",
    "Attended": "Đã đến",
    "No-show": "Vắng mặt",
    "Cancelled": "Đã hủy",
    "Dossiers received in the period": "Hồ sơ tiếp nhận trong kỳ",
    "Messages created in the period": "Tin nhắn tạo trong kỳ",
    # dossiers
    "Search by dossier code or phone number": "Tìm theo mã hồ sơ hoặc số điện thoại",
    "Search": "Tìm",
    "Code": "Mã hồ sơ",
    "Procedure": "Thủ tục",
    "Citizen": "Công dân",
    "Phone": "Số điện thoại",
    "Status": "Trạng thái",
    "Due date": "Ngày hẹn trả",
    "Received at": "Ngày tiếp nhận",
    "No dossier found.": "Không tìm thấy hồ sơ nào.",
    "{count} found": "Tìm thấy {count}",
    "Timeline": "Diễn biến",
    "Status change": "Thay đổi trạng thái",
    "SMS": "Tin nhắn SMS",
    "New due date": "Ngày hẹn mới",
    "Note": "Ghi chú",
    "Page {number} of {pages}": "Trang {number}/{pages}",
    "Previous": "Trang trước",
    "Next": "Trang sau",
    "overdue": "quá hạn",
    # messages
    "Template": "Mẫu tin",
    "All": "Tất cả",
    "Free text": "Nội dung tự nhập",
    "Filter": "Lọc",
    "Created": "Tạo lúc",
    "Reason": "Lý do",
    "No message found.": "Không có tin nhắn nào.",
    "Message": "Tin nhắn",
    "Text": "Nội dung",
    "The text was deleted after the retention period.": (
        "Nội dung đã được xóa sau thời hạn lưu trữ."
    ),
    "Encoding": "Bảng mã",
    "Provider": "Nhà cung cấp",
    "Attempts": "Số lần gửi",
    "History": "Lịch sử trạng thái",
    "Source": "Nguồn",
    "Send again": "Gửi lại",
    "Send this failed message again as a new message?": "Gửi lại tin nhắn lỗi này thành tin mới?",
    "Sent by": "Người gửi",
    "Kind": "Loại",
    "Batch": "Đợt gửi",
    "Dossier": "Hồ sơ",
    # notices
    "To one phone": "Tới một số điện thoại",
    "To a session's bookers": "Tới người đã đăng ký buổi tiếp",
    "To a CSV file": "Tới danh sách CSV",
    "Language of the text": "Ngôn ngữ nội dung",
    "Vietnamese": "Tiếng Việt",
    "Text (placeholders in double braces are filled in)": (
        "Nội dung (các chỗ đặt trong ngoặc nhọn kép sẽ được điền)"
    ),
    "Personalisation, one per line: name = value": "Thông tin điền vào, mỗi dòng: ten = gia tri",
    "Reception session": "Buổi tiếp công dân",
    "Each booker's name, code, session_number, date, weekday, time, location and host are filled in.": (
        "Tên (name), mã đăng ký (code), số buổi (session_number), ngày (date), thứ (weekday), "
        "giờ (time), địa điểm (location) và người chủ trì (host) của từng người được điền tự động."
    ),
    "CSV file (UTF-8): a phone column, then one column per placeholder": (
        "Tệp CSV (UTF-8): một cột số điện thoại, sau đó mỗi cột là một chỗ cần điền"
    ),
    "At most {rows} rows. Every row is checked before anything is sent.": (
        "Tối đa {rows} dòng. Mọi dòng được kiểm tra trước khi gửi."
    ),
    "Send": "Gửi",
    "Check the file": "Kiểm tra tệp",
    "Preview": "Xem trước",
    "As a basic phone shows it": "Hiển thị trên điện thoại phổ thông",
    "characters": "ký tự",
    "segments": "phần tin",
    "Over the limit": "Vượt giới hạn",
    "Type a text or choose a template to see the preview.": (
        "Nhập nội dung hoặc chọn mẫu tin để xem trước."
    ),
    "Nobody is booked on this session.": "Chưa có ai đăng ký buổi tiếp này.",
    "Some recipients cannot receive this notice:": "Một số người nhận không nhận được thông báo này:",
    "Line": "Dòng",
    "Field": "Trường",
    "Problem": "Vấn đề",
    "File check": "Kết quả kiểm tra tệp",
    "{valid} rows ready, {bad} rows with errors.": "{valid} dòng hợp lệ, {bad} dòng có lỗi.",
    "Nothing has been sent yet.": "Chưa gửi tin nào.",
    "Example of the first row": "Ví dụ dòng đầu tiên",
    "Send to the {count} valid rows": "Gửi tới {count} dòng hợp lệ",
    "Fix the file and upload it again": "Sửa tệp và tải lên lại",
    "No row can be sent. Fix the file and upload it again.": (
        "Không có dòng nào gửi được. Xin sửa tệp và tải lên lại."
    ),
    "Notice created": "Đã tạo thông báo",
    "{count} messages created.": "Đã tạo {count} tin nhắn.",
    "See these messages": "Xem các tin nhắn này",
    "Send another notice": "Gửi thông báo khác",
    "Rows not sent:": "Các dòng không gửi:",
    "Estimated cost: {cost}": "Chi phí ước tính: {cost}",
    # reception
    "Upcoming sessions": "Các buổi tiếp sắp tới",
    "Past sessions": "Các buổi tiếp đã qua",
    "Number": "Số",
    "Time": "Giờ",
    "Place": "Địa điểm",
    "No session.": "Không có buổi tiếp nào.",
    "Bookings": "Danh sách đăng ký",
    "Booking code": "Mã đăng ký",
    "Name": "Họ tên",
    "Topic": "Nội dung",
    "Expected at": "Giờ dự kiến",
    "State": "Tình trạng",
    "Print the day's list": "In danh sách trong ngày",
    "Reception list for {day}": "Danh sách tiếp công dân ngày {day}",
    "Print": "In",
    "No booking.": "Chưa có đăng ký nào.",
    "Send a notice to the bookers": "Gửi thông báo tới người đăng ký",
    "open": "đang mở",
    "New reception session": "Thêm buổi tiếp công dân",
    "Starts": "Bắt đầu",
    "Ends": "Kết thúc",
    "Minutes per citizen (empty: shared evenly)": "Số phút cho mỗi người (để trống: chia đều)",
    "Create session": "Tạo buổi tiếp",
    "Move": "Dời lịch",
    "Move this session? Every booked citizen gets an SMS with the new time.": (
        "Dời buổi tiếp này? Mọi người đã đăng ký sẽ nhận tin nhắn báo giờ mới."
    ),
    "Move and notify": "Dời lịch và báo tin",
    "Edit": "Sửa",
    "Save": "Lưu",
    "Cancel the session": "Hủy buổi tiếp",
    "Cancel this session? Every booked citizen gets an SMS with the reason.": (
        "Hủy buổi tiếp này? Mọi người đã đăng ký sẽ nhận tin nhắn kèm lý do."
    ),
    "Reason (sent to the citizens)": "Lý do (gửi tới công dân)",
    "Cancel and notify": "Hủy và báo tin",
    # admin
    "Role": "Vai trò",
    "Active": "Đang hoạt động",
    "Last login": "Đăng nhập gần nhất",
    "Create user": "Tạo người dùng",
    "Deactivate": "Khóa",
    "Activate": "Mở khóa",
    "Change role": "Đổi vai trò",
    "New password": "Mật khẩu mới",
    "Set password": "Đặt mật khẩu",
    "yes": "có",
    "no": "không",
    "Create key": "Tạo khóa",
    "Copy this key now; it is not shown again:": "Xin sao chép khóa này ngay; khóa sẽ không hiển thị lại:",
    "Prefix": "Tiền tố",
    "Last used": "Dùng gần nhất",
    "Revoked": "Đã thu hồi",
    "Revoke": "Thu hồi",
    "Revoke this key? Systems using it stop working.": (
        "Thu hồi khóa này? Các hệ thống đang dùng khóa sẽ ngừng hoạt động."
    ),
    "When": "Thời điểm",
    "Who": "Người thực hiện",
    "Action": "Thao tác",
    "Target": "Đối tượng",
    "Details": "Chi tiết",
    "Address": "Địa chỉ IP",
}

# Codes shown to staff: statuses, roles, booking states.
LABELS: dict[str, tuple[str, str]] = {
    "queued": ("Chờ gửi", "Queued"),
    "deferred": ("Hoãn (giờ yên tĩnh)", "Deferred (quiet hours)"),
    "sending": ("Đang gửi", "Sending"),
    "sent": ("Đã gửi", "Sent"),
    "delivered": ("Đã nhận", "Delivered"),
    "failed": ("Lỗi", "Failed"),
    "rejected": ("Không gửi", "Rejected"),
    "registered": ("Mới đăng ký", "Registered"),
    "received": ("Được tiếp nhận", "Received"),
    "not_accepted": ("Không được tiếp nhận", "Not accepted"),
    "processing": ("Đang xử lý", "Processing"),
    "supplement_requested": ("Yêu cầu bổ sung giấy tờ", "Supplement requested"),
    "fee_required": ("Yêu cầu nộp phí, lệ phí", "Fee required"),
    "withdrawn": ("Công dân rút hồ sơ", "Withdrawn"),
    "stopped": ("Dừng xử lý", "Stopped"),
    "ready": ("Đã xử lý xong", "Ready"),
    "returned": ("Đã trả kết quả", "Returned"),
    "rescheduled": ("Hẹn lại ngày trả", "Rescheduled"),
    "admin": ("Quản trị", "Admin"),
    "officer": ("Cán bộ", "Officer"),
    "viewer": ("Xem", "Viewer"),
    "booked": ("Đã đăng ký", "Booked"),
    "cancelled": ("Đã hủy", "Cancelled"),
    "attended": ("Đã đến", "Attended"),
    "no_show": ("Vắng mặt", "No-show"),
    "open": ("Đang mở", "Open"),
    "dossier": ("Hồ sơ", "Dossier"),
    "notice": ("Thông báo", "Notice"),
    "reply": ("Trả lời", "Reply"),
    "reminder": ("Nhắc lịch", "Reminder"),
    "live": ("Thật", "Live"),
    "test": ("Thử", "Test"),
}


def translate(text: str, language: str, **values: Any) -> str:
    """``text`` (English) in ``language``, with ``{name}`` placeholders filled in."""
    found = VI.get(text, text) if language == "vi" else text
    return found.format(**values) if values else found


def label(code: str | None, language: str) -> str:
    if not code:
        return ""
    vi, en = LABELS.get(code, (code, code))
    return vi if language == "vi" else en
