"""Statutory time limits of criminal procedure (CPL 2018), as named rules with their deadlines.

Each rule states its article, the agency responsible, when its clock starts and ends,
and its deadline. The deadline exists twice and the two must agree exactly:
:func:`deadline` (the Python reference) and :func:`deadline_column` (the Spark
expression the builder of ``gold.time_limit_warnings`` uses).

Counting (CPL art. 105; SPC 法释〔2021〕1号 on periods): the day the clock starts is
not counted. A limit in days ends that many days later. A limit in months ends on the
same day-number of the month that many months later; when that month has no such day,
or the clock started on the last day of its month, on that month's last day. Deadlines
are never moved off holidays: custody limits may not be extended for holidays (art.
105), and for the others the unextended date is the earlier, safer warning.

Extensions are applied only where the source records the approval (an approval date
on or before the deadline it extends, each step after the one before it) or the
qualifying fact (a mark): missing facts give the shorter, unextended limit.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pyspark.sql import Column

__all__ = ["Rule", "RULES", "RULE_NAMES", "AGENCIES", "STATUSES", "add_months", "add_days", "deadline", "judge",
           "add_months_column", "deadline_column"]

Agency = Literal["police", "procuratorate", "court"]
AGENCIES: tuple[str, ...] = ("police", "procuratorate", "court")
STATUSES: tuple[str, ...] = ("exceeded", "approaching", "undetermined")  # undetermined: the clock start is not on record


@dataclass(frozen=True)
class Rule:
    """One statutory limit: ``months`` and ``days`` from the clock start, before extensions."""

    name: str
    article: str
    agency: Agency
    clock: str  # what starts the clock
    ends: str  # what stops it
    months: int = 0
    days: int = 0
    extensions: str = ""  # the extensions the rule applies, and which recorded fact each needs


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("detention_to_arrest", "CPL art. 91", "police", "criminal detention (拘留)", "the arrest decision (逮捕)", days=10,
         extensions="14 days with a recorded extension of the arrest request (+1–4 days); 37 days for a suspect marked "
                    "roaming, serial or gang (流窜作案、多次作案、结伙作案): request 3, or 7, or 30 days, decision within 7"),
    Rule("custody_after_arrest", "CPL art. 156", "police", "arrest (逮捕)", "transfer for review for prosecution (移送审查起诉)", months=2,
         extensions="+1 month with a recorded art. 156 approval, then +2 months (art. 158), then +2 months (art. 159), "
                    "each approved on or before the deadline it extends"),
    Rule("arrested_not_transferred", "CPL art. 156", "police", "arrest (逮捕)", "still in custody, not transferred, at the data date", months=2,
         extensions="as custody_after_arrest"),
    Rule("review_for_prosecution", "CPL art. 172", "procuratorate", "receipt of the case, or its resubmission after supplementary "
         "investigation (the clock restarts, art. 175)", "the decision to prosecute or not (or a return)", months=1,
         extensions="+15 days with a recorded extension (延长审查起诉) approved on or before the deadline, or for a case the "
                    "procuratorate marks major or complex (重大、复杂)"),
    Rule("supplementary_investigation", "CPL art. 175", "police", "the procuratorate's return for supplementary investigation "
         "(退回补充侦查), each round (at most two)", "the resubmission to the procuratorate (重新移送), or still out at the data date", months=1),
    Rule("first_instance", "CPL art. 208", "court", "the court's acceptance of the public prosecution (受理)", "the first-instance judgment", months=2,
         extensions="none recorded in the sources (3 months at the latest, +3 with the higher court's approval)"),
    Rule("appeal", "CPL art. 243", "court", "the appeal court's acceptance (受理)", "the second-instance judgment", months=2,
         extensions="none recorded in the sources (+2 months with the high court's approval)"),
)}
RULE_NAMES: tuple[str, ...] = tuple(RULES)

DETENTION_EXTENDED_DAYS = 14
DETENTION_ROAMING_DAYS = 37
CUSTODY_EXTENSIONS = (("custody_extension_156_on", 1), ("custody_extension_158_on", 2), ("custody_extension_159_on", 2))
REVIEW_EXTENSION_DAYS = 15


# -- the Python reference -----------------------------------------------------------------


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)


def add_months(day: date, months: int) -> date:
    """The day ``months`` calendar months after ``day`` (art. 105): the same day-number, or the month's last day
    when it has none or ``day`` is the last day of its month."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if day.day == calendar.monthrange(day.year, day.month)[1]:
        return date(year, month, last)
    return date(year, month, min(day.day, last))


