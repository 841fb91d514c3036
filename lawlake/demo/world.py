"""The true state of the simulated justice system: people, cases and each case's path.

Everything here is ground truth, free of defects: persons with valid identity
numbers, police cases with their stage dates, reviews for prosecution, court
judgments (first instance and appeal) and custody or community-corrections
records. The systems are snapshotted at ``AS_OF``: an event that would fall
later has not happened yet, so recent cases are still open.

The agencies' deliveries (with their defects) are derived from this in
``lawlake.demo.sources``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate

from lawlake.demo.identity import draw_name, id_number
from lawlake.demo.reference import Charge, County, Reference

__all__ = [
    "START", "AS_OF", "ART_17_2_CHARGES", "SEAL_STATUSES", "World", "Person", "Suspect", "PoliceCase", "Review", "CourtCase", "Party", "Custody",
    "SealStatus", "Quota", "build_world", "age_on", "legal_age", "at_time", "TimeLimitFacts", "ReviewFacts", "add_time_limit_facts",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bands:
    """A distribution of whole numbers: bands of (weight, low, high), drawn uniformly inside a band."""

    cum_weights: tuple[float, ...]
    ranges: tuple[tuple[int, int], ...]


def bands(*rows: tuple[float, int, int]) -> Bands:
    return Bands(tuple(accumulate(r[0] for r in rows)), tuple((r[1], r[2]) for r in rows))


START = date(2015, 1, 1)
AS_OF = date(2024, 12, 31)
LAST_LEGACY_NUMBER_YEAR = 2015  # case numbers follow the SPC rules from 2016 on; before, free form

# -- population ----------------------------------------------------------------------
MALE_SHARE = 0.85  # offenders are mostly men
MINOR_SHARE = 0.065  # new suspects aged 14–17 at the offense; repeat offenders bring the share to ≈ 6%
# Criminal Law art. 17: full responsibility from 16; at 14–15 only for the crimes of art. 17(2):
# intentional homicide (C232), intentional injury causing serious injury or death (C234: a
# 14–15-year-old's C234 is that form), rape (C236), robbery (C263), drug trafficking (C347),
# arson (C114A), explosion (C114C) and poisoning (C114D). Below 14: no responsibility.
ART_17_2_CHARGES = frozenset({"C232", "C234", "C236", "C263", "C347", "C114A", "C114C", "C114D"})
FULL_RESPONSIBILITY_AGE = 16
MIN_RESPONSIBILITY_AGE = 14
EIGHTEENTH_BIRTHDAY_SHARE = 0.03  # of new minor suspects: the offense on the 18th birthday (still a minor)
ADULT_AGE_BANDS = bands((30, 18, 25), (35, 26, 35), (20, 36, 45), (10, 46, 55), (5, 56, 70))
REPEAT_OFFENDER_SHARE = 0.075  # a suspect slot filled by an earlier person: ≈ 8% of persons in > 1 case
LOCAL_BIRTH_SHARE = 0.5  # born in the county of the offense
OUT_OF_PROVINCE_SHARE = 0.15  # migrants, born outside Zhejiang
OUT_OF_PROVINCE_REGIONS = ("110101", "310115", "340102", "360102", "410102", "430102", "440106", "510104", "520102")
MINORITY_NAME_SHARE = 0.01
XINJIANG_REGIONS = ("650102", "653101")  # birth regions that go with transliterated names
SUSPECTS_PER_CASE = bands((84, 1, 1), (11, 2, 2), (4, 3, 3), (1, 4, 4))  # most cases have one suspect

# -- police --------------------------------------------------------------------------
# Relative frequency of charges (by charge_code); theft, dangerous driving and fraud dominate.
CHARGE_WEIGHTS = {
    "C264": 20, "C133-1": 18, "C266": 12, "C234": 9, "C287-2": 8, "C293": 6, "C303": 4, "C347": 4,
    "C277": 3, "C312": 3, "C133": 3, "C354": 2, "C274": 2, "C263": 2, "C253-1": 2, "C271": 2, "C275": 2,
    "C232": 0.5, "C114A": 0.3, "C114C": 0.1, "C114D": 0.1,
}
TRANSFER_SHARE = 0.75  # cases transferred for review for prosecution
WITHDRAWN_SHARE = 0.08  # cases withdrawn (撤案)
DETAINED_SHARE = 0.8  # criminal detention of the suspects
ARRESTED_SHARE = 0.85  # detained cases that lead to an arrest (the rest are bailed)
# Lags in days as (weight, low, high) bands. The tails exceed the statutory limits on
# purpose so that the early-warning tables have something to find.
FILING_LAG = bands((70, 0, 2), (25, 3, 15), (5, 16, 60))
DETENTION_LAG = bands((80, 0, 2), (20, 3, 30))
ARREST_LAG = bands((60, 1, 7), (35, 8, 37), (5, 38, 75))  # limit: 3 days, up to 30 + 7
TRANSFER_LAG_AFTER_ARREST = bands((70, 20, 60), (20, 61, 90), (8, 91, 150), (2, 151, 240))  # 2 months +1 +2 +2
TRANSFER_LAG_ON_BAIL = bands((1, 30, 365))
WITHDRAWAL_LAG = bands((1, 10, 180))

# -- procuratorate -------------------------------------------------------------------
RECEIPT_LAG = bands((1, 0, 3))
RETURNED_SHARE = 0.05  # reviews returned once for supplementary investigation
NON_PROSECUTION_SHARE = 0.09
MINOR_NON_PROSECUTION_SHARE = 0.3  # conditional non-prosecution is common for juveniles
REVIEW_LAG = bands((75, 5, 30), (20, 31, 45), (5, 46, 120))  # limit: 1 month, +15 days for major cases
RETURN_LAG = bands((1, 10, 30))
SUPPLEMENTARY_LAG = bands((85, 10, 30), (15, 31, 45))  # limit: 1 month

# -- courts --------------------------------------------------------------------------
COURT_FILING_LAG = bands((1, 3, 20))
TRIAL_LAG = bands((70, 15, 60), (20, 61, 90), (8, 91, 180), (2, 181, 300))  # limit: 2 months, 3 at most (+3)
APPEAL_SHARE = 0.08
APPEAL_FILING_LAG = bands((1, 10, 30))
APPEAL_TRIAL_LAG = bands((1, 20, 90))
APPEAL_REDUCTION_SHARE = 0.2  # appeals that shorten the sentence
ACQUITTAL_SHARE = 0.005
EXEMPTION_SHARE = 0.02
COURT_YEAR_CASELOAD = 500  # criminal cases of one type a court numbers in a year
HEAVY_CHARGES = frozenset({"C232", "C236", "C263", "C347", "C114A", "C114C", "C114D"})
DETENTION_ONLY_CHARGES = frozenset({"C133-1"})  # dangerous driving carries at most 拘役
SENTENCE_MIX = {  # (weight, sentence_type) for guilty verdicts
    "default": ((40, "fixed_term"), (30, "probation"), (15, "detention"), (10, "fine_only"), (5, "control")),
    "minor": ((30, "fixed_term"), (45, "probation"), (15, "detention"), (7, "fine_only"), (3, "control")),
    "heavy": ((88, "fixed_term"), (7, "probation"), (5, "life")),
    "detention_only": ((70, "detention"), (25, "probation"), (5, "fine_only")),
}
FIXED_TERM_MONTHS = bands((70, 6, 36), (20, 37, 60), (10, 61, 120))
HEAVY_FIXED_TERM_MONTHS = bands((30, 36, 60), (50, 61, 120), (20, 121, 180))
DETENTION_MONTHS = bands((1, 1, 6))
PROBATION_MONTHS = bands((1, 6, 36))
CONTROL_MONTHS = bands((1, 3, 24))

# -- corrections ---------------------------------------------------------------------
ADMISSION_LAG = bands((1, 10, 30))  # after the judgment takes effect
CORRECTIONS_START_LAG = bands((1, 5, 15))
SHORT_TERM_MONTHS = 6  # fixed terms this short are often served in the remand centre
SHORT_TERM_REMAND_SHARE = 0.5
PRISONS = ("浙江省第一监狱", "浙江省第二监狱", "浙江省第四监狱", "浙江省第六监狱", "浙江省乔司监狱",
           "浙江省十里坪监狱", "浙江省南湖监狱", "浙江省长湖监狱", "浙江省金华监狱", "浙江省临海监狱")
WOMENS_PRISON = "浙江省女子监狱"
JUVENILE_PRISON = "浙江省未成年犯管教所"
SEALABLE_FIXED_TERM_MONTHS = 60  # five years


# -- the model -----------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Person:
    person_id: str
    id_number: str
    name: str
    sex: str  # 男 / 女
    birth_date: date


@dataclass(slots=True, eq=False)
class Suspect:
    suspect_id: str
    person: Person
    minor: bool  # under 18 at the case's occurred_on


@dataclass(slots=True)
class TimeLimitFacts:
    """What the police record that lengthens a statutory time limit (CPL 2018; drawn by :func:`add_time_limit_facts`)."""

    is_roaming_serial_gang: bool = False  # art. 91: 流窜作案、多次作案、结伙作案 — arrest request within 30 days
    detention_extension_on: date | None = None  # art. 91: the arrest request period extended by 1–4 days, approved on
    custody_extension_156_on: date | None = None  # 延长侦查羁押期限 approvals: art. 156 (+1 month) …
    custody_extension_158_on: date | None = None  # … art. 158 (+2 months) …
    custody_extension_159_on: date | None = None  # … art. 159 (+2 months)


@dataclass(slots=True)
class ReviewFacts:
    """What the procuratorate records about a review's time limits (CPL arts. 172, 175; drawn by :func:`add_time_limit_facts`)."""

    rounds: list[tuple[date, date | None]] = field(default_factory=list)  # (退回补充侦查, 重新移送 or None while out) per round, at most two
    review_extension_on: date | None = None  # art. 172: 延长审查起诉 (+15 days) approved on
    is_major_complex: bool = False  # art. 172: marked 重大、复杂 (+15 days)

    def latest_receipt(self, received_on: date) -> date:
        """The receipt the review-for-prosecution clock runs from: the last resubmission, else the first receipt."""
        return next((resub for _ret, resub in reversed(self.rounds) if resub), received_on)


