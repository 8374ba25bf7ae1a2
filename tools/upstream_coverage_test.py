"""tools/catalogue.py's upstream-coverage check (coverage_problems) on a hand-made repository, and
tools/upstream_coverage.py's computed verdicts: a covered entry whose case lacks an identifier,
cites a case that does not exist, or is malformed fails --check with a line naming the upstream
function, the case and the identifier (absltest; also runs under pytest, without Bazel)."""

import os
import sys
import tempfile
import textwrap

from absl.testing import absltest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools import upstream_coverage_check  # noqa: E402
from tools import upstream_coverage as uc  # noqa: E402
from tools.upstream_coverage import covered  # noqa: E402
from tools.upstream_coverage import not_applicable  # noqa: E402
from tools.upstream_coverage import not_covered  # noqa: E402

FILES = {
    "dsd/widget_test.py": '''
        """A scenario module."""
        from dsd import widget_checks
        from models.fixture import fixture_function
        from testing.helpers import save_through_fsspec


        def local_helper(x):
            return x.local_only_identifier()


        class Faulty:
            def write(self):
                return "faulty_writer_identifier"


        class WidgetTest(widget_checks.WidgetCase):

            def test_direct(self):
                """mentions docstring_only_identifier"""
                # comment_only_identifier
                self.assertEqual(load_sharded_optimizer_state_dict(), fixture_function())

            def test_through_helpers(self, layout):
                local_helper(layout)
                save_through_fsspec(self.inherited_check(), Faulty())

            def test_plain(self):
                pass
    ''',
    "dsd/widget_checks.py": '''
        class WidgetCase:
            def inherited_check(self):
                return self.overridable()

            def overridable(self):
                return "base_identifier"
    ''',
    "testing/helpers.py": '''
        def save_through_fsspec(*args):
            return FsspecReader(*args)
    ''',
    "models/fixture.py": '''
        def fixture_function():
            return fixture_body_identifier
    ''',
}
TARGETS = {("dsd", "widget_test", "dsd.widget_test"): ["gpu2"]}


class CoverageProblemsTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
        for path, text in FILES.items():
            os.makedirs(os.path.join(self.root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(self.root, path), "w") as f:
                f.write(textwrap.dedent(text))

    def problems(self, entry):
        return upstream_coverage_check.coverage_problems(TARGETS, {"test_up.py": {"TestUp.test_fn": entry}}, root=self.root)

    def test_identifiers_in_the_case_or_the_helpers_it_calls_pass(self):
        for case, uses in (
            ("widget_test.WidgetTest.test_direct", ("load_sharded_optimizer_state_dict",)),
            ("widget_test.WidgetTest.test_through_helpers",
             ("local_only_identifier", "FsspecReader", "base_identifier", "faulty_writer_identifier")),
        ):
            with self.subTest(case=case):
                self.assertEqual(self.problems(covered([case], uses=uses, what="w")), [])

    def test_a_case_that_lacks_an_identifier_is_reported(self):
        problems = self.problems(covered(["widget_test.WidgetTest.test_plain"],
                                         uses=("load_sharded_optimizer_state_dict",), what="w"))
        self.assertLen(problems, 1)
        self.assertIn("test_up.py TestUp.test_fn", problems[0])
        self.assertIn("widget_test.WidgetTest.test_plain", problems[0])
        self.assertIn("'load_sharded_optimizer_state_dict'", problems[0])

    def test_docstrings_comments_fixtures_and_longer_names_do_not_count(self):
        for use in ("docstring_only_identifier", "comment_only_identifier", "fixture_body_identifier",
                    "load_sharded_optimizer"):
            with self.subTest(use=use):
                problems = self.problems(covered(["widget_test.WidgetTest.test_direct"], uses=(use,), what="w"))
                self.assertLen(problems, 1)
                self.assertIn(repr(use), problems[0])

    def test_every_cited_case_must_use_every_identifier(self):
        problems = self.problems(covered(["widget_test.WidgetTest.test_direct",
                                          "widget_test.WidgetTest.test_through_helpers"],
                                         uses=("FsspecReader",), what="w"))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("widget_test.WidgetTest.test_direct does not use 'FsspecReader'", problems[0])

    def test_missing_cases_and_modules_are_reported(self):
        for case, message in (("widget_test.WidgetTest.test_gone", "no such case"),
                              ("widget_test.WidgetTest", "no such case"),
                              ("widget_test.WidgetTest.inherited_check", "no such case"),
                              ("gadget_test.GadgetTest.test_x", "no scenario module gadget_test")):
            with self.subTest(case=case):
                problems = self.problems(covered([case], uses=("x",), what="w"))
                self.assertLen(problems, 1)
                self.assertIn(f"test_up.py TestUp.test_fn: {case}", problems[0])
                self.assertIn(message, problems[0])

    def test_malformed_entries_are_reported(self):
        for entry in (covered(["widget_test.WidgetTest.test_direct"], uses=(), what="w"),
                      not_covered("says what, not what is missing"),
                      not_applicable("because")):
            with self.subTest(entry=entry):
                self.assertLen(self.problems(entry), 1)
        whole_file = upstream_coverage_check.coverage_problems(TARGETS, {"test_up.py": not_applicable("unit: x")}, root=self.root)
        self.assertLen(whole_file, 1)


class VerdictsTest(absltest.TestCase):

    def test_file_verdicts_are_computed_from_the_functions(self):
        table = {
            "all.py": {"A.test_a": covered(["m.C.test_x"], uses=("x",), what="w"),
                       "A.test_b": not_applicable("unit: y")},
            "some.py": {"A.test_a": covered(["m.C.test_x"], uses=("x",), what="w"),
                        "A.test_b": not_covered("w; missing: z")},
            "none.py": {"A.test_a": not_covered("w; missing: z"), "A.test_b": not_applicable("CUDA: y")},
            "na.py": not_applicable("unit: y", functions=("A.test_a", "A.test_b")),
        }
        saved = uc.FUNCTIONS
        try:
            uc.FUNCTIONS = table
            self.assertEqual({f: uc.verdict(f) for f in table},
                             {"all.py": "covered", "some.py": "partly", "none.py": "not covered",
                              "na.py": "not applicable"})
            by_function, by_file = uc.counts()
            self.assertEqual(dict(by_function), {"covered": 2, "not covered": 2, "not applicable": 4})
            self.assertEqual(sum(by_file.values()), 4)
        finally:
            uc.FUNCTIONS = saved

    def test_the_data_is_well_formed(self):
        for upstream in uc.FUNCTIONS:
            for fid, entry in uc.functions(upstream).items():
                with self.subTest(upstream=upstream, function=fid):
                    self.assertIn(entry.status, uc.STATUSES)
                    if entry.status == "covered":
                        self.assertTrue(entry.cases and entry.uses and entry.what)
                        self.assertTrue(all(c.count(".") >= 2 for c in entry.cases), entry.cases)  # [package.]module.Class.method
                    elif entry.status == "not covered":
                        self.assertIn("missing:", entry.what)
                        self.assertTrue(uc.missing(entry))
                    else:
                        self.assertTrue(entry.what.startswith(uc.NOT_APPLICABLE_KINDS), entry.what)


if __name__ == "__main__":
    absltest.main()
