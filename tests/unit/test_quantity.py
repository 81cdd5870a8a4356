"""core.kube.quantity against outputs of apimachinery's resource.Quantity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.kube import quantity
from core.kube.quantity import ERR_FORMAT, ERR_SUFFIX, canonical, parse, parse_quantity

# (input, emitted after SetDefaults_ResourceList's milli round-up)
RESOURCE_LIST_CASES = [
    ("0.5", "500m"),
    (0.5, "500m"),
    ("1000m", "1"),
    ("1000M", "1G"),
    ("1.5Gi", "1536Mi"),
    ("1024Mi", "1Gi"),
    ("1.5m", "2m"),
    ("100", "100"),
    (100, "100"),
    (1, "1"),
    ("1e3", "1e3"),
    ("0.1", "100m"),
    ("1000", "1k"),
    ("2048Mi", "2Gi"),
    ("128Mi", "128Mi"),
    ("100Mi", "100Mi"),
    ("512Mi", "512Mi"),
    ("250m", "250m"),
    ("1.5", "1500m"),
    (2.5, "2500m"),
    ("0.001", "1m"),
    ("0.0001", "1m"),
    ("15u", "1m"),
    ("0.1n", "1m"),
    ("1.1Gi", "1181116006400m"),
    ("0.5Ki", "512"),
    ("1Ki", "1Ki"),
    ("8Gi", "8Gi"),
    ("10Gi", "10Gi"),
    ("0", "0"),
    ("0m", "0"),
    ("0Gi", "0"),
    ("-1.5", "-1500m"),
    ("100000000m", "100k"),
    ("2P", "2P"),
    (" 100m ", "100m"),
]

# (input, emitted for a Quantity outside a ResourceList: no rounding)
ROUND_TRIP_CASES = [
    ("1.5m", "1500u"),
    ("0.1n", "1n"),
    ("3.001n", "4n"),
    ("1.1E-9", "2e-9"),
    ("0.00000012345", "124n"),
    (".001Ki", "1024m"),
    (".000001Ki", "1024u"),
    (".000000001Ki", "1024n"),
    (".000000000001Ki", "2n"),
    ("1.08", "1080m"),
    ("1080000000n", "1080m"),
    ("0.001T", "1G"),
    ("307200Ki", "300Mi"),
    ("1025024Mi", "1001Gi"),
    ("5000m", "5"),
    (".001e12", "1e9"),
    ("0.001e0", "1e-3"),
    ("1000e-12", "1e-9"),
    ("00", "0"),
    ("100.035Ki", "102435840m"),
    ("9Ei", "9223372036854775807"),
    ("1000E", "1e21"),
]

# Strings Go caches at parse time and echoes verbatim.
VERBATIM = [
    "1Gi", "300Mi", "6Ki", "1001Gi", "1Ti", "5", "500m", "1G", "1m", "80m", "1080m", "300M",
    "1T", "1E", "1234567M", "1234567m", "3k", "1025", "0", "1e9", "1e-3", "1e-9", "80e-3",
    "300e6", "1e12", "1e3", "3e3", "1n", "80n", "1080n", "1u", "80u", "1080u", "1.5e4", "+1",
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), RESOURCE_LIST_CASES)
def test_canonical_resource_list(value: str | int | float, expected: str) -> None:
    assert canonical(value) == expected


@pytest.mark.parametrize(("value", "expected"), ROUND_TRIP_CASES)
def test_canonical_without_rounding(value: str, expected: str) -> None:
    assert canonical(value, round_up_milli=False) == expected


@pytest.mark.parametrize("value", VERBATIM)
def test_canonical_strings_are_echoed(value: str) -> None:
    assert canonical(value, round_up_milli=False) == value


def test_parse_values() -> None:
    assert parse("1.5Gi") == Decimal(1610612736)
    assert parse("100m") == Decimal("0.1")
    assert parse("1e3") == 1000
    assert parse("-2k") == -2000
    assert parse("0.0000000005") == Decimal("1e-9")  # rounded up to nano
    assert parse("9223372036854775807Ki") == (1 << 63) - 1  # binary values are capped
    assert parse("12E") == Decimal("12e18")
    assert parse("1.") == 1
    assert parse(".") == 0


def test_formats() -> None:
    assert parse_quantity("1Ki").format == quantity.BINARY_SI
    assert parse_quantity("1k").format == quantity.DECIMAL_SI
    assert parse_quantity("1E6").format == quantity.DECIMAL_EXPONENT
    assert parse_quantity("0.000000000001Ki").format == quantity.DECIMAL_SI


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", ERR_FORMAT),
        ("aoeu", ERR_FORMAT),
        ("1.1.M", ERR_FORMAT),
        ("1+1.0M", ERR_FORMAT),
        ("1x", ERR_FORMAT),
        ("0.1mi", ERR_SUFFIX),
        ("0.1am", ERR_FORMAT),
        (".5i", ERR_SUFFIX),
        ("1i", ERR_SUFFIX),
        ("-3.01i", ERR_SUFFIX),
        ("-3.01e-", ERR_SUFFIX),
        ("1GG", ERR_SUFFIX),
        ("1e4294967297", ERR_SUFFIX),
    ],
)
def test_parse_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_quantity(value)
    assert str(exc.value) == message


def test_error_message_is_the_apiservers() -> None:
    with pytest.raises(ValueError, match=r"^quantities must match the regular expression '\^\(\[\+-\]\?"):
        canonical("one")
    with pytest.raises(ValueError):
        canonical(True)
    assert not quantity.is_valid("10 Gi")
    assert quantity.is_valid(3)


# ------------------------------------------------------------------ properties

_SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "e3", "e-2", "E6"]
_MULT = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10**3),
    "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "e3": Decimal(10**3), "e-2": Decimal("1e-2"), "E6": Decimal(10**6),
}  # fmt: skip

quantities = st.builds(
    lambda whole, frac, suffix, neg: (
        ("-" if neg else "") + str(whole) + (f".{frac}" if frac else "") + suffix
    ),
    st.integers(min_value=0, max_value=10**7),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,6}", fullmatch=True)),
    st.sampled_from(_SUFFIXES),
    st.booleans(),
)


def _exact(text: str) -> Decimal:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-")
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and body.endswith(suffix):
            return sign * Decimal(body[: -len(suffix)]) * _MULT[suffix]
    return sign * Decimal(body)


@given(quantities)
def test_value_matches_exact_arithmetic(text: str) -> None:
    exact = _exact(text)
    value = parse(text)
    cap = Decimal((1 << 63) - 1)
    if text.endswith("i") and abs(exact) > cap:
        assert value == cap.copy_sign(exact)  # binary-SI magnitudes are capped at 2^63-1
        return
    # Parsing rounds away from zero to nano precision only.
    assert abs(value) >= abs(exact)
    assert abs(value - exact) < Decimal("1e-9")


@given(quantities)
def test_round_trip_preserves_value(text: str) -> None:
    emitted = canonical(text, round_up_milli=False)
    assert parse(emitted) == parse(text)
    assert canonical(emitted, round_up_milli=False) == emitted


@given(quantities)
def test_milli_rounding(text: str) -> None:
    emitted = canonical(text)
    value, original = parse(emitted), parse(text)
    assert abs(value) >= abs(original)
    assert abs(value - original) < Decimal("0.001")
    assert value == value.quantize(Decimal("0.001")) or abs(value) >= 1000
    assert canonical(emitted) == emitted  # idempotent


@given(st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=1023))
def test_binary_suffix_is_largest_exact_power(power: int, mantissa: int) -> None:
    names = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
    text = f"{mantissa * 1024}{names[power]}"
    value = mantissa * 1024 ** (power + 1)
    if value <= (1 << 63) - 1:
        assert canonical(text) == f"{mantissa}{names[power + 1]}"
    else:
        assert canonical(text) == str((1 << 63) - 1)  # capped, and 2^63-1 has no binary suffix


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integers_keep_their_value(n: int) -> None:
    assert parse(canonical(n)) == n