@dataclass(slots=True, eq=False)
class PoliceCase:
    case_id: str
    county: County
    charge: Charge
    occurred_on: date
    filed_on: date
    detained_on: date | None
    arrested_on: date | None
    transferred_on: date | None
    withdrawn_on: date | None
    updated_at: datetime  # when the case row last changed
    transfer_id: str | None = None
    suspects: list[Suspect] = field(default_factory=list)
    facts: TimeLimitFacts = field(default_factory=lambda: TimeLimitFacts())  # see add_time_limit_facts

    @property
    def status(self) -> str:
        if self.transferred_on:
            return "移送审查起诉"
        if self.withdrawn_on:
            return "撤案"
        return "侦查" if self.detained_on else "立案"


@dataclass(slots=True, eq=False)
class Review:
    """A review for prosecution: one per transferred case, one decision per suspect."""

    case: PoliceCase
    received_on: date
    returned_on: date | None  # returned for supplementary investigation
    rereceived_on: date | None  # received again after it
    decided_on: date | None  # the final decision; None while still under review
    decisions: list[tuple[Suspect, str]]  # (suspect, 起诉 / 不起诉) once decided
    review_id: str = ""
    facts: ReviewFacts = field(default_factory=lambda: ReviewFacts())  # see add_time_limit_facts


