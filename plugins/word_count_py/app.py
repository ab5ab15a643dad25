from dataclasses import dataclass
import moat

@dataclass
class Counts:
    words: int
    lines: int
    chars: int
    unique_words: int | None = None  # only when asked for: left out otherwise

@moat.tool(read_only=True, idempotent=True, title="Word count (Python)")
def py_word_count(text: str, unique: bool = False) -> Counts:
    """Counts the words, lines and characters (Unicode code points) of a text.

    Args:
        unique: Also count distinct words, ignoring case."""
    words = text.split()
    distinct = len({w.casefold() for w in words}) if unique else None
    return Counts(len(words), len(text.splitlines()), len(text), distinct)

@moat.resource(uri="wordcount://py/about", mime_type="text/plain")
def py_about() -> str:
    """How the Python word counter counts."""
    return "Words are whitespace-separated tokens, lines are counted as str.splitlines does, chars are code points."

@moat.prompt
def py_summarize(text: str) -> str:
    """Asks the model to summarise a text in three sentences."""
    return f"Summarise this text in three sentences:\n\n{text}"
