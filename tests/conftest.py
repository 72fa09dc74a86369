"""Markers of the test suite."""


def pytest_configure(config):
    config.addinivalue_line('markers', 'services: needs real services (SLURM, XRootD, sshd) that tests/services/*.sh start on loopback; '
                                       'skipped with the reason when they cannot start, an error under LARVAE_REQUIRE_SERVICES=1 (CI)')