@dataclass(slots=True, eq=False)
class Party:
    suspect: Suspect
    verdict: str  # guilty / exempt / acquitted
    sentence_type: str
    sentence_months: int | None


@dataclass(slots=True, eq=False)
class CourtCase:
    review: Review
    level: str  # first_instance / appeal
    court_name: str
    court_code: str  # 浙0102 / 浙01
    legacy_abbr: str  # 杭上 / 浙杭, used before the 2016 numbering rules
    filed_on: date
    judged_on: date
    parties: list[Party]
    original: CourtCase | None = None
    appeal: CourtCase | None = None
    sequence: int = 0
    case_number: str = ""  # canonical form

    @property
    def type_code(self) -> str:
        return "刑初" if self.level == "first_instance" else "刑终"

    @property
    def year(self) -> int:
        return self.filed_on.year

    @property
    def legacy(self) -> bool:
        return self.year <= LAST_LEGACY_NUMBER_YEAR


@dataclass(slots=True, eq=False)
class Custody:
    court_case: CourtCase  # the judgment being executed
    party: Party
    agency: str
    kind: str  # 监狱 / 看守所 / 社区矫正
    admitted_on: date
    released_on: date | None
    record_id: str = ""


SEAL_STATUSES = ("sealed", "not_sealed", "pending")


@dataclass(frozen=True, slots=True)
class SealStatus:
    """Whether one suspect's records of one case are sealed (CPL art. 286), at AS_OF.

    ``pending``: a minor at the offense whose outcome is not known yet (the case is still
    with the police, under review or awaiting judgment); fail closed, withheld like sealed.
    """

    person: Person
    case: PoliceCase
    is_minor: bool
    status: str  # one of SEAL_STATUSES
    reason: str


@dataclass(slots=True)
class World:
    persons: list[Person]
    cases: list[PoliceCase]
    reviews: list[Review]
    court_cases: list[CourtCase]  # first instances, then appeals
    custody: list[Custody]
    sealed: list[tuple[Person, PoliceCase, str]]  # (person, case, reason)
    seal_statuses: list[SealStatus] = field(default_factory=list)  # every (suspect, case), by person then case


# -- small helpers -------------------------------------------------------------------


class Lags:
    """Draws numbers of days (and other counts) from band distributions."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def draw(self, table: Bands) -> int:
        low, high = self.rng.choices(table.ranges, cum_weights=table.cum_weights)[0]
        return self.rng.randint(low, high)

    def after(self, day: date | None, table: Bands) -> date | None:
        """``day`` plus a drawn lag, or None if ``day`` is None or the result is after AS_OF."""
        if day is None:
            return None
        result = day + timedelta(days=self.draw(table))
        return result if result <= AS_OF else None


def age_on(birth: date, day: date) -> int:
    """Completed years by the calendar, the birthday counting on the day itself."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def legal_age(birth: date, day: date) -> int:
    """周岁 in criminal law (SPC 法释〔2006〕1号 art. 2): an age is reached on the day *after* the birthday.

    So an offense on the 18th birthday is a minor's (17), one on the 14th birthday a 13-year-old's.
    """
    return age_on(birth, day - timedelta(days=1))


