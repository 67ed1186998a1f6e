"""Province gazetteer: the 25 provinces with their codes, names and flags, and a forgiving name resolver.

Everything is read from the bundled ``data/reference/provinces.csv`` and ``province_aliases.csv`` on
first use (no I/O at import). Province codes are the official two-digit codes ``"01"``..``"25"`` (the
ISO 3166-2 code is ``KH-<int(code)>``); :data:`data.schema.NATIONAL` (``"00"``) stands for national rows.

>>> resolve_province("Kompong Cham")
'03'
>>> resolve_province("KH-17")
'17'
"""

from __future__ import annotations

import csv
import difflib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from data.reference import reference_path
from data.schema import NATIONAL

#: The 25 province codes in code order.
PROVINCE_CODES: tuple[str, ...] = tuple(f"{i:02d}" for i in range(1, 26))

#: Environment variable overriding the default livelihood provinces (comma list of names or codes).
LIVELIHOOD_ENV = "CTIP_LIVELIHOOD_PROVINCES"

#: Display names of :data:`~data.schema.NATIONAL` rows.
NATIONAL_NAMES: dict[str, str] = {"en": "Cambodia", "km": "កម្ពុជា"}

_BOOL = {"true": True, "false": False}
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_KHMER = re.compile("[\u1780-\u17ff\u19e0-\u19ff]")
_NUMERIC = re.compile(r"^0*(\d{1,3})(?:\.0*)?$")
_ISO_KEY = re.compile(r"^kh0*(\d{1,3})$")
#: Words that carry no identity: "Siem Reap Province", "Krong Kep", "Phnom Penh Capital".
_NOISE_WORDS = frozenset(
    {"province", "provincial", "khet", "khaet", "krong", "capital", "city", "municipality", "of"}
)
_NOISE_PREFIXES = ("khet", "khaet", "krong")
_NOISE_SUFFIXES = ("province", "capital", "city", "municipality")
_WORD_MAP = {"kompong": "kampong", "kompung": "kampong", "kampung": "kampong", "kg": "kampong"}
_KHMER_PREFIXES = ("ខេត្ត", "រាជធានី", "ក្រុង")
_NATIONAL_ALIASES = (
    "national",
    "national total",
    "national level",
    "nationwide",
    "Cambodia",
    "Kingdom of Cambodia",
    "KH",
    "KHM",
    "កម្ពុជា",
    "ព្រះរាជាណាចក្រកម្ពុជា",
    "ថ្នាក់ជាតិ",
    "ជាតិ",
)


class UnknownProvinceError(ValueError):
    """Raised when a text does not name a province.

    Parameters
    ----------
    text
        The text that was looked up.
    suggestions
        Up to three ``(code, English name)`` pairs of the closest provinces, best first.
    reason
        Replaces the generic hint when there is no suggestion (e.g. national rows not allowed).

    Notes
    -----
    The message reads ``'Siem Reab' is not a province — did you mean Siem Reap (17)?``; the importer
    relies on that phrasing.
    """

    def __init__(self, text: object, suggestions: Iterable[tuple[str, str]] = (), reason: str | None = None):
        self.text = text
        self.suggestions: list[tuple[str, str]] = list(suggestions)
        shown = str(text)
        if self.suggestions:
            names = [f"{name} ({code})" for code, name in self.suggestions]
            choice = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
            hint = f"did you mean {choice}?"
        else:
            hint = reason or "use a name like 'Siem Reap', a code 01–25 or ISO KH-17"
        super().__init__(f"'{shown}' is not a province — {hint}")


@dataclass(frozen=True)
class Province:
    """One province (or the capital, Phnom Penh) with its names and programme flags.

    Attributes
    ----------
    code
        Official two-digit code, ``"01"``..``"25"``.
    iso
        ISO 3166-2 code, ``"KH-1"``..``"KH-25"``.
    name_en
        Programme spelling, e.g. ``"Siem Reap"``.
    name_en_official
        Ministry of Economy and Finance spelling, e.g. ``"Siemreap"``.
    name_km
        Khmer name from the MEF gazetteer, unmodified.
    ctip_target
        Targeted by the CTIP programme.
    livelihood
        Livelihood province in the bundled default (see :func:`livelihood_codes` for the effective set).
    border
        ISO alpha-3 codes of neighbouring countries sharing a land border.
    coastal
        On the Gulf of Thailand.
    capital
        Provincial capital (town).
    population_2019
        2019 census population, final results; ``None`` if unknown.
    """

    code: str
    iso: str
    name_en: str
    name_en_official: str
    name_km: str
    ctip_target: bool
    livelihood: bool
    border: tuple[str, ...]
    coastal: bool
    capital: str
    population_2019: int | None

    def name(self, lang: Literal["en", "km"] = "en") -> str:
        """Return the display name in ``lang`` (``"en"`` programme spelling or ``"km"``)."""
        if lang == "en":
            return self.name_en
        if lang == "km":
            return self.name_km
        raise ValueError(f"lang must be 'en' or 'km', not {lang!r}")


