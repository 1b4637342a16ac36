"""Tests that drive headless Chromium (Debian's chromium through Playwright)."""
