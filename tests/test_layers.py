"""The package's shape: imports point downward through the layers of docs/ARCHITECTURE.md, and the
commands that only read headers never import torch (that is what keeps them fast)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "invcomp"
# lowest first; a module may import only from its own layer or lower ones
LAYERS = ["errors", "files", "distributed", "formats", "io", "metrics", "models", "inversion", "masks", "enhance", "domain",
          "options",
          "codec",
          "pillow", "archive", "bench", "cli"]


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("invcomp"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("invcomp"))
    return found


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module in ("invcomp.__init__", "invcomp.__main__"):
            continue
        assert _layer(module) >= 0, module


def test_imports_point_downward():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if module in ("invcomp.__init__", "invcomp.__main__"):
            continue
        for target in _imports(path):
            if _layer(target) > _layer(module):
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_modules_stay_small():
    big = [(p.name, n) for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500]
    assert not big, big


@pytest.mark.parametrize("args", [["--help"], ["models"], ["info", "{icz}"], ["ls", "{icza}"], ["verify", "{icza}"]])
def test_header_commands_do_not_import_torch(args):
    vectors = Path(__file__).resolve().parent / "vectors" / "0.1.0"
    args = [a.format(icz=vectors / "airplanes32_default.icz", icza=vectors / "airplanes32_samples.icza") for a in args]
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom invcomp.cli import app\n"
            f"r = CliRunner().invoke(app, {args!r})\n"
            "assert r.exit_code == 0, r.output\n"
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    torch, numpy = out.stdout.strip().splitlines()[-1].split()
    assert torch == "False"
    assert numpy == ("True" if args[0] == "verify" else "False")  # verify decodes every image's codes
