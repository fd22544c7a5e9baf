"""The final gradebook (instructor/gradebook.py), overrides, and the LMS export (instructor/lms.py export-*).

A grades folder as grade_batch writes it (gradebook.csv, results/*.json), the TA's sheet,
lateness.csv, similarity_flags.csv and overrides (one whose check changed since), names in
Korean; then Moodle's grading worksheet round trip and a Canvas CSV. No TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

from test_rubric import results_json, write_sheet

from grader.files import ROOT
from grader.late import apply_penalty
from instructor.grade_batch import Row, row_from_results, write_gradebook
from instructor.gradebook import late_penalty

KIM, PARK, LEE, CHOI = ("김민지", "2020-12345"), ("Park Jiwoo", "2020-23456"), ("이서준", "2021-11111"), \
    ("최유나", "2019-22222")
CHECK = "your submitted FO-MAML weights (results/fomaml) reach 80 % validation accuracy"
FULL_MARKS = 50  # 40 autograded + the report's 10


def course_rule(score: float, penalty_pp: float) -> float:
    """The course's rule, written out: penalty_pp percentage points of the full marks off, never below 0."""
    return max(0.0, score - penalty_pp / 100 * FULL_MARKS)


def csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return {r["student_number"]: r for r in csv.DictReader(handle)}


