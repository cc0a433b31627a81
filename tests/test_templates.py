"""Every SMS template fits: one GSM segment folded for typical data, the hard limit at worst."""

from __future__ import annotations

import pytest

from notifier.core.config import Settings
from notifier.messaging import template_check
from notifier.text import templating


@pytest.fixture(scope="module")
def measurements() -> list[template_check.Measurement]:
    rows = template_check.measure(Settings.from_env({}, environ={}))
    print("\ntemplate                               lang  typical  worst (segments/characters)")
    for row in rows:
        print(
            f"{row.template:<38} {row.language:<5} {row.typical.segments}/{row.typical.characters:<5}"
            f"  {row.worst.segments}/{row.worst.characters}"
        )
    return rows


def test_there_are_templates_in_both_languages(
    measurements: list[template_check.Measurement],
) -> None:
    names = templating.template_names()
    assert "dossier_received" in names
    assert {(r.template, r.language) for r in measurements} == {
        (n, lang) for n in names for lang in templating.LANGUAGES
    }


def test_every_variable_has_sample_values(measurements: list[template_check.Measurement]) -> None:
    unknown = {
        f"{r.template}: {sorted(r.unknown_variables)}" for r in measurements if r.unknown_variables
    }
    assert not unknown, f"add typical and worst-case values to template_check.SAMPLES for {unknown}"


def test_typical_data_fits_one_gsm_segment(measurements: list[template_check.Measurement]) -> None:
    over = [
        f"{r.language}/{r.template}: {r.typical.segments}"
        for r in measurements
        if r.typical.segments != 1 or r.typical.encoding != "GSM-7"
    ]
    assert over == []


def test_worst_case_stays_within_the_hard_limit(
    measurements: list[template_check.Measurement],
) -> None:
    assert all(r.worst.segments <= 6 and r.worst.characters <= 918 for r in measurements)


def test_an_office_name_too_long_for_the_limit_stops_start_up() -> None:
    settings = Settings.from_env({"OFFICE_NAME": "Ủy ban nhân dân " * 40}, environ={})
    with pytest.raises(templating.TemplateError, match="exceed the hard limit"):
        template_check.check(settings)


def test_missing_personalisation_names_the_variable() -> None:
    with pytest.raises(templating.MissingPersonalisation, match="due_date") as caught:
        templating.render("dossier_received", {"code": "X", "procedure": "Y", "office_name": "Z"})
    assert caught.value.missing == ["due_date"]


def test_unknown_template_is_named() -> None:
    with pytest.raises(templating.UnknownTemplate, match="no_such_template"):
        templating.render("no_such_template", {})
