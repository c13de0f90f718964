"""Reading a YAML config as nodes, so that every value keeps its line.

``NodeReader`` composes the document with PyYAML's SafeLoader and hands out
typed values; each check that fails raises ``LocatedError`` carrying the line
(1-based) and the key path (``pools[1].count``) of the offending node. Scalars
are built by the SafeLoader's constructors only, and collections carrying a
tag (``!!set``, ``!!python/object:...``) are refused, so nothing but plain
data comes out.
"""

import difflib
import math
import os
import re

import yaml

MAX_FILE_BYTES = 1 << 20
STR, INT, FLOAT, BOOL, NULL = (f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_DECIMAL_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class LocatedError(Exception):
    def __init__(self, problem, line=None, path=None):
        super().__init__(problem)
        self.problem, self.line, self.path = problem, line, path


def join(path, key) -> str:
    """``pools[0]`` + ``count`` -> ``pools[0].count``; keys that are not plain words are quoted."""
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]" if path else repr(key)


def read_text(path: str) -> str:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise LocatedError(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise LocatedError(f"cannot read: larger than {MAX_FILE_BYTES} bytes, not a config file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LocatedError(f"not UTF-8 text (byte {data[exc.start]:#04x})",
                           line=data.count(b"\n", 0, exc.start) + 1) from None


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, int | None]:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        return f"invalid YAML: {problem}", (mark.line + 1 if mark else None)
    return f"invalid YAML: {exc}", None


def _merge_key(node):
    # The names that NodeReader.name reads are compared by value; any other
    # key is its own node (aliases of it are the same node).
    if isinstance(node, yaml.ScalarNode) and node.tag in (STR, INT):
        return node.value
    return id(node)


class NodeReader:
    """Typed access to a composed YAML document. Relative paths resolve against ``base_dir``."""

    def __init__(self, text: str, base_dir: str):
        self.base_dir = base_dir
        try:
            self.loader = yaml.SafeLoader(text)
        except yaml.reader.ReaderError as exc:
            raise LocatedError(f"invalid YAML: character U+{exc.character:04X} is not allowed ({exc.reason})",
                               line=text.count("\n", 0, exc.position) + 1) from None
        self._flattened = set()
        # PyYAML's flatten_mapping calls itself through the instance: merges nested
        # in merges go through _flatten_mapping too.
        self.loader.flatten_mapping = self._flatten_mapping

    def _flatten_mapping(self, node):
        """PyYAML's merge flattening, keeping one entry per merged key.

        PyYAML keeps every copy: a mapping that merges eight aliases of one
        that merges eight aliases of another… holds 8**depth entries, and a
        600-byte file never finishes loading. Only the last copy of a key
        counts (it is the one a dict would keep), so the others are dropped
        at each level. The mapping's own entries are left as they are, so a
        key written twice in it is still reported as a duplicate."""
        own = [(key, value) for key, value in node.value if key.tag != MERGE]
        yaml.SafeLoader.flatten_mapping(self.loader, node)
        merged = node.value[:len(node.value) - len(own)]
        if not merged:
            return
        seen = {_merge_key(key) for key, _ in own}
        kept = []
        for key, value in reversed(merged):
            if _merge_key(key) not in seen:
                seen.add(_merge_key(key))
                kept.append((key, value))
        node.value = kept[::-1] + own

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.loader.dispose()

    def root(self):
        try:
            node = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            raise LocatedError(*_yaml_problem(exc)) from None
        except RecursionError:
            raise LocatedError("invalid YAML: nested too deeply") from None
        if node is None:
            raise LocatedError("no settings: the file is empty or has only comments", line=1)
        return node

    @staticmethod
    def plain(text: str, as_text: bool = False):
        """A node for a value given outside the file (an environment
        variable). Unlike YAML's typing, only plain decimal numbers are
        numbers ('010' is ten, not octal eight; '1:30' is no number) and
        nothing else is anything but text ('yes', '*', '123' with
        ``as_text``). It has no line."""
        if not as_text:
            if _DECIMAL_INT.fullmatch(text):
                return yaml.ScalarNode(INT, str(int(text)))
            if _DECIMAL_FLOAT.fullmatch(text):
                return yaml.ScalarNode(FLOAT, repr(float(text)))
        return yaml.ScalarNode(STR, text)

    def plain_list(self, texts):
        return yaml.SequenceNode(SEQ, [self.plain(text, as_text=True) for text in texts])

    # -- errors --------------------------------------------------------------
    def fail(self, node, path, problem) -> LocatedError:
        line = node.start_mark.line + 1 if node is not None and node.start_mark is not None else None
        return LocatedError(problem, line, path or None)

    def unknown(self, key_node, path, key, known, hint="") -> LocatedError:
        matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        close = matches[0] if matches else None
        suggestion = f"; did you mean {close!r}?" if close else f"; known keys: {', '.join(known)}"
        return self.fail(key_node, path, f"unknown key{suggestion}{hint}")

    def kind(self, node, path) -> str:
        """What a node holds, for "expected X, got Y"."""
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            kind = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
            return kind if node.tag in (MAP, SEQ) else f"{kind} tagged {node.tag!r}"
        value = self.scalar(node, path)
        text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        if value is None:
            return "nothing (null)"
        for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number")):
            if isinstance(value, kind):
                return f"{name} ({text})"
        if isinstance(value, str):
            return f"a string ({text!r})"
        return f"{type(value).__name__} ({text!r})"

    # -- node tests ----------------------------------------------------------
    @staticmethod
    def is_null(node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == NULL

    @staticmethod
    def is_string(node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == STR

    @staticmethod
    def is_integer(node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == INT

    # -- values --------------------------------------------------------------
    def scalar(self, node, path):
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, f"expected a single value, got {self.kind(node, path)}")
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # a tag's constructor may raise anything (KeyError for "!!bool x")
            if isinstance(exc, yaml.YAMLError):
                raise self.fail(node, path, _yaml_problem(exc)[0]) from None
            detail = f": {exc}" if isinstance(exc, ValueError) else ""
            raise self.fail(node, path, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}{detail}") from None

    def mapping(self, node, path, allow_null=True) -> dict:
        """{key: (key node, value node, key path)} in file order; duplicate keys are errors."""
        if allow_null and self.is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode) or node.tag != MAP:
            got = self.kind(node, path)
            if not path:
                raise self.fail(node, None, f"the top level must be a mapping of settings, got {got}")
            raise self.fail(node, path, f"expected a mapping, got {got}")
        if id(node) not in self._flattened:
            first = {}
            for key_node, _ in node.value:
                if key_node.tag != MERGE:
                    key = self.name(key_node, path)
                    if key in first:
                        raise self.fail(key_node, join(path, key), f"duplicate key (first at line {first[key]})")
                    first[key] = key_node.start_mark.line + 1
            try:
                self.loader.flatten_mapping(node)
            except yaml.YAMLError as exc:
                raise self.fail(node, path, _yaml_problem(exc)[0]) from None
            except RecursionError:
                raise self.fail(node, path, "a merge ('<<') includes its own mapping") from None
            self._flattened.add(id(node))
        # After flattening, merged keys come first and the mapping's own keys win.
        entries = {}
        for key_node, value in node.value:
            key = self.name(key_node, path)
            entries[key] = (key_node, value, join(path, key))
        return entries

    def items(self, node, path, expected) -> list:
        """[(item node, item path)] of a list; null is an empty list."""
        if self.is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode) or node.tag != SEQ:
            raise self.fail(node, path, f"expected {expected}, got {self.kind(node, path)}")
        return [(item, f"{path}[{index}]") for index, item in enumerate(node.value)]

    def name(self, node, path) -> str:
        """A key or a queue name: a string, or digits (queue "2024" needs no quotes)."""
        if isinstance(node, yaml.ScalarNode) and node.tag in (STR, INT):
            return node.value
        raise self.fail(node, path, f"expected a name, got {self.kind(node, path)}")

    def string(self, node, path, expected) -> str:
        value = self.scalar(node, path) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str):
            raise self.fail(node, path, f"expected {expected}, got {self.kind(node, path)}")
        if not value.strip():
            raise self.fail(node, path, f"expected {expected}, got an empty string")
        return value

    def number(self, node, path, minimum, above=False, maximum=None) -> float:
        value = self.scalar(node, path) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(node, path, f"expected a number of seconds, got {self.kind(node, path)}")
        if not math.isfinite(value):
            raise self.fail(node, path, f"expected a finite number of seconds, got {node.value}")
        if value < minimum or (above and value == minimum):
            raise self.fail(node, path, f"must be {'greater than' if above else 'at least'} {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise self.fail(node, path, f"must be at most {maximum:g}, got {value:g}")
        return float(value)

    def integer(self, node, path, minimum) -> int:
        value = self.scalar(node, path) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, path, f"expected a whole number, got {self.kind(node, path)}")
        if value < minimum:
            raise self.fail(node, path, f"must be at least {minimum}, got {value}")
        return value

    def resolve(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.base_dir, path))

