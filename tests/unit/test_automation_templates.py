"""Automation templates: the reference's helpers, expressions, and limits that keep templates from hanging a worker."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from astral import Observer
from astral.sun import sunrise, sunset

from chalicelib.core.automation.clock import Location
from chalicelib.core.automation.templates import (
    Limits,
    TemplateEngine,
    TemplateError,
    TemplateLimitError,
    check_expression,
    check_template,
    evaluate_expression,
    is_template,
    render,
)

NOW = datetime(2024, 6, 21, 10, 0, tzinfo=UTC)
BERLIN = Location(latitude=52.52, longitude=13.405, name="Berlin", timezone="Europe/Berlin")


def test_plain_text_is_returned_as_is_without_jinja() -> None:
    assert not is_template("25 degrees, {not a template}")
    assert render("25 degrees, {not a template}") == "25 degrees, {not a template}"


def test_variables_and_reference_helpers() -> None:
    variables = {"temp": 26.5, "field": {"labels": {"Room": "kitchen"}, "items": [1, 2]}}
    assert render("{{ temp + 1 }}", variables) == "27.5"
    assert render("{{ toJson(field) }}", variables) == '{"labels":{"Room":"kitchen"},"items":[1,2]}'
    assert render("{{ keyPath(field, 'labels.room') }}/{{ keyPath(field, 'items.1') }}", variables) == "kitchen/2"
    assert render("{{ ternary(temp > 25, 'hot', 'cold') }}", variables) == "hot"
    assert render("{{ toJson(missing) }}|{{ missing.deeper.still }}|", {}) == "null||"


def test_now_is_the_injected_instant_in_the_location_zone() -> None:
    assert render("{{ now().isoformat() }}", now=NOW) == "2024-06-21T10:00:00+00:00"
    assert render("{{ now().isoformat() }}", now=NOW, location=BERLIN) == "2024-06-21T12:00:00+02:00"
    clocked = TemplateEngine(clock=lambda: NOW)
    assert clocked.render("{{ now().year }}") == "2024"


def test_sunrise_and_sunset_are_astrals_for_the_location() -> None:
    observer = Observer(latitude=52.52, longitude=13.405)
    expected_rise = sunrise(observer, date(2024, 6, 21), tzinfo=BERLIN.tz)
    expected_set = sunset(observer, date(2024, 6, 22), tzinfo=BERLIN.tz)
    assert render("{{ sunrise().isoformat() }}", now=NOW, location=BERLIN) == expected_rise.isoformat()
    assert render("{{ sunset('2024-06-22').isoformat() }}", now=NOW, location=BERLIN) == expected_set.isoformat()
    with pytest.raises(TemplateError, match="location"):
        render("{{ sunrise() }}", now=NOW)


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        check_template("ok\n{{ x + }}")
    with pytest.raises(TemplateError, match="recursive loops"):
        check_template("{% for x in items recursive %}{{ loop(x) }}{% endfor %}")
    check_template("{% for x in items %}{{ x }}{% endfor %}")


def test_expressions_evaluate_to_values() -> None:
    assert evaluate_expression("temp > 25 and humidity < 60", {"temp": 26, "humidity": 50}) is True
    assert evaluate_expression("temp * 2", {"temp": 21}) == 42
    assert evaluate_expression("{'isTriggered': temp > 25, 'level': 'high'}", {"temp": 30}) == {
        "isTriggered": True, "level": "high"}
    assert evaluate_expression("not_defined") is None
    with pytest.raises(TemplateError, match="syntax"):
        check_expression("temp >")
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        evaluate_expression("1 / zero", {"zero": 0})


def test_render_value_renders_strings_inside_structures_but_not_the_type() -> None:
    engine = TemplateEngine()
    value = {"type": "{{ not rendered }}", "body": {"text": "t={{ t }}", "list": ["{{ t * 2 }}", 3]}}
    assert engine.render_value(value, {"t": 2}) == {"type": "{{ not rendered }}",
                                                    "body": {"text": "t=2", "list": ["4", 3]}}


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}x",
    "{{ items.append(3) }}",
    "{{ cfg.update({'a': 1}) }}",
])
def test_sandbox_blocks_internals_and_mutation(source: str) -> None:
    try:
        result = render(source, {"items": [1], "cfg": {}})
    except TemplateError as error:
        assert "not allowed" in str(error) or "unsafe" in str(error)
    else:
        assert "class" not in result and result in ("x", "")


# --------------------------------------------------------------------------------------------- limits

HUGE = [
    pytest.param("{% for i in range(100000) %}{% endfor %}", "looped", id="huge-loop"),
    pytest.param("{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}", "looped",
                 id="nested-loops"),
    pytest.param("{% set r = range(99999) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", "looped",
                 id="nested-loops-one-call"),
    pytest.param("{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a %}" * 40 + "{{ a|length }}", "produced",
                 id="string-doubling"),
    pytest.param("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 "produced", id="namespace-doubling"),
    pytest.param("{% set s %}{% for i in range(10000) %}{{ big }}{% endfor %}{% endset %}{{ s|length }}",
                 "produced", id="buffered-output"),
    pytest.param("{{ 'x' * 1000000000 }}", "budget", id="string-repeat"),
    pytest.param("{{ [1, 2] * 1000000000 }}", "budget", id="list-repeat"),
    pytest.param("{{ 2 ** 100000 }}", "bits", id="power"),
    pytest.param("{{ x * x }}", "bits", id="big-int-product"),
    pytest.param("{{ 'x'|center(1000000000) }}", "argument", id="filter-width"),
    pytest.param("{{ 'x'.ljust(1000000000) }}", "argument", id="method-width"),
    pytest.param("{{ data|tojson(indent=1000000000) }}", "argument", id="tojson-indent"),
    pytest.param("{{ '{:>1000000000}'.format(1) }}", "format", id="str-format-width"),
    pytest.param("{{ '%01000000000d' % 1 }}", "format", id="percent-width"),
    pytest.param("{{ '%*d'|format(1000000000, 1) }}", "format", id="format-filter-star"),
    pytest.param("{{ now().strftime('%1000000Y') }}", "strftime", id="strftime-width"),
    pytest.param("{{ (big * 900)|replace('y', big) }}", "replace", id="replace-growth"),
    pytest.param("{{ range(100000)|map('string')|join(',') }}", "calls", id="call-count"),
    pytest.param("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed", id="macro-recursion"),
]


@pytest.mark.parametrize(("source", "reason"), HUGE)
def test_runaway_templates_are_refused_quickly(source: str, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError, match=reason):
        render(source, {"big": "y" * 1000, "x": 10 ** 3000, "data": {"a": 1}}, now=NOW)
    assert time.perf_counter() - started < 1.0


def test_output_and_source_are_bounded() -> None:
    engine = TemplateEngine(Limits(max_output=100, max_source=50))
    assert engine.render("{{ 'a' * 100 }}") == "a" * 100
    with pytest.raises(TemplateLimitError, match="output"):
        engine.render("{{ 'a' * 101 }}")
    with pytest.raises(TemplateLimitError, match="characters"):
        engine.render("{{ x }}" + " " * 50)


def test_deadline_is_a_backstop_at_every_guard_point() -> None:
    engine = TemplateEngine(Limits(max_seconds=0.0))
    with pytest.raises(TemplateLimitError, match="longer than"):
        engine.render("{% for i in range(3) %}{{ i }}{% endfor %}")


def test_limits_are_per_render() -> None:
    engine = TemplateEngine(Limits(max_iterations=5))
    for _ in range(3):
        assert engine.render("{% for i in range(5) %}{{ i }}{% endfor %}") == "01234"
    with pytest.raises(TemplateLimitError):
        engine.render("{% for i in range(6) %}{% endfor %}")
