"""Demo assets for `edge run` without arguments (README.md here; made by scripts/make-demo)."""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
DEMO_CLIP = DEMO_DIR / "hamilton_clip.mp4"
DEMO_WATCHLIST = DEMO_DIR / "watchlist"
DEMO_PUBLIC_KEY = DEMO_DIR / "demo-keys" / "watchlist-signing.pub"  # DEMO ONLY
