"""Sample photos shipped with the package (see README.md here)."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
SAME_PERSON = (SAMPLES_DIR / "Colin_Powell_0001.jpg", SAMPLES_DIR / "Colin_Powell_0002.jpg")
OTHER_PERSON = SAMPLES_DIR / "Tony_Blair_0001.jpg"