class Quota:
    """Decides, draw by draw, whether an event lands, keeping the count at rate × eligible ± 1.

    The hit probability is the shortfall ``rate × eligible − count``, clipped to [0, 1] by
    the comparison: once behind by a whole draw a hit is certain, when ahead none happens,
    so a rate holds (and a small one happens at least once) in small samples too.
    """

    def __init__(self, rate: float):
        self.rate = rate
        self.eligible = 0
        self.count = 0

    def draw(self, rng: random.Random) -> bool:
        self.eligible += 1
        hit = rng.random() < self.rate * self.eligible - self.count
        self.count += hit
        return hit


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def at_time(rng: random.Random, day: date) -> datetime:
    """A moment in office hours on ``day``."""
    return datetime(day.year, day.month, day.day) + timedelta(seconds=rng.randint(8 * 3600, 19 * 3600))


def _weighted(rng: random.Random, options: tuple[tuple[float, str], ...]) -> str:
    return rng.choices([o[1] for o in options], weights=[o[0] for o in options])[0]


# -- persons -------------------------------------------------------------------------


class Population:
    """Creates persons on demand and sometimes returns an earlier one (a repeat offender)."""

    def __init__(self, rng: random.Random, lags: Lags, counties: tuple[County, ...]):
        self.rng = rng
        self.lags = lags
        self.counties = counties
        self.persons: list[Person] = []
        self._id_numbers: set[str] = set()
        self._eighteenth_birthdays = Quota(EIGHTEENTH_BIRTHDAY_SHARE)

    def suspect_for(self, county: County, occurred: date, taken: list[Suspect], charge: Charge) -> Person:
        """A person criminally responsible for ``charge`` on ``occurred`` (Criminal Law art. 17)."""
        rng = self.rng
        youngest = MIN_RESPONSIBILITY_AGE if charge.code in ART_17_2_CHARGES else FULL_RESPONSIBILITY_AGE
        if self.persons and rng.random() < REPEAT_OFFENDER_SHARE:
            for _ in range(3):  # a few tries for someone of offending age, not already in this case
                person = rng.choice(self.persons)
                if youngest <= legal_age(person.birth_date, occurred) <= 70 and all(s.person is not person for s in taken):
                    return person
        return self._new_person(county, occurred, youngest)

    def _new_person(self, county: County, occurred: date, youngest: int) -> Person:
        rng = self.rng
        minor = rng.random() < MINOR_SHARE
        age = rng.randint(youngest, 17) if minor else self.lags.draw(ADULT_AGE_BANDS)
        # Born so that the legal age (reached the day after the birthday) on the offense day is ``age``.
        eve = occurred - timedelta(days=1)
        latest = _years_before(eve, age)
        earliest = _years_before(eve, age + 1) + timedelta(days=1)
        birth = date.fromordinal(rng.randint(earliest.toordinal(), latest.toordinal()))
        if minor and age == 17 and self._eighteenth_birthdays.draw(rng):
            eighteenth = _years_before(occurred, 18)
            if (eighteenth.month, eighteenth.day) == (occurred.month, occurred.day):  # not for a 29 February offense
                birth = eighteenth  # the offense on the 18th birthday: still a minor's
        sex = "男" if rng.random() < MALE_SHARE else "女"
        minority = rng.random() < MINORITY_NAME_SHARE
        region = rng.choice(XINJIANG_REGIONS) if minority else self._birth_region(county)
        person = Person(
            person_id=f"P{len(self.persons) + 1:08d}",
            id_number=self._unique_id_number(region, birth, sex),
            name=draw_name(rng, sex, minority),
            sex=sex,
            birth_date=birth,
        )
        self.persons.append(person)
        return person

    def _birth_region(self, county: County) -> str:
        r = self.rng.random()
        if r < LOCAL_BIRTH_SHARE:
            return county.code
        if r < 1 - OUT_OF_PROVINCE_SHARE:
            return self.rng.choice(self.counties).code
        return self.rng.choice(OUT_OF_PROVINCE_REGIONS)

    def _unique_id_number(self, region: str, birth: date, sex: str) -> str:
        first = 1 if sex == "男" else 2  # odd sequence numbers for men, even for women
        while True:
            number = id_number(region, birth, self.rng.randrange(first, 1000, 2))
            if number not in self._id_numbers:
                self._id_numbers.add(number)
                return number


# -- police --------------------------------------------------------------------------


