"""The review interface (Textual): one record at a time, every key a committed decision.

Imported only by `cqia review` without --apply/--report; needs the optional extra
`cqia[review]`. All state lives in a `Session` (index + decisions file); this is a view.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile

from rich.markup import escape
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from cqia_cli.fields import as_text
from cqia_cli.review.session import BODY_FIELDS, SIDE_FIELDS, Session, editable_fields

LABELS = {"instruction": "instruction 指令", "input": "input 输入", "output": "output 输出"}
STATUS = {
    "accept": ("✓ accepted", "bold green"),
    "reject": ("✗ rejected", "bold red"),
    "skip": ("→ skipped", "yellow"),
    "edit": ("✎ edited, not decided yet (a to accept)", "bold cyan"),
}

HELP = """\
[b]cqia review[/b]: one record at a time; every decision is saved at once.

  [b]a[/b]          accept the record (with its edits) and go on
  [b]r[/b]          reject: pick a reason (1-9, arrows + Enter) or type one
  [b]e[/b]          edit a field here (Ctrl+S saves, Esc cancels)
  [b]E[/b]          edit a field in $EDITOR
  [b]s[/b]          skip: decide later (the report leaves it out)
  [b]u[/b]          undo your last action, wherever it was
  [b]j[/b] / [b]↓[/b]      next record          [b]k[/b] / [b]↑[/b]   previous record
  [b]PgDn[/b] [b]PgUp[/b]  scroll a long record
  [b]/[/b]          search (text as typed, in any field)     [b]n[/b]  next match
  [b]g[/b]          go to record number N (or :LINE for a line of the file)
  [b]q[/b]          quit (nothing to save: it is saved already)

