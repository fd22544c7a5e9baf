"""Late penalties: the course's rule as arithmetic, the same in every flow.

The rule (``instructor/course.toml``, ``[late]``): ``points_per_hour``
percentage points of the assignment's total are deducted for every *started*
hour after the deadline (a submission 1 minute late is charged one hour, 61
minutes late two), nothing within ``grace_minutes`` of it, and the score never
goes below ``floor`` points because of the penalty. A student with an
extension has their own deadline.

Lateness is real elapsed time: both times are converted to UTC before they are
subtracted, so a deadline on one side of a daylight-saving change and a
submission on the other are charged by the hours that really passed, not by
the wall clock. Times always come from a trustworthy place (Gradescope's
``submission_metadata.json``, the LMS's worksheet, a CSV of submission
times), never from a zip's own timestamps.

This module is part of the grader (``python -m grader.gradescope`` applies the
penalty inside Gradescope, ``apply_to_results``), so it needs only the
standard library: the policy travels in the bundle as JSON
(``POLICY_FILE``, written by ``python -m instructor.release``) with every
deadline as an ISO 8601 time with its UTC offset, so no time-zone database is
needed where it runs. ``instructor/late.py`` reads the policy from
``course.toml`` and computes ``grades/lateness.csv`` for batch grading.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader.files import ROOT as SOURCE_ROOT

POLICY_FILE = "instructor/autograder/late_policy.json"  # in the bundle's source/ (written by the release)
METADATA_FILE = "submission_metadata.json"  # Gradescope's, in $AUTOGRADER_ROOT
AUTOGRADER_ROOT_ENV = "AUTOGRADER_ROOT"
DEFAULT_AUTOGRADER_ROOT = "/autograder"


class LateError(ValueError):
    """A policy, time or metadata file that cannot be used; the message says what to fix."""


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time with its UTC offset (``2025-12-01T23:59:00+09:00``, ``...Z``).

    Raises:
        LateError: not ISO 8601, or no UTC offset (a time without one could be in any zone).
    """
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise LateError(f"the {what} {text!r} is not an ISO 8601 time such as 2025-12-01T23:59:00+09:00") from None
    if moment.utcoffset() is None:
        raise LateError(f"the {what} {text!r} has no UTC offset: write it as e.g. {moment.isoformat()}+09:00")
    return moment


