"""Court case numbers (案号) under the SPC rules of 2015, amended 2018.

《最高人民法院关于人民法院案件案号的若干规定》(法〔2015〕137号, in force 2016-01-01;
amended by 法〔2018〕335号): a case number is

    "（" + year + "）" + court code + [special-trial code] + case-type code + sequence + "号"

- court code (art. 4–5): 最高法 for the Supreme People's Court; a high court is its
  province's abbreviation (浙, 粤 …; 内 for Inner Mongolia, 军 for the PLA Military
  Court, 兵 for the Xinjiang Production and Construction Corps branch); an
  intermediate court adds two digits and a basic court four, taken from the
  GB/T 2260 code (浙01 ↔ 330100, 浙0102 ↔ 330102). Pairs 71–99 in the prefecture
  position are reserved for railway, maritime, IP, financial, cross-region and
  other special courts (浙71, 浙8601).
- special-trial code (2018 amendment): one character fixed by the SPC; 知 for
  patent and other technical IP cases (（2019）最高法知民终1号).
- case-type code (《人民法院案件类型及其代字标准》): at most three characters; the
  whole standard is in :data:`CASE_TYPE_GROUPS` (jurisdiction types 刑辖 民辖 民辖终 …
  included).
- sequence: natural numbers in order of receipt within the year.

Numbers from before the 2016 rules are free form (（2015）鹿刑初字第49号,
（2015）杭上刑初字第49号); they are kept, parsed as far as they go and flagged
``is_legacy``. Legacy is a matter of form (…字第…号), not of the year written.

Sources mix （）, (), 〔〕 and [] brackets, full-width digits and stray spaces;
:func:`normalize_text` removes those differences before matching. The patterns
in :func:`patterns` are shared with :mod:`lawlake.rules.spark`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from lawlake.rules import halfwidth_digits, remove_whitespace, strip_whitespace
from lawlake.rules.reference import province_court_abbreviations

__all__ = [
    "CASE_TYPES",
    "CASE_TYPE_GROUPS",
    "CLOSE_BRACKETS",
    "LEGACY_CASE_TYPE",
    "MILITARY_COURT",
    "OPEN_BRACKETS",
    "SPECIAL_COURT_PAIRS",
    "SPECIAL_TRIAL_CODES",
    "SUPREME_COURT",
    "XPCC_COURT",
    "CaseNumber",
    "CaseNumberPatterns",
    "CourtLevel",
    "court_abbreviations",
    "court_level",
    "court_region",
    "normalize_text",
    "parse",
    "patterns",
]

SUPREME_COURT = "最高法"

# Case-type codes of 《人民法院案件类型及其代字标准》 (法〔2015〕137号 annex, with the
# 2016 split of the bankruptcy and compulsory-liquidation types), every one of them,
# grouped as the standard groups them. A valid case number is never refused because its
# type is missing here; a type outside the standard still makes a post-2016 number
# unparseable rather than guessed at. Both the Python reference and the Spark twin
# build their pattern from this table.
CASE_TYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "jurisdiction": ("刑辖", "民辖", "民辖终", "民辖监", "行辖", "行辖终", "赔辖", "赔辖终"),
    "criminal": (
        "刑初", "刑终", "刑监", "刑申", "刑抗", "刑再", "刑没", "刑核",
        "刑医", "刑医解", "刑医复", "刑医监", "刑止", "刑止调", "刑止核",
        "刑更", "刑更监", "刑更备", "刑他",
    ),
    "civil": (
        "民初", "民终", "民监", "民申", "民抗", "民再", "民撤", "民特", "民特监",
        "民催", "民督", "民督监", "民破", "民算", "民他",
    ),
    "administrative": ("行初", "行终", "行监", "行申", "行抗", "行再", "行审", "行审复", "行他"),
    "state_compensation": (
        "行赔初", "行赔终", "行赔监", "行赔申", "行赔抗", "行赔再",
        "法赔", "委赔", "委赔监", "委赔提", "委赔再", "赔他",
    ),
    "judicial_assistance_fund": ("司救刑", "司救民", "司救行", "司救赔", "司救执", "司救访", "司救他"),
    "mainland_hk_macao_taiwan": (
        "认台", "认港", "认澳", "认复", "认他",
        "请台送", "请港送", "请澳送", "台请送", "港请送", "澳请送",
        "请台调", "请港调", "请澳调", "台请调", "港请调", "澳请调",
        "请移管", "助移管", "请移赃", "助移赃",
    ),
    "international_assistance": (
        "协外认", "协他", "协外送", "请外送", "协外调", "请外调", "请外移", "协外移", "请外引", "协外引",
    ),
    "judicial_sanction": ("司惩", "司惩复"),
    "preservation": ("财保", "行保", "行保复", "证保"),
    "enforcement": ("执", "执恢", "执保", "执异", "执复", "执监", "执协", "执他"),
    "liquidation_bankruptcy": ("强清", "强清终", "破申", "破", "破终", "破监"),
}  # fmt: skip
CASE_TYPES: tuple[str, ...] = tuple(t for group in CASE_TYPE_GROUPS.values() for t in group)

# Special-trial codes (专门审判代字, 2018 amendment). Must not share a first
# character with any case type, or a number could be split two ways.
SPECIAL_TRIAL_CODES: tuple[str, ...] = ("知",)

# Courts whose code is not a province: the PLA Military Court and the XPCC branch.
MILITARY_COURT = "军"
XPCC_COURT = "兵"

# Prefecture-position pairs reserved for special courts (art. 5(3), 2018 wording).
SPECIAL_COURT_PAIRS = range(71, 100)

# Pre-2016 type codes: a division (刑 民 行 执 赔 商 知), an optional tribunal
# number (民一, 民二 …) and up to two procedure characters (初, 终, 提 …).
LEGACY_CASE_TYPE = "[刑民行执赔商知][一二三四五六七八九十]?[初终监申再核更提特督破审恢保异复协他辖]{0,2}"

# Bracket variants seen in sources, each mapped to the canonical full-width pair.
OPEN_BRACKETS = "(（〔[［【"
CLOSE_BRACKETS = ")）〕]］】"
_CANONICAL_BRACKETS = str.maketrans(
    OPEN_BRACKETS + CLOSE_BRACKETS, "（" * len(OPEN_BRACKETS) + "）" * len(CLOSE_BRACKETS)
)

_YEAR = "(19[0-9]{2}|20[0-9]{2})"
_PAIR = "(?:0[1-9]|[1-9][0-9])"  # a GB/T 2260 pair is never 00
_SEQ = "0*([1-9][0-9]{0,8})"  # leading zeros dropped; at most 9 digits, so an int

CourtLevel = Literal["supreme", "high", "intermediate", "basic", "special"]


@dataclass(frozen=True, slots=True)
class CaseNumber:
    """One parsed case number.

    For a legacy number whose court and type cannot be told apart (（2005）沪高民三（知）终字第36号)
    ``court_code`` and ``case_type`` are None and ``canonical`` keeps the text between
    the year and 字第 whole (whitespace removed, brackets made full-width).
    """

    year: int
    court_code: str | None
    special_code: str | None
    case_type: str | None
    seq: int
    is_legacy: bool
    canonical: str


@dataclass(frozen=True, slots=True)
class CaseNumberPatterns:
    """The regular expressions, applied to :func:`normalize_text` output.

    ``current`` groups: year, court, special code, type, seq.
    ``legacy_split`` groups: year, court, type, seq.
    ``legacy_any`` groups: year, court-and-type text, seq.
    ``court`` groups (on a court code alone): abbreviation, digits.
    """

    current: str
    legacy_split: str
    legacy_any: str
    court: str


@cache
def court_abbreviations() -> dict[str, str | None]:
    """Every one-character court code → the GB/T 2260 province code it stands for (None for 军, 兵)."""
    return {**province_court_abbreviations(), MILITARY_COURT: None, XPCC_COURT: None}


@cache
def patterns() -> CaseNumberPatterns:
    """The case-number patterns, built from the constants and the reference regions."""
    abbrs = "".join(court_abbreviations())
    specials = "".join(SPECIAL_TRIAL_CODES)
    # Longest first so that the alternation reads naturally; the anchored match is unique either way.
    types = "|".join(sorted(CASE_TYPES, key=len, reverse=True))
    court = f"(?:{SUPREME_COURT}|[{abbrs}](?:{_PAIR}{_PAIR}|{_PAIR})?)"
    return CaseNumberPatterns(
        current=f"^（{_YEAR}）({court})([{specials}])?({types}){_SEQ}号$",
        # Lazy court: the first division character that starts a valid type ends the court.
        legacy_split=f"^（{_YEAR}）([一-鿿]+?)({LEGACY_CASE_TYPE})字第{_SEQ}号$",
        legacy_any=f"^（{_YEAR}）([一-鿿（）]+?)字第{_SEQ}号$",
        court=f"^([{abbrs}])({_PAIR}{_PAIR}|{_PAIR})?$",
    )


@cache
def _compiled() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    p = patterns()
    return re.compile(p.current), re.compile(p.legacy_split), re.compile(p.legacy_any), re.compile(p.court)


def normalize_text(text: str) -> str:
    """``text`` without whitespace, with ASCII digits and full-width brackets （）."""
    return halfwidth_digits(remove_whitespace(text)).translate(_CANONICAL_BRACKETS)


def parse(text: str | None) -> CaseNumber | None:
    """The case number written in ``text``, or None when ``text`` is not one."""
    if text is None:
        return None
    current, legacy_split, legacy_any, _ = _compiled()
    s = normalize_text(text)
    if m := current.match(s):
        year, court, special, case_type, seq = m.groups()
        return CaseNumber(
            year=int(year),
            court_code=court,
            special_code=special,
            case_type=case_type,
            seq=int(seq),
            is_legacy=False,
            canonical=f"（{year}）{court}{special or ''}{case_type}{seq}号",
        )
    if m := legacy_split.match(s):
        year, court, case_type, seq = m.groups()
        body: str = court + case_type
    elif m := legacy_any.match(s):
        year, body, seq = m.groups()
        court = case_type = None
    else:
        return None
    return CaseNumber(
        year=int(year),
        court_code=court,
        special_code=None,
        case_type=case_type,
        seq=int(seq),
        is_legacy=True,
        canonical=f"（{year}）{body}字第{seq}号",
    )


def court_level(court_code: str | None) -> CourtLevel | None:
    """The level of the court with ``court_code`` (a post-2016 code), or None if it is not one.

    Military courts and courts in a reserved pair (71–99) are ``"special"``. Surrounding
    whitespace (line terminators too: ``"兵\\n"`` is 兵) is stripped first, as every rule
    does, so the anchored pattern never meets a line terminator.
    """
    code = strip_whitespace(court_code) if court_code is not None else ""
    if code == SUPREME_COURT:
        return "supreme"
    m = _compiled()[3].fullmatch(code)
    if m is None:
        return None
    abbr, digits = m.groups()
    if abbr == MILITARY_COURT or (digits and int(digits[:2]) in SPECIAL_COURT_PAIRS):
        return "special"
    if digits is None:
        return "high"
    return "intermediate" if len(digits) == 2 else "basic"


def court_region(court_code: str | None) -> str | None:
    """The GB/T 2260 code of the region a court serves, or None.

    浙 → "330000", 浙01 → "330100", 浙0102 → "330102". None for 最高法, military
    and XPCC courts (their digits are not GB/T 2260), and special courts (71–99).
    Surrounding whitespace is stripped first, as in :func:`court_level`.
    """
    m = _compiled()[3].fullmatch(strip_whitespace(court_code) if court_code is not None else "")
    if m is None:
        return None
    abbr, digits = m.groups()
    province = court_abbreviations()[abbr]
    if province is None or (digits and int(digits[:2]) in SPECIAL_COURT_PAIRS):
        return None
    return (province[:2] + (digits or "")).ljust(6, "0")
