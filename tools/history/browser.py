"""A headless Chromium driven by Selenium through Debian's chromedriver, for the report's test.

The network is closed: no Selenium Manager download, no Google services, a fresh profile.
A missing browser fails with one line naming what to install (never a skip).
"""

import contextlib
import os
import shutil
import tempfile

from tools.testing import host_tools

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")


def require():
    """(chromium, chromedriver) paths from @report_browser (tools/testing/host_tools.py), or
    HostToolMissing naming what to install."""
    browser = host_tools.entry("chromium")
    return browser["path"], browser["driver"]


@contextlib.contextmanager
def chromium(log_path=None):
    """A selenium WebDriver on a headless Chromium with a fresh profile, which records the
    page's console (driver.get_log("browser")); quit and the profile removed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = require()
    profile = tempfile.mkdtemp(prefix="dsd-history-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads anything
    service = Service(executable_path=driver_path, log_output=log_path or os.devnull,
                      service_args=["--log-level=WARNING"])
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