@dataclass(frozen=True)
class Policy:
    """The course's late rule (``course.toml``'s ``[late]``).

    Attributes:
        deadline: the deadline, an aware datetime.
        timezone: the IANA name of the course's time zone (for showing times; the arithmetic uses offsets).
        points_per_hour: percentage points of the assignment's total per started hour late.
        grace_minutes: a submission at most this late is on time.
        floor: the penalty never takes a score below this many points.
        extensions: (normalised student number, that student's deadline) pairs.
    """

    deadline: datetime
    timezone: str = "UTC"
    points_per_hour: float = 10.0
    grace_minutes: float = 0.0
    floor: float = 0.0
    extensions: tuple[tuple[str, datetime], ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.deadline.utcoffset() is None:
            raise LateError("the deadline needs a time zone")
        if self.points_per_hour < 0 or self.grace_minutes < 0:
            raise LateError(f"points_per_hour ({self.points_per_hour}) and grace_minutes ({self.grace_minutes}) "
                            f"cannot be negative")

    def deadline_for(self, student_number: str = "") -> tuple[datetime, str]:
        """(the student's deadline, where it comes from: ``course`` or ``extension``)."""
        for number, deadline in self.extensions:
            if number == student_number:
                return deadline, "extension"
        return self.deadline, "course"

    def rule(self) -> str:
        """The rule in one sentence, for students and logs."""
        grace = f" after a grace period of {self.grace_minutes:g} minutes" if self.grace_minutes else ""
        return (f"{self.points_per_hour:g} %p of the full marks per started hour after the deadline{grace}; "
                f"the score does not go below {self.floor:g}")

    def to_json(self) -> dict:
        """The policy as JSON data (``POLICY_FILE``): deadlines as ISO 8601 with their offsets."""
        return {"deadline": self.deadline.isoformat(), "timezone": self.timezone,
                "points_per_hour": self.points_per_hour, "grace_minutes": self.grace_minutes, "floor": self.floor,
                "extensions": {number: deadline.isoformat() for number, deadline in self.extensions}}

    @classmethod
    def from_json(cls, data: dict) -> "Policy":
        """The policy from ``to_json``'s data; LateError says what is wrong."""
        try:
            extensions = tuple((str(number), parse_time(value, f"extension of {number}"))
                               for number, value in dict(data.get("extensions") or {}).items())
            return cls(deadline=parse_time(data["deadline"], "deadline"), timezone=str(data.get("timezone", "UTC")),
                       points_per_hour=float(data.get("points_per_hour", 10)),
                       grace_minutes=float(data.get("grace_minutes", 0)), floor=float(data.get("floor", 0)),
                       extensions=extensions)
        except (KeyError, TypeError, AttributeError) as error:
            raise LateError(f"the late policy is incomplete or malformed ({type(error).__name__}: {error})") from None


@dataclass(frozen=True)
class Lateness:
    """How late one submission was, and what it costs.

    Attributes:
        late_minutes: started minutes after the deadline (real elapsed time; 0 when on time).
        hours_charged: started hours charged (0 on time or within the grace period).
        penalty_pp: percentage points deducted (``hours_charged * points_per_hour``).
        deadline: the deadline that applied (the student's extension, if any).
        source: where the deadline comes from (``course``, ``extension``, ``gradescope``).
    """

    late_minutes: int
    hours_charged: int
    penalty_pp: float
    deadline: datetime
    source: str = "course"


def lateness(submitted_at: datetime, policy: Policy, student_number: str = "",
             deadline: datetime | None = None) -> Lateness:
    """The lateness of a submission made at ``submitted_at`` (an aware datetime).

    Args:
        submitted_at: when it was submitted, with its UTC offset.
        policy: the course's rule.
        student_number: the normalised student number, for extensions.
        deadline: a later deadline known from elsewhere (Gradescope's due date); the later one applies.
    """
    if submitted_at.utcoffset() is None:
        raise LateError(f"the submission time {submitted_at.isoformat()} has no time zone")
    applies, source = policy.deadline_for(student_number)
    if deadline is not None and deadline.astimezone(timezone.utc) > applies.astimezone(timezone.utc):
        applies, source = deadline, "gradescope"
    # in UTC: subtracting two times of the same tzinfo would give the wall-clock difference, not the elapsed time
    seconds = (submitted_at.astimezone(timezone.utc) - applies.astimezone(timezone.utc)).total_seconds()
    if seconds <= 0:
        return Lateness(0, 0, 0.0, applies, source)
    minutes = math.ceil(seconds / 60)
    hours = 0 if seconds <= policy.grace_minutes * 60 else math.ceil(seconds / 3600)
    return Lateness(minutes, hours, hours * policy.points_per_hour, applies, source)


def apply_penalty(raw_score: float, max_score: float, penalty_pp: float, floor: float = 0.0) -> float:
    """The score after a penalty of ``penalty_pp`` percentage points of ``max_score``.

    The penalty never takes the score below ``floor`` (nor raises one already below it).
    """
    if penalty_pp <= 0:
        return raw_score
    return round(max(min(raw_score, floor), raw_score - penalty_pp / 100 * max_score), 4)


def duration(minutes: int) -> str:
    """``2 h 14 min``, ``59 min``, ``1 day 1 h 0 min``."""
    days, rest = divmod(int(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    text = f"{hours} h {mins} min" if hours or days else f"{mins} min"
    return (f"{days} day{'s' if days > 1 else ''} " if days else "") + text


def describe(late: Lateness, policy: Policy, raw_score: float, final_score: float) -> str:
    """The line a student reads, e.g. ``Submitted 2 h 14 min late: -30 %p (10 %p per started hour); score 40 -> 28``."""
    when = late.deadline.strftime("%Y-%m-%d %H:%M %z")
    if late.late_minutes == 0:
        return f"Submitted on time (deadline {when})."
    if late.hours_charged == 0:
        return (f"Submitted {duration(late.late_minutes)} after the deadline ({when}), within the "
                f"{policy.grace_minutes:g}-minute grace period: no penalty.")
    return (f"Submitted {duration(late.late_minutes)} late (deadline {when}): -{late.penalty_pp:g} %p "
            f"({policy.points_per_hour:g} %p per started hour); score {raw_score:g} -> {final_score:g}")


def read_policy(root: Path = SOURCE_ROOT) -> Policy | None:
    """The bundle's policy (``POLICY_FILE`` under ``root``), or None when the bundle has none."""
    path = root / POLICY_FILE
    if not path.is_file():
        return None
    try:
        return Policy.from_json(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as error:
        raise LateError(f"{POLICY_FILE}: {error}") from None


def gradescope_metadata(submission: Path) -> dict | None:
    """Gradescope's submission metadata, when ``submission`` is the one Gradescope placed.

    Only the folder ``$AUTOGRADER_ROOT/submission`` (default ``/autograder``)
    has metadata: batch grading passes a zip from elsewhere, and gets None.
    """
    root = Path(os.environ.get(AUTOGRADER_ROOT_ENV) or DEFAULT_AUTOGRADER_ROOT)
    path = root / METADATA_FILE
    try:
        if Path(submission).resolve() != (root / "submission").resolve() or not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LateError(f"{path} cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise LateError(f"{path} is not a JSON object")
    return data


def apply_to_results(data: dict, submission: Path, student_number: str, root: Path = SOURCE_ROOT) -> dict:
    """Applies the late penalty to Gradescope's ``results.json`` data, once, in place; returns it.

    Without Gradescope's metadata (local or batch grading) nothing changes:
    batch grading records lateness in ``grades/lateness.csv`` instead
    (``python -m instructor.late``). With it, ``score`` becomes the penalised
    score, a line in ``output`` tells the student, and ``extra_data["late"]``
    records raw_score, late_minutes, hours_charged, penalty_pp and the
    deadline. A policy or metadata that cannot be used changes no score; the
    instructor's log and ``extra_data["notes"]`` say why.
    """
    extra = data.setdefault("extra_data", {})
    if "late" in extra:  # applied already
        return data
    try:
        metadata = gradescope_metadata(submission)
        if metadata is None:
            return data
        policy = read_policy(root)
        if policy is None:
            raise LateError(f"the bundle has no {POLICY_FILE} (no [late] in course.toml when it was released)")
        submitted = parse_time(metadata.get("created_at", ""), "submission time (created_at)")
        assignment = metadata.get("assignment") if isinstance(metadata.get("assignment"), dict) else {}
        due = parse_time(assignment["due_date"], "due_date") if assignment.get("due_date") else None
        late = lateness(submitted, policy, student_number, deadline=due)
    except LateError as error:
        extra.setdefault("notes", []).append(f"late penalty not applied: {error}")
        print(f"note: late penalty not applied: {error}", flush=True)  # the instructor's log
        return data
    raw = float(data.get("score", 0.0))
    final = apply_penalty(raw, float(extra.get("max_score") or raw), late.penalty_pp, policy.floor)
    line = describe(late, policy, raw, final)
    data["score"] = final
    data["output"] = line + ("\n\n" + data["output"] if data.get("output") else "")
    extra["late"] = {"raw_score": raw, "score": final, "submitted_at": submitted.isoformat(),
                     "deadline": late.deadline.isoformat(), "deadline_source": late.source,
                     "late_minutes": late.late_minutes, "hours_charged": late.hours_charged,
                     "penalty_pp": late.penalty_pp, "late_due_date": assignment.get("late_due_date"),
                     "rule": policy.rule()}
    extra.update({"raw_score": raw, "late_minutes": late.late_minutes, "hours_charged": late.hours_charged,
                  "penalty_pp": late.penalty_pp})
    print(f"late: {line}", flush=True)
    return data
