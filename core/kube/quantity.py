"""Kubernetes ``resource.Quantity``: parsing and the canonical string form.

This reimplements the observable behaviour of apimachinery's ``Quantity``:

* :func:`parse` accepts what ``ParseQuantity`` accepts (sign, digits, an
  optional fraction, then a decimal-SI, binary-SI or ``e<exp>`` suffix) and
  fails with the same messages. Non-zero values are rounded up (away from
  zero) to nano precision; binary-SI values are capped at 2^63-1.
* :func:`canonical` is what the apiserver emits after ``SetDefaults_ResourceList``
  (round up to milli, :func:`canonical` with ``round_up_milli=True``) or after
  a plain round trip (``round_up_milli=False``): the suffix family of the input
  is kept, the exponent is made as large as possible without fractional
  digits (``1000m``→``1``, ``1.5Gi``→``1536Mi``, ``1000``→``1k``), and binary
  values that are not whole numbers or are below 1024 fall back to decimal SI.
* Values past the largest suffix (``1000E``, beyond ``Ei``) use exponent
  notation or plain digits, and exponents beyond int32 are rejected (newer
  apimachinery; older releases corrupted such values).
* Like Go, a string that is already "canonical enough" when parsed is echoed
  verbatim (Go caches it): ``100m``, ``1e3``, ``10Gi`` and even ``+1`` come
  back unchanged.

Values are held as ``mantissa * 10**exponent`` with Python integers, so nothing
is ever a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

QUANTITY_PATTERN: Final = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT: Final = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
ERR_NUMERIC: Final = "unable to parse numeric part of quantity"
ERR_SUFFIX: Final = "unable to parse quantity's suffix"

DECIMAL_SI: Final = "DecimalSI"
BINARY_SI: Final = "BinarySI"
DECIMAL_EXPONENT: Final = "DecimalExponent"

_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_SUFFIX_BY_EXP = {v: k for k, v in _DEC_SUFFIX.items()}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BIN_SUFFIX_BY_EXP = {v // 10: k for k, v in _BIN_SUFFIX.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_MAX_INT64 = (1 << 63) - 1
_MAX_INT32 = (1 << 31) - 1
_NANO = -9
_MILLI = -3


@dataclass(frozen=True, slots=True)
class Quantity:
    """A parsed quantity: ``mantissa * 10**exponent`` plus its format.

    ``cached`` is the input string when Go would echo it verbatim; ``fast``
    records whether Go held the value as a scaled int64 (only those keep the
    cached string through a milli round-up).
    """

    mantissa: int
    exponent: int
    format: str
    cached: str | None = None
    fast: bool = False

    @property
    def value(self) -> Decimal:
        """The exact numeric value."""
        sign = 1 if self.mantissa < 0 else 0
        digits = tuple(int(c) for c in str(abs(self.mantissa)))
        return Decimal((sign, digits, self.exponent))

    def round_up(self, exponent: int = _MILLI) -> Quantity:
        """Round away from zero to ``10**exponent`` (Go's ``RoundUp``)."""
        if self.exponent >= exponent:
            return self
        m = _ceil_away(self.mantissa, 10 ** (exponent - self.exponent))
        return Quantity(m, exponent, self.format, None, self.fast)

    def __str__(self) -> str:
        return self.cached if self.cached is not None else _format(self)


def _ceil_away(mantissa: int, divisor: int) -> int:
    q, r = divmod(abs(mantissa), divisor)
    if r:
        q += 1
    return -q if mantissa < 0 else q


def _scan(s: str) -> tuple[bool, str, str, str, str]:
    """Split like Go's ``parseQuantityString``: (positive, value, num, denom, suffix)."""
    positive = True
    pos, end = 0, len(s)
    if pos < end and s[0] in "+-":
        positive = s[0] == "+"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
        if pos >= end:
            return positive, s, num, denom, ""
    value = s[:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT)
    return positive, value, num, denom, s[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix; ValueError(ERR_SUFFIX) when unknown."""
    if suffix in _DEC_SUFFIX:
        return 10, _DEC_SUFFIX[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIX:
        return 2, _BIN_SUFFIX[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        body = rest[1:] if rest[0] in "+-" else rest
        if body and all(c in _DIGITS for c in body):
            exp = int(rest)
            if abs(exp) <= _MAX_INT32:
                return 10, exp, DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def parse_quantity(s: str) -> Quantity:
    """Parse like Go's ``ParseQuantity`` (no whitespace trimming)."""
    if not s:
        raise ValueError(ERR_FORMAT)
    if s == "0":
        return Quantity(0, 0, DECIMAL_SI, "0", True)
    positive, _value, num, denom, suf = _scan(s)
    base, exp, fmt = _interpret(suf)

    precision = -1
    if fmt in (DECIMAL_SI, DECIMAL_EXPONENT):
        precision = 18 - (len(num) + len(denom))
    elif exp >= 0 and not denom:
        precision = 15 - len(num) - int(exp * 3 / 10) - 1

    if precision >= 0:
        scale = (exp if base == 10 else 0) - len(denom)
        if scale >= _NANO:
            shifted = num + denom
            n = int(shifted)
            if n <= _MAX_INT64:
                result = n << exp if base == 2 else n
                if result <= _MAX_INT64:
                    if not positive:
                        result = -result
                    cached: str | None = None
                    if base == 2:
                        if exp % 10 == 0 and n & 7:
                            cached = s
                    elif scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
                        cached = s
                    return Quantity(result, scale, fmt, cached, True)

    # Slow path: arbitrary precision, rounded up to nano, binary capped at int64.
    sign = -1 if not positive else 1
    digits = (num + denom).lstrip("0") or "0"
    mantissa, exponent = int(digits), -len(denom)
    if base == 10:
        exponent += exp
    else:
        mantissa <<= exp
    mantissa *= sign
    q = Quantity(mantissa, exponent, fmt)
    if mantissa and exponent < _NANO:
        q = q.round_up(_NANO)
    if fmt == BINARY_SI:
        if q.value > _MAX_INT64:
            q = Quantity(_MAX_INT64, 0, fmt)
        elif q.value < -_MAX_INT64:
            # Go caps the magnitude before restoring the sign.
            q = Quantity(-_MAX_INT64, 0, fmt)
        if 0 < abs(q.value) < 1:
            q = Quantity(q.mantissa, q.exponent, DECIMAL_SI)
    return q


def parse(s: str) -> Decimal:
    """The exact value of quantity string ``s``; ValueError with Go's message when invalid.

    Leading and trailing whitespace is ignored, as in ``Quantity.UnmarshalJSON``.
    """
    return parse_quantity(s.strip()).value


def _strip10(mantissa: int, exponent: int) -> tuple[int, int]:
    if mantissa == 0:
        return 0, 0
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    return mantissa, exponent


def _format(q: Quantity) -> str:
    if q.mantissa == 0:
        return "0"
    fmt = q.format
    value = q.value
    if fmt == BINARY_SI:
        if -1024 < value < 1024 or value != value.to_integral_value():
            fmt = DECIMAL_SI
        else:
            whole = int(value)
            power = 0
            while whole % 1024 == 0:
                whole //= 1024
                power += 1
            if power in _BIN_SUFFIX_BY_EXP or power == 0:
                return f"{whole}{_BIN_SUFFIX_BY_EXP.get(power, '')}"
            fmt = DECIMAL_SI  # beyond Ei: exact decimal rather than a lost magnitude
    mantissa, exponent = _strip10(q.mantissa, q.exponent)
    shift = exponent % 3
    if shift:
        mantissa *= 10**shift
        exponent -= shift
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    suffix = _DEC_SUFFIX_BY_EXP.get(exponent)
    return f"{mantissa}{suffix}" if suffix is not None else f"{mantissa}e{exponent}"


def _to_text(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError(ERR_FORMAT)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(ERR_FORMAT)
        return repr(value)
    if isinstance(value, str):
        return value.strip()
    raise ValueError(ERR_FORMAT)


def canonical(value: str | int | float, *, round_up_milli: bool = True) -> str:
    """The string the apiserver emits for ``value``.

    With ``round_up_milli`` (the default) this is a ResourceList entry after
    ``SetDefaults_ResourceList`` (``1.5m``→``2m``); without it, any other
    Quantity field after a decode/encode round trip (``1.5m``→``1500u``).
    Numbers are read as their JSON text (``0.5``→``500m``).
    """
    q = parse_quantity(_to_text(value))
    if round_up_milli:
        q = q.round_up(_MILLI)
    return str(q)


def is_valid(value: object) -> bool:
    """Whether ``value`` (a string or a number) parses as a quantity."""
    try:
        parse_quantity(_to_text(value))
    except ValueError:
        return False
    return True
