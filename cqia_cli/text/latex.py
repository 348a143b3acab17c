r"""LaTeX commands whose backslash a JSON escape ate: `"\frac"` written into JSON unescaped
reads back as a form feed and `rac`, `\times` as a tab and `imes`, `\beta` as a backspace and
`eta`, `\right` as a carriage return and `ight`, `\neq` as a newline and `eq`.

    eaten_command(text)         the first such place (a match), or None
    latex_repairable(text, pos) whether the control character at pos starts one
    in_math(text, pos)          whether pos is inside $..$, $$..$$, \(..\), \[..\], \begin..\end

A word counts only when it is a known command as a whole word; after a tab or a newline, a
word that is also English or code (an, to, not, eq, any of two letters or fewer) counts only
inside maths. `cqia clean`'s latex-escapes step repairs what this finds; filter's garbled rule
can name it as repairable.
"""

from __future__ import annotations

import re

#: LaTeX commands that start with a letter a JSON escape eats: \b \f \n \r \t. A command
#: counts only as a whole word (`\x0crac{`, not `\x0cracture`).
LATEX_COMMANDS = {
    "\x08": "beta begin bar bf bm boldsymbol binom big bigg bigl bigr biggl biggr bigm bigcup "
            "bigcap bigoplus bigotimes bigodot bigwedge bigvee bigsqcup biguplus bigstar "
            "bigtriangleup bigtriangledown bot bullet boxed because backslash bmod breve "
            "blacksquare blacktriangle bowtie beth boxplus boxminus boxtimes boxdot between "
            "bfseries bibitem backsim backprime barwedge",
    "\x0c": "frac forall flat frown fbox framebox footnote footnotesize fontsize fcolorbox "
            "fallingdotseq",
    "\t": "times text textbf textit textrm texttt textsf textsc textnormal textstyle textcolor "
          "textcircled textup textmd theta tau tan tanh tfrac tbinom tilde to top triangle "
          "triangleq triangleleft triangleright trianglelefteq trianglerighteq therefore tiny "
          "tt ttfamily tag thinspace thicksim thickapprox twoheadrightarrow twoheadleftarrow",
    "\n": "neq ne nabla not nu newline neg ni notin nleq ngeq nless ngtr nmid nparallel "
          "nsubseteq nsupseteq nexists nolimits nonumber noindent normalsize nearrow nwarrow "
          "natural nleftarrow nrightarrow nsim ncong nvdash nprec nsucc newcommand",
    "\r": "right rightarrow rho rm rangle rceil rfloor rbrace rbrack rightharpoonup "
          "rightharpoondown rightleftharpoons rightrightarrows rightleftarrows "
          "rightsquigarrow rightthreetimes risingdotseq rvert rVert ref renewcommand rlap "
          "raisebox root rtimes rmfamily",
}
#: whole words after a tab or a newline that are also English (or code) and so are repaired
#: only inside maths ($..$, $$..$$, \(..\), \[..\], \begin..\end); any word of two letters or
#: fewer after a tab, newline or carriage return is treated so too
LATEX_AMBIGUOUS = {
    "\t": {"an", "o", "op", "ag", "t", "au"},
    "\n": {"eq", "e", "ot", "u", "eg", "i", "less", "gtr", "mid", "parallel", "sim", "cong",
           "vdash", "prec", "succ", "ewcommand", "otin", "exists", "atural", "earrow",
           "warrow", "leftarrow", "rightarrow", "ormalsize", "oindent", "olimits",
           "onumber", "ewline", "abla", "leq", "geq", "subseteq", "supseteq"},
    "\r": set(),
    "\x08": set(),
    "\x0c": set(),
}
_ESCAPE_LETTER = {"\x08": "b", "\x0c": "f", "\t": "t", "\n": "n", "\r": "r"}


def _latex_pattern(commands: dict[str, str]) -> re.Pattern:
    parts = []
    for ctrl, words in commands.items():
        first = _ESCAPE_LETTER[ctrl]
        suffixes = sorted({w[1:] for w in words.split() if w.startswith(first) and len(w) > 1},
                          key=lambda s: (-len(s), s))
        if suffixes:
            parts.append(re.escape(ctrl) + "(?:" + "|".join(map(re.escape, suffixes)) + ")")
    return re.compile("(?:" + "|".join(parts) + ")(?![A-Za-z])")


_LATEX = _latex_pattern(LATEX_COMMANDS)


def in_math(text: str, pos: int) -> bool:
    """True when `pos` is inside LaTeX maths, judged from the text before it: an odd count of
    $$ or of single $, an open \\[ or \\(, or a \\begin without its \\end."""
    before = text[:pos]
    if "$" in before:
        double = before.count("$$")
        if double % 2 or (before.count("$") - 2 * double) % 2:
            return True
    if "\\" in before or "\x08" in before:
        if before.rfind("\\[") > before.rfind("\\]"):
            return True
        if before.rfind("\\(") > before.rfind("\\)"):
            return True
        begin = max(before.rfind("\\begin{"), before.rfind("\x08egin{"))
        if begin >= 0 and begin > before.rfind("\\end{") and begin > before.rfind("\\end "):
            return True
    return False


def _needs_math(ctrl: str, word: str) -> bool:
    if ctrl in ("\x08", "\x0c"):
        return False
    return len(word) <= 2 or word in LATEX_AMBIGUOUS[ctrl]


def latex_repairable(text: str, pos: int, pattern: re.Pattern = _LATEX,
                     context: str = "auto") -> bool:
    """True when the control character at `pos` starts a LaTeX command whose backslash a JSON
    escape ate, and latex-escapes would repair it."""
    m = pattern.match(text, pos)
    if m is None:
        return False
    if context == "always":
        return True
    word = m.group(0)[1:]
    return not _needs_math(m.group(0)[0], word) or in_math(text, pos)


def eaten_command(text: str, pattern: re.Pattern = _LATEX) -> "re.Match | None":
    """The first control character in `text` that starts a LaTeX command a JSON escape ate
    (as latex-escapes would repair it), or None."""
    if "\x0c" not in text and "\x08" not in text and "\t" not in text and "\r" not in text \
            and "\n" not in text:
        return None
    for m in pattern.finditer(text):
        if latex_repairable(text, m.start(), pattern):
            return m
    return None
