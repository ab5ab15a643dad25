"""Registration and dispatch: tools, resources, prompts, errors, host calls."""

import json
import unittest
from dataclasses import dataclass

from tests import __name__ as _  # noqa: F401  (puts the SDK on the path)

import moat
from moat import CallError


@dataclass
class Inner:
    n: int


@dataclass
class Outer:
    name: str
    inner: Inner
    extra: list[Inner] | None = None


@dataclass
class Result:
    total: int
    note: str | None = None


class ToolTest(unittest.TestCase):
    def setUp(self):
        moat.registry.clear()
        moat.set_host(moat.RecordingHost())

    def tearDown(self):
        moat.set_host(None)
        moat.registry.clear()

    def call(self, name, args):
        return moat.registry.call_tool(name, json.dumps(args) if not isinstance(args, str) else args)

    def test_bare_and_configured_decorators_return_the_function(self):
        def plain(x: int) -> int:
            """Plain."""
            return x

        self.assertIs(moat.tool(plain), plain)

        @moat.tool(name="other.name", title="T", read_only=True, idempotent=True)
        def configured() -> str:
            """Configured."""
            return "ok"

        self.assertEqual(configured(), "ok")
        t = moat.registry.tools["other.name"]
        self.assertEqual((t.title, t.annotations.read_only, t.annotations.idempotent, t.annotations.destructive), ("T", True, True, False))

    def test_nested_dicts_become_dataclasses_and_structured_result(self):
        seen = {}

        @moat.tool
        def total(o: Outer) -> Result:
            """Totals."""
            seen["o"] = o
            return Result(o.inner.n + sum(i.n for i in o.extra or []))

        out = self.call("total", {"o": {"name": "a", "inner": {"n": 2}, "extra": [{"n": 3}]}})
        self.assertEqual(seen["o"], Outer("a", Inner(2), [Inner(3)]))
        self.assertEqual(json.loads(out.structured), {"total": 5})
        self.assertEqual(out.content, [])  # the host adds the JSON text item from `structured`

    def test_str_and_other_results(self):
        @moat.tool
        def text() -> str:
            """Text."""
            return "hello"

        @moat.tool
        def number():
            """Number."""
            return {"a": [1, 2.5, None]}

        @moat.tool
        def nothing() -> None:
            """Nothing."""

        @moat.tool
        def picture() -> moat.Image:
            """Picture."""
            return moat.Image(b"\x89PNG", "image/png")

        self.assertEqual(self.call("text", {}).content, [moat.Text("hello")])
        self.assertEqual(self.call("number", {}).content, [moat.Text('{"a":[1,2.5,null]}')])
        self.assertIsNone(self.call("number", {}).structured)
        self.assertEqual(self.call("nothing", {}).content, [])
        self.assertIsNone(moat.registry.tools["picture"].output_schema)
        self.assertEqual(self.call("picture", {}).content, [moat.Image(b"\x89PNG", "image/png")])

    def test_empty_arguments_mean_none(self):
        @moat.tool
        def f(x: int = 1) -> int:
            """F."""
            return x

        self.assertEqual(self.call("f", "").content, [moat.Text("1")])

    def assertCallError(self, kind, message, fn, *args):
        with self.assertRaises(CallError) as cm:
            fn(*args)
        self.assertEqual((cm.exception.kind, cm.exception.message), (kind, message))

    def test_errors(self):
        @moat.tool
        def f(x: int) -> str:
            """F."""
            if x == 1:
                raise moat.ToolError("one is not allowed")
            if x == 2:
                raise moat.InvalidArguments("`x` must not be 2")
            if x == 3:
                raise ValueError("three")
            if x == 4:
                raise KeyError("k")
            if x == 5:
                raise RuntimeError()
            return "ok"

        self.assertCallError("not-found", "no tool named `g`", self.call, "g", {})
        self.assertCallError("failed", "one is not allowed", self.call, "f", {"x": 1})
        self.assertCallError("invalid-arguments", "`x` must not be 2", self.call, "f", {"x": 2})
        self.assertCallError("failed", "ValueError: three", self.call, "f", {"x": 3})
        self.assertCallError("failed", "KeyError: 'k'", self.call, "f", {"x": 4})
        self.assertCallError("failed", "RuntimeError", self.call, "f", {"x": 5})
        self.assertCallError("invalid-arguments", "`x`: expected an integer, got a string", self.call, "f", {"x": "1"})
        self.assertCallError("invalid-arguments", "missing required argument `x`", self.call, "f", {})
        self.assertCallError("invalid-arguments", "unknown argument `y`", self.call, "f", {"x": 0, "y": 1})
        self.assertCallError("invalid-arguments", "the arguments must be a JSON object", self.call, "f", "[1]")
        # Unexpected exceptions are logged (at debug) with their traceback.
        self.assertTrue(any(level == "debug" and "ValueError: three" in m for level, m in moat._host.logs))

    def test_bad_structured_result(self):
        @moat.tool
        def f() -> Result:
            """F."""
            return "not a Result"

        with self.assertRaises(CallError) as cm:
            self.call("f", {})
        self.assertEqual(cm.exception.kind, "failed")

    def test_declaration_errors(self):
        def undocumented() -> str:
            return ""

        with self.assertRaisesRegex(ValueError, "needs a description"):
            moat.tool(undocumented)

        def bad(*args) -> str:
            """Bad."""
            return ""

        with self.assertRaisesRegex(TypeError, r"\*args"):
            moat.tool(bad)
        with self.assertRaisesRegex(ValueError, "must be 1 to 128"):
            moat.tool(name="has space")(lambda: "")

        @moat.tool(name="Dup")
        def one() -> str:
            """One."""
            return ""

        with self.assertRaisesRegex(ValueError, "differ only in case"):
            moat.tool(name="dup")(one)
        with self.assertRaisesRegex(ValueError, "read_only and destructive"):
            moat.tool(read_only=True, destructive=True)(one)

        async def a() -> str:
            """A."""
            return ""

        with self.assertRaisesRegex(TypeError, "async"):
            moat.tool(a)

    def test_host_calls(self):
        host = moat.RecordingHost(
            caller=moat.Caller("alice", ["read"], "cli"),
            stats={"/data": moat.VolumeStats(100, 50, 40), "/gone": moat.VolumeStatsError("not-found", "/gone")},
        )
        moat.set_host(host)
        moat.log("hello")
        moat.log("careful", level="warning")
        moat.progress(1, 4, "a quarter")
        moat.progress(2)
        self.assertEqual(host.logs, [("info", "hello"), ("warning", "careful")])
        self.assertEqual(host.progress_reports, [(1.0, 4.0, "a quarter"), (2.0, None, None)])
        self.assertEqual(moat.caller().subject, "alice")
        self.assertEqual(moat.volume_stats("/data").available_bytes, 40)
        with self.assertRaises(moat.VolumeStatsError) as cm:
            moat.volume_stats("/gone")
        self.assertEqual(cm.exception.kind, "not-found")
        with self.assertRaises(ValueError):
            moat.log("x", level="loud")

    def test_host_calls_without_a_host_say_why(self):
        moat.set_host(None)
        with self.assertRaisesRegex(RuntimeError, "not running inside a moat component"):
            moat.log("hello")


