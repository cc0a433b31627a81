"""Words, numbers and dates as citizens and phones see them: pure functions, no I/O.

SMS encoding and segments (`sms`), Vietnamese phone numbers (`phones`), SMS templates
(`templating`), inbound text clean-up (`textinput`), the keyword parser (`keywords`), the
office's working days (`workdays`) and quiet hours (`quiet_hours`). May import `core.config`
and nothing else of the project.
"""
