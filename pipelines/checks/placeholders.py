"""The placeholders `model-atlas new` writes into template rows, and the rule that refuses them.

One list: `new` fills template cells from it and `validate` reports any cell still equal to one
(rule `placeholder`), with the fix for that cell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placeholder:
    table: str
    column: str
    text: str  # what `new` writes
    fix: str  # what to write instead


PLACEHOLDERS: tuple[Placeholder, ...] = (
    Placeholder("models", "organization", "ORGANIZATION", "Write the organisation that released the model, as it names itself (for example Mistral AI)."),
    Placeholder(
        "models",
        "summary",
        "Describe the model in your own words (at least 20 characters).",
        "Write a one-sentence summary of the model in your own words (what it is, its size or architecture, who made it).",
    ),
    Placeholder(
        "classes",
        "summary",
        "Describe the class in your own words (at least 20 characters).",
        "Write a one-sentence definition of the class in your own words.",
    ),
    Placeholder("citations", "source_id", "SOURCE-ID", "Write the source_id of a row in data/sources.csv (add the source first with model-atlas new source)."),
    Placeholder("citations", "locator", "Section or table", 'Say where in the source the fact is, for example "Table 1", "Section 2.1" or "Abstract".'),
    Placeholder("sources", "url", "https://", "Write the full https address of the document itself (for example https://arxiv.org/abs/2310.06825)."),
    Placeholder("sources", "publisher", "PUBLISHER", "Write who published the document (the organisation, or arXiv for a preprint)."),
    Placeholder("reviews", "reviewer", "YOUR-GITHUB-HANDLE", "Write your own GitHub handle in lower case; never someone else's."),
    Placeholder(
        "reviews",
        "note",
        "Say what you checked, against which source.",
        "Write what you checked against which source, in a sentence (for example: Checked size and context against the paper).",
    ),
)


def template_value(table: str, column: str) -> str:
    """The placeholder `new` writes into a column."""
    return next(p.text for p in PLACEHOLDERS if p.table == table and p.column == column)
