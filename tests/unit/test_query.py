"""The list-query engine: key paths, operators on mixed types, sorting, paging and the HTTP query format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.model import FieldModel, MetricType, Payload
from chalicelib.core.ports import FILTER_OPERATORS, Filter, ListQuery, Sort
from chalicelib.core.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QueryError,
    apply_query,
    compare,
    compile_filter,
    get_path,
    matches,
    parse_list_query,
    sort_key,
)

RECORD: dict[str, Any] = FieldModel(
    gateway_id="gw1", node_id="4", source_id="1", field_id="V_TEMP", name="Outside", metric_type=MetricType.GAUGE_FLOAT,
    labels={"Room": "garden", "ignore_name": "true"}, others={"nested": {"Deep": [10, {"x": "y"}]}},
    current=Payload(value=21.5, timestamp="2026-01-01T00:00:00.000Z", sequence=3),
).record()


# --------------------------------------------------------------------------------------------- key paths


@pytest.mark.parametrize("path, expected", [
    ("id", "gw1.4.1.V_TEMP"),
    ("labels.room", "garden"),
    ("LABELS.ROOM", "garden"),
    ("labels.Room", "garden"),
    ("current.value", 21.5),
    ("others.nested.deep.0", 10),
    ("others.nested.deep.1.X", "y"),
    ("others.nested.deep.5", None),
    ("labels.room.more", None),
    ("nothing", None),
    ("current.value.x", None),
])
def test_get_path(path: str, expected: Any) -> None:
    assert get_path(RECORD, path) == expected


def test_get_path_prefers_the_exact_key_and_has_a_default() -> None:
    record = {"labels": {"room": "exact", "ROOM": "other"}}
    assert get_path(record, "labels.room") == "exact"
    assert get_path(record, "labels.ROOM") == "other"
    assert get_path(record, "labels.missing", "dflt") == "dflt"


# --------------------------------------------------------------------------------------------- comparing


@pytest.mark.parametrize("left, right, expected", [
    (21.5, "21.5", 0),
    ("10", 9, 1),  # numerically, not "10" < "9"
    ("10", "9", 1),
    (" 7 ", 7, 0),
    (True, 1, 0),
    (True, "true", 0),
    (False, 0.5, -1),
    ("abc", "abd", -1),
    ("abc", 5, 1),  # as text: "5" < "abc"
    ("nan", "nan", 0),  # words, not numbers
    (None, "", 0),
    ({"a": 1}, {"a": 1}, 0),
    ([1, 2], "x", -1),
    (10**15, 1e15, 0),
])
def test_compare_mixed_types(left: Any, right: Any, expected: int) -> None:
    assert compare(left, right) == expected
    assert compare(right, left) == -expected


# --------------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize("flt, expected", [
    (Filter("labels.room", "eq", "garden"), True),
    (Filter("labels.room", "eq", "Garden"), False),  # values are case-sensitive, keys are not
    (Filter("labels.room", "ne", "garden"), False),
    (Filter("labels.nothing", "ne", "garden"), False),  # a missing key matches nothing
    (Filter("labels.ignore_name", "eq", True), True),
    (Filter("current.value", "in", ["1", "21.5"]), True),
    (Filter("current.value", "in", "21.5"), True),  # a single value is a list of one
    (Filter("current.value", "nin", [21.5]), False),
    (Filter("current.value", "gt", "21.4"), True),
    (Filter("current.value", "gte", 21.5), True),
    (Filter("current.value", "lt", 21.5), False),
    (Filter("current.value", "lte", 21.5), True),
    (Filter("current.value", "range_in", [21, 22]), True),
    (Filter("current.value", "range_in", [21.5, 22]), False),
    (Filter("current.value", "range_not_in", [21.5, 22]), False),
    (Filter("current.value", "range_not_in", [22, 30]), True),
    (Filter("current.timestamp", "gt", "2025-12-31T23:59:59.999Z"), True),
    (Filter("name", "exists", True), True),
    (Filter("name", "exists", None), True),
    (Filter("name", "exists", "false"), False),
    (Filter("unit", "exists", True), False),  # "" counts as absent
    (Filter("noChangeSince", "exists", False), True),  # null counts as absent
    (Filter("name", "regex", "^out"), True),
    (Filter("labels", "regex", "garden"), True),  # objects match as JSON text
    (Filter("current.value", "regex", r"^21\.5$"), True),
    (Filter("name", "EQ", "Outside"), True),  # operator names in any case
])
def test_matches_one_filter(flt: Filter, expected: bool) -> None:
    assert matches(RECORD, [flt]) is expected


def test_no_filters_match_everything_and_several_are_anded() -> None:
    assert matches(RECORD, [])
    assert matches(RECORD, [Filter("labels.room", "eq", "garden"), Filter("current.value", "gt", 20)])
    assert not matches(RECORD, [Filter("labels.room", "eq", "garden"), Filter("current.value", "gt", 30)])


@pytest.mark.parametrize("flt, fragment", [
    (Filter("name", "like", "x"), "unknown filter operator 'like'"),
    (Filter("", "eq", "x"), "filter key"),
    (Filter("v", "range_in", [1]), "range_in for key 'v' takes [low, high]"),
    (Filter("v", "range_not_in", "1,2"), "range_not_in"),
    (Filter("v", "regex", "(unclosed"), "invalid regex '(unclosed'"),
    (Filter("v", "regex", None), "regex for key 'v'"),
    (Filter("v", "exists", "maybe"), "exists takes true or false"),
])
def test_bad_filters_raise_query_error_naming_the_problem(flt: Filter, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        matches(RECORD, [flt])
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("pattern, text", [("(a+)+$", "a" * 26 + "!"), ("(a|aa)*c", "a" * 5000),
                                           ("(x+x+)+y", "x" * 5000), ("^(\\w+\\s?)*$", "word " * 2000 + "!")])
def test_regex_filters_run_in_linear_time_whatever_the_pattern(pattern: str, text: str) -> None:
    """Patterns that make a backtracking engine run for hours (the issue's: 18.7 s on 27 characters) are answered at
    once: RE2, as Go's regexp the reference used."""
    import time

    started = time.perf_counter()
    assert not matches({"title": text}, [Filter("title", "regex", pattern)])
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("pattern, fragment", [
    ("(unclosed", "invalid regex '(unclosed': missing ), unterminated subpattern at position 0"),  # as before
    ("a**", "invalid regex 'a**': multiple repeat at position 2"),
    (r"(a)\1", "no backreferences"),  # Python's re takes it, RE2 (and Go) do not
    ("(?=a)b", "no backreferences or lookaround"),
])
def test_regex_filters_refuse_what_re2_cannot_run(pattern: str, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        matches(RECORD, [Filter("name", "regex", pattern)])
    assert fragment in str(caught.value)


def test_a_bad_filter_fails_even_without_records() -> None:
    with pytest.raises(QueryError):
        apply_query([], ListQuery(filters=[Filter("x", "bogus")]))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(["id", "labels.room", "current.value", "others", "LABELS", "x.y.z", "", "."])
    | st.text(max_size=6),
    operator=st.sampled_from(FILTER_OPERATORS) | st.text(max_size=6),
    value=JSONISH,
    record=st.dictionaries(st.sampled_from(["id", "labels", "current", "others", "x"]), JSONISH, max_size=5),
)
def test_random_filters_raise_nothing_but_query_error(key: str, operator: str, value: Any,
                                                     record: dict[str, Any]) -> None:
    """A filter is refused (``QueryError``) or not whatever the records; one that compiles answers a boolean for any
    record, the same through ``matches`` and ``apply_query``, and never says yes to a record its complement (``eq``
    and ``ne``, ``gt`` and ``lte``…) also accepts; when the key holds a value, exactly one of the two does."""
    flt = Filter(key, operator, value)
    targets = [record, RECORD]
    try:
        predicate = compile_filter(flt)
    except QueryError:
        for target in targets:
            with pytest.raises(QueryError):
                matches(target, [flt])
        with pytest.raises(QueryError):
            apply_query([], ListQuery(filters=[flt]))
        return
    answers = [predicate(target) for target in targets]
    assert all(type(answer) is bool for answer in answers)
    assert [matches(target, [flt]) for target in targets] == answers
    found = apply_query(targets, ListQuery(filters=[flt], limit=0))
    assert found.count == sum(answers)
    assert sorted(map(id, found.data)) == sorted(id(t) for t, answer in zip(targets, answers, strict=True) if answer)

    complement = COMPLEMENTS.get(operator.strip().lower())
    if complement is None:
        return
    other = compile_filter(Filter(key, complement, value))
    for target, answer in zip(targets, answers, strict=True):
        if get_path(target, key.strip()) is None:  # nothing there: neither compares
            assert (answer, other(target)) == (False, False)
        else:
            assert other(target) is not answer


COMPLEMENTS = {"eq": "ne", "ne": "eq", "in": "nin", "nin": "in", "gt": "lte", "lte": "gt", "lt": "gte", "gte": "lt"}
"""Operators that accept exactly the present values the other refuses."""


@settings(max_examples=60, deadline=None)
@given(values=st.lists(JSONISH, max_size=12), descending=st.booleans())
def test_sorting_any_values_never_raises_and_is_ordered(values: list[Any], descending: bool) -> None:
    records = [{"id": f"r{i:02d}", "v": v} for i, v in enumerate(values)]
    result = apply_query(records, ListQuery(sort_by=[Sort("v", "desc" if descending else "asc")], limit=0))
    assert sorted(r["id"] for r in result.data) == sorted(r["id"] for r in records)
    # families in order (missing/None, numbers, text), each family in order of ``compare``
    keys = [sort_key(r["v"]) for r in result.data]
    for (family_a, _), (family_b, _), a, b in zip(keys, keys[1:], result.data, result.data[1:], strict=False):
        if descending:
            family_a, family_b, a, b = family_b, family_a, b, a
        assert family_a <= family_b
        if family_a == family_b:
            assert compare(a["v"], b["v"]) <= 0


# --------------------------------------------------------------------------------------------- apply_query

ROWS: list[dict[str, Any]] = [
    {"id": "a", "n": 3, "g": "x"},
    {"id": "b", "n": "10", "g": "y"},
    {"id": "c", "n": None, "g": "x"},
    {"id": "d", "g": "y"},
    {"id": "e", "n": 3, "g": "y"},
]


def test_sort_multi_key_missing_first_then_id() -> None:
    result = apply_query(ROWS, ListQuery(sort_by=[Sort("g", "desc"), Sort("n")], limit=0))
    assert [r["id"] for r in result.data] == ["d", "e", "b", "c", "a"]
    result = apply_query(ROWS, ListQuery(sort_by=[Sort("n", "desc")], limit=0))
    assert [r["id"] for r in result.data] == ["b", "a", "e", "c", "d"]


def test_default_order_is_by_id_and_paging_counts_before_paging() -> None:
    shuffled = [ROWS[3], ROWS[0], ROWS[4], ROWS[2], ROWS[1]]
    result = apply_query(shuffled, ListQuery(limit=2, offset=1))
    assert (result.count, result.limit, result.offset) == (5, 2, 1)
    assert [r["id"] for r in result.data] == ["b", "c"]
    assert [r["id"] for r in apply_query(shuffled, ListQuery(limit=-1)).data] == ["a", "b", "c", "d", "e"]
    assert apply_query(shuffled, ListQuery(limit=3, offset=9)).data == []


def test_apply_query_does_not_reorder_or_change_its_input() -> None:
    rows = [dict(r) for r in reversed(ROWS)]
    before = json.dumps(rows)
    apply_query(rows, ListQuery(sort_by=[Sort("n")], filters=[Filter("g", "eq", "y")]))
    assert json.dumps(rows) == before


def test_bad_sort_order_raises() -> None:
    with pytest.raises(QueryError, match="'asc' or 'desc'"):
        apply_query(ROWS, ListQuery(sort_by=[Sort("n", "up")]))


# --------------------------------------------------------------------------------------------- HTTP format


def test_parse_defaults() -> None:
    query = parse_list_query({})
    assert (query.limit, query.offset, query.filters, query.sort_by) == (DEFAULT_LIMIT, 0, [], [])


def test_parse_reference_json_format() -> None:
    query = parse_list_query({
        "limit": "10",
        "offset": "20",
        "sortBy": json.dumps([{"f": "labels.room", "o": "desc"}, {"f": "name"}]),
        "filter": json.dumps([{"k": "labels.room", "o": "in", "v": ["a", "b"]}, {"k": "name", "v": "x"}]),
        "unrelated": "ignored",
    })
    assert (query.limit, query.offset) == (10, 20)
    assert query.sort_by == [Sort("labels.room", "desc"), Sort("name", "asc")]
    assert query.filters == [Filter("labels.room", "in", ["a", "b"]), Filter("name", "eq", "x")]


def test_parse_plain_sort_keys_and_repeated_parameters() -> None:
    query = parse_list_query({
        "sortBy": ["-current.timestamp,name", "+id"],
        "filter": [json.dumps({"k": "a", "o": "EXISTS", "v": True}), json.dumps([{"k": "b", "o": "eq", "v": 1}])],
        "limit": ["5", "7"],
    })
    assert query.sort_by == [Sort("current.timestamp", "desc"), Sort("name", "asc"), Sort("id", "asc")]
    assert query.filters == [Filter("a", "exists", True), Filter("b", "eq", 1)]
    assert query.limit == 7


@pytest.mark.parametrize("limit, expected", [("0", MAX_LIMIT), ("-1", MAX_LIMIT), ("999999", MAX_LIMIT),
                                             ("1", 1), (" 25 ", 25), ("", DEFAULT_LIMIT)])
def test_parse_limit_all_is_capped(limit: str, expected: int) -> None:
    assert parse_list_query({"limit": limit}).limit == expected


@pytest.mark.parametrize("params, parameter, fragment", [
    ({"limit": "ten"}, "limit", "limit must be an integer"),
    ({"offset": "1.5"}, "offset", "offset must be an integer"),
    ({"offset": "-1"}, "offset", "offset must be 0 or more"),
    ({"sortBy": "[{\"f\": \"a\", \"o\": \"sideways\"}]"}, "sortBy", "sortBy[0].o"),
    ({"sortBy": "[{\"o\": \"asc\"}]"}, "sortBy", "sortBy[0].f"),
    ({"sortBy": "[1]"}, "sortBy", "sortBy[0] must be an object"),
    ({"sortBy": "[{"}, "sortBy", "sortBy is not valid JSON"),
    ({"sortBy": "a,,b"}, "sortBy", "empty key"),
    ({"filter": "{\"k\": \"a\", \"o\": \"near\"}"}, "filter", "filter[0]: unknown filter operator 'near'"),
    ({"filter": "[{\"k\": \"a\"}, {\"o\": \"eq\"}]"}, "filter", "filter[1].k"),
    ({"filter": "[{\"k\": \"a\", \"o\": 3}]"}, "filter", "filter[0].o"),
    ({"filter": "[{\"k\": \"a\", \"o\": \"regex\", \"v\": \"[\"}]"}, "filter", "invalid regex"),
    ({"filter": "[{\"k\": \"a\", \"o\": \"range_in\", \"v\": 5}]"}, "filter", "takes [low, high]"),
    ({"filter": "\"text\""}, "filter", "must be a JSON list"),
    ({"filter": "k=a"}, "filter", "filter is not valid JSON"),
    ({"filter": "[\"x\"]"}, "filter", "filter[0] must be an object"),
])
def test_parse_errors_name_the_parameter(params: dict[str, str], parameter: str, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_list_query(params)
    assert caught.value.parameter == parameter
    assert fragment in str(caught.value)


@settings(max_examples=150, deadline=None)
@given(params=st.dictionaries(st.sampled_from(["limit", "offset", "sortBy", "filter", "other"]),
                              st.text(max_size=30) | st.lists(st.text(max_size=20), max_size=3), max_size=4))
def test_parse_random_params_raise_nothing_but_query_error(params: dict[str, Any]) -> None:
    try:
        query = parse_list_query(params)
    except QueryError as error:
        assert error.parameter in ("limit", "offset", "sortBy", "filter")
        return
    assert 1 <= query.limit <= MAX_LIMIT and query.offset >= 0