def name_key(text: object) -> str:
    """Return the normalised lookup key of a province name.

    Case, accents, spaces, hyphens and punctuation are ignored, zero-width characters are dropped,
    "Kompong"/"Kg" become "Kampong", and words such as "Province", "Khet", "Krong", "Capital" and
    "City" (and the Khmer ខេត្ត, រាជធានី, ក្រុង prefixes) are removed.

    Parameters
    ----------
    text
        Any name, alias or code as typed.

    Returns
    -------
    str
        The key; empty if nothing identifying is left.
    """
    raw = str(text).translate(_ZERO_WIDTH)
    if _KHMER.search(raw):
        # Khmer vowel signs and the coeng are combining marks: keep them, drop spaces and punctuation.
        khmer = "".join(
            ch for ch in unicodedata.normalize("NFKC", raw).casefold() if unicodedata.category(ch)[0] in "LNM"
        )
        for prefix in _KHMER_PREFIXES:
            if khmer.startswith(prefix) and len(khmer) > len(prefix):
                khmer = khmer[len(prefix) :]
                break
        return khmer
    decomposed = unicodedata.normalize("NFKD", raw)
    plain = unicodedata.normalize("NFKC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
    words = [_WORD_MAP.get(w, w) for w in re.split(r"[\W_]+", plain.casefold()) if w]
    kept = [w for w in words if w not in _NOISE_WORDS] or words
    key = "".join(kept).replace("kompong", "kampong")
    for prefix in _NOISE_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            key = key[len(prefix) :]
    for suffix in _NOISE_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)]
    return key


