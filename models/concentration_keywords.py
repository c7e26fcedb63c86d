"""The common words of bad reviews' comments (差评关键词): Chinese word segmentation and counting.

Each comment is cut into words by rjieba (the jieba dictionary and its HMM for unknown words, in
Rust) with each word's part of speech. Kept: nouns, verbs, adjectives, places and idioms of two or more
characters that are not stop-words (models/concentration_stopwords.txt). Dropped by part of speech:
numbers, quantifiers, time words, pronouns, adverbs, particles and person names (a comment may name
someone; a keyword list is not where a name should surface). A word counts once per comment, so a
word is "common" by how many raters used it, and only a word two or more raters used is shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import rjieba

STOPWORDS_FILE = Path(__file__).with_name("concentration_stopwords.txt")
# jieba's part-of-speech tags kept (first letter): noun, verb, adjective, place (窗口 is one), idiom / set
# phrase, abbreviation.
_KEPT_POS = ("n", "v", "a", "s", "i", "l", "j")
# Within those, dropped: person names (nr*), and the plain copula-like verbs jieba tags vshi / vyou.
_DROPPED_POS = ("nr", "vshi", "vyou")
MIN_RATERS = 2


@cache
def stopwords() -> frozenset[str]:
    """The stop-words file's words (blank lines and # comments skipped)."""
    lines = STOPWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def words_of(comment: str) -> set[str]:
    """The distinct content words of one comment."""
    found = set()
    stop = stopwords()
    for word, pos in rjieba.tag(comment):
        word = word.strip()
        if len(word) < 2 or word in stop or not pos.startswith(_KEPT_POS) or pos.startswith(_DROPPED_POS):
            continue
        found.add(word)
    return found


def common_words(comments: Iterable[str], limit: int) -> list[tuple[str, int]]:
    """The `limit` words most raters used (each with how many), most first; ties in order of first use."""
    counts: Counter[str] = Counter()
    for comment in comments:
        counts.update(words_of(comment))
    ranked = [(word, n) for word, n in counts.most_common() if n >= MIN_RATERS]
    return ranked[:limit]
