"""A request's address is checked and spelled as the `ipaddress` module would, though
most take a shorter path (domain/context.py, `normal_ip`): the two must never differ."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.context import normal_ip

OCTET = st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "007", "١", "٠", "", " 1",
                                                         "1\n", "+1", "0x1"])
QUAD_LIKE = st.lists(OCTET, min_size=3, max_size=5).map(".".join)


def _ipaddress_says(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@given(st.ip_addresses())
def test_an_address_in_its_own_spelling_is_kept(address: ipaddress._BaseAddress) -> None:
    assert normal_ip(str(address)) == str(address)


@given(QUAD_LIKE | st.ip_addresses(v=6).map(lambda a: a.exploded) | st.text(max_size=12))
def test_any_text_is_taken_or_refused_as_ipaddress_would(text: str) -> None:
    expected = _ipaddress_says(text)
    if expected is None:
        with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
            normal_ip(text)
    else:
        assert normal_ip(text) == expected


@pytest.mark.parametrize("text", ["01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5",
                                  "١.2.3.4", "1.2.3.4\n", " 1.2.3.4"])
def test_near_misses_of_a_dotted_quad_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normal_ip(text)
