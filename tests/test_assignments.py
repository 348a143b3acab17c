"""The one NAME=VALUE parser behind --ratios, --counts, --map, --min-len and the like."""

import pytest

from cqia_cli.assignments import assignment_pairs


def test_pairs_in_order_from_repeated_and_comma_separated_values():
    assert assignment_pairs(["train=0.9, valid=0.05", "test=0.05"], "--ratios") == [
        ("train", "0.9"), ("valid", "0.05"), ("test", "0.05")]
    assert assignment_pairs(["a=x=y"], "--map") == [("a", "x=y")]
    assert assignment_pairs([" , "], "--map") == []


def test_optional_names():
    assert assignment_pairs(["20,output=4096"], "--max-len", name_required=False) == [
        (None, "20"), ("output", "4096")]


@pytest.mark.parametrize("values,kwargs,message", [
    (["train"], {}, "--x: expected NAME=VALUE, got 'train'"),
    (["=3"], {"name_required": False}, "--x: expected [NAME=]VALUE, got '=3'"),
    (["a="], {"value_required": True}, "--x: expected NAME=VALUE, got 'a='"),
    (["a=1,a=2"], {"unique": True}, "--x: a is given twice"),
])
def test_errors_name_the_option_and_the_part(values, kwargs, message):
    with pytest.raises(ValueError) as e:
        assignment_pairs(values, "--x", **kwargs)
    assert str(e.value) == message
