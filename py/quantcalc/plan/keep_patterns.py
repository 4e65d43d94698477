"""--keep PATTERN: which tensor names a pattern finds, in time linear in the name.

Python's re backtracks: `(\\w+\\.?)+\\.bias$` tries some 2^n ways to fail on a name of n word
characters, and re has no timeout (nor could a thread or a signal stop it in the page: Pyodide
has neither). So a pattern is parsed by re's own parser (the same syntax, the same errors) and
run as an automaton instead: the set of places in the pattern a name can have reached, advanced
one character at a time (Thompson's construction). Each step is cached per (set, character), so
once warm a name costs about one dictionary lookup per character, whatever the pattern.

For every regular construct (characters and classes with re's own flags, groups, alternation,
greedy and lazy repeats, ^ $ \\A \\Z \\b \\B) the answer is exactly re.search's: whether the name
contains a match (each single character is even tested by re itself). What an automaton cannot
do — backreferences, lookahead and lookbehind, conditional groups, atomic groups and possessive
repeats — is refused with the reason. Counted repeats are written out, up to MAX_STATES steps.
"""

import re

try:  # Python 3.11 and later (the page's Pyodide runs 3.12)
    from re import _constants as C
    from re import _parser as P
except ImportError:  # Python 3.10
    import sre_constants as C
    import sre_parse as P

from quantcalc.errors import QuantcalcError, shortened

MAX_STATES = 20_000   # (\w{100}){100} is 10,000 steps written out
MAX_CACHE = 100_000   # cached steps kept before the cache starts afresh
CHAR_FLAGS = re.IGNORECASE | re.DOTALL | re.ASCII  # what a single character's test depends on