def deadline(rule: str, start: date, facts: Mapping[str, object] | None = None) -> date:
    """The last day of ``rule``'s limit for a clock started on ``start``, with the extensions ``facts`` record.

    Facts by name: ``is_roaming_serial_gang``, ``is_major_complex`` (bool), ``detention_extension_on``,
    ``custody_extension_156_on``/``_158_on``/``_159_on``, ``review_extension_on`` (dates).
    """
    facts = facts or {}
    r = RULES[rule]
    if rule == "detention_to_arrest":
        if facts.get("is_roaming_serial_gang") is True:
            return add_days(start, DETENTION_ROAMING_DAYS)
        approved = facts.get("detention_extension_on")
        if isinstance(approved, date) and start <= approved <= add_days(start, 3):  # within the 3-day request period
            return add_days(start, DETENTION_EXTENDED_DAYS)
        return add_days(start, r.days)
    end = add_days(add_months(start, r.months), r.days)
    if rule in ("custody_after_arrest", "arrested_not_transferred"):
        months = r.months
        for fact, more in CUSTODY_EXTENSIONS:
            approved = facts.get(fact)
            if not (isinstance(approved, date) and start <= approved <= end):
                break
            months += more
            end = add_months(start, months)
    elif rule == "review_for_prosecution":
        approved = facts.get("review_extension_on")
        if facts.get("is_major_complex") is True or (isinstance(approved, date) and start <= approved <= end):
            end = add_days(end, REVIEW_EXTENSION_DAYS)
    return end


def judge(deadline_on: date, ended_on: date | None, data_date: date, warning_days: int) -> tuple[str, date, int] | None:
    """``(status, judged_on, days_over)`` of one stage, or None when there is nothing to warn about.

    An ended stage is judged on its end date: ``exceeded`` when it ended after the deadline.
    An open stage is judged on the data date: ``exceeded`` past the deadline, ``approaching``
    within ``warning_days`` before it (the deadline day itself included). ``days_over`` is
    negative for the days left.
    """
    judged_on = ended_on if ended_on is not None else data_date
    days_over = (judged_on - deadline_on).days
    if days_over > 0:
        return "exceeded", judged_on, days_over
    if ended_on is None and days_over >= -warning_days:
        return "approaching", judged_on, days_over
    return None


# -- the Spark expressions ----------------------------------------------------------------


def add_months_column(day: Column, months: int) -> Column:
    """:func:`add_months` as a Spark expression (Spark's ``add_months`` keeps the day-number, clamped)."""
    from pyspark.sql import functions as F

    shifted = F.add_months(day, months)
    return F.when(day == F.last_day(day), F.last_day(shifted)).otherwise(shifted)


def deadline_column(rule: str, start: Column, facts: Mapping[str, Column] | None = None) -> Column:
    """:func:`deadline` as a Spark expression; ``facts`` maps the same names to columns (absent: not recorded)."""
    from pyspark.sql import functions as F

    facts = facts or {}
    r = RULES[rule]

    def fact(name: str) -> Column:
        return facts.get(name, F.lit(None))

    def approved_by(name: str, last: Column) -> Column:
        on = fact(name)
        return on.isNotNull() & (on >= start) & (on <= last)

    if rule == "detention_to_arrest":
        return (
            F.when(F.coalesce(fact("is_roaming_serial_gang").cast("boolean"), F.lit(False)), F.date_add(start, DETENTION_ROAMING_DAYS))
            .when(approved_by("detention_extension_on", F.date_add(start, 3)), F.date_add(start, DETENTION_EXTENDED_DAYS))
            .otherwise(F.date_add(start, r.days))
        )
    end = add_months_column(start, r.months)
    if r.days:
        end = F.date_add(end, r.days)
    if rule in ("custody_after_arrest", "arrested_not_transferred"):
        # Nested from the last extension inwards: each applies only if every earlier one did.
        months, steps = r.months, []
        for name, more in CUSTODY_EXTENSIONS:
            steps.append((name, add_months_column(start, months), add_months_column(start, months + more)))
            months += more
        result = steps[-1][2]
        for name, before, _after in reversed(steps):
            result = F.when(approved_by(name, before), result).otherwise(before)
        return result
    if rule == "review_for_prosecution":
        major = F.coalesce(fact("is_major_complex").cast("boolean"), F.lit(False))
        return F.when(major | approved_by("review_extension_on", end), F.date_add(end, REVIEW_EXTENSION_DAYS)).otherwise(end)
    return end
