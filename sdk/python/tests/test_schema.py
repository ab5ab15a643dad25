"""Schemas from type hints, descriptions from docstrings, JSON to values and back."""

import dataclasses
import enum
import json
import unittest
from dataclasses import dataclass, field
from typing import Annotated, Literal, NotRequired, Optional, TypedDict

from tests import __name__ as _  # noqa: F401  (puts the SDK on the path)

import moat
from moat import _schema
from moat._schema import ArgumentError, SchemaBuilder, from_json, parse_doc, to_json


def input_schema(fn):
    moat.registry.clear()
    moat.tool(fn)
    return moat.registry.tools[fn.__name__].input_schema


class Color(enum.Enum):
    """A colour."""

    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    """A point on the plane.

    Attributes:
        x: Across.
        y: Up, which is
            a longer description.
    """

    x: float
    y: float = 0.0


class Span(TypedDict):
    """A range of lines.

    Attributes:
        start: First line.
    """

    start: int
    end: NotRequired[int]


@dataclass
class Tree:
    name: str
    children: list["Tree"] = field(default_factory=list)


class DocstringTest(unittest.TestCase):
    def test_summary_is_first_paragraph_joined(self):
        d = parse_doc("""Counts the words
        of a text.

        More detail that is not the description.

        Args:
            text: The text.
            unique (bool): Also count distinct
                words.

        Returns:
            Counts.
        """)
        self.assertEqual(d.summary, "Counts the words of a text.")
        self.assertEqual(d.params, {"text": "The text.", "unique": "Also count distinct words."})

    def test_summary_stops_at_a_section(self):
        d = parse_doc("Does it.\nArgs:\n    a: An a.\n")
        self.assertEqual(d.summary, "Does it.")
        self.assertEqual(d.params, {"a": "An a."})

    def test_attributes(self):
        d = parse_doc(Point.__doc__)
        self.assertEqual(d.attributes, {"x": "Across.", "y": "Up, which is a longer description."})

    def test_empty(self):
        self.assertEqual(parse_doc(None).summary, "")
        self.assertEqual(parse_doc("   ").params, {})


class SchemaTest(unittest.TestCase):
    def test_primitives_defaults_and_descriptions(self):
        def f(text: str, n: int, ratio: float, flag: bool = False, limit: int | None = None) -> str:
            """Does f.

            Args:
                text: Some text.
                flag: A flag.
            """
            return ""

        s = input_schema(f)
        self.assertEqual(
            s,
            {
                "type": "object",
                "properties": {
                    "text": {"description": "Some text.", "type": "string"},
                    "n": {"type": "integer"},
                    "ratio": {"type": "number"},
                    "flag": {"description": "A flag.", "type": "boolean", "default": False},
                    "limit": {"type": ["integer", "null"], "default": None},
                },
                "required": ["text", "n", "ratio"],
                "additionalProperties": False,
            },
        )

    def test_optional_without_default_is_not_required(self):
        def f(a: Optional[str], b: str | None) -> str:
            """F."""
            return ""

        s = input_schema(f)
        self.assertNotIn("required", s)
        self.assertEqual(s["properties"]["a"], {"type": ["string", "null"]})

    def test_no_parameters(self):
        def f() -> str:
            """F."""
            return ""

        self.assertEqual(input_schema(f), {"type": "object", "properties": {}, "additionalProperties": False})

    def test_list_literal_enum(self):
        def f(tags: list[str], mode: Literal["fast", "slow"] = "fast", color: Color = Color.RED) -> str:
            """F."""
            return ""

        p = input_schema(f)["properties"]
        self.assertEqual(p["tags"], {"type": "array", "items": {"type": "string"}})
        self.assertEqual(p["mode"], {"type": "string", "enum": ["fast", "slow"], "default": "fast"})
        self.assertEqual(p["color"], {"description": "A colour.", "type": "string", "enum": ["red", "green"], "default": "red"})

    def test_mixed_literal_has_no_type(self):
        self.assertEqual(SchemaBuilder(for_input=True).of(Literal[1, "a"]), {"enum": [1, "a"]})

    def test_optional_complex_uses_any_of(self):
        s = SchemaBuilder(for_input=True).of(Optional[Literal["a"]])
        self.assertEqual(s, {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]})

    def test_dataclass_nested_with_attribute_descriptions(self):
        def f(at: Point, path: list[Point] | None = None) -> str:
            """F.

            Args:
                at: Where.
            """
            return ""

        p = input_schema(f)["properties"]
        self.assertEqual(
            p["at"],
            {
                "description": "Where.",
                "type": "object",
                "properties": {
                    "x": {"description": "Across.", "type": "number"},
                    "y": {"description": "Up, which is a longer description.", "type": "number", "default": 0.0},
                },
                "required": ["x"],
                "additionalProperties": False,
            },
        )
        self.assertEqual(p["path"]["anyOf"][0]["items"]["description"], "A point on the plane.")

    def test_typeddict(self):
        s = SchemaBuilder(for_input=True).of(Span)
        self.assertEqual(s["required"], ["start"])
        self.assertEqual(s["properties"]["start"], {"description": "First line.", "type": "integer"})
        self.assertFalse(s["additionalProperties"])

    def test_recursive_dataclass_goes_to_defs(self):
        def f(tree: Tree) -> str:
            """F."""
            return ""

        s = input_schema(f)
        self.assertEqual(s["properties"]["tree"], {"$ref": "#/$defs/Tree"})
        self.assertEqual(s["$defs"]["Tree"]["properties"]["children"]["items"], {"$ref": "#/$defs/Tree"})

    def test_recursive_output_root_refers_to_itself(self):
        s = SchemaBuilder(for_input=False).root_object(Tree)
        self.assertEqual(s["properties"]["children"]["items"], {"$ref": "#"})
        self.assertNotIn("$defs", s)
        self.assertEqual(s["required"], ["name", "children"])

    def test_annotated_description(self):
        def f(n: Annotated[int, "How many."] = 3) -> str:
            """F."""
            return ""

        self.assertEqual(input_schema(f)["properties"]["n"], {"description": "How many.", "type": "integer", "default": 3})

    def test_dict_of_str(self):
        s = SchemaBuilder(for_input=True).of(dict[str, int])
        self.assertEqual(s, {"type": "object", "additionalProperties": {"type": "integer"}})
        with self.assertRaises(TypeError):
            SchemaBuilder(for_input=True).of(dict[int, int])

    def test_unsupported_type_fails_at_decoration(self):
        def f(data: bytes) -> str:
            """F."""
            return ""

        with self.assertRaisesRegex(TypeError, "bytes"):
            input_schema(f)

    def test_output_schema_of_dataclass(self):
        @dataclass
        class Counts:
            """Counts.

            Attributes:
                words: Words.
            """

            words: int
            unique: int | None = None

        moat.registry.clear()

        @moat.tool
        def count(text: str) -> Counts:
            """Counts."""
            return Counts(len(text.split()))

        t = moat.registry.tools["count"]
        self.assertEqual(
            t.output_schema,
            {
                "description": "Counts.",
                "type": "object",
                "properties": {"words": {"description": "Words.", "type": "integer"}, "unique": {"type": ["integer", "null"]}},
                "required": ["words"],
                "additionalProperties": False,
            },
        )
        self.assertEqual(json.loads(t.output_schema_json), t.output_schema)

    def test_output_schema_of_typeddict(self):
        moat.registry.clear()

        @moat.tool
        def span() -> Span:
            """A span."""
            return {"start": 1}

        self.assertEqual(moat.registry.tools["span"].output_schema["required"], ["start"])

    def test_str_return_has_no_output_schema(self):
        moat.registry.clear()

        @moat.tool
        def hello() -> str:
            """Hello."""
            return "hi"

        self.assertIsNone(moat.registry.tools["hello"].output_schema)