_CATEGORIES = {C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D", C.CATEGORY_SPACE: r"\s",
               C.CATEGORY_NOT_SPACE: r"\S", C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W"}
_REFUSED = {C.GROUPREF: r"a backreference (\1)",
            C.GROUPREF_EXISTS: "a conditional group (?(1)...|...)",
            getattr(C, "ATOMIC_GROUP", None): "an atomic group (?>...)",
            getattr(C, "POSSESSIVE_REPEAT", None): "a possessive repeat (*+, ++, ?+)"}
_ASSERTIONS = {(C.ASSERT, 1): "a lookahead (?=...)", (C.ASSERT, -1): "a lookbehind (?<=...)",
               (C.ASSERT_NOT, 1): "a negative lookahead (?!...)",
               (C.ASSERT_NOT, -1): "a negative lookbehind (?<!...)"}
_ANCHORS = {C.AT_BEGINNING, C.AT_BEGINNING_STRING, C.AT_END, C.AT_END_STRING, C.AT_BOUNDARY,
            C.AT_NON_BOUNDARY}
EPSILON, CHAR, ANCHOR = 0, 1, 2


class _Unsupported(Exception):
    pass


def compile_pattern(pattern: str):
    """The matcher of the --keep `pattern` (its .search(name) says whether the name holds a
    match); raises QuantcalcError with the reason when it cannot be one."""
    shown = shortened(str(pattern), 60)
    try:
        re.compile(pattern)
        parsed = P.parse(pattern, 0)
        return Automaton(parsed, parsed.state.flags)
    except re.error as exc:
        raise QuantcalcError(f"--keep '{shown}' is not a regular expression ({exc})",
                             "keep") from None
    except _Unsupported as exc:
        raise QuantcalcError(f"--keep '{shown}': {exc} is not supported: names are matched by "
                             f"an automaton, in time linear in the name, and {exc} needs "
                             f"backtracking, which can run for ages; write the pattern without "
                             f"it", "keep") from None
    except OverflowError:
        raise QuantcalcError(f"--keep '{shown}' is too large: its repeats written out make more "
                             f"than {MAX_STATES:,} steps", "keep") from None


class Automaton:
    """Thompson's automaton of a parsed pattern: states with their kind, next states and test."""

    def __init__(self, parsed, flags):
        self.kind, self.out, self.test = [], [], []
        self._chars = {}
        self.start, end = self._sequence(parsed, flags)
        self.accept = end
        self.anchored = ANCHOR in self.kind  # steps then depend on the characters around
        self._cache = {}

    # ------------------------------------------------------------------ construction
    def _state(self, kind, test=None) -> int:
        if len(self.kind) >= MAX_STATES:
            raise OverflowError
        self.kind.append(kind)
        self.out.append([])
        self.test.append(test)
        return len(self.kind) - 1

    def _sequence(self, items, flags):
        """(first state, last state) of the items in order; the last has no next state yet."""
        start = end = self._state(EPSILON)
        for op, av in items:
            first, last = self._item(op, av, flags)
            self.out[end].append(first)
            end = last
        return start, end

    def _item(self, op, av, flags):
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            return self._single(self._char_test(op, av, flags))
        if op is C.AT and av in _ANCHORS:
            return self._single((av, flags), ANCHOR)
        if op is C.SUBPATTERN:
            _, add, remove, items = av
            return self._sequence(items, (flags | add) & ~remove)
        if op is C.BRANCH:
            start, end = self._state(EPSILON), self._state(EPSILON)
            for alternative in av[1]:
                first, last = self._sequence(alternative, flags)
                self.out[start].append(first)
                self.out[last].append(end)
            return start, end
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):  # lazy or greedy: the same names match
            return self._repeat(*av, flags)
        if (op, av[0] if isinstance(av, tuple) else None) in _ASSERTIONS:
            raise _Unsupported(_ASSERTIONS[op, av[0]])
        raise _Unsupported(_REFUSED.get(op, f"'{str(op).lower()}'"))

    def _single(self, test, kind=CHAR):
        state, end = self._state(kind, test), self._state(EPSILON)
        self.out[state].append(end)
        return state, end

    def _repeat(self, least, most, items, flags):
        start = end = self._state(EPSILON)
        for _ in range(least):
            first, last = self._sequence(items, flags)
            self.out[end].append(first)
            end = last
        done = self._state(EPSILON)
        if most == C.MAXREPEAT:
            first, last = self._sequence(items, flags)
            self.out[end] += [first, done]
            self.out[last].append(end)
        else:
            for _ in range(most - least):
                first, last = self._sequence(items, flags)
                self.out[end] += [first, done]
                end = last
            self.out[end].append(done)
        return start, done

    def _char_test(self, op, av, flags):
        """re's own test of one character against this item (its flags included)."""
        if op is C.LITERAL:
            source = re.escape(chr(av))
        elif op is C.NOT_LITERAL:
            source = "[^" + re.escape(chr(av)) + "]"
        elif op is C.ANY:
            source = "."
        else:
            source = "[" + "".join(_class_part(o, a) for o, a in av) + "]"
        key = (source, flags & CHAR_FLAGS)
        if key not in self._chars:
            self._chars[key] = re.compile(*key).fullmatch
        return self._chars[key]

    # ------------------------------------------------------------------ matching
    def search(self, text: str) -> bool:
        """Whether `text` holds a match anywhere (what re.search(pattern, text) says)."""
        cache, states, previous, n = self._cache, frozenset(), None, len(text)
        for i in range(n + 1):
            current = text[i] if i < n else None
            key = (states, previous, current, i == n - 1) if self.anchored else (states, current)
            step = cache.get(key)
            if step is None:
                if len(cache) >= MAX_CACHE:
                    cache.clear()
                step = cache[key] = self._step(states, previous, current, i == n - 1)
            found, states = step
            if found:
                return True
            previous = current
        return False

    def _step(self, states, previous, current, last):
        """(a match ends here, the states after `current`), a match may start here too."""
        reached = self._closure(states | {self.start}, previous, current, last)
        if self.accept in reached:
            return True, None
        if current is None:
            return False, frozenset()
        return False, frozenset(self.out[s][0] for s in reached
                                if self.kind[s] == CHAR and self.test[s](current))

    def _closure(self, states, previous, current, last):
        seen, stack = set(states), list(states)
        while stack:
            state = stack.pop()
            kind = self.kind[state]
            if kind == CHAR or (kind == ANCHOR and not _holds(*self.test[state], previous,
                                                               current, last)):
                continue
            for following in self.out[state]:
                if following not in seen:
                    seen.add(following)
                    stack.append(following)
        return seen


def _class_part(op, av) -> str:
    if op is C.NEGATE:
        return "^"
    if op is C.LITERAL:
        return re.escape(chr(av))
    if op is C.RANGE:
        return re.escape(chr(av[0])) + "-" + re.escape(chr(av[1]))
    if op is C.CATEGORY and av in _CATEGORIES:
        return _CATEGORIES[av]
    raise _Unsupported(f"'{str(op).lower()}' in a character class")


_WORD = {False: re.compile(r"\w").fullmatch, True: re.compile(r"\w", re.ASCII).fullmatch}


def _word(char, ascii_only) -> bool:
    return char is not None and _WORD[ascii_only](char) is not None


def _holds(code, flags, previous, current, last) -> bool:
    """Whether the anchor `code` holds between `previous` and `current` (None: the text's
    start or end; `last`: current is the text's last character), as re's rules say."""
    lines = bool(flags & re.MULTILINE)
    if code is C.AT_BEGINNING:
        return previous is None or (lines and previous == "\n")
    if code is C.AT_BEGINNING_STRING:
        return previous is None
    if code is C.AT_END:
        return current is None or (current == "\n" and (lines or last))
    if code is C.AT_END_STRING:
        return current is None
    ascii_only = bool(flags & re.ASCII)
    if previous is None and current is None:  # re finds no word boundary, nor \B, in ""
        return False
    boundary = _word(previous, ascii_only) != _word(current, ascii_only)
    return boundary if code is C.AT_BOUNDARY else not boundary  # AT_NON_BOUNDARY
