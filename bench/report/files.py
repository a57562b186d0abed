"""The report's files: ``<run id>.json``, ``<run id>.md`` and their ``latest.*`` copies."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from .tables import markdown


def write_reports(result: dict, out_dir: Path, run_id: str) -> dict[str, Path]:
    """Write `<run_id>.json` and `.md` (and `latest.*` copies) into `out_dir`; returns
    {"json": path, "md": path}.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{run_id}.json", "md": out_dir / f"{run_id}.md"}
    paths["json"].write_text(json.dumps(result, indent=1, default=str))
    paths["md"].write_text(markdown(result))
    shutil.copyfile(paths["json"], out_dir / "latest.json")
    shutil.copyfile(paths["md"], out_dir / "latest.md")
    return paths
