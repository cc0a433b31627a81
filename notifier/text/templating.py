"""SMS templates: Jinja2 in a sandbox, strict about missing variables, one file per template."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from notifier.core.config import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates_sms"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


class TemplateError(ValueError):
    """A template cannot be rendered; the message says what to fix."""


class UnknownTemplate(TemplateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown template {name!r}")
        self.name = name


class MissingPersonalisation(TemplateError):
    def __init__(self, template: str, missing: list[str]) -> None:
        names = ", ".join(missing)
        super().__init__(f"Template {template!r} needs personalisation: {names}")
        self.template = template
        self.missing = missing


def format_date(value: Any) -> str:
    """Dates in SMS are always dd/mm/yyyy."""
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10]).strftime("%d/%m/%Y")
    return str(value)


def format_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%H:%M")
    return str(value)


@lru_cache(maxsize=4)
def environment(root: Path = TEMPLATES_DIR) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = format_date
    env.filters["time"] = format_time
    return env


def template_names(root: Path = TEMPLATES_DIR) -> list[str]:
    """Every template name (the file stem) available in the default language."""
    return sorted(p.stem for p in (root / DEFAULT_LANGUAGE).glob("*.txt"))


def required_variables(name: str, language: str = DEFAULT_LANGUAGE) -> set[str]:
    return set(_required_variables(name, language))


# Parsing a template costs about a millisecond; a bulk send renders one template 10,000 times.
@lru_cache(maxsize=256)
def _required_variables(name: str, language: str) -> frozenset[str]:
    env = environment()
    source = _source(env, name, language)
    return frozenset(meta.find_undeclared_variables(env.parse(source)))


def render(name: str, personalisation: Mapping[str, Any], language: str = DEFAULT_LANGUAGE) -> str:
    """Render template `name` in `language` (falling back to Vietnamese), stripped of outer space."""
    env = environment()
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    path = _path(env, name, language)
    missing = sorted(required_variables(name, language) - set(personalisation))
    if missing:
        raise MissingPersonalisation(name, missing)
    return env.get_template(path).render(**personalisation).strip()


def _path(env: SandboxedEnvironment, name: str, language: str) -> str:
    if not name.replace("_", "").isalnum():
        raise UnknownTemplate(name)
    for lang in (language, DEFAULT_LANGUAGE):
        path = f"{lang}/{name}.txt"
        try:
            env.get_template(path)
        except TemplateNotFound:
            continue
        return path
    raise UnknownTemplate(name)


def _source(env: SandboxedEnvironment, name: str, language: str) -> str:
    path = _path(env, name, language)
    assert env.loader is not None
    return env.loader.get_source(env, path)[0]


MAX_INLINE_TEMPLATE = 2000


def render_string(source: str, personalisation: Mapping[str, Any], label: str = "body") -> str:
    """Render a body typed by staff (``{{ name }}`` placeholders) in the same sandbox.

    Raises ``MissingPersonalisation`` naming the missing variables, ``TemplateError`` when the
    text is not a valid template.
    """
    if len(source) > MAX_INLINE_TEMPLATE:
        raise TemplateError(f"The text is longer than {MAX_INLINE_TEMPLATE} characters")
    template, variables = _compile_inline(source)
    missing = sorted(variables - set(personalisation))
    if missing:
        raise MissingPersonalisation(label, missing)
    try:
        return template.render(**personalisation).strip()
    except SecurityError as exc:
        raise TemplateError(f"The text uses something templates may not: {exc}") from None
    except (UndefinedError, ValueError, TypeError) as exc:
        raise TemplateError(f"The text cannot be filled in: {exc}") from None


@lru_cache(maxsize=64)
def _compile_inline(source: str) -> tuple[Template, frozenset[str]]:
    # A CSV notice renders one body thousands of times: compile it once.
    env = environment()
    try:
        variables = frozenset(meta.find_undeclared_variables(env.parse(source)))
        return env.from_string(source), variables
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"The text has a placeholder error on line {exc.lineno}: {exc.message}"
        ) from None


def placeholders(source: str) -> list[str]:
    """The variables a body typed by staff uses (empty if it is not a valid template)."""
    try:
        return sorted(meta.find_undeclared_variables(environment().parse(source)))
    except TemplateSyntaxError:
        return []
