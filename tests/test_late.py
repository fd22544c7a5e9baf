"""Late penalties (grader/late.py, instructor/late.py): the rule, extensions, DST, the CLI, and inside Gradescope.

The Gradescope cases run the real bundle (built once per module with a late
policy) in a real ``/autograder`` layout (``instructor.gradescope_local``)
with a ``submission_metadata.json`` 0 min, 59 min, 61 min and 25 h late,
and 61 min late for a student with an extension; one cheap public check
(``inner_loop_outputs``, 2 points) keeps them short, and they run two at a
time.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import late as rule  # noqa: E402
from grader import submission  # noqa: E402
from instructor import gradescope_local  # noqa: E402
from instructor import late  # noqa: E402
from instructor.release import build, bundle  # noqa: E402

SEOUL = late.zone("Asia/Seoul")
DEADLINE = datetime(2025, 12, 1, 23, 59, tzinfo=SEOUL)
EXTENDED = "2020-54321"  # 48 extra hours


def course_toml(tmp_path: Path, **late_values) -> Path:
    values = {"deadline": '"2025-12-01T23:59"', "timezone": '"Asia/Seoul"', "points_per_hour": "10",
              "grace_minutes": "0", "floor": "0", "extensions": '"extensions.csv"', **late_values}
    path = tmp_path / "course.toml"
    path.write_text("[assignment]\nversion = \"x\"\n\n[late]\n"
                    + "".join(f"{k} = {v}\n" for k, v in values.items()), encoding="utf-8")
    (tmp_path / "extensions.csv").write_text(
        f"student_number,new_deadline,extra_hours\n{EXTENDED},,48\n2020-77777,2025-12-03T12:00,\n", encoding="utf-8")
    return path


@pytest.fixture
def policy(tmp_path) -> rule.Policy:
    return late.load_policy(course_toml(tmp_path))


@pytest.mark.parametrize("after, minutes, hours, penalty", [
    (timedelta(0), 0, 0, 0), (timedelta(seconds=-30), 0, 0, 0), (timedelta(seconds=1), 1, 1, 10),
    (timedelta(minutes=59), 59, 1, 10), (timedelta(minutes=60), 60, 1, 10), (timedelta(minutes=61), 61, 2, 20),
    (timedelta(hours=25), 1500, 25, 250), (timedelta(hours=25, seconds=1), 1501, 26, 260)])
def test_every_started_hour_costs_ten_points(policy, after, minutes, hours, penalty):
    found = late.lateness(DEADLINE + after, policy, "2020-12345")
    assert (found.late_minutes, found.hours_charged, found.penalty_pp) == (minutes, hours, penalty)
    assert found.deadline == DEADLINE and found.source == "course"


def test_extensions_by_hours_or_new_deadline_and_the_grace_period(tmp_path):
    policy = late.load_policy(course_toml(tmp_path, grace_minutes="5"))
    assert dict(policy.extensions)[EXTENDED] == DEADLINE + timedelta(hours=48)
    assert late.lateness(DEADLINE + timedelta(hours=47), policy, EXTENDED).penalty_pp == 0
    extended = late.lateness(DEADLINE + timedelta(hours=48, minutes=61), policy, EXTENDED)
    assert (extended.hours_charged, extended.source) == (2, "extension")
    assert late.lateness(datetime(2025, 12, 3, 12, 30, tzinfo=SEOUL), policy, "2020-77777").hours_charged == 1
    assert late.lateness(DEADLINE + timedelta(minutes=5), policy, "2020-12345").hours_charged == 0  # grace
    assert late.lateness(DEADLINE + timedelta(minutes=5, seconds=1), policy, "2020-12345").hours_charged == 1


def test_lateness_is_real_elapsed_time_across_a_daylight_saving_change(tmp_path):
    """Berlin falls back on 26 Oct 2025 (03:00 CEST -> 02:00 CET): 01:30 to 03:40 is 2 h 10 on the wall, 3 h 10 real."""
    policy = late.load_policy(course_toml(tmp_path, deadline='"2025-10-26T01:30"', timezone='"Europe/Berlin"'))
    berlin = late.zone("Europe/Berlin")
    submitted = datetime(2025, 10, 26, 3, 40, tzinfo=berlin)
    assert submitted - policy.deadline == timedelta(hours=2, minutes=10)  # Python's same-zone wall-clock difference
    found = late.lateness(submitted, policy)
    assert (found.late_minutes, found.hours_charged, found.penalty_pp) == (190, 4, 40)
    # the same instant as Gradescope writes it (UTC offset only) is charged the same
    same = late.lateness(rule.parse_time("2025-10-26T02:40:00Z"), policy)
    assert same == found


def test_penalty_arithmetic_and_the_student_line(policy):
    assert rule.apply_penalty(40, 40, 30) == 28
    assert rule.apply_penalty(30, 40, 30) == 18  # percentage points of the assignment's total
    assert rule.apply_penalty(10, 40, 260) == 0  # floor
    assert rule.apply_penalty(48, 40, 0) == 48
    found = late.lateness(DEADLINE + timedelta(hours=2, minutes=14), policy)
    assert rule.describe(found, policy, 40, 28).startswith(
        "Submitted 2 h 14 min late (deadline 2025-12-01 23:59 +0900): -30 %p (10 %p per started hour); score 40 -> 28")


def test_config_errors_say_what_to_fix(tmp_path):
    with pytest.raises(late.LateConfigError, match="not an IANA time zone"):
        late.load_policy(course_toml(tmp_path, timezone='"Korea/Seoul-ish"'))
    with pytest.raises(late.LateConfigError, match="is not a time such as"):
        late.load_policy(course_toml(tmp_path, deadline='"next Friday"'))
    path = course_toml(tmp_path)
    (tmp_path / "extensions.csv").write_text("student_number,extra_hours\n12345,3\n", encoding="utf-8")
    with pytest.raises(late.LateConfigError, match=r"extensions.csv:2: .*student number"):
        late.load_policy(path)
    assert late.load_policy(ROOT / "instructor" / "course.toml") is None  # the seed's deadline is still TBA


def test_the_command_writes_lateness_csv_for_the_class(tmp_path):
    config = course_toml(tmp_path)
    grades = tmp_path / "grades"
    grades.mkdir()
    (grades / "gradebook.csv").write_text("\ufeffname,student_number,score\n김민지,2020-12345,40\n"
                                          "Park Jiwoo,2020-23456,38\nNo Time,2020-99999,30\n", encoding="utf-8")
    times = tmp_path / "submission_times.csv"
    times.write_text("student_number,name,submitted_at\n2020-12345,김민지,2025-12-02T01:13:00+09:00\n"
                     "2020-23456,Park Jiwoo,2025-12-01T14:50:00Z\n"
                     f"{EXTENDED},Lee Extended,2025-12-03T23:00:00+09:00\n", encoding="utf-8")
    child = subprocess.run([sys.executable, "-m", "instructor.late", str(grades), "--times", str(times),
                            "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    with open(grades / "lateness.csv", encoding="utf-8-sig", newline="") as handle:
        rows = {row["student_number"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == list(late.LATENESS_COLUMNS)
    assert (rows["2020-12345"]["late_minutes"], rows["2020-12345"]["hours_charged"],
            rows["2020-12345"]["penalty_pp"]) == ("74", "2", "20")
    assert rows["2020-23456"]["penalty_pp"] == "0" and rows["2020-23456"]["submitted_at"] == "2025-12-01T23:50:00+09:00"
    assert rows[EXTENDED]["penalty_pp"] == "0" and rows[EXTENDED]["deadline"] == "2025-12-03T23:59:00+09:00"
    assert rows["2020-99999"]["submitted_at"] == "" and "no submission time" in rows["2020-99999"]["source"]
    assert "1 charged, 1 without a submission time" in child.stdout and "김민지" in child.stdout
    bad = subprocess.run([sys.executable, "-m", "instructor.late", str(grades), "--times", str(tmp_path / "none.csv"),
                          "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


# --- inside Gradescope: the bundle applies the penalty from submission_metadata.json ---

@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


@pytest.fixture(scope="module")
def late_bundle(handout, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("course")
    policy = late.load_policy(course_toml(folder))
    path = bundle.write_bundle(handout, tmp_path_factory.mktemp("dist"), ROOT, policy)
    return path


def submission_zip(handout, name: str, number: str, folder: Path) -> Path:
    files = {code: handout.stubbed[code].solved.encode() for code in submission.CODE}
    files["report.md"] = b"# Report\n"
    for kind in ("fomaml", "transfer"):
        for run_file in submission.RUN_FILES:
            files[f"results/{kind}/{run_file}"] = f"placeholder {kind}/{run_file}\n".encode()
    return submission.write_submission(files, name, number, folder, version=handout.version)


CASES = {"on time": ("2020-12345", timedelta(0)), "59 min": ("2020-12345", timedelta(minutes=59)),
         "61 min": ("2020-12345", timedelta(minutes=61)), "25 h": ("2020-12345", timedelta(hours=25)),
         "61 min, extension": (EXTENDED, timedelta(minutes=61)), "no metadata": ("2020-12345", None)}


@pytest.fixture(scope="module")
def graded(handout, late_bundle, tmp_path_factory) -> dict[str, dict]:
    """results.json of each case, graded two at a time by the real bundle in a Gradescope layout."""
    pacific = timezone(timedelta(hours=-8))  # Gradescope writes times in the course's zone on its side

    def grade(case: str) -> dict:
        number, after = CASES[case]
        folder = tmp_path_factory.mktemp("case")
        zip_path = submission_zip(handout, "김민지", number, folder / "zips")
        root = folder / "autograder"
        root.mkdir()
        if after is not None:
            created = (DEADLINE + after).astimezone(pacific)
            (root / "submission_metadata.json").write_text(json.dumps({
                "id": 1, "created_at": created.isoformat(), "submission_method": "upload",
                "assignment": {"due_date": DEADLINE.astimezone(pacific).isoformat(), "late_due_date": None,
                               "title": "Assignment 2", "total_points": "50.0"},
                "users": [{"email": "minji@example.com", "id": 7, "name": "김민지"}], "previous_submissions": []}))
        env = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRADER_CALL_SECONDS": "120"}
        return gradescope_local.run(zip_path, late_bundle, root, python=sys.executable, env=env, timeout=600,
                                    arguments=["--public-only", "-k", "inner_loop_outputs"])

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(CASES, pool.map(grade, CASES)))


@pytest.mark.parametrize("case, hours, score", [("on time", 0, 2.0), ("59 min", 1, 1.8), ("61 min", 2, 1.6),
                                                 ("25 h", 25, 0.0), ("61 min, extension", 0, 2.0)])
def test_gradescope_applies_the_penalty_once_and_tells_the_student(graded, case, hours, score):
    data = graded[case]
    extra = data["extra_data"]
    assert extra["status"] == "graded" and extra["raw_score"] == 2.0, data["output"]
    assert sum(t["score"] for t in data["tests"]) == 2.0  # the tests keep their points; the total is penalised
    assert data["score"] == score and extra["hours_charged"] == hours
    assert extra["penalty_pp"] == hours * 10 and extra["late"]["score"] == score
    first = data["output"].splitlines()[0]
    if hours:
        assert first.startswith(f"Submitted {rule.duration(extra['late_minutes'])} late") and \
            f"-{hours * 10} %p (10 %p per started hour); score 2 -> {score:g}" in first
    else:
        assert first.startswith("Submitted on time")
    if case.endswith("extension"):
        assert extra["late"]["deadline_source"] == "extension" and extra["late_minutes"] == 0


def test_without_metadata_nothing_changes(graded):
    data = graded["no metadata"]
    assert data["score"] == 2.0 and "late" not in data["extra_data"] and "raw_score" not in data["extra_data"]
    assert not data["output"].startswith("Submitted")


def test_the_bundle_carries_the_policy_as_json(late_bundle):
    import zipfile

    with zipfile.ZipFile(late_bundle) as archive:
        data = json.loads(archive.read(f"source/{rule.POLICY_FILE}"))
    assert data["deadline"] == "2025-12-01T23:59:00+09:00" and data["points_per_hour"] == 10
    assert data["extensions"][EXTENDED] == "2025-12-03T23:59:00+09:00"
    assert rule.Policy.from_json(data).deadline == DEADLINE