def _draft_case(rng: random.Random, lags: Lags, ref: Reference, charge_cum: tuple[float, ...]) -> PoliceCase:
    """A police case's place, charge and stage dates (identifiers and suspects come later)."""
    occurred = date.fromordinal(rng.randint(START.toordinal(), AS_OF.toordinal()))
    filed = min(occurred + timedelta(days=lags.draw(FILING_LAG)), AS_OF)
    fate = rng.random()
    detained = lags.after(filed, DETENTION_LAG) if rng.random() < DETAINED_SHARE else None
    arrested = lags.after(detained, ARREST_LAG) if rng.random() < ARRESTED_SHARE else None
    transferred = withdrawn = None
    if fate < TRANSFER_SHARE:
        transferred = lags.after(arrested, TRANSFER_LAG_AFTER_ARREST) if arrested else lags.after(filed, TRANSFER_LAG_ON_BAIL)
    elif fate < TRANSFER_SHARE + WITHDRAWN_SHARE:
        withdrawn = lags.after(arrested or detained or filed, WITHDRAWAL_LAG)
    last = max(d for d in (filed, detained, arrested, transferred, withdrawn) if d is not None)
    return PoliceCase(
        case_id="",
        county=rng.choice(ref.counties),
        charge=rng.choices(ref.charges, cum_weights=charge_cum)[0],
        occurred_on=occurred,
        filed_on=filed,
        detained_on=detained,
        arrested_on=arrested,
        transferred_on=transferred,
        withdrawn_on=withdrawn,
        updated_at=at_time(rng, last),
    )


def _police_cases(rng: random.Random, lags: Lags, ref: Reference, n_cases: int, population: Population) -> list[PoliceCase]:
    charge_cum = tuple(accumulate(CHARGE_WEIGHTS.get(c.code, 1) for c in ref.charges))
    cases = [_draft_case(rng, lags, ref, charge_cum) for _ in range(n_cases)]
    # Stable sort: ties keep draw order, so numbering never depends on anything but the seed.
    cases.sort(key=lambda c: c.filed_on)
    sequence: dict[tuple[str, int], int] = {}
    n_suspects = n_transfers = 0
    for case in cases:
        key = (case.county.code, case.filed_on.year)
        sequence[key] = sequence.get(key, 0) + 1
        case.case_id = f"A{case.county.code}{case.filed_on.year}{sequence[key]:06d}"
        if case.transferred_on:
            n_transfers += 1
            case.transfer_id = f"T{n_transfers:09d}"
        for _ in range(lags.draw(SUSPECTS_PER_CASE)):
            person = population.suspect_for(case.county, case.occurred_on, case.suspects, case.charge)
            n_suspects += 1
            minor = legal_age(person.birth_date, case.occurred_on) < 18
            case.suspects.append(Suspect(f"S{n_suspects:09d}", person, minor))
    return cases


# -- procuratorate -------------------------------------------------------------------


def _reviews(rng: random.Random, lags: Lags, cases: list[PoliceCase]) -> list[Review]:
    reviews = []
    for case in cases:
        received = lags.after(case.transferred_on, RECEIPT_LAG)
        if received is None:
            continue
        returned = rereceived = None
        if rng.random() < RETURNED_SHARE:
            returned = lags.after(received, RETURN_LAG)
            rereceived = lags.after(returned, SUPPLEMENTARY_LAG)
            decided = lags.after(rereceived, REVIEW_LAG)
        else:
            decided = lags.after(received, REVIEW_LAG)
        if returned is None and decided is None:
            continue  # still under review at AS_OF: nothing exported yet
        decisions = []
        if decided:
            for suspect in case.suspects:
                share = MINOR_NON_PROSECUTION_SHARE if suspect.minor else NON_PROSECUTION_SHARE
                decisions.append((suspect, "不起诉" if rng.random() < share else "起诉"))
        reviews.append(Review(case, received, returned, rereceived, decided, decisions))
    reviews.sort(key=lambda r: r.received_on)
    sequence: dict[tuple[str, int], int] = {}
    for review in reviews:
        key = (review.case.county.code, review.received_on.year)
        sequence[key] = sequence.get(key, 0) + 1
        review.review_id = f"JC{key[0]}{key[1]}{sequence[key]:06d}"
    return reviews


# -- courts --------------------------------------------------------------------------


def _sentence(rng: random.Random, lags: Lags, charge: Charge, minor: bool) -> tuple[str, str, int | None]:
    """(verdict, sentence_type, sentence_months) of one defendant."""
    r = rng.random()
    if r < ACQUITTAL_SHARE:
        return "acquitted", "none", None
    if r < ACQUITTAL_SHARE + EXEMPTION_SHARE:
        return "exempt", "exempt", None
    heavy = charge.code in HEAVY_CHARGES
    if charge.code in DETENTION_ONLY_CHARGES:
        mix = "detention_only"
    else:
        mix = "heavy" if heavy else "minor" if minor else "default"
    kind = _weighted(rng, SENTENCE_MIX[mix])
    if kind == "fixed_term":
        months = lags.draw(HEAVY_FIXED_TERM_MONTHS if heavy else FIXED_TERM_MONTHS)
    elif kind == "probation":
        # a suspended 拘役 for dangerous driving, a suspended fixed term otherwise
        months = lags.draw(DETENTION_MONTHS if mix == "detention_only" else PROBATION_MONTHS)
    elif kind == "detention":
        months = lags.draw(DETENTION_MONTHS)
    elif kind == "control":
        months = lags.draw(CONTROL_MONTHS)
    else:  # fine_only, life
        months = None
    return "guilty", kind, months


