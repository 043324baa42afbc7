"""The one character policy: which characters a cell may hold, which whitespace fmt trims, and how
text is shown on a terminal. validate, fmt and query output all use this module.

Refused, by Unicode general category: Cc (controls, including CR, NEL and the C1 range), Cf (format
characters: bidirectional marks and overrides, zero-width space, the Arabic letter mark, Unicode tag
characters, soft hyphen, BOM), Cs (surrogates), Co (private use), Cn (unassigned), Zl and Zp (line and
paragraph separators).

Also refused: the invisible letters, marks and symbols listed in INVISIBLE (fillers, variation
selectors, the blank Braille pattern), and the joiners below when a cell holds nothing else visible.

Allowed although their category is refused (the allow-list):
- U+0009 TAB inside a cell (never first: that is the formula rule; never last: that is whitespace);
- U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER, which Persian, Indic scripts and emoji
  sequences need in names.
"""

from __future__ import annotations

import unicodedata

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
ALLOWED = frozenset({"\t", "\u200c", "\u200d"})


# invisible although their category is a letter, mark or symbol: Unicode's default-ignorable code
# points outside the refused categories (combining grapheme joiner, Hangul and Khmer fillers,
# Mongolian free variation selectors, variation selectors) and the blank Braille pattern. A name made
# of them looks empty or hides a difference from a reviewer (attack round 5)
INVISIBLE = frozenset(
    [chr(c) for c in (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0)]
    + [chr(c) for c in range(0x180B, 0x1810)]
    + [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0xE0100, 0xE01F0)]
)


def refused(ch: str) -> bool:
    return ch in INVISIBLE or (ch not in ALLOWED and unicodedata.category(ch) in REFUSED_CATEGORIES)


def refused_chars(text: str) -> list[str]:
    """The refused characters in text, as U+XXXX codes, in order of first appearance. The joiners of
    the allow-list are refused too when the text holds nothing visible besides them and whitespace."""
    seen: dict[str, None] = {}
    for ch in text:
        if refused(ch):
            seen.setdefault(f"U+{ord(ch):04X}", None)
    if not seen and text and not text.replace("\u200c", "").replace("\u200d", "").strip():
        for ch in text:
            if ch in "\u200c\u200d":
                seen.setdefault(f"U+{ord(ch):04X}", None)
    return list(seen)


def has_edge_whitespace(text: str) -> bool:
    """Whitespace fmt would trim: leading or trailing (Python's str.strip, so NBSP and U+3000 count)."""
    return text != text.strip()


def trimmed(text: str) -> str:
    """What fmt writes for a cell: the only change fmt makes to a value, and validate reports it first."""
    return text.strip()


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def for_terminal(text: str) -> str:
    """Text safe to print on a terminal: tab, CR, LF and every refused character escaped (\\r,
    \\u2028, \\U000e0041), so a value can neither move the cursor nor hide itself. (A backslash is
    left alone, so patterns stay readable; an escape is therefore not always distinguishable from
    the same text typed literally, which is harmless on a terminal.)"""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif refused(ch) or not ch.isprintable() and ch != " " and unicodedata.category(ch) != "Zs":
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def for_json(text: str) -> str:
    """JSON text with every refused character written as a \\u escape (the decoded value is unchanged)."""
    out = []
    for ch in text:
        if refused(ch) and ch not in "\n\r\t":
            code = ord(ch)
            if code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(ch)
    return "".join(out)


def for_markdown(text: str) -> str:
    """Text inside a Markdown table cell (a job summary, NOTES.md): no HTML, no line breaks, no invisible
    characters, and no pipe or backtick that could end the cell or a code span."""
    text = for_terminal(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("`", "'")
