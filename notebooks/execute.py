"""Re-execute ``walkthrough.ipynb`` in place and record what was run.

Usage (from the repository root, in an environment with ``nbclient``,
``nbformat`` and ``ipykernel`` installed next to vipcore's dependencies)::

    python notebooks/execute.py                 # notebooks/walkthrough.ipynb
    python notebooks/execute.py path/to/other.ipynb

The notebook runs top to bottom in a fresh kernel whose ``PYTHONPATH``
starts with this checkout, so it imports the vipcore beside it. Its outputs
(figures as ``image/png``) are written back into the file, and the notebook
metadata gets a ``vipcore`` entry: the SHA-256 of the code cells' sources
(:func:`source_hash`), the wall time and the machine's load average. The
test suite compares that hash with the committed cells, so a notebook whose
code changed after it was executed fails until it is executed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
#: Key of this script's entry in the notebook metadata.
METADATA_KEY = "vipcore"


def source_hash(nb: dict) -> str:
    """SHA-256 (hex) of the code cells' sources, in order.

    ``nb`` is the notebook as parsed JSON (or an ``nbformat`` node). A cell's
    source may be stored as one string or as a list of lines; both hash the
    same.
    """
    sources = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"]
            sources.append(src if isinstance(src, str) else "".join(src))
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def execute(path: Path = NOTEBOOK, *, timeout: int = 600) -> dict:
    """Run the notebook at ``path`` in a fresh kernel and write it back.

    Returns the metadata entry written. Raises ``nbclient``'s
    ``CellExecutionError`` (and leaves the file untouched) if a cell fails.
    """
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}
                            ).execute()
    entry = {"source_sha256": source_hash(nb),
             "wall_seconds": round(time.perf_counter() - start, 1),
             "load_average": [round(x, 2) for x in os.getloadavg()]}
    nb.metadata[METADATA_KEY] = entry
    nbformat.validate(nb)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return entry


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOK
    print(json.dumps(execute(target.resolve())))