def _first_instances(rng: random.Random, lags: Lags, reviews: list[Review]) -> list[CourtCase]:
    court_cases = []
    for review in reviews:
        prosecuted = [s for s, decision in review.decisions if decision == "起诉"]
        filed = lags.after(review.decided_on, COURT_FILING_LAG) if prosecuted else None
        judged = lags.after(filed, TRIAL_LAG)
        if judged is None:
            continue  # pending trials are not in the court API's dumps yet
        county = review.case.county
        parties = [Party(s, *_sentence(rng, lags, review.case.charge, s.minor)) for s in prosecuted]
        court_cases.append(
            CourtCase(review, "first_instance", county.basic_court, county.basic_court_code, county.legacy_basic_abbr, filed, judged, parties)
        )
    return court_cases


def _appealed_party(rng: random.Random, party: Party) -> Party:
    """The appeal's judgment of a defendant: usually upheld, sometimes a shorter sentence."""
    months = party.sentence_months
    if months and months > 1 and rng.random() < APPEAL_REDUCTION_SHARE:
        months = max(1, round(months * rng.uniform(0.6, 0.9)))
    return Party(party.suspect, party.verdict, party.sentence_type, months)


def _appeals(rng: random.Random, lags: Lags, first_instances: list[CourtCase]) -> list[CourtCase]:
    appeals = []
    for first in first_instances:
        if rng.random() >= APPEAL_SHARE:
            continue
        filed = lags.after(first.judged_on, APPEAL_FILING_LAG)
        judged = lags.after(filed, APPEAL_TRIAL_LAG)
        if judged is None:
            continue  # undecided appeals are not dumped; the first instance stands in the data
        county = first.review.case.county
        appeal = CourtCase(
            first.review, "appeal", county.intermediate_court, county.intermediate_court_code, county.legacy_intermediate_abbr,
            filed, judged, [_appealed_party(rng, p) for p in first.parties], original=first,
        )
        first.appeal = appeal
        appeals.append(appeal)
    return appeals


def _number_court_cases(rng: random.Random, court_cases: list[CourtCase]) -> None:
    """Sequence numbers per court, case type and year, rising in filing order; canonical case numbers.

    The sample holds only some of a court's cases, so its numbers are spread over
    the year's whole caseload rather than counted 1, 2, 3.
    """
    groups: dict[tuple[str, str, int], list[CourtCase]] = {}
    for case in sorted(court_cases, key=lambda c: c.filed_on):
        groups.setdefault((case.court_code, case.type_code, case.year), []).append(case)
    for cases in groups.values():
        numbers = sorted(rng.sample(range(1, max(len(cases), COURT_YEAR_CASELOAD) + 1), len(cases)))
        for case, number in zip(cases, numbers):
            case.sequence = number
            if case.legacy:
                case.case_number = f"（{case.year}）{case.legacy_abbr}{case.type_code}字第{number}号"
            else:
                case.case_number = f"（{case.year}）{case.court_code}{case.type_code}{number}号"


# -- corrections ---------------------------------------------------------------------


def _custody_place(rng: random.Random, party: Party, county: County, admitted: date) -> tuple[str, str] | None:
    """(agency, kind) executing a sentence, or None for sentences served outside custody."""
    kind = party.sentence_type
    if kind in ("probation", "control"):
        return f"{county.prefecture_name}{county.name}司法局", "社区矫正"
    remand = f"{county.prefecture_name}{county.name}看守所"
    if kind == "detention":
        return remand, "看守所"
    if kind == "fixed_term" and party.sentence_months <= SHORT_TERM_MONTHS and rng.random() < SHORT_TERM_REMAND_SHARE:
        return remand, "看守所"
    if kind in ("fixed_term", "life"):
        person = party.suspect.person
        if age_on(person.birth_date, admitted) < 18:
            return JUVENILE_PRISON, "监狱"
        return (WOMENS_PRISON if person.sex == "女" else rng.choice(PRISONS)), "监狱"
    return None


def _custody(rng: random.Random, lags: Lags, court_cases: list[CourtCase]) -> list[Custody]:
    records = []
    for case in court_cases:
        if case.appeal is not None:
            continue  # only the final judgment is executed
        for party in case.parties:
            community = party.sentence_type in ("probation", "control")
            admitted = lags.after(case.judged_on, CORRECTIONS_START_LAG if community else ADMISSION_LAG)
            place = _custody_place(rng, party, case.review.case.county, admitted) if admitted else None
            if place is None:
                continue
            released = _add_months(admitted, party.sentence_months) if party.sentence_months else None
            records.append(Custody(case, party, place[0], place[1], admitted, released if released and released <= AS_OF else None))
    records.sort(key=lambda r: r.admitted_on)
    sequence: dict[str, int] = {}
    for record in records:
        month = f"{record.admitted_on:%Y%m}"
        sequence[month] = sequence.get(month, 0) + 1
        record.record_id = f"JY{month}{sequence[month]:04d}"
    return records


