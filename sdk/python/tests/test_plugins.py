"""The Python plugins in this repository, run natively through the registry."""

import importlib
import json
import os
import sys
import tempfile
import unittest

from tests import __name__ as _  # noqa: F401  (puts the SDK on the path)

import moat

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def load(directory, *extra_path):
    """Imports `app.py` from `directory` into a fresh registry."""
    moat.registry.clear()
    for name in ("app", "probe_version"):
        sys.modules.pop(name, None)
    saved = list(sys.path)
    sys.path[:0] = [*extra_path, directory]
    try:
        return importlib.import_module("app")
    finally:
        sys.path[:] = saved


class WordCountTest(unittest.TestCase):
    def setUp(self):
        self.app = load(os.path.join(ROOT, "plugins", "word_count_py"))

    def call(self, args):
        return json.loads(moat.registry.call_tool("py_word_count", json.dumps(args)).structured)

    def test_counts(self):
        self.assertEqual(self.call({"text": "Hello hello world\nbye"}), {"words": 4, "lines": 2, "chars": 21})
        self.assertEqual(
            self.call({"text": "Hello hello world\nbye", "unique": True}),
            {"words": 4, "lines": 2, "chars": 21, "unique_words": 3},
        )
        self.assertEqual(self.call({"text": ""}), {"words": 0, "lines": 0, "chars": 0})
        self.assertEqual(self.call({"text": "héllo 🌍"})["chars"], 7)

    def test_catalogue(self):
        t = moat.registry.tools["py_word_count"]
        self.assertTrue(t.annotations.read_only and t.annotations.idempotent)
        self.assertEqual(t.input_schema["required"], ["text"])
        self.assertEqual(t.input_schema["properties"]["unique"]["default"], False)
        self.assertEqual(t.output_schema["required"], ["words", "lines", "chars"])
        self.assertEqual(moat.registry.read_resource("wordcount://py/about").mime_type, "text/plain")
        self.assertIn("three sentences", moat.registry.get_prompt("py_summarize", [("text", "x")]).messages[0][1].text)

    def test_author_code_is_small(self):
        with open(os.path.join(ROOT, "plugins", "word_count_py", "app.py")) as f:
            lines = [line for line in f if line.strip() and not line.strip().startswith("#")]
        self.assertLess(len(lines), 25)


class ProbeTest(unittest.TestCase):
    def test_tools(self):
        load(os.path.join(ROOT, "tests", "plugins", "py_probe"))
        r = moat.registry
        self.assertTrue(all(name.startswith("py_probe_") for name in r.tools))
        self.assertEqual(r.call_tool("py_probe_alloc", '{"mb": 2}').content, [moat.Text("2")])
        with self.assertRaises(moat.CallError) as cm:
            r.call_tool("py_probe_raise", '{"message": "boom"}')
        self.assertEqual(cm.exception.message, "ValueError: boom")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("contents")
        try:
            self.assertEqual(r.call_tool("py_probe_read", json.dumps({"path": f.name})).content, [moat.Text("contents")])
        finally:
            os.unlink(f.name)
        self.assertEqual(json.loads(r.call_tool("py_probe_version", "{}").structured), {"version": 1})

    def test_next_build_reports_version_2(self):
        probe = os.path.join(ROOT, "tests", "plugins", "py_probe")
        load(probe, os.path.join(probe, "next"))
        self.assertEqual(json.loads(moat.registry.call_tool("py_probe_version", "{}").structured), {"version": 2})

    def tearDown(self):
        moat.registry.clear()
        for name in ("app", "probe_version"):
            sys.modules.pop(name, None)


if __name__ == "__main__":
    unittest.main()
