"""Late penalties (grader/late.py, instructor/late.py): the rule, extensions, DST, the CLI, and inside Gradescope.

Inside Gradescope, ``grader.late.apply_to_results`` (what ``python -m
grader.gradescope`` calls last) reads a real ``$AUTOGRADER_ROOT`` with a
``submission_metadata.json`` 0 min, 59 min, 61 min and 25 h late, and 61 min
late for a student with an extension, and the policy JSON the release writes,
for a results.json with extra credit. The real bundle (built once per module
with a late policy) then runs twice in a real ``/autograder`` layout
(``instructor.gradescope_local``), at the same time: 61 min late (the line the
student reads, the score, extra_data) and without metadata (unchanged); one
cheap public check (``inner_loop_outputs``, 2 points) keeps them short.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader import late as rule
from grader import submission
from grader.files import ROOT
from instructor import gradescope_local, late
from instructor.release import build, bundle

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
    tba = subprocess.run([sys.executable, "-m", "instructor.late", str(tmp_path), "--times", str(times)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)  # the repository's course.toml: TBA
    assert tba.returncode == 2 and "still to be announced" in tba.stderr and "--config" in tba.stderr
    assert not (tmp_path / "lateness.csv").exists()


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


def metadata(created: datetime, due: datetime) -> dict:
    """Gradescope's submission_metadata.json, times in the zone Gradescope writes them (here US Pacific)."""
    pacific = timezone(timedelta(hours=-8))
    return {"id": 1, "created_at": created.astimezone(pacific).isoformat(), "submission_method": "upload",
            "assignment": {"due_date": due.astimezone(pacific).isoformat(), "late_due_date": None,
                           "title": "Assignment 2", "total_points": "40.0"},
            "users": [{"email": "minji@example.com", "id": 7, "name": "김민지"}], "previous_submissions": []}


CASES = {"on time": ("2020-12345", timedelta(0), 0), "59 min": ("2020-12345", timedelta(minutes=59), 1),
         "61 min": ("2020-12345", timedelta(minutes=61), 2), "25 h": ("2020-12345", timedelta(hours=25), 25),
         "61 min, extension": (EXTENDED, timedelta(minutes=61), 0)}


@pytest.mark.parametrize("case", CASES)
def test_gradescope_results_are_penalised_once_from_the_metadata(case, policy, tmp_path, monkeypatch):
    """apply_to_results on a real $AUTOGRADER_ROOT and the bundle's policy file: 38 + 8 extra of 40."""
    number, after, hours = CASES[case]
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission_metadata.json").write_text(json.dumps(metadata(DEADLINE + after, DEADLINE)))
    source = tmp_path / "source"
    (source / rule.POLICY_FILE).parent.mkdir(parents=True)
    (source / rule.POLICY_FILE).write_text(json.dumps(policy.to_json()))
    monkeypatch.setenv(rule.AUTOGRADER_ROOT_ENV, str(root))
    raw, maximum = 46.0, 40.0  # results.json's score holds the extra credit (8); max_score is the assignment's 40
    data = {"score": raw, "output": "the tests' output", "tests": [{"name": "a check", "score": raw}],
            "extra_data": {"max_score": maximum, "extra_credit": 8.0}}
    rule.apply_to_results(data, root / "submission", number, root=source)
    expected = max(0.0, raw - hours * 10 / 100 * maximum)  # the course rule: 10 %p of 40 per started hour
    extra = data["extra_data"]
    assert data["score"] == expected and extra["raw_score"] == raw and extra["late"]["score"] == expected
    assert (extra["hours_charged"], extra["penalty_pp"]) == (hours, hours * 10)
    assert data["tests"][0]["score"] == raw  # the tests keep their points; the total is penalised
    first = data["output"].splitlines()[0]
    if hours:
        assert first.startswith(f"Submitted {rule.duration(extra['late_minutes'])} late") and \
            f"-{hours * 10} %p (10 %p per started hour); score 46 -> {expected:g}" in first
    else:
        assert first.startswith("Submitted on time")
    if case.endswith("extension"):
        assert extra["late"]["deadline_source"] == "extension" and extra["late_minutes"] == 0
    rule.apply_to_results(data, root / "submission", number, root=source)  # once: a second call changes nothing
    assert data["score"] == expected and data["output"].count("Submitted") == 1


BUNDLE_CASES = {"61 min": timedelta(minutes=61), "no metadata": None}


@pytest.fixture(scope="module")
def graded(handout, late_bundle, tmp_path_factory) -> dict[str, dict]:
    """results.json of each bundle case, graded at the same time by the real bundle in a Gradescope layout."""

    def grade(case: str) -> dict:
        after = BUNDLE_CASES[case]
        folder = tmp_path_factory.mktemp("case")
        zip_path = submission_zip(handout, "김민지", "2020-12345", folder / "zips")
        root = folder / "autograder"
        root.mkdir()
        if after is not None:
            (root / "submission_metadata.json").write_text(json.dumps(metadata(DEADLINE + after, DEADLINE)))
        env = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRADER_CALL_SECONDS": "120"}
        return gradescope_local.run(zip_path, late_bundle, root, python=sys.executable, env=env, timeout=600,
                                    arguments=["--public-only", "-k", "inner_loop_outputs"])

    with ThreadPoolExecutor(len(BUNDLE_CASES)) as pool:
        return dict(zip(BUNDLE_CASES, pool.map(grade, BUNDLE_CASES)))


def test_the_bundle_applies_the_penalty_inside_gradescope_and_tells_the_student(graded):
    data = graded["61 min"]
    extra = data["extra_data"]
    assert extra["status"] == "graded" and extra["raw_score"] == 2.0, data["output"]
    assert sum(t["score"] for t in data["tests"]) == 2.0  # the tests keep their points; the total is penalised
    expected = 2.0 - 2 * 10 / 100 * extra["max_score"]  # 2 started hours of 10 %p of the total (2: public only)
    assert data["score"] == expected == extra["late"]["score"] and extra["hours_charged"] == 2
    assert extra["penalty_pp"] == 20 and extra["late_minutes"] == 61 and extra["late"]["deadline_source"] == "course"
    assert data["output"].splitlines()[0] == (
        f"Submitted 1 h 1 min late (deadline 2025-12-01 23:59 +0900): -20 %p (10 %p per started hour); "
        f"score 2 -> {expected:g}")


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