Any key closes this help."""


def side_line(record: dict | None) -> Text:
    """What earlier stages left on the record: one line, the fields that are present."""
    text = Text()
    if record is None:
        return text
    keys = [k for k in SIDE_FIELDS if k in record]
    # what score left besides _score (its --reason-into field, a spread, ...)
    extra = [k for k in record if k.startswith("_score") and k not in keys]
    if "_score" in keys:
        at = keys.index("_score") + 1
        keys[at:at] = extra
    else:
        keys = extra + keys
    for key in keys:
        value = record[key]
        if key in ("task_type",) and isinstance(value, dict):
            shown = " / ".join(as_text(v).replace("\n", ",") for v in value.values() if v)
        elif isinstance(value, dict):
            shown = ", ".join(f"{k}={as_text(v)}" for k, v in value.items())
        else:
            shown = as_text(value).replace("\n", ",")
        if len(shown) > 80:
            shown = shown[:79] + "…"
        if text:
            text.append("  │  ", style="dim")
        text.append(f"{key} ", style="bold magenta" if key == "_reject" else "bold")
        text.append(shown)
    return text


class ReasonScreen(ModalScreen[str | None]):
    """Pick a rejection reason, or type one."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, reasons) -> None:
        super().__init__()
        self.reasons = list(reasons)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]Reject[/b]: why? (1-9, or arrows and Enter; or type below)")
            yield OptionList(*[Option(f"{i}  {r}", id=str(i)) for i, r in
                               enumerate(self.reasons, 1)], id="reasons")
            yield Input(placeholder="another reason, then Enter", id="typed", select_on_focus=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_key(self, event) -> None:
        if self.focused is self.query_one(OptionList) and event.character and \
                event.character.isdigit():
            k = int(event.character)
            if 1 <= k <= len(self.reasons):
                event.stop()
                self.dismiss(self.reasons[k - 1])
            return
        if self.focused is self.query_one(OptionList) and event.character and \
                event.character.isprintable() and event.key not in ("enter", "space"):
            box = self.query_one(Input)
            box.focus()
            box.insert_text_at_cursor(event.character)
            event.stop()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.reasons[event.option_index])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value:
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FieldScreen(ModalScreen[str | None]):
    """Pick the field to edit."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, names, title: str) -> None:
        super().__init__()
        self.names = list(names)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text)
            yield OptionList(*[Option(n) for n in self.names], id="fields")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = self.names.index("output") if "output" in self.names else 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.names[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class EditScreen(ModalScreen[str | None]):
    """Edit one field's text in place."""

    BINDINGS = [Binding("ctrl+s", "save", "save", priority=True),
                Binding("escape", "cancel", "cancel")]

    def __init__(self, field: str, text: str) -> None:
        super().__init__()
        self.field = field
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="editor"):
            yield Static(f"[b]Edit {escape(self.field)}[/b]   Ctrl+S save · Esc cancel")
            yield TextArea(self.text, soft_wrap=True, id="area")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskScreen(ModalScreen[str | None]):
    """One line of input: a search text or a record number."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, prompt: str, value: str = "") -> None:
        super().__init__()
        self.prompt = prompt
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.prompt)
            yield Input(value=self.value, id="ask")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(HELP)

    def on_key(self, event) -> None:
        event.stop()
        self.dismiss(None)


class ReviewApp(App):
    TITLE = "cqia review"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #top { height: 1; background: $primary; color: $text; padding: 0 1; }
    #side { height: auto; max-height: 3; background: $panel; padding: 0 1; }
    #status { height: 1; padding: 0 1; }
    #body { padding: 0 1; }
    #record { width: 100%; }
    #dialog { width: 70; height: auto; max-height: 20; border: thick $accent;
              background: $surface; padding: 0 1; }
    #reasons, #fields { height: auto; max-height: 12; }
    #editor { width: 90%; height: 80%; border: thick $accent; background: $surface; }
    #area { height: 1fr; }
    #help { width: 80; height: auto; border: thick $accent; background: $surface;
            padding: 0 1; }
    ReasonScreen, FieldScreen, EditScreen, AskScreen, HelpScreen { align: center middle; }
    """
    BINDINGS = [
        Binding("a", "decide('accept')", "accept"),
        Binding("r", "reject", "reject"),
        Binding("e", "edit", "edit"),
        Binding("E", "editor", "$EDITOR", show=False),
        Binding("s", "decide('skip')", "skip"),
        Binding("u", "undo", "undo"),
        Binding("j,down", "move(1)", "next"),
        Binding("k,up", "move(-1)", "prev"),
        Binding("pagedown", "scroll(1)", show=False),
        Binding("pageup", "scroll(-1)", show=False),
        Binding("slash", "search", "search"),
        Binding("n", "search_next", "next match", show=False),
        Binding("g", "goto", "go to"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "interrupt", show=False),
    ]

    def __init__(self, session: Session, *, reasons=()) -> None:
        super().__init__()
        self.session = session
        self.reasons = list(reasons)
        self.last_search = ""
        self.message = ""

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="top")
        yield Static(id="side")
        yield Static(id="status")
        with VerticalScroll(id="body"):
            yield Static(id="record")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        s = self.session
        view = s.view()
        c = s.counts()
        top = Text()
        top.append("cqia review ", style="bold")
        top.append(os.path.basename(s.path))
        if view is None:
            top.append("  (no records)")
            self.query_one("#top", Static).update(top)
            self.query_one("#record", Static).update("This file has no records to review.")
            return
        top.append(f"  {view.position + 1:,}/{len(s):,}", style="bold")
        top.append(f" (line {view.line:,})  {s.reviewer}  ")
        top.append(f"✓{c['accept']:,} ✗{c['reject']:,} →{c['skip']:,}  {s.left():,} left")
        if self.message:
            top.append(f"  {self.message}", style="italic")
        self.query_one("#top", Static).update(top)
        self.query_one("#side", Static).update(side_line(view.record))
        status = Text()
        d = view.decision
        if d is None:
            status.append("· undecided", style="dim")
        else:
            label, style = STATUS[d.status]
            status.append(label, style=style)
            if d.status == "reject" and d.reason:
                status.append(f": {d.reason}", style=style)
            status.append(f"  by {d.reviewer} at {d.time[11:16]} UTC", style="dim")
            if d.edits and d.status != "edit":
                status.append(f"  (edited: {', '.join(d.edits)})", style="cyan")
        self.query_one("#status", Static).update(status)
        self.query_one("#record", Static).update(self.render_record(view))
        self.query_one("#body", VerticalScroll).scroll_home(animate=False)

    def render_record(self, view) -> Text:
        body = Text()
        if view.record is None:
            body.append(f"This line is not a record: {view.problem}\n", style="bold red")
            body.append("Reject or skip it; --apply reports it under --on-error.")
            return body
        rec = view.record
        names = [f for f in BODY_FIELDS if f in rec]
        for name in names:
            edited = name in view.original
            body.append(LABELS.get(name, name), style="bold underline")
            if edited:
                body.append("  (edited)", style="bold cyan")
            body.append("\n")
            value = as_text(rec.get(name))
            body.append((value if value else "(empty)") + "\n\n",
                        style="" if value else "dim")
        for name in editable_fields(rec):
            if name not in names and name in rec and isinstance(rec[name], str) \
                    and name not in ("metadata", "copyright", "answer_from"):
                body.append(name, style="bold underline")
                body.append("\n" + rec[name] + "\n\n")
        return body

    def flash(self, text: str) -> None:
        self.message = text
        self.refresh_view()
        self.message = ""

    # -- actions ----------------------------------------------------------------------------

    def _advance(self) -> None:
        s = self.session
        if s.position + 1 < len(s):
            s.move(1)
        elif s.left():
            s.goto(s.next_undecided())
            self.flash(f"back to the first undecided record ({s.left():,} left)")
            return
        else:
            self.flash("every record of this review is decided: q quits")
            return
        self.refresh_view()

    def action_decide(self, action: str, reason: str | None = None) -> None:
        if not len(self.session):
            return
        self.session.decide(action, reason)
        self._advance()

    def action_reject(self) -> None:
        if not len(self.session):
            return

        def done(reason: str | None) -> None:
            if reason:
                self.action_decide("reject", reason)

        self.push_screen(ReasonScreen(self.reasons), done)

    def _pick_field(self, then, title: str) -> None:
        view = self.session.view()
        if view is None or view.record is None:
            self.flash("nothing to edit on this line")
            return
        self.push_screen(FieldScreen(editable_fields(view.record), title), then)

    def action_edit(self) -> None:
        def picked(field: str | None) -> None:
            if field is None:
                return
            view = self.session.view()
            text = as_text(view.record.get(field))

            def saved(new: str | None) -> None:
                if new is not None and new != text:
                    self.session.edit(field, new)
                    self.flash(f"{field} edited and saved; a accepts")

            self.push_screen(EditScreen(field, text), saved)

        self._pick_field(picked, "[b]Edit[/b] which field? (Enter)")

    def action_editor(self) -> None:
        def picked(field: str | None) -> None:
            if field is None:
                return
            view = self.session.view()
            text = as_text(view.record.get(field))
            new = self.run_editor(text)
            if new is not None and new != text:
                self.session.edit(field, new)
                self.flash(f"{field} edited in $EDITOR and saved; a accepts")
            else:
                self.flash("no change")

        self._pick_field(picked, "[b]$EDITOR[/b]: which field? (Enter)")

    def run_editor(self, text: str) -> str | None:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        fd, tmp = tempfile.mkstemp(prefix="cqia-review-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            with self.suspend():
                status = subprocess.call(shlex.split(editor) + [tmp])
            if status != 0:
                return None
            with open(tmp, encoding="utf-8") as f:
                new = f.read()
            # editors add a final newline the text did not have
            if new.endswith("\n") and not text.endswith("\n"):
                new = new[:-1]
            return new
        except Exception as e:  # noqa: BLE001 - an editor that cannot start: say so, go on
            self.flash(f"$EDITOR failed: {e}")
            return None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def action_undo(self) -> None:
        d = self.session.undo()
        self.flash("nothing to undo" if d is None else f"undone (line {d.line:,})")

    def action_move(self, delta: int) -> None:
        if not self.session.move(delta):
            self.flash("last record" if delta > 0 else "first record")
        else:
            self.refresh_view()

    def action_scroll(self, direction: int) -> None:
        body = self.query_one("#body", VerticalScroll)
        (body.scroll_page_down if direction > 0 else body.scroll_page_up)(animate=False)

    def action_search(self) -> None:
        def done(text: str | None) -> None:
            if text:
                self.last_search = text
                self._find(text)

        self.push_screen(AskScreen("[b]Search[/b] for (Enter; n finds the next):",
                                   self.last_search), done)

    def action_search_next(self) -> None:
        if self.last_search:
            self._find(self.last_search)
        else:
            self.flash("no search yet: /")

    def _find(self, text: str) -> None:
        pos = self.session.search(text)
        if pos is None:
            self.flash(f"not found: {text}")
        else:
            self.session.goto(pos)
            self.flash(f"found: {text}")

    def action_goto(self) -> None:
        def done(text: str | None) -> None:
            if not text:
                return
            text = text.strip().replace(",", "")
            try:
                if text.startswith(":"):
                    self.session.goto_line(int(text[1:]))
                else:
                    self.session.goto(int(text) - 1)
            except ValueError:
                self.flash(f"not a number: {text}")
                return
            except IndexError as e:
                self.flash(str(e))
                return
            self.refresh_view()

        self.push_screen(AskScreen(f"[b]Go to[/b] record (1-{len(self.session):,}) or "
                                   ":LINE of the file:"), done)

    def action_interrupt(self) -> None:
        """Ctrl+C: every decision is saved already; end with the status of an interrupt."""
        self.exit(return_code=130)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