class ResourceTest(unittest.TestCase):
    def setUp(self):
        moat.registry.clear()

    def tearDown(self):
        moat.registry.clear()

    def test_fixed_and_templates(self):
        @moat.resource(uri="config://limits", mime_type="application/json")
        def limits() -> str:
            """Limits."""
            return '{"a": 1}'

        @moat.resource("disk://{host}/usage", name="usage")
        def usage(host: str) -> str:
            return f"usage of {host}"

        @moat.resource(uri="file://{+path}.txt", mime_type="text/plain")
        def text_file(path: str, uri: str) -> str:
            return f"{path} from {uri}"

        @moat.resource(uri="blob://x")
        def blob() -> bytes:
            return b"\x00\x01"

        r = moat.registry
        self.assertEqual(r.read_resource("config://limits"), moat.ResourceResult("config://limits", "application/json", '{"a": 1}'))
        self.assertEqual(r.read_resource("disk://web1/usage").body, "usage of web1")
        self.assertEqual(r.read_resource("file://a.txt.txt").body, "a.txt from file://a.txt.txt")
        self.assertEqual(r.read_resource("blob://x").body, b"\x00\x01")
        self.assertEqual(r.resources[0].description, "Limits.")
        for uri in ("disk://a/b/usage", "disk:///usage", "config://other"):
            with self.assertRaises(CallError) as cm:
                r.read_resource(uri)
            self.assertEqual(cm.exception.kind, "not-found")

    def test_errors(self):
        @moat.resource(uri="item://{id}")
        def item(id: str) -> str:
            if id == "none":
                raise moat.NotFound(f"no item {id}")
            raise OSError("disk on fire")

        with self.assertRaises(CallError) as cm:
            moat.registry.read_resource("item://none")
        self.assertEqual((cm.exception.kind, cm.exception.message), ("not-found", "no item none"))
        with self.assertRaises(CallError) as cm:
            moat.registry.read_resource("item://x")
        self.assertEqual((cm.exception.kind, cm.exception.message), ("failed", "OSError: disk on fire"))

    def test_declaration_errors(self):
        with self.assertRaisesRegex(TypeError, "needs a URI"):
            moat.resource(lambda: "")
        with self.assertRaisesRegex(TypeError, "add a parameter"):
            moat.resource(uri="x://{a}")(lambda: "")
        with self.assertRaisesRegex(TypeError, "not a variable"):
            moat.resource(uri="x://a")(lambda b: "")
        with self.assertRaisesRegex(ValueError, "not supported"):
            moat.resource(uri="x://{?q}")(lambda q: "")
        with self.assertRaisesRegex(ValueError, "absolute"):
            moat.resource(uri="relative/path")(lambda: "")