# -- sealing -------------------------------------------------------------------------


def _sealing_reason(party: Party) -> str | None:
    """Why a minor's judgment is sealed (CPL art. 286), or None if it is not."""
    kind, months = party.sentence_type, party.sentence_months
    if party.verdict == "exempt":
        return "minor; exempt from punishment"
    if party.verdict != "guilty":
        return None
    if kind == "fixed_term":
        return f"minor; sentence {months} months" if months <= SEALABLE_FIXED_TERM_MONTHS else None
    if kind == "fine_only":
        return "minor; fine only"
    if kind in ("detention", "control", "probation"):
        return f"minor; {kind} {months} months"
    return None  # life


def _sealed(reviews: list[Review], court_cases: list[CourtCase]) -> list[tuple[Person, PoliceCase, str]]:
    sealed = []
    for review in reviews:
        for suspect, decision in review.decisions:
            if suspect.minor and decision == "不起诉":
                sealed.append((suspect.person, review.case, "minor; non-prosecution"))
    for case in court_cases:
        if case.appeal is not None:
            continue
        for party in case.parties:
            reason = _sealing_reason(party) if party.suspect.minor else None
            if reason:
                sealed.append((party.suspect.person, case.review.case, reason))
    sealed.sort(key=lambda s: (s[0].person_id, s[1].case_id))
    return sealed


def _seal_statuses(world: World) -> list[SealStatus]:
    """The seal status of every (suspect, case) at AS_OF: sealed as in :func:`_sealed`, else not_sealed once the outcome is known, else pending."""
    sealed = {(p.person_id, c.case_id): reason for p, c, reason in world.sealed}
    decided: dict[tuple[str, str], str] = {}
    for review in world.reviews:
        for suspect, decision in review.decisions:
            if decision == "不起诉":
                decided[(suspect.person.person_id, review.case.case_id)] = "non-prosecution"
    for court_case in world.court_cases:
        if court_case.appeal is None:  # the final judgment
            for party in court_case.parties:
                decided[(party.suspect.person.person_id, court_case.review.case.case_id)] = f"judged: {party.verdict}, {party.sentence_type}"
    statuses = []
    for case in world.cases:
        for suspect in case.suspects:
            key = (suspect.person.person_id, case.case_id)
            if not suspect.minor:
                statuses.append(SealStatus(suspect.person, case, False, "not_sealed", "adult at the offense"))
            elif key in sealed:
                statuses.append(SealStatus(suspect.person, case, True, "sealed", sealed[key]))
            elif key in decided:
                statuses.append(SealStatus(suspect.person, case, True, "not_sealed", f"minor; {decided[key]}: not sealable"))
            elif case.withdrawn_on:
                statuses.append(SealStatus(suspect.person, case, True, "not_sealed", "minor; case withdrawn: no judgment to seal"))
            else:
                statuses.append(SealStatus(suspect.person, case, True, "pending", "minor; no outcome yet at the snapshot"))
    statuses.sort(key=lambda s: (s.person.person_id, s.case.case_id))
    return statuses


def build_world(rng: random.Random, ref: Reference, n_cases: int) -> World:
    """The whole true state for ``n_cases`` police cases."""
    lags = Lags(rng)
    population = Population(rng, lags, ref.counties)
    cases = _police_cases(rng, lags, ref, n_cases, population)
    reviews = _reviews(rng, lags, cases)
    first_instances = _first_instances(rng, lags, reviews)
    appeals = _appeals(rng, lags, first_instances)
    court_cases = first_instances + appeals
    _number_court_cases(rng, court_cases)
    custody = _custody(rng, lags, court_cases)
    world = World(population.persons, cases, reviews, court_cases, custody, _sealed(reviews, court_cases))
    world.seal_statuses = _seal_statuses(world)
    return world


# -- time-limit facts (issue 10) ---------------------------------------------------------
# Drawn from their own random stream after the world is built, so the rest of the world
# (and every other writer's output) is unchanged by them. The shares are chosen so that
# each limit has stages over it, stages just inside it and stages well within it, with
# and without the extension the law allows, and approvals that came too late to count.

ROAMING_SHARE = ((14, 0.45), (10, 0.15), (0, 0.03))  # (lag over days, share marked roaming/serial/gang)
DETENTION_EXTENSION_SHARE = ((14, 0.25), (10, 0.6), (0, 0.03))  # an approved +1–4 days, by the same lag bands
CUSTODY_APPROVAL_SHARE = 0.75  # of custody stages running past a deadline: the next extension was approved
LATE_APPROVAL_SHARE = 0.1  # of approvals: dated after the deadline they were meant to extend (they do not count)
APPROVAL_LEAD_DAYS = (0, 20)  # how long before the deadline an approval is dated


def _share(bands: tuple[tuple[int, float], ...], lag: int) -> float:
    return next(share for over, share in bands if lag > over)


