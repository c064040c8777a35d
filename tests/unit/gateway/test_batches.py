"""Request bodies → the exact bytes of each item (salespulse.gateway.batches)."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salespulse.gateway.batches import BatchRefused, split_body, split_json_array, split_ndjson, with_source

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@given(st.lists(json_values, max_size=8), st.sampled_from([None, 2]))
def test_array_items_are_the_slices_that_parse_to_each_element(
    items: list[object], indent: int | None
) -> None:
    body = orjson.dumps(items, option=orjson.OPT_INDENT_2 if indent else 0)
    slices = split_json_array(body)
    assert [orjson.loads(item) for item in slices] == items
    assert all(item in body for item in slices)


def test_array_items_keep_the_bytes_as_sent() -> None:
    body = b'[ {"amount": 12345678901234567.89, "s": "a,]\\"}"} ,\n{"b":[1,{"c":2}]} ]'
    assert split_json_array(body) == [
        b'{"amount": 12345678901234567.89, "s": "a,]\\"}"}',
        b'{"b":[1,{"c":2}]}',
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[{]", "invalid_json"),
        (b'{"a": 1}', "not_an_array"),
        (b"", "invalid_json"),
        (b"[NaN]", "invalid_json"),
    ],
)
def test_a_body_that_is_not_a_json_array_is_refused_with_400(body: bytes, error: str) -> None:
    with pytest.raises(BatchRefused) as refused:
        split_json_array(body)
    assert refused.value.status == 400 and refused.value.error == error
    assert "Nothing was published" in refused.value.message


def test_ndjson_lines_are_items_and_blank_lines_inside_count() -> None:
    assert split_ndjson(b'{"a":1}\r\n\n{not json\n{"b":2}') == [b'{"a":1}', b"", b"{not json", b'{"b":2}']
    assert split_ndjson(b'{"a":1}\n') == [b'{"a":1}']
    assert split_ndjson(b"\n \n") == []


def test_more_items_than_the_limit_are_refused_with_413() -> None:
    assert len(split_body(b"[1,2,3]", "application/json", 3)) == 3
    with pytest.raises(BatchRefused) as refused:
        split_body(b"1\n2\n3\n4\n", "application/x-ndjson", 3)
    assert (
        refused.value.status == 413 and "4 events or records, above the limit of 3" in refused.value.message
    )


def test_the_source_is_added_last_so_it_wins_over_a_null_one() -> None:
    assert orjson.loads(with_source(b'{"a": 1, "source": null}  \n', "crm-a")) == {"a": 1, "source": "crm-a"}
    assert with_source(b'{"amount":1.10}', 'x"y').startswith(b'{"amount":1.10,')
