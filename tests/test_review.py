"""cqia review: the index, sampling, the decisions file, --report, --apply, and the interface
(Textual's headless pilot, a real process under a pseudo-terminal killed with -9, and tmux)."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import os
import sqlite3
import sys

import orjson
import pytest

from cqia_cli.io import RecordReader, read_records
from cqia_cli.review.index import LineIndex, sha256_of
from cqia_cli.review.report import cohen_kappa, wilson
from cqia_cli.review.sample import Plan, permutation, queue_for, sample_order
from cqia_cli.review.session import Session

from conftest import cqia_record, invoke, write_jsonl


def _file(tmp_path, n=10, name="data.jsonl", **extra) -> str:
    recs = [cqia_record(i, **{k: (v(i) if callable(v) else v) for k, v in extra.items()})
            for i in range(n)]
    return str(write_jsonl(tmp_path / name, recs))


def _session(path, reviewer="ann", plan=None, decisions=None, **kw) -> Session:
    return Session(path, decisions or path + ".review.sqlite", reviewer, plan,
                   background_hash=False, **kw)


# -- the index ----------------------------------------------------------------------------


def test_index_numbers_lines_as_the_reader_does(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\n   \n{"a": 2}\n \t\r\n{"a": "\xe4\xb8\xad"}\n'
                     b'{"a": 4}')  # BOM, CRLF, blank and whitespace lines, no final newline
    index = LineIndex(str(path))
    reader_lines = []
    rr = RecordReader([str(path)])
    for rec in rr:
        reader_lines.append((rr.lineno, rec))
    assert [index.line_of(i) for i in range(len(index))] == [ln for ln, _ in reader_lines]
    assert [index.record(i) for i in range(len(index))] == [r for _, r in reader_lines]
    assert index.position_of_line(4) == 1 and index.position_of_line(2) is None
    index.close()


def test_index_of_empty_file_and_bad_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert len(LineIndex(str(empty))) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"a": 1}\n[1, 2]\n')
    index = LineIndex(str(bad))
    assert len(index) == 2  # a bad line is a position the reviewer sees (and can reject)
    from cqia_cli.status import DataError

    with pytest.raises(DataError, match=r"bad.jsonl:2: not a JSON object"):
        index.record(1)


def test_index_refuses_compressed_input_with_a_hint(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n'))
    res = invoke(["review", str(path)])
    assert res.exit_code == 2, res
    assert "cannot be reviewed in place" in res.stderr and "gzip -dk" in res.stderr


def test_sha256_is_of_the_uncompressed_bytes(tmp_path):
    plain = tmp_path / "d.jsonl"
    plain.write_bytes(b'{"a": 1}\n' * 100)
    packed = tmp_path / "d.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    import hashlib

    assert sha256_of(str(plain)) == sha256_of(str(packed)) == \
        hashlib.sha256(plain.read_bytes()).hexdigest()


# -- sampling -----------------------------------------------------------------------------


def test_sample_is_deterministic_and_seeded():
    a = sample_order(1000, Plan(50, 7))
    assert list(a) == list(sample_order(1000, Plan(50, 7)))
    assert len(set(a.tolist())) == 50
    assert list(a) != list(sample_order(1000, Plan(50, 8)))
    # a larger sample starts with the smaller one: reading on extends the same sample
    assert list(sample_order(1000, Plan(80, 7))[:50]) == list(a)
    assert sorted(permutation(100, 3).tolist()) == list(range(100))
    assert permutation(1000, 7, 50).tolist() == permutation(1000, 7)[:50].tolist()
    assert len(sample_order(10, Plan(50, 7))) == 10


def test_overlap_deals_the_sample_to_two_reviewers():
    plan = Plan(100, 1, 20.0, ("ann", "bo"))
    ann, bo = queue_for(1000, plan, "ann"), queue_for(1000, plan, "bo")
    both = set(ann.tolist()) & set(bo.tolist())
    assert len(both) == 20
    assert set(ann.tolist()) | set(bo.tolist()) == set(sample_order(1000, plan).tolist())
    assert len(ann) == len(bo) == 60
    with pytest.raises(ValueError):
        queue_for(1000, plan, "cy")


# -- the decisions file -------------------------------------------------------------------


def test_every_decision_is_committed_at_once_and_undo_restores(tmp_path):
    path = _file(tmp_path)
    s = _session(path)
    s.decide("accept")
    other = sqlite3.connect(s.store.path)  # another process's view: committed already
    assert other.execute("SELECT status FROM decisions").fetchall() == [("accept",)]
    assert s.store.get_meta("sha256") == sha256_of(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.goto(0)
    s.decide("reject", "wrong")
    assert s.view(0).decision.status == "reject"
    s.undo()
    assert s.position == 0 and s.view().decision.status == "accept"
    s.undo()
    assert s.view().decision is None
    assert s.undo() is None
    log = other.execute("SELECT action, undone FROM log ORDER BY id").fetchall()
    assert log == [("accept", 1), ("reject", 1)]  # the audit trail keeps what was undone
    other.close()
    s.close()


def test_reopen_resumes_at_first_undecided_and_refuses_another_plan(tmp_path):
    path = _file(tmp_path)
    s = _session(path)
    for _ in range(3):
        s.decide("accept")
        s.move(1)
    s.close()
    s = _session(path)
    assert s.position == 3
    s.close()
    from cqia_cli.status import CqiaError

    with pytest.raises(CqiaError, match="started with every record"):
        _session(path, plan=Plan(5, 1))


def test_decisions_refuse_a_different_file_unless_forced(tmp_path):
    path = _file(tmp_path)
    s = _session(path)
    s.decide("accept")
    s.close()
    changed = write_jsonl(tmp_path / "data.jsonl",
                          [cqia_record(i + 100) for i in range(10)])
    res = invoke(["review", "--apply", str(changed)])
    assert res.exit_code == 65, res
    assert "these decisions were made on data.jsonl" in res.stderr
    assert "--force" in res.stderr and res.stdout == ""
    res = invoke(["review", "--apply", "--force", str(changed)])
    assert res.exit_code == 0, res
    assert "used anyway (--force)" in res.stderr
    assert res.records()[0]["human_verified"] is True
    res = invoke(["review", "--report", str(changed)])
    assert res.exit_code == 65


# -- the report ---------------------------------------------------------------------------


def test_wilson_and_kappa_computed_by_hand():
    # 17 of 20: p = .85, z^2/n = .19207; centre (.85 + .09604) / 1.19207 = .79361;
    # half 1.95996 / 1.19207 * sqrt(.85 * .15 / 20 + 3.84146 / 1600) = .15403
    lo, hi = wilson(17, 20)
    assert lo == pytest.approx(0.6396, abs=1e-4) and hi == pytest.approx(0.9476, abs=1e-4)
    assert wilson(0, 0) is None
    assert wilson(10, 10)[1] == 1.0
    # A/B: 4 both accept, 1 A only, 2 B only, 3 both reject: po .7, pe .5*.6 + .5*.4 = .5
    pairs = [(True, True)] * 4 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 3
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([(True, True)] * 3) is None  # chance agreement 1: undefined
    assert cohen_kappa([]) is None


def test_report_figures_on_a_fixture(tmp_path):
    # 40 records; ann decides 20 (17 accepted); bo decides the first 10 of them too
    path = _file(tmp_path, 40, _score=lambda i: 9 if i % 2 == 0 else 5,
                 _reject=lambda i: i in (0, 1))
    s = _session(path, reviewer="ann", plan=Plan(20, 3))
    order = [int(s.index.line_of(int(i))) for i in s.queue]
    ann = {}
    for k in range(20):
        ann[order[k]] = "reject" if k in (2, 5, 9) else "accept"
        s.decide(ann[order[k]], "wrong" if k in (2, 5) else ("off-topic" if k == 9 else None))
        s.move(1)
    s.close()
    bo = _session(path, reviewer="bo")
    # bo's ten: agrees on k 0-6, rejects k 7 and 8 (ann accepted), accepts k 9 (ann rejected)
    for k in range(10):
        bo.goto_line(order[k])
        bo.decide("reject" if k in (2, 5, 7, 8) else "accept",
                  "wrong" if k in (2, 5) else "x" if k in (7, 8) else None)
    bo.close()
    res = invoke(["review", "--report", "--json", path])
    assert res.exit_code == 0, res
    rep = orjson.loads(res.stdout)
    # resolved: the later decision wins, bo's 10 decisions came last: k 7, 8 rejected, k 9
    # accepted: rejected are k 2, 5, 7, 8 -> 16 of 20 accepted
    assert (rep["accepted"], rep["rejected"], rep["decided"]) == (16, 4, 20)
    lo, hi = wilson(16, 20)
    assert rep["acceptance"]["rate"] == 0.8
    assert rep["acceptance"]["low"] == pytest.approx(lo) and lo == pytest.approx(0.5840, abs=1e-4)
    assert rep["acceptance"]["high"] == pytest.approx(0.9193, abs=1e-4)
    assert rep["acceptance"]["good_records_low"] == 23  # floor(40 * .5840)
    assert rep["acceptance"]["good_records_high"] == 37  # ceil(40 * .9193)
    assert rep["reasons"] == {"wrong": 2, "x": 2}
    # overlap: ann (A) vs bo (B) on 10: agree on 7; A accepts 7/10 (k 2,5,9 rejected),
    # B accepts 6/10; po .7, pe .7*.6 + .3*.4 = .54, kappa .16/.46
    assert rep["overlap"]["records"] == 10 and rep["overlap"]["agree"] == 7
    assert rep["overlap"]["kappa"] == pytest.approx(0.16 / 0.46)
    only_ann = orjson.loads(invoke(["review", "--report", "--json", "--reviewer", "ann",
                                    path]).stdout)
    assert (only_ann["accepted"], only_ann["rejected"], only_ann["overlap"]) == (17, 3, None)
    applied = invoke(["review", "--apply", "--only-decided", "--reviewer", "bo", path])
    assert len(applied.records()) == 6 and "accepted 6" in applied.stderr
    text = invoke(["review", "--report", path]).stdout
    assert "80.0% of the decided records; 95% interval (Wilson) 58.4% to 91.9%" in text
    assert "about 23 to 37 of 40 records good" in text
    assert "agree on 7, Cohen's kappa 0.348" in text
    assert rep["score_agreement"]["records"] == 20 and rep["reject_agreement"] is not None


# -- --apply ------------------------------------------------------------------------------


def _decide(path, plan=None, actions=()):
    s = _session(path, plan=plan)
    for act in actions:
        if act[0] == "edit":
            s.edit(act[1], act[2])
        else:
            s.decide(act[0], act[1] if len(act) > 1 else None)
            s.move(1)
    s.close()


def test_apply_accounts_for_every_record_in_order(tmp_path):
    path = _file(tmp_path, 6)
    _decide(path, actions=[("accept",), ("reject", "wrong"), ("edit", "output", "新答案"),
                           ("accept",), ("skip",)])
    rejects = tmp_path / "rejects.jsonl"
    res = invoke(["review", "--apply", path, "--rejects", rejects])
    assert res.exit_code == 0, res
    out = res.records()
    rej = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    src = list(read_records([path]))
    assert len(out) + len(rej) == len(src) == 6
    assert [r["instruction"] for r in out] == [src[i]["instruction"] for i in (0, 2, 3, 4, 5)]
    assert out[0]["human_verified"] is True and out[0]["_review"]["decision"] == "accept"
    assert out[1]["output"] == "新答案"
    assert out[1]["_review"]["original"] == {"output": src[2]["output"]}
    assert "_review" not in out[2] and out[2] == src[3]  # skipped: undecided, unchanged
    assert rej[0]["_review"]["reason"] == "wrong" and rej[0]["_review"]["reviewer"] == "ann"
    assert {k: v for k, v in rej[0].items() if k != "_review"} == src[1]
    assert "accepted 2 (1 edited), rejected 1" in res.stderr and "undecided 3" in res.stderr
    only = invoke(["review", "--apply", "--only-decided", "--mark", path])
    assert [r["_review"]["decision"] for r in only.records()] == ["accept", "reject", "accept"]
    assert only.records()[1]["human_verified"] is False


def test_apply_from_stdin_and_compressed(tmp_path):
    path = _file(tmp_path, 4)
    _decide(path, actions=[("reject", "wrong")])
    dec = path + ".review.sqlite"
    data = open(path, "rb").read()
    res = invoke(["review", "--apply", "--decisions", dec], input=data)
    assert res.exit_code == 0, res
    assert len(res.records()) == 3
    gz = tmp_path / "data.jsonl.gz"
    gz.write_bytes(gzip.compress(data))
    res = invoke(["review", "--apply", "--decisions", dec, str(gz)])
    assert res.exit_code == 0 and len(res.records()) == 3
    res = invoke(["review", "--apply", "--decisions", dec], input=data.replace(b"0", b"9"))
    assert res.exit_code == 65 and "not on <stdin>" in res.stderr and res.stdout == ""
    assert invoke(["review", "--apply"], input=data).exit_code == 2


def test_apply_without_decisions_passes_through(tmp_path):
    path = _file(tmp_path, 3)
    res = invoke(["review", "--apply", path])
    assert res.exit_code == 0
    assert res.stdout_bytes == open(path, "rb").read().replace(b", ", b",").replace(b": ", b":")
    assert "no decisions file" in res.stderr


def test_usage_errors(tmp_path):
    path = _file(tmp_path, 3)
    assert invoke(["review", "--report", "--apply", path]).exit_code == 2
    assert invoke(["review", "--json", path]).exit_code == 2
    assert invoke(["review", "--rejects", "x", path]).exit_code == 2
    res = invoke(["review", path])  # CliRunner: no terminal
    assert res.exit_code == 2 and "needs a terminal" in res.stderr
    res = invoke(["review", "--report", str(tmp_path / "nothing.jsonl")])
    assert res.exit_code == 66
    res = invoke(["review", "--report", path])  # no review started: no decisions file
    assert res.exit_code == 66 and "data.jsonl.review.sqlite: no such decisions file" in res.stderr
    res = invoke(["review", "--apply", "--decisions", str(tmp_path / "typo.sqlite"), path])
    assert res.exit_code == 66 and "typo.sqlite: no such decisions file" in res.stderr
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    res = invoke(["review", "--report", "--decisions", str(junk), path])
    assert res.exit_code == 65 and "not a cqia decisions file" in res.stderr


def test_missing_textual_is_one_clear_line(tmp_path, monkeypatch):
    path = _file(tmp_path, 3)
    for name in [m for m in sys.modules if m.startswith("textual.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "textual", None)
    monkeypatch.delitem(sys.modules, "cqia_cli.review.app", raising=False)
    res = invoke(["review", path])
    assert res.exit_code == 2
    assert res.stderr == ("cqia review: the interface needs the optional textual package: "
                          "pip install 'cqia[review]'\n")


# -- the interface: Textual's headless pilot ----------------------------------------------

needs_textual = pytest.mark.skipif(importlib.util.find_spec("textual") is None,
                                   reason="the optional textual package is not installed")


def _run(session, script, reasons=("off-topic", "wrong", "incomplete")):
    from cqia_cli.review.app import ReviewApp

    app = ReviewApp(session, reasons=reasons)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await script(app, pilot)

    asyncio.run(go())
    return app


@pytest.mark.slow
@needs_textual
def test_pilot_accept_reject_edit_undo_skip_search_goto_quit(tmp_path):
    path = _file(tmp_path, 8)
    s = _session(path)

    async def script(app, pilot):
        await pilot.press("a")  # 1 accepted
        await pilot.press("r", "2")  # 2 rejected: wrong (picked)
        await pilot.press("r", *"太短", "enter")  # 3 rejected: typed reason
        await pilot.press("e", "enter")  # 4: edit the output (the default field)
        await pilot.pause()
        app.screen.query_one("TextArea").text = "改写后的回答"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert s.view().decision.status == "edit"
        assert "改写后的回答" in str(app.query_one("#record").render())
        await pilot.press("a")  # 4 accepted with the edit
        await pilot.press("s")  # 5 skipped
        await pilot.press("u")  # undo the skip: back on 5, undecided
        assert s.position == 4 and s.view().decision is None
        await pilot.press("slash", *"第7个", "enter")
        await pilot.pause()
        assert s.position == 7
        await pilot.press("g", "2", "enter")
        await pilot.pause()
        assert s.position == 1 and "wrong" in str(app.query_one("#status").render())
        await pilot.press("g", *":3", "enter")  # a line of the file
        await pilot.pause()
        assert s.position == 2
        await pilot.press("g", *"99", "enter")  # out of range: says so, stays
        await pilot.pause()
        assert s.position == 2 and "no record 99" in str(app.query_one("#top").render())
        await pilot.press("g", "2", "enter")
        await pilot.pause()
        await pilot.press("k", "k", "j")
        assert s.position == 1
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("x")
        await pilot.press("q")

    app = _run(s, script)
    assert app.return_code in (0, None)
    got = {d.line: (d.status, d.reason, d.edits) for d in s.store.decisions("ann")}
    counted, left = s.counts(), s.left()
    s._refresh_counts()  # the counts kept in memory are those of the file
    assert (counted, left) == (s.counts(), s.left()) == (
        {"accept": 2, "reject": 2, "skip": 0, "edit": 0}, 4)
    assert got == {1: ("accept", None, {}), 2: ("reject", "wrong", {}),
                   3: ("reject", "太短", {}), 4: ("accept", None, {"output": "改写后的回答"})}
    s.close()
    s = _session(path)  # reopen: resumes at the first undecided record
    assert s.position == 4
    s.close()


@needs_textual
def test_pilot_side_line_shows_earlier_stages(tmp_path):
    path = _file(tmp_path, 2, _score=8.5, _score_reason="切题", _reject={"rule": "length"},
                 _dup_of=7, _source="ruozhiba")
    s = _session(path)

    async def script(app, pilot):
        side = str(app.query_one("#side").render())
        for text in ("_score 8.5", "切题", "_reject rule=length", "_dup_of 7",
                     "_source ruozhiba", "task_type 问答 / 成语释义", "domain 通用"):
            assert text in side, side
        await pilot.press("r", "escape")  # cancel: nothing decided
        assert s.view().decision is None
        await pilot.press("a")
        await pilot.press("a")
        # the end of the queue: stays on the last record, and says so
        assert s.position == 1
        assert "every record of this review is decided" in str(app.query_one("#top").render())
        await pilot.press("q")

    _run(s, script)
    assert s.counts()["accept"] == 2
    s.close()


@needs_textual
def test_editor_key_edits_through_editor(tmp_path, monkeypatch):
    path = _file(tmp_path, 2)
    s = _session(path)
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nprintf '外部编辑器写的\\n' > \"$1\"\n")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    from cqia_cli.review import app as appmod
    from contextlib import nullcontext

    monkeypatch.setattr(appmod.ReviewApp, "suspend", lambda self: nullcontext())

    async def script(app, pilot):
        await pilot.press("E", "enter")
        await pilot.pause()
        await pilot.press("q")

    _run(s, script)
    assert s.view(0).decision.edits == {"output": "外部编辑器写的"}
    s.close()


# -- a real process: kill -9 under a pseudo-terminal, and tmux ----------------------------


def _decision_count(db: str) -> int:
    if not os.path.exists(db):
        return 0
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM decisions").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0
    finally:
        con.close()


def _wait(cond, timeout=20.0, what="condition"):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@needs_textual
def test_kill_9_mid_session_loses_at_most_one_decision(tmp_path):
    import pty
    import signal
    import threading

    from conftest import cqia_executable

    exe = cqia_executable()
    path = _file(tmp_path, 20)
    db = path + ".review.sqlite"
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of 100x30 running the real command
        os.environ["TERM"] = "xterm-256color"
        os.execvp("bash", ["bash", "-c", f"stty cols 100 rows 30; exec {exe} review "
                           f"--reviewer ann {path}"])
    screen = bytearray()

    def drain():
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        _wait(lambda: b"accept" in screen, what="the interface")
        for k in range(1, 6):  # five decisions, each seen committed before the next key
            os.write(fd, b"a")
            _wait(lambda: _decision_count(db) == k, what=f"decision {k}")
        os.write(fd, b"a")  # one more, and the kill right behind it
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    got = _decision_count(db)
    assert got in (5, 6)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    s = _session(path)
    assert s.position == got  # resumes at the first undecided record
    s.close()


@pytest.mark.slow
@needs_textual
@pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="tmux is not installed")
def test_tmux_smoke(tmp_path):
    import subprocess
    import time

    from conftest import cqia_executable

    exe = cqia_executable()
    path = _file(tmp_path, 5, _score=9, _source="ruozhiba")
    sock = f"cqia-test-{os.getpid()}"
    tmux = ["tmux", "-L", sock]

    def pane() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", "t"], capture_output=True,
                              text=True).stdout

    subprocess.run(tmux + ["new-session", "-d", "-s", "t", "-x", "100", "-y", "30",
                           f"TERM=xterm-256color {exe} review --reviewer ann {path}; "
                           "echo EXIT=$?; sleep 30"], check=True)
    try:
        _wait(lambda: "accept" in pane(), what="the interface in tmux")
        screen = pane()
        assert "1/5 (line 1)" in screen and "请解释一下第0个成语的意思。" in screen
        assert "_score 9" in screen and "_source ruozhiba" in screen
        subprocess.run(tmux + ["send-keys", "-t", "t", "a"], check=True)
        _wait(lambda: "2/5 (line 2)" in pane(), what="the next record")
        subprocess.run(tmux + ["send-keys", "-t", "t", "r"], check=True)
        _wait(lambda: "Reject" in pane(), what="the reasons")
        subprocess.run(tmux + ["send-keys", "-t", "t", "2"], check=True)
        _wait(lambda: "✓1 ✗1" in pane(), what="the counts")
        subprocess.run(tmux + ["send-keys", "-t", "t", "q"], check=True)
        _wait(lambda: "EXIT=0" in pane(), what="the exit")
        assert "review: ann: +2 decisions this session; 3 of 5 left" in pane()
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        time.sleep(0.1)
    assert _decision_count(path + ".review.sqlite") == 2


@needs_textual
def test_pilot_ctrl_c_ends_with_130_and_keeps_decisions(tmp_path):
    path = _file(tmp_path, 3)
    s = _session(path)

    async def script(app, pilot):
        await pilot.press("a", "ctrl+c")

    app = _run(s, script)
    assert app.return_code == 130
    assert s.counts()["accept"] == 1
    s.close()


@needs_textual
def test_pilot_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n")
    s = _session(str(path))

    async def script(app, pilot):
        assert "no records" in str(app.query_one("#top").render())
        await pilot.press("a", "r", "e", "s", "u", "j", "g")
        await pilot.pause()
        await pilot.press("escape", "q")

    _run(s, script)
    assert s.counts()["accept"] == 0
    s.close()


@needs_textual
def test_chinese_is_wrapped_by_display_width(tmp_path):
    from rich.cells import cell_len
    from rich.console import Console

    from cqia_cli.review.app import ReviewApp

    text = "这是一个很长的中文回答，用来检查换行是否按照显示宽度计算。" * 6 + "English words too."
    path = _file(tmp_path, 1, output=text)
    s = _session(path)
    body = ReviewApp(s).render_record(s.view())
    console = Console(width=37, record=True, file=open(os.devnull, "w"))
    lines = ["".join(seg.text for seg in line) for line in console.render_lines(body, pad=False)]
    assert all(cell_len(line) <= 37 for line in lines)
    assert any(cell_len(line) >= 35 for line in lines)  # filled, not cut at 37 characters
    # nothing lost or split (a wrap at a space drops the space)
    assert text.replace(" ", "") in "".join(lines).replace(" ", "")
    s.close()


@pytest.mark.slow
def test_two_reviewers_write_one_decisions_file_at_once(tmp_path):
    """Two processes (WAL, one transaction per decision) deciding at the same time."""
    import subprocess

    path = _file(tmp_path, 60)
    db = path + ".review.sqlite"
    _session(path).close()  # the file and its sha256 first
    code = ("import sys\nfrom cqia_cli.review.session import Session\n"
            "s = Session(sys.argv[1], sys.argv[2], sys.argv[3], None)\n"
            "for _ in range(len(s)):\n"
            "    s.decide('accept' if s.position % 3 else 'reject', 'wrong')\n"
            "    s.move(1)\n"
            "s.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, path, db, who])
             for who in ("ann", "bo")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    con = sqlite3.connect(db)
    assert con.execute("SELECT reviewer, count(*) FROM decisions GROUP BY reviewer "
                       "ORDER BY reviewer").fetchall() == [("ann", 60), ("bo", 60)]
    assert con.execute("SELECT count(*) FROM log").fetchone()[0] == 120
    con.close()
    rep = orjson.loads(invoke(["review", "--report", "--json", path]).stdout)
    assert rep["overlap"] == {"records": 60, "agree": 60, "kappa": 1.0}


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["accept", "reject", "skip", "edit", "none", "undo"]),
                min_size=1, max_size=12),
       st.booleans())
@pytest.mark.slow
def test_apply_accounting_property(tmp_path_factory, actions, with_blank_lines):
    """Whatever was decided: accepted + rejected + undecided = input, in input order."""
    tmp = tmp_path_factory.mktemp("prop")
    recs = [cqia_record(i) for i in range(len(actions))]
    path = tmp / "d.jsonl"
    with open(path, "wb") as f:
        for r in recs:
            f.write(orjson.dumps(r) + b"\n" + (b"\n" if with_blank_lines else b""))
    s = _session(str(path))
    for act in actions:
        if act == "edit":
            s.edit("output", "改")
        elif act == "undo":
            s.undo()
        elif act != "none":
            s.decide(act, "r")
        s.move(1)
    s.close()
    rejects = tmp / "rej.jsonl"
    res = invoke(["review", "--apply", str(path), "--rejects", rejects])
    assert res.exit_code == 0, res
    out = res.records()
    rej = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert len(out) + len(rej) == len(recs)
    strip = lambda r: {k: v for k, v in r.items()  # noqa: E731
                       if k not in ("_review", "human_verified", "output")}
    merged = sorted(out + rej, key=lambda r: r["instruction"])
    assert [strip(r) for r in merged] == sorted(map(strip, recs), key=lambda r: r["instruction"])
    # each stream keeps the input order
    order = {r["instruction"]: i for i, r in enumerate(recs)}
    for stream in (out, rej):
        idx = [order[r["instruction"]] for r in stream]
        assert idx == sorted(idx)
    assert all(r["_review"]["decision"] == "reject" for r in rej)
    assert all(r.get("human_verified") is True for r in out if "_review" in r)