def _approval_on(rng: random.Random, start: date, due: date) -> date:
    if rng.random() < LATE_APPROVAL_SHARE:
        return due + timedelta(days=rng.randint(1, 5))
    return max(start + timedelta(days=1), due - timedelta(days=rng.randint(*APPROVAL_LEAD_DAYS)))


SECOND_RETURN_SHARE = 0.35  # of reviews resubmitted after a first return: returned a second time (art. 175 allows two)
SECOND_RETURN_LAG = (10, 28)  # days from the resubmission to the second return, for a review still open at AS_OF (within its month)
SECOND_SUPPLEMENTARY_LAG = bands((80, 10, 30), (20, 31, 45))  # the police's month, and past it
MAJOR_COMPLEX_SHARE = {True: 0.4, False: 0.03}  # by heavy charge: the procuratorate marks the case 重大、复杂
REVIEW_APPROVAL_SHARE = 0.6  # of reviews not so marked running past their month: a recorded 延长审查起诉
STRAY_REVIEW_APPROVAL_SHARE = 0.02  # of the others: an approval though the review ended in its month


def _review_facts(review: Review, rng: random.Random) -> ReviewFacts:
    """The review's supplementary rounds (the first from the world, a second drawn here) and its art. 172 facts."""
    facts = ReviewFacts()
    if review.returned_on:
        facts.rounds.append((review.returned_on, review.rereceived_on))
        resub = review.rereceived_on
        if resub and rng.random() < SECOND_RETURN_SHARE:
            if review.decided_on:  # both rounds fall between the first resubmission and the decision
                gap = (review.decided_on - resub).days
                if gap >= 6:
                    returned = resub + timedelta(days=rng.randint(2, max(2, min(gap // 3, 28))))  # returned within the review's month
                    back = returned + timedelta(days=rng.randint(1, (review.decided_on - returned).days - 1))
                    facts.rounds.append((returned, back))
            else:
                returned = resub + timedelta(days=rng.randint(*SECOND_RETURN_LAG))
                if returned <= AS_OF:
                    back = returned + timedelta(days=Lags(rng).draw(SECOND_SUPPLEMENTARY_LAG))
                    facts.rounds.append((returned, back if back <= AS_OF else None))
    open_round = bool(facts.rounds) and facts.rounds[-1][1] is None
    facts.is_major_complex = rng.random() < MAJOR_COMPLEX_SHARE[review.case.charge.code in HEAVY_CHARGES]
    if not open_round and not facts.is_major_complex:
        start = facts.latest_receipt(review.received_on)
        due = _add_months_last_day(start, 1)
        end = review.decided_on or AS_OF
        share = REVIEW_APPROVAL_SHARE if end > due - timedelta(days=5) else STRAY_REVIEW_APPROVAL_SHARE
        if rng.random() < share:
            approved = _approval_on(rng, start, due)
            if approved <= min(end, AS_OF):
                facts.review_extension_on = approved
    return facts


def add_time_limit_facts(world: World, rng: random.Random) -> None:
    """Draw each police case's :class:`TimeLimitFacts` (roaming marks and approvals where a stage runs long), then
    each review's :class:`ReviewFacts` (a second supplementary round, major/complex marks, 延长审查起诉 approvals)."""
    for case in world.cases:
        facts = TimeLimitFacts()
        if case.detained_on and case.arrested_on:
            lag = (case.arrested_on - case.detained_on).days
            facts.is_roaming_serial_gang = rng.random() < _share(ROAMING_SHARE, lag)
            if not facts.is_roaming_serial_gang and rng.random() < _share(DETENTION_EXTENSION_SHARE, lag):
                facts.detention_extension_on = case.detained_on + timedelta(days=rng.randint(1, 3))
        if case.arrested_on and not case.withdrawn_on:
            end = case.transferred_on or AS_OF
            months = 2
            for name, more in (("custody_extension_156_on", 1), ("custody_extension_158_on", 2), ("custody_extension_159_on", 2)):
                due = _add_months_last_day(case.arrested_on, months)
                # approved when the stage ran (or, still open, is about to run) past the deadline
                if end <= due - timedelta(days=APPROVAL_LEAD_DAYS[1]) or rng.random() >= CUSTODY_APPROVAL_SHARE:
                    break
                approved = _approval_on(rng, case.arrested_on, due)
                if approved > AS_OF:
                    break
                setattr(facts, name, approved)
                if approved > due:
                    break  # too late: the police asked for no further extension
                months += more
        case.facts = facts
    for review in world.reviews:  # after every police draw, so the police facts are unchanged by these
        review.facts = _review_facts(review, rng)


def _add_months_last_day(day: date, months: int) -> date:
    """``day`` plus calendar months, a month-end start giving the month-end (CPL art. 105)."""
    nxt = day + timedelta(days=1)
    if nxt.month != day.month:  # the last day of its month
        return _add_months(nxt, months) - timedelta(days=1)
    return _add_months(day, months)
