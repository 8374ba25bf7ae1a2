"""The report page in a real headless Chromium (Debian's chromium + chromedriver, Selenium):
made from the fixture history, opened from file:// with the network closed, it logs no console
error, draws its charts with the inlined plotly.js, shows the matrix with the fixture's cells
per status, and a click on a cell opens its cases with their messages. Screenshots go to
$TEST_UNDECLARED_OUTPUTS_DIR (Bazel's outputs.zip)."""

import os
import tempfile

from absl.testing import absltest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tools.history import browser
from tools.history import fixture

CHARTS = ("chart-wall-time", "chart-case-statuses", "chart-slowest-targets", "chart-case-trends")


class ReportPageTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        browser.require()
        cls.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or cls.dir
        url = "sqlite:///" + os.path.join(cls.dir, "history.sqlite")
        fixture.record_all(os.path.join(cls.dir, "fixture"), url)
        cls.page = os.path.join(cls.dir, "report.html")
        rc, _, err = fixture.run_cli("report", "--db", url, "--out", cls.page, "--modules", fixture.modules_dir())
        assert rc == 0, err
        cls.browser = browser.chromium(log_path=os.path.join(cls.outputs, "chromedriver.log"))
        cls.driver = cls.browser.__enter__()
        cls.driver.get("file://" + cls.page)

    @classmethod
    def tearDownClass(cls):
        cls.browser.__exit__(None, None, None)
        super().tearDownClass()

    def tearDown(self):
        self.assert_no_console_error()  # also after each test's clicks
        super().tearDown()

    def assert_no_console_error(self):
        severe = [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        self.assertEqual(severe, [])

    def screenshot(self, name):
        path = os.path.join(self.outputs, name)
        self.assertTrue(self.driver.save_screenshot(path))
        kept = " (Bazel keeps it in test.outputs/outputs.zip)" if os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") else ""
        print(f"screenshot: {path}{kept}")
        return path

    def test_1_no_console_error(self):
        self.assert_no_console_error()

    def test_2_charts_draw_offline(self):
        self.assertEqual(self.driver.execute_script("return [...document.scripts].filter(s => s.src).length"), 0)
        self.assertEqual(self.driver.execute_script("return typeof Plotly.newPlot"), "function")
        for chart in CHARTS:
            svgs = self.driver.find_elements(By.CSS_SELECTOR, f"#{chart} svg.main-svg")
            self.assertNotEqual(svgs, [], f"{chart} drew nothing")

    def test_3_matrix_cells_per_status(self):
        counts = {status: len(self.driver.find_elements(By.CSS_SELECTOR, f"table.matrix .cell[data-status={status}]"))
                  for status in fixture.EXPECTED_CELLS}
        self.assertEqual(counts, fixture.EXPECTED_CELLS)
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, "table.matrix button.cell")),
                         sum(fixture.EXPECTED_CELLS.values()))
        height = self.driver.execute_script("return document.body.scrollHeight")
        self.driver.set_window_size(1400, min(height + 100, 6000))
        self.screenshot("report.png")
        self.driver.set_window_size(1400, 1000)

    def open_cell(self, status):
        """Clicks the matrix's first cell of `status`; returns its dialog once shown."""
        cell = self.driver.find_element(By.CSS_SELECTOR, f"table.matrix button.cell[data-status={status}]")
        cell.click()
        dialog = self.driver.find_element(By.ID, cell.get_attribute("data-dialog"))
        WebDriverWait(self.driver, 5).until(expected_conditions.visibility_of(dialog))
        return dialog

    def assert_message_visible(self, dialog, message):
        shown = [td for td in dialog.find_elements(By.CSS_SELECTOR, "td.message") if td.text == message]
        self.assertEqual(len(shown), 1, [td.text for td in dialog.find_elements(By.CSS_SELECTOR, "td.message")])
        self.assertTrue(shown[0].is_displayed())

    def test_4_a_click_on_a_cell_opens_its_cases(self):
        for dialog in self.driver.find_elements(By.CSS_SELECTOR, "dialog"):
            self.assertFalse(dialog.is_displayed())
        dialog = self.open_cell("failed")
        self.assert_message_visible(dialog, fixture.FAILED_MESSAGE)
        self.screenshot("report-failed-cell.png")
        dialog.send_keys(Keys.ESCAPE)
        WebDriverWait(self.driver, 5).until(expected_conditions.invisibility_of_element(dialog))
        dialog = self.open_cell("flaky")
        self.assertTrue(any(td.text in (fixture.FLAKY_MESSAGE, fixture.BAZEL_FLAKY_MESSAGE)
                            for td in dialog.find_elements(By.CSS_SELECTOR, "td.message") if td.is_displayed()))
        dialog.find_element(By.CSS_SELECTOR, "button.close").click()
        WebDriverWait(self.driver, 5).until(expected_conditions.invisibility_of_element(dialog))

    def rows(self, section):
        return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in self.driver.find_elements(By.CSS_SELECTOR, f"#{section} tbody tr")]

    def test_5_known_bugs_security_and_flaky_tables(self):
        bugs = self.rows("known-bugs")
        self.assertEqual([row[1] for row in bugs], ["MetadataPickleTest.test_metadata_pickle_runs_code",
                                                    "StoragePathTest.test_dotdot_storage_paths"])
        self.assertIn("2.13.0+cpu / 2: expected failure", bugs[0][5])
        self.assertEqual(bugs[1][3], "2.14")
        security = self.rows("security")
        self.assertEqual([row[0] for row in security], ["MetadataPickleTest.test_metadata_pickle_refused",
                                                        "MetadataPickleTest.test_metadata_pickle_runs_code"])
        self.assertEqual([row[1].splitlines()[0] for row in security], ["passed", "expected failure"])
        flaky = self.rows("flaky")
        self.assertEqual([(row[0], row[4]) for row in flaky], [("//dsd:dsd_api_test_gpu2", "33%"),
                                                               ("//dsd:fsdp_model_state_test_gpu4", "33%")])


if __name__ == "__main__":
    absltest.main()