class FromJsonTest(unittest.TestCase):
    def test_nested_dataclasses(self):
        v = from_json({"name": "a", "children": [{"name": "b"}]}, Tree)
        self.assertEqual(v, Tree("a", [Tree("b")]))

    def test_defaults_apply(self):
        self.assertEqual(from_json({"x": 1}, Point), Point(1.0, 0.0))
        self.assertIsInstance(from_json({"x": 1}, Point).x, float)

    def test_errors_name_the_field(self):
        with self.assertRaisesRegex(ArgumentError, r"`children\[0\]\.name`: expected a string, got a number"):
            from_json({"name": "a", "children": [{"name": 3}]}, Tree)
        with self.assertRaisesRegex(ArgumentError, "missing required field `x`"):
            from_json({}, Point)
        with self.assertRaisesRegex(ArgumentError, "`z` is not a known field"):
            from_json({"x": 1, "z": 2}, Point, "")

    def test_bool_is_not_an_int(self):
        with self.assertRaises(ArgumentError):
            from_json(True, int)
        self.assertEqual(from_json(2.0, int), 2)

    def test_literal_and_enum(self):
        self.assertEqual(from_json("red", Color), Color.RED)
        self.assertEqual(from_json("a", Literal["a", "b"]), "a")
        with self.assertRaises(ArgumentError):
            from_json("c", Literal["a", "b"])
        with self.assertRaises(ArgumentError):
            from_json(1, Literal[True])

    def test_typeddict_stays_a_dict(self):
        self.assertEqual(from_json({"start": 1}, Span), {"start": 1})

    def test_optional(self):
        self.assertIsNone(from_json(None, Optional[Point]))
        self.assertEqual(from_json({"x": 2}, Point | None), Point(2.0))


class ToJsonTest(unittest.TestCase):
    def test_none_fields_are_left_out(self):
        @dataclass
        class R:
            a: int
            b: int | None = None

        self.assertEqual(to_json(R(1)), {"a": 1})
        self.assertEqual(to_json(R(1, 2)), {"a": 1, "b": 2})

    def test_typeddict_none_left_out_plain_dict_kept(self):
        self.assertEqual(to_json({"start": 1, "end": None}, Span), {"start": 1})
        self.assertEqual(to_json({"a": None}, dict[str, int | None]), {"a": None})

    def test_enums_tuples_nested(self):
        self.assertEqual(to_json([Color.RED, (1, 2), Tree("t")]), ["red", [1, 2], {"name": "t", "children": []}])

    def test_refuses_what_json_cannot_hold(self):
        with self.assertRaises(ValueError):
            to_json(float("nan"))
        with self.assertRaises(TypeError):
            to_json(object())
        with self.assertRaises(TypeError):
            to_json({1: 2})


if __name__ == "__main__":
    unittest.main()