def gradebook(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instructor.gradebook", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def write_results(grades: Path, kim_weights: float = 2.0) -> None:
    """results/*.json and gradebook.csv as grade_batch writes them."""
    (grades / "results").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, number in (KIM, PARK, LEE):
        stem = f"{name}_{number}_Assignment2"
        data = results_json(name, number, kim_weights if number == KIM[1] else 2.0)
        (grades / "results" / f"{stem}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        rows.append(row_from_results(Path(stem + ".zip"), data, 1.0))
    rows.append(Row("kim_final_v2.zip", status="rejected", reason="bad name"))
    write_gradebook(rows, grades / "gradebook.csv")


def make_grades(grades: Path) -> None:
    write_results(grades)
    sheet = [{"student_number": KIM[1], "name": KIM[0], "fomaml_assessment": "4", "transfer_assessment": "5",
              "mamlpp_discussion": "2", "comments": ""},
             {"student_number": PARK[1], "name": PARK[0], "fomaml_assessment": "5", "transfer_assessment": "3",
              "mamlpp_discussion": "", "comments": ""},
             {"student_number": LEE[1], "name": LEE[0], "fomaml_assessment": "5", "transfer_assessment": "",
              "mamlpp_discussion": "", "comments": ""},
             {"student_number": CHOI[1], "name": CHOI[0], "fomaml_assessment": "1", "transfer_assessment": "1",
              "mamlpp_discussion": "", "comments": "no code handed in"}]
    write_sheet(grades, sheet)
    (grades / "lateness.csv").write_text(
        "student_number,name,submitted_at,deadline,late_minutes,hours_charged,penalty_pp,source\n"
        f"{KIM[1]},{KIM[0]},2025-06-02T23:00:00+09:00,2025-06-02T23:59:00+09:00,0,0,0,moodle worksheet\n"
        f"{PARK[1]},{PARK[0]},2025-06-03T01:14:00+09:00,2025-06-02T23:59:00+09:00,75,2,20,moodle worksheet\n"
        f"{LEE[1]},{LEE[0]},2025-06-02T10:00:00+09:00,2025-06-02T23:59:00+09:00,0,0,0,moodle worksheet\n",
        encoding="utf-8")
    (grades / "similarity_flags.csv").write_text(
        f"student_number,name,flagged_with,max_score\n{KIM[1]},{KIM[0]},{LEE[1]},0.93\n{LEE[1]},{LEE[0]},{KIM[1]},0.93\n",
        encoding="utf-8-sig")


def test_final_gradebook_traces_every_number_and_keeps_overrides_across_a_regrade(tmp_path):
    grades = tmp_path / "grades"
    make_grades(grades)
    child = gradebook("override", str(grades), "--student", KIM[1], "--target", CHECK, "--points", "1",
                      "--reason", "weights of an earlier run", "--who", "TA Han")
    assert child.returncode == 0, child.stderr
    assert "2 -> 1" in child.stdout
    child = gradebook("override", str(grades), "--student", PARK[1], "--target", "FO-MAML implementation",
                      "--points", "9", "--reason", "x", "--who", "TA Han")
    assert child.returncode == 1 and "outside 0-2" in child.stderr
    with open(grades / "overrides.csv", "a", encoding="utf-8") as handle:  # typed by hand: no digest yet
        handle.write(f"{PARK[1]},FO-MAML implementation,1,regrade request #3,Prof. Lee,\n")

    child = gradebook(str(grades))
    assert child.returncode == 0, child.stderr
    final = csv_rows(grades / "final_gradebook.csv")
    assert (grades / "final_gradebook.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    kim, park, lee, choi = (final[n] for n in (KIM[1], PARK[1], LEE[1], CHOI[1]))
    # results: 2 + 2 base, 4 extra; Kim's weights check overridden 2 -> 1
    assert (kim["autograded"], kim["report"], kim["total"], kim["extra_credit"]) == ("3", "9", "12", "6")
    assert (kim["penalty_pp"], kim["final"], kim["final_extra"]) == ("0", "12", "6")
    assert kim["similarity_flag"] == f"with {LEE[1]} (score 0.93)" and "similarity flagged" in kim["status"]
    assert "weights of an earlier run; TA Han" in kim["overrides_applied"]
    assert "gradebook.csv row" in kim["sources"] and "report_points.csv row 2" in kim["sources"] \
        and "lateness.csv row 2" in kim["sources"] and "overrides.csv row 2" in kim["sources"]
    # Park: implementation 2 -> 1, report 8 (+0 extra, noted), 75 min late: -20 %p of 50 = -10 points
    assert (park["autograded"], park["report"], park["total"], park["late_minutes"]) == ("3", "8", "11", "75")
    assert float(park["final"]) == course_rule(11, 20) == 1
    assert float(park["final_extra"]) == 4  # the deduction fits in the total: the extra credit keeps its 4
    assert "mamlpp_discussion empty: 0" in park["sources"]
    # Lee: report not graded yet: total and final empty, never zero
    assert (lee["report"], lee["total"], lee["final"]) == ("", "", "") and "report ungraded" in lee["status"]
    # Choi: on the TA's sheet only: not autograded, no lateness row
    assert choi["autograded"] == "" and "not autograded" in choi["status"] and "no lateness row" in choi["status"]
    assert "kim_final_v2.zip): no student number" in child.stdout
    assert "4 students: 1 complete, 3 to look at" in child.stdout
    with open(grades / "overrides.csv", encoding="utf-8") as handle:
        overrides = list(csv.DictReader(handle))
    assert all(len(o["check_digest"]) == 16 for o in overrides)  # the hand-typed one got its digest

    # a re-grade: grade_batch rewrites the results; Kim's overridden check now says something else
    write_results(grades, kim_weights=0.0)
    child = gradebook(str(grades))
    assert child.returncode == 0, child.stderr
    final = csv_rows(grades / "final_gradebook.csv")
    assert "the check's result changed since the override was written" in child.stdout
    assert f"review override: {CHECK} changed" in final[KIM[1]]["status"]
    assert final[KIM[1]]["autograded"] == "3"  # still applied: 0 -> 1, plus the other check's 2
    assert "review override" not in final[PARK[1]]["status"]


def test_missing_inputs_leave_columns_empty_with_a_note(tmp_path):
    grades = tmp_path / "grades"
    make_grades(grades)
    for name in ("lateness.csv", "similarity_flags.csv", "report_points.csv"):
        (grades / name).unlink()
    child = gradebook(str(grades))
    assert child.returncode == 0, child.stderr
    assert "no lateness.csv" in child.stdout and "no report_points.csv" in child.stdout
    row = csv_rows(grades / "final_gradebook.csv")[KIM[1]]
    assert (row["autograded"], row["report"], row["total"], row["penalty_pp"]) == ("4", "", "", "")


WORKSHEET = (
    '\ufeffIdentifier,"Full name","ID number","Email address",Status,Grade,"Maximum Grade","Grade can be changed",'
    '"Last modified (submission)","Last modified (grade)","Feedback comments"\r\n'
    '"Participant 101",김민지,2020-12345,minji@example.ac.kr,"Submitted for grading",,100.00,Yes,'
    '"Monday, 2 June 2025, 11:00 PM",-,\r\n'
    '"Participant 102","Park Jiwoo",,202023456@example.ac.kr,"Submitted for grading",,100.00,Yes,'
    '"Tuesday, 3 June 2025, 1:14 AM",-,\r\n'
    '"Participant 103",이서준,,seojun@example.ac.kr,"Submitted for grading",,100.00,Yes,'
    '"Monday, 2 June 2025, 10:00 AM",-,\r\n'
    '"Participant 104","Jung Hoon",2020-99999,hoon@example.ac.kr,"No submission",,100.00,Yes,-,-,\r\n')


def test_moodle_worksheet_round_trip_changes_only_grade_and_feedback(tmp_path):
    grades = tmp_path / "grades"
    make_grades(grades)
    assert gradebook(str(grades)).returncode == 0
    worksheet = tmp_path / "grading_worksheet.csv"
    worksheet.write_bytes(WORKSHEET.encode("utf-8"))
    out = tmp_path / "upload.csv"
    child = subprocess.run([sys.executable, "-m", "instructor.lms", "export-moodle",
                            str(grades / "final_gradebook.csv"), "--worksheet", str(worksheet), "--out", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    after = data.decode("utf-8").split("\r\n")
    assert len(after) == len(WORKSHEET.split("\r\n"))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    original = list(csv.DictReader(io.StringIO(WORKSHEET.lstrip("\ufeff"), newline="")))
    assert len(rows) == len(original) == 4
    for new, old in zip(rows, original):
        assert {k: v for k, v in new.items() if k not in ("Grade", "Feedback comments")} == \
            {k: v for k, v in old.items() if k not in ("Grade", "Feedback comments")}
    # byte-identical elsewhere: the text of each line before the Grade field and of Lee's and Jung's rows
    lines_before, lines_after = WORKSHEET.split("\r\n"), data.decode("utf-8").split("\r\n")
    assert lines_after[0] == lines_before[0]
    assert lines_after[3] == lines_before[3] and lines_after[4] == lines_before[4]  # no final / not in gradebook
    prefix = '"Participant 101",김민지,2020-12345,minji@example.ac.kr,"Submitted for grading",'
    assert lines_after[1].startswith(prefix + "26.00,100.00,Yes,\"Monday, 2 June 2025, 11:00 PM\",-,")
    kim = rows[0]
    assert kim["Grade"] == "26.00"  # 13/50 scaled to the worksheet's maximum of 100
    assert "total 13/50" in kim["Feedback comments"] and "extra credit 6/10" in kim["Feedback comments"]
    # matched by the email's number; 4 + 8 = 12/50, 75 min late: -20 %p of 50
    assert rows[1]["Grade"] == f"{course_rule(12, 20) / FULL_MARKS * 100:.2f}"
    assert "75 min late: -20 %p of 50 (-10 points)" in rows[1]["Feedback comments"]
    assert f"{LEE[0]} ({LEE[1]}): no final grade" in child.stdout
    assert "in the worksheet but not in the gradebook: Jung Hoon" in child.stdout
    assert f"in the gradebook but not in the worksheet: {CHOI[0]} ({CHOI[1]})" in child.stdout
    assert f"{LEE[0]}: matched by full name" in child.stdout


def test_canvas_csv_has_the_import_columns(tmp_path):
    grades = tmp_path / "grades"
    make_grades(grades)
    assert gradebook(str(grades)).returncode == 0
    roster = tmp_path / "canvas_export.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Assignment 2 (777)\n"
                      "    Points Possible,,,,,50.00\n"
                      f"\"{KIM[0]}\",1001,{KIM[1]},minji,AI 101,\n"
                      f"\"Jiwoo, Park\",1002,{PARK[1]},jiwoo,AI 101,\n", encoding="utf-8-sig")
    out = tmp_path / "canvas.csv"
    child = subprocess.run([sys.executable, "-m", "instructor.lms", "export-canvas",
                            str(grades / "final_gradebook.csv"), "--assignment", "Assignment 2 (777)", "--roster",
                            str(roster), "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Assignment 2 (777)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "50"]
    assert rows[2] == [KIM[0], "1001", KIM[1], "minji", "AI 101", "13.00"]
    assert rows[3] == ["Jiwoo, Park", "1002", PARK[1], "jiwoo", "AI 101", f"{course_rule(12, 20):.2f}"]
    assert f"in the gradebook but not in the roster: {LEE[0]} ({LEE[1]})" in child.stdout


def test_the_late_penalty_is_the_autograders_one_deduction_from_the_whole_score():
    """grader.late.apply_penalty on the score with its extra credit, as inside Gradescope; the base loses it first."""
    # (total /50, extra /10, penalty %p, floor) -> (final, final_extra) by the course rule written out
    cases = {(45, 8, 20, 0): (35, 8),        # 10 points off the total; the extra credit untouched
             (6, 8, 20, 0): (0, 4),          # the total absorbs 6 of the 10; the extra credit pays the other 4
             (6, 8, 30, 0): (0, 0),          # 15 points off 14: nothing left, never below 0
             (30, 8, 100, 5): (5, 0),        # never below the floor (5 points), extra credit included
             (3, 8, 100, 5): (3, 2),         # a total already below the floor stays; the whole score is floored at 5
             (40, None, 10, 0): (35, None)}  # no extra credit column
    for (total, extra, penalty, floor), expected in cases.items():
        whole = total + (extra or 0)
        gradescope = max(min(whole, floor), whole - penalty / 100 * FULL_MARKS)  # grader.late's rule, by hand
        final, final_extra = late_penalty(total, extra, penalty, FULL_MARKS, floor)
        assert (final, final_extra) == expected, (total, extra, penalty, floor)
        assert final + (final_extra or 0) == gradescope == apply_penalty(whole, FULL_MARKS, penalty, floor)
    assert late_penalty(None, 8, 20, FULL_MARKS) == (None, None)  # report ungraded: nothing to split yet


def test_the_documented_sequence_from_a_graded_folder_to_the_upload(tmp_path):
    """README "Running the course", steps 3 and 7-9, each the real command on one graded folder and one course.toml
    (given with --config, as for a term's copy): the lateness `instructor.late` computes from the submission times
    is what the final gradebook deducts and what the uploaded worksheet's grade has lost."""
    grades = tmp_path / "grades"
    make_grades(grades)
    (grades / "lateness.csv").unlink()  # made by step 3 here, not by hand
    config = tmp_path / "course-2025.toml"
    config.write_text(re.sub(r'(?m)^deadline = "TBA[^"]*"$', 'deadline = "2025-06-02T23:59"',
                             (ROOT / "instructor" / "course.toml").read_text(encoding="utf-8")), encoding="utf-8")
    times = tmp_path / "submission_times.csv"  # as `lms import-moodle` writes it from the worksheet below
    times.write_text("student_number,name,submitted_at\n"
                     f"{KIM[1]},{KIM[0]},2025-06-02T23:00:00+09:00\n{PARK[1]},{PARK[0]},2025-06-03T01:14:00+09:00\n"
                     f"{LEE[1]},{LEE[0]},2025-06-02T10:00:00+09:00\n", encoding="utf-8")
    worksheet = tmp_path / "grading_worksheet.csv"
    worksheet.write_bytes(WORKSHEET.encode("utf-8"))
    steps = [["instructor.late", str(grades), "--times", str(times)],
             ["instructor.rubric", "merge", str(grades)],
             ["instructor.gradebook", "override", str(grades), "--student", KIM[1], "--target", CHECK, "--points", "1",
              "--reason", "weights of an earlier run", "--who", "TA Han"],
             ["instructor.gradebook", str(grades)],
             ["instructor.lms", "export-moodle", str(grades / "final_gradebook.csv"), "--worksheet", str(worksheet),
              "--out", str(tmp_path / "upload.csv")]]
    for step in steps:
        child = subprocess.run([sys.executable, "-m", *step, *([] if "override" in step else ["--config", str(config)])],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert child.returncode == 0, f"{step[0]}: {child.stderr}"
    park = csv_rows(grades / "final_gradebook.csv")[PARK[1]]
    assert (park["late_minutes"], park["penalty_pp"]) == ("75", "20")  # 1 h 15 min: two started hours
    assert "lateness.csv row 3 (submission_times.csv)" in park["sources"]
    assert float(park["final"]) == course_rule(float(park["total"]), 20)
    uploaded = {r["Full name"]: r for r in csv.DictReader(io.StringIO(
        (tmp_path / "upload.csv").read_text(encoding="utf-8-sig"), newline=""))}
    assert uploaded[PARK[0]]["Grade"] == f"{float(park['final']) / FULL_MARKS * 100:.2f}"
    assert f"regraded: {CHECK}: 2 -> 1" in uploaded[KIM[0]]["Feedback comments"]
