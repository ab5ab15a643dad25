"""The exports (`moat._world`) and the real host calls, over stand-in bindings.

componentize-py generates `wit_world` and `componentize_py_types` inside a
build; here small look-alikes of the parts moat uses stand in for them.
"""

import dataclasses
import enum
import json
import sys
import types
import unittest
from dataclasses import dataclass
from typing import Any, Optional

from tests import __name__ as _  # noqa: F401  (puts the SDK on the path)

import moat

_MODULES = [
    "componentize_py_types",
    "wit_world",
    "wit_world.exports",
    "wit_world.imports",
    "wit_world.imports.types",
    "wit_world.imports.log",
    "wit_world.imports.progress",
    "wit_world.imports.volume_stats",
    "wit_world.imports.caller",
    "moat._world",
]


def _records(module, spec):
    """Adds dataclasses named in `spec` ({name: field names}) to `module`."""
    for name, fields in spec.items():
        setattr(module, name, dataclasses.make_dataclass(name, fields))


def install_fake_bindings(calls):
    cpt = types.ModuleType("componentize_py_types")

    @dataclass(frozen=True)
    class Err(Exception):
        value: Any

    cpt.Err = Err
    world = types.ModuleType("wit_world")
    exports = types.ModuleType("wit_world.exports")
    for name in ("Tools", "Resources", "Prompts"):
        setattr(exports, name, type(name, (), {}))
    imports = types.ModuleType("wit_world.imports")
    t = types.ModuleType("wit_world.imports.types")
    _records(
        t,
        {
            "ToolAnnotations": ["read_only", "destructive", "idempotent", "open_world"],
            "Tool": ["name", "title", "description", "input_schema", "output_schema", "annotations"],
            "ToolOutput": ["content", "structured"],
            "Media": ["data", "mime_type"],
            "Content_Text": ["value"],
            "Content_Image": ["value"],
            "Content_Audio": ["value"],
            "CallError_Failed": ["value"],
            "CallError_InvalidArguments": ["value"],
            "CallError_NotFound": ["value"],
            "Resource": ["uri", "name", "title", "description", "mime_type"],
            "ResourceTemplate": ["uri_template", "name", "title", "description", "mime_type"],
            "ResourceContents": ["uri", "mime_type", "body"],
            "ResourceBody_Text": ["value"],
            "ResourceBody_Blob": ["value"],
            "Prompt": ["name", "title", "description", "arguments"],
            "PromptArgument": ["name", "description", "required"],
            "PromptMessage": ["role", "content"],
            "PromptResult": ["description", "messages"],
        },
    )
    t.Role = enum.Enum("Role", {"USER": 0, "ASSISTANT": 1})
    log = types.ModuleType("wit_world.imports.log")
    log.Level = enum.Enum("Level", {"DEBUG": 0, "INFO": 1, "NOTICE": 2, "WARNING": 3, "ERROR": 4})
    log.log = lambda level, message: calls.append(("log", level, message))
    progress = types.ModuleType("wit_world.imports.progress")
    progress.report = lambda p, total, message: calls.append(("progress", p, total, message))
    vs = types.ModuleType("wit_world.imports.volume_stats")
    _records(vs, {"Stats": ["total_bytes", "free_bytes", "available_bytes"], "StatsError_NotGranted": ["value"]})

    def stat(path):
        if path == "/data":
            return vs.Stats(10, 5, 4)
        raise Err(vs.StatsError_NotGranted(f"{path} is not granted"))

    vs.stat = stat
    caller = types.ModuleType("wit_world.imports.caller")
    _records(caller, {"CallerIdentity": ["subject", "scopes", "client_id"]})
    caller.identity = lambda: caller.CallerIdentity("bob", ["a", "b"], None)
    imports.types, imports.log, imports.progress, imports.volume_stats, imports.caller = t, log, progress, vs, caller
    world.exports, world.imports = exports, imports
    for m in (cpt, world, exports, imports, t, log, progress, vs, caller):
        sys.modules[m.__name__] = m
    return Err, t


@dataclass
class Out:
    value: int
    maybe: Optional[str] = None


class WorldTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.saved = {name: sys.modules.get(name) for name in _MODULES}
        cls.calls = []
        cls.Err, cls.t = install_fake_bindings(cls.calls)
        import moat._world as world

        cls.world = world

    @classmethod
    def tearDownClass(cls):
        for name, module in cls.saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        if hasattr(moat, "_world"):
            del moat._world

    def setUp(self):
        moat.registry.clear()
        moat.set_host(None)  # the real host: the stand-in bindings
        self.calls.clear()

    def tearDown(self):
        moat.registry.clear()
        moat.set_host(None)

    def test_tools(self):
        @moat.tool(read_only=True)
        def f(n: int) -> Out:
            """Doubles.

            Args:
                n: A number.
            """
            moat.log("doubling", "notice")
            moat.progress(0.5, 1.0)
            if n < 0:
                raise moat.ToolError("negative")
            return Out(n * 2)

        @moat.tool
        def pic() -> moat.Image:
            """A picture."""
            return moat.Image(b"x", "image/png")

        tools = self.world.Tools()
        [listed, _] = tools.list_tools()
        self.assertEqual(listed.name, "f")
        self.assertEqual(json.loads(listed.input_schema)["properties"]["n"]["description"], "A number.")
        self.assertEqual(json.loads(listed.output_schema)["required"], ["value"])
        self.assertTrue(listed.annotations.read_only)
        out = tools.call_tool("f", '{"n": 2}')
        self.assertEqual(out.content, [])
        self.assertEqual(json.loads(out.structured), {"value": 4})
        self.assertEqual(self.calls[0][0], "log")
        self.assertEqual(self.calls[0][1].name, "NOTICE")
        self.assertEqual(self.calls[1], ("progress", 0.5, 1.0, None))
        self.assertEqual(tools.call_tool("pic", "{}").content[0].value.mime_type, "image/png")
        for args, kind in (('{"n": -1}', "CallError_Failed"), ('{"n": "x"}', "CallError_InvalidArguments")):
            with self.assertRaises(self.Err) as cm:
                tools.call_tool("f", args)
            self.assertEqual(type(cm.exception.value).__name__, kind)
        with self.assertRaises(self.Err) as cm:
            tools.call_tool("g", "{}")
        self.assertIsInstance(cm.exception.value, self.t.CallError_NotFound)

    def test_resources(self):
        @moat.resource(uri="a://fixed", mime_type="text/plain")
        def fixed() -> str:
            """Fixed."""
            return "text"

        @moat.resource(uri="a://blob/{name}")
        def blob(name: str) -> bytes:
            return name.encode()

        r = self.world.Resources()
        self.assertEqual([x.uri for x in r.list_resources()], ["a://fixed"])
        self.assertEqual([x.uri_template for x in r.list_resource_templates()], ["a://blob/{name}"])
        [c] = r.read_resource("a://fixed")
        self.assertEqual((c.uri, c.mime_type, c.body), ("a://fixed", "text/plain", self.t.ResourceBody_Text("text")))
        [c] = r.read_resource("a://blob/xy")
        self.assertEqual(c.body, self.t.ResourceBody_Blob(b"xy"))
        with self.assertRaises(self.Err):
            r.read_resource("a://nothing")

    def test_prompts(self):
        @moat.prompt
        def p(topic: str) -> list:
            """P."""
            return [("user", topic), ("assistant", "ok")]

        pr = self.world.Prompts()
        [listed] = pr.list_prompts()
        self.assertEqual(listed.arguments, [self.t.PromptArgument("topic", None, True)])
        result = pr.get_prompt("p", [("topic", "disks")])
        self.assertEqual([m.role for m in result.messages], [self.t.Role.USER, self.t.Role.ASSISTANT])
        self.assertEqual(result.messages[0].content, self.t.Content_Text("disks"))
        with self.assertRaises(self.Err):
            pr.get_prompt("p", [])

    def test_host_calls(self):
        self.assertEqual(moat.volume_stats("/data"), moat.VolumeStats(10, 5, 4))
        with self.assertRaises(moat.VolumeStatsError) as cm:
            moat.volume_stats("/etc")
        self.assertEqual((cm.exception.kind, str(cm.exception)), ("not-granted", "/etc is not granted"))
        self.assertEqual(moat.caller(), moat.Caller("bob", ["a", "b"], None))


if __name__ == "__main__":
    unittest.main()
