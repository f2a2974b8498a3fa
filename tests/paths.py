"""Where things are, for every test: the repository, the shared data, the test fixtures."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"  # ../shared/data, read-only; tests skip without it
