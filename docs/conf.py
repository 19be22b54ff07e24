"""Sphinx configuration of the Goodhart Gridworlds documentation (Sphinx + furo + MyST).

Build it strictly, as CI does (warnings, broken references and missing pictures fail)::

    pip install -e '.[docs]'
    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

The environment, reproduction, command-line and API pages are generated from the project at
every build (``_ext/goodhart_pages.py``) into folders git ignores. The tutorial notebook is
executed and cached (jupyter-cache, in ``_build/.jupyter_cache``); set
``GOODHART_DOCS_EXECUTE=off`` to skip running it for a fast local build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # anything that renders runs headless
os.environ.setdefault("MPLBACKEND", "Agg")

from goodhart import __version__

project = "Goodhart Gridworlds"
author = "Goodhart Gridworlds contributors"
copyright = "the Goodhart Gridworlds contributors"
release = __version__
version = __version__

extensions = [
    "myst_nb",  # MyST Markdown pages and notebooks (it brings myst_parser)
    "sphinx.ext.autodoc",
    "goodhart_pages",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_ext",
    "jupyter_execute",
    "**/.ipynb_checkpoints",
    # The committed reports are not pages of their own: each reproduction's page embeds its own.
    "results/**",
    # Fragments included by other pages.
    "**/*.inc.md",
]

# ---------------------------------------------------------------------------- MyST
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# "more than one target found" (a type hint such as ``set`` that also names attributes): the
# first is linked; ambiguity is not a broken reference.
suppress_warnings = ["ref.python"]

# ---------------------------------------------------------------------------- notebooks
_EXECUTE = os.environ.get("GOODHART_DOCS_EXECUTE", "cache").strip().lower()
nb_execution_mode = "off" if _EXECUTE in {"off", "0", "no", "false"} else "cache"
nb_execution_timeout = 900  # seconds per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_merge_streams = True

# ---------------------------------------------------------------------------- API
# The docstrings' Google-style sections (Args:, Attributes:, Returns:) are read by napoleon's
# parser, called from goodhart_pages (not as an extension: see _on_docstring there).
autodoc_inherit_docstrings = False  # gymnasium's and stable-baselines3's are theirs to render
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": False}
autodoc_mock_imports = ["ray", "minigrid"]  # optional extras, never needed to read the docs
# Without network there is no intersphinx: references to other projects' objects (in type
# hints and docstrings) stay plain text instead of failing the nitpicky build.
nitpick_ignore_regex = [
    (r"py:.*", r"(np|numpy|torch|th|gym|gymnasium|stable_baselines3|sb3|pydantic|typer|click|yaml|matplotlib|scipy|ray|safetensors|imageio|pygame|rich|tqdm|tensorboard|minigrid|array_api_compat)(\..*)?"),
    (r"py:.*", r"(typing|collections|collections\.abc|pathlib|dataclasses|concurrent|multiprocessing|subprocess|os|io|enum|abc|types|argparse|contextlib|json|logging|queue|threading)\..*"),
    (r"py:.*", r"(annotated_types|pydantic_core)\..*|_Pydantic.*|.*\[.*"),  # pydantic field metadata; split generics
    # Members of other projects' base classes (gymnasium's Env, stable-baselines3's VecEnv,
    # torch's Module) that the docstrings name as such.
    (r"py:(attr|meth)", r"(render_mode|metadata|reset|step|action_space|observation_space|np_random|np_random_seed|env|unwrapped|get_images)"),
    (r"py:class", r"(Module|VecEnv|Env|VectorEnv|Wrapper|PPO|BaseModel)"),
    (r"py:.*", r"(Path|Any|Callable|Iterator|Iterable|Mapping|Sequence|ClassVar|Literal|Self|TypeVar|NDArray|ndarray|Tensor|Generator|Protocol)"),
]

# ---------------------------------------------------------------------------- HTML
html_theme = "furo"
html_title = "Goodhart Gridworlds"
html_static_path: list[str] = []
html_theme_options = {"sidebar_hide_name": False}
