"""Moodle import (instructor/lms.py): a download and a grading worksheet laid out as Moodle writes them.

The test builds Moodle's "Download all submissions" zip itself (one
``{full name}_{participant id}_assignsubmission_file_`` folder per student,
UTF-8 names, Korean ones included, real submission zips written by
``grader.submission.write_submission``) and the grading worksheet CSV with
Moodle's columns and English time format.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import submission
from grader.files import ROOT
from instructor import late, lms

HEADER = ["Identifier", "Full name", "ID number", "Email address", "Status", "Grade", "Maximum Grade",
          "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]


def a_zip(name: str, number: str, folder: Path) -> Path:
    files = {code: f"# {code} of {name}\n".encode() for code in submission.CODE}
    files["report.md"] = f"# Report of {name}\n".encode()
    for kind in ("fomaml", "transfer"):
        for run_file in submission.RUN_FILES:
            files[f"results/{kind}/{run_file}"] = f"{kind}/{run_file}\n".encode()
    return submission.write_submission(files, name, number, folder, version="2025.1+000000000000")


@pytest.fixture
def moodle(tmp_path) -> tuple[Path, Path, dict[str, Path]]:
    zips = {who: a_zip(who, number, tmp_path / "made") for who, number in
            [("김민지", "2020-12345"), ("Park Jiwoo", "2020-23456"), ("이서연", "2021-33333")]}
    download = tmp_path / "ASSIGN2-Assignment 2-123.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.write(zips["김민지"], f"김민지_101_assignsubmission_file_/{zips['김민지'].name}")
        archive.write(zips["Park Jiwoo"], f"Park Jiwoo_102_assignsubmission_file/{zips['Park Jiwoo'].name}")  # 4.x
        archive.writestr("Park Jiwoo_102_assignsubmission_onlinetext_/onlinetext.html", "<p>hi</p>")
        archive.writestr("최유나_103_assignsubmission_file_/maml.py", "print('no zip')\n")
        archive.write(zips["이서연"], f"이서연_104_assignsubmission_file_/{zips['이서연'].name}")
        archive.writestr("이서연_104_assignsubmission_file_/old_version.zip", b"PK\x05\x06" + b"\0" * 18)
        archive.write(zips["김민지"], "Lee Flat_106_assignsubmission_file_Lee Flat_2021-66666_Assignment2.zip")
    worksheet = tmp_path / "Grades-ASSIGN2-Assignment 2-123.csv"
    rows = [
        ["Participant 101", "김민지", "2020-12345", "minji@example.com", "Submitted for grading", "", "50.00", "Yes",
         "Tuesday, 2 December 2025, 1:13 AM", "-", ""],
        ["Participant 102", "Park Jiwoo", "2020-23456", "jiwoo@example.com", "Submitted for grading", "", "50.00",
         "Yes", "Monday, 1 December 2025, 11:50 PM", "-", ""],
        ["Participant 103", "최유나", "2020-34567", "yuna@example.com", "Submitted for grading", "", "50.00", "Yes",
         "Monday, 1 December 2025, 10:00 PM", "-", ""],
        ["Participant 104", "이서연", "2021-33333", "seoyeon@example.com", "Submitted for grading", "", "50.00", "Yes",
         "Monday, 1 December 2025, 09:00 PM", "-", ""],
        ["Participant 105", "정하늘", "2021-55555", "haneul@example.com", "No submission", "", "50.00", "Yes", "-", "-",
         ""],
        ["Participant 106", "Lee Flat", "2021-66666", "flat@example.com", "Submitted for grading", "", "50.00", "Yes",
         "Wednesday, 3 December 2025, 12:05 AM", "-", ""],
    ]
    with open(worksheet, "w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return download, worksheet, zips


def test_read_worksheet_keeps_moodle_columns(moodle):
    sheet = lms.read_worksheet(moodle[1])
    assert sheet.columns == HEADER and set(lms.WORKSHEET_COLUMNS) == set(HEADER)
    first = sheet.by_participant()["101"]
    assert (first.full_name, first.id_number, first.values[lms.GRADE]) == ("김민지", "2020-12345", "")
    seoul = late.zone("Asia/Seoul")
    assert lms.parse_moodle_time(first.last_modified_submission, seoul).isoformat() == "2025-12-02T01:13:00+09:00"
    assert lms.parse_moodle_time("-", seoul) is None


def test_import_copies_each_zip_and_writes_submission_times(moodle, tmp_path):
    download, worksheet, zips = moodle
    out = tmp_path / "course" / "submissions"
    child = subprocess.run([sys.executable, "-m", "instructor.lms", "import-moodle", str(download), "--worksheet",
                            str(worksheet), "--out", str(out), "--timezone", "Asia/Seoul"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [zips["김민지"].name, zips["Park Jiwoo"].name, "Lee Flat_2021-66666_Assignment2.zip"])
    for who in ("김민지", "Park Jiwoo"):  # copied byte for byte
        assert hashlib.sha256((out / zips[who].name).read_bytes()).digest() == \
            hashlib.sha256(zips[who].read_bytes()).digest()
    with open(tmp_path / "course" / "submission_times.csv", encoding="utf-8", newline="") as handle:
        times = {row["student_number"]: row for row in csv.DictReader(handle)}
    assert times["2020-12345"] == {"student_number": "2020-12345", "name": "김민지",
                                   "submitted_at": "2025-12-02T01:13:00+09:00"}
    assert times["2020-23456"]["submitted_at"] == "2025-12-01T23:50:00+09:00"
    assert set(times) == {"2020-12345", "2020-23456", "2021-66666"}
    with open(tmp_path / "course" / "moodle_import.csv", encoding="utf-8", newline="") as handle:
        report = {row["participant"]: row for row in csv.DictReader(handle)}
    assert report["103"]["status"] == "refused" and "no zip in the submission (found maml.py)" in report["103"]["reason"]
    assert report["104"]["status"] == "refused" and "2 zips in the submission" in report["104"]["reason"]
    assert report["105"]["status"] == "missing" and "No submission" in report["105"]["reason"]
    assert "3 imported, 2 refused, 1 missing" in child.stdout and "최유나" in child.stdout
    # the times feed the late penalties directly
    assert late.read_times(tmp_path / "course" / "submission_times.csv")[0][2].utcoffset().total_seconds() == 9 * 3600


def test_bad_exports_are_refused_with_the_fix(moodle, tmp_path):
    download, worksheet, _ = moodle
    not_sheet = tmp_path / "gradebook.csv"
    not_sheet.write_text("name,score\nKim,3\n", encoding="utf-8")
    with pytest.raises(lms.LmsError, match="not a Moodle grading worksheet: no column 'Identifier'"):
        lms.read_worksheet(not_sheet)
    with pytest.raises(lms.LmsError, match="is not in Moodle's format"):
        lms.parse_moodle_time("2025년 12월 1일", late.zone("Asia/Seoul"))
    child = subprocess.run([sys.executable, "-m", "instructor.lms", "import-moodle", str(worksheet), "--worksheet",
                            str(worksheet), "--out", str(tmp_path / "s"), "--timezone", "Asia/Seoul"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == 2 and "is not a zip" in child.stderr
