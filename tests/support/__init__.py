"""Helpers shared by the test suites: fakes, servers, ports, polling."""