class PromptTest(unittest.TestCase):
    def setUp(self):
        moat.registry.clear()

    def tearDown(self):
        moat.registry.clear()

    def test_arguments_and_messages(self):
        @moat.prompt
        def triage(host: str, tone: str = "calm", extra: str | None = None) -> str:
            """Asks about disk pressure.

            Args:
                host: The host to check.
            """
            return f"Check {host} ({tone}, {extra})"

        @moat.prompt(name="chat", title="Chat")
        def conversation(topic: str):
            return [("user", f"Tell me about {topic}"), ("assistant", "Sure.")]

        p = moat.registry.prompts["triage"]
        self.assertEqual(p.description, "Asks about disk pressure.")
        self.assertEqual(
            [(a.name, a.description, a.required) for a in p.arguments],
            [("host", "The host to check.", True), ("tone", None, False), ("extra", None, False)],
        )
        r = moat.registry.get_prompt("triage", [("host", "web1")])
        self.assertEqual(r.messages, [("user", moat.Text("Check web1 (calm, None)"))])
        r = moat.registry.get_prompt("chat", {"topic": "disks"})
        self.assertEqual([role for role, _ in r.messages], ["user", "assistant"])
        for args, message in (([], "missing required argument `host`"), ([("host", "a"), ("x", "b")], "unknown argument `x`")):
            with self.assertRaises(CallError) as cm:
                moat.registry.get_prompt("triage", args)
            self.assertEqual((cm.exception.kind, cm.exception.message), ("invalid-arguments", message))
        with self.assertRaises(CallError) as cm:
            moat.registry.get_prompt("nope", [])
        self.assertEqual(cm.exception.kind, "not-found")

    def test_non_str_argument_is_refused(self):
        def p(n: int) -> str:
            return ""

        with self.assertRaisesRegex(TypeError, "must be a str"):
            moat.prompt(p)

    def test_bad_role(self):
        @moat.prompt
        def p() -> list:
            return [("system", "x")]

        with self.assertRaises(CallError) as cm:
            moat.registry.get_prompt("p", [])
        self.assertEqual(cm.exception.kind, "failed")


if __name__ == "__main__":
    unittest.main()