def _read_rows(name: str) -> list[dict[str, str]]:
    with reference_path(name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _parse_province(row: Mapping[str, str]) -> Province:
    where = f"provinces.csv, code {row.get('code')!r}"
    try:
        population = row["population_2019"].strip()
        return Province(
            code=row["code"],
            iso=row["iso"],
            name_en=row["name_en"],
            name_en_official=row["name_en_official"],
            name_km=row["name_km"],
            ctip_target=_BOOL[row["ctip_target"]],
            livelihood=_BOOL[row["livelihood"]],
            border=tuple(c for c in row["border"].split(";") if c),
            coastal=_BOOL[row["coastal"]],
            capital=row["capital"],
            population_2019=int(population) if population else None,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{where}: malformed row ({exc})") from exc


@lru_cache(maxsize=1)
def provinces() -> tuple[Province, ...]:
    """Return the 25 provinces in code order (read once, then cached).

    Returns
    -------
    tuple of Province
    """
    rows = tuple(_parse_province(row) for row in _read_rows("provinces.csv"))
    codes = tuple(p.code for p in rows)
    if codes != PROVINCE_CODES:
        raise ValueError(f"provinces.csv must list the codes 01..25 in order, found {', '.join(codes)}")
    return rows


@lru_cache(maxsize=1)
def _by_code() -> dict[str, Province]:
    return {p.code: p for p in provinces()}


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    """Map every name key (names, aliases, Khmer names) to its province code."""
    index: dict[str, str] = {}

    def add(key: str, code: str, label: str) -> None:
        if not key:
            raise ValueError(f"province alias {label!r} ({code}) normalises to nothing")
        if index.setdefault(key, code) != code:
            raise ValueError(f"province alias {label!r} is ambiguous: it matches {index[key]} and {code}")

    for p in provinces():
        for label in (p.name_en, p.name_en_official, p.name_km):
            add(name_key(label), p.code, label)
    for row in _read_rows("province_aliases.csv"):
        code = row["code"]
        if code not in PROVINCE_CODES:
            raise ValueError(f"province_aliases.csv: unknown code {code!r} for alias {row['alias']!r}")
        add(name_key(row["alias"]), code, row["alias"])
    return index


@lru_cache(maxsize=1)
def _national_keys() -> frozenset[str]:
    return frozenset(name_key(a) for a in _NATIONAL_ALIASES)


def _suggest(key: str) -> list[tuple[str, str]]:
    index = _index()
    by_code = _by_code()
    out: list[tuple[str, str]] = []
    for match in difflib.get_close_matches(key, list(index), n=12, cutoff=0.6):
        code = index[match]
        if all(code != c for c, _ in out):
            out.append((code, by_code[code].name_en))
        if len(out) == 3:
            break
    return out


def resolve_province(text: str | int, *, allow_national: bool = False) -> str:
    """Return the two-digit code of the province named by ``text``.

    Parameters
    ----------
    text
        A code (``1``, ``"01"``, ``" 01 "``), an ISO code (``"KH-1"``, ``"kh-01"``), an English name or
        alias in any case and spacing (``"siemreap"``, ``"Banteay-Meanchey"``, ``"Kompong Cham"``,
        ``"Siem Reap Province"``, ``"Krong Kep"``) or a Khmer name.
    allow_national
        Also accept national totals (``"national"``, ``"Cambodia"``, ``"00"``, ``"KH"`` …) and return
        :data:`~data.schema.NATIONAL`.

    Returns
    -------
    str
        ``"01"``..``"25"``, or ``"00"`` for national rows when allowed.

    Raises
    ------
    UnknownProvinceError
        If nothing matches; the message suggests up to three close names.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnknownProvinceError(text)
    if isinstance(text, int) and text < 0:
        raise UnknownProvinceError(text)
    stripped = str(text).translate(_ZERO_WIDTH).strip()
    key = name_key(stripped)
    number = _NUMERIC.match(stripped) or _ISO_KEY.match(key)
    if number:
        value = int(number.group(1))
        if 1 <= value <= len(PROVINCE_CODES):
            return f"{value:02d}"
        if value == 0:
            if allow_national:
                return NATIONAL
            raise UnknownProvinceError(text, reason="national totals are not accepted here")
        raise UnknownProvinceError(text)
    if not key:
        raise UnknownProvinceError(text)
    code = _index().get(key)
    if code is not None:
        return code
    if key in _national_keys():
        if allow_national:
            return NATIONAL
        raise UnknownProvinceError(text, reason="national totals are not accepted here")
    raise UnknownProvinceError(text, _suggest(key))


def province(code: str | int) -> Province:
    """Return the province with ``code`` (anything :func:`resolve_province` accepts).

    Raises
    ------
    UnknownProvinceError
        If ``code`` names no province.
    """
    found = _by_code().get(code) if isinstance(code, str) else None
    return found if found is not None else _by_code()[resolve_province(code)]


def province_name(code: str | int, lang: Literal["en", "km"] = "en") -> str:
    """Return the display name of a province, or of the national total for ``"00"``.

    Parameters
    ----------
    code
        Province code (or anything :func:`resolve_province` accepts), or ``"00"``.
    lang
        ``"en"`` (programme spelling) or ``"km"`` (official Khmer name).
    """
    if lang not in ("en", "km"):
        raise ValueError(f"lang must be 'en' or 'km', not {lang!r}")
    if resolve_province(code, allow_national=True) == NATIONAL:
        return NATIONAL_NAMES[lang]
    return province(code).name(lang)


def target_codes() -> tuple[str, ...]:
    """Return the codes of the CTIP target provinces, in code order."""
    return tuple(p.code for p in provinces() if p.ctip_target)


def livelihood_codes() -> tuple[str, ...]:
    """Return the codes of the livelihood provinces, in code order.

    The bundled default (``livelihood`` column of provinces.csv) is replaced by the environment
    variable ``CTIP_LIVELIHOOD_PROVINCES`` when it is set and not blank: a comma-separated list of
    anything :func:`resolve_province` accepts, e.g. ``"01,Battambang,Siem Reap"``. It is read on every
    call.

    Raises
    ------
    ValueError
        If the environment variable names an unknown province.
    """
    override = os.environ.get(LIVELIHOOD_ENV, "")
    if not override.strip():
        return tuple(p.code for p in provinces() if p.livelihood)
    codes: set[str] = set()
    for item in override.split(","):
        if item.strip():
            try:
                codes.add(resolve_province(item))
            except UnknownProvinceError as exc:
                raise ValueError(f"{LIVELIHOOD_ENV}: {exc}") from exc
    return tuple(sorted(codes))
