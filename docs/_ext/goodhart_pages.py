"""The documentation pages generated from the project at build time, so that they cannot drift.

A Sphinx extension (hooked on ``builder-inited``) and a plain module (``tests/test_docs.py``
calls its functions without Sphinx). It writes MyST pages into folders of ``docs/`` that git
ignores (:data:`GENERATED`):

* ``environments/``: one page per env registered with Gymnasium under the ``goodhart/``
  namespace, built from the class docstring's **Section.** paragraphs, the attributes the class
  declares (``DISTRIBUTIONS``, ``OUTCOMES``, ``ORACLES``, ``HEADLINE``...), the knobs of its
  constructor's signature, its picture (made by ``scripts/render_envs.py``), its demo GIFs
  (found through the demo registry, ``agents/pretrained/demos.yaml``) and the reproductions
  that use it; ``environments/grid.inc.md`` is the front page's picture grid;
* ``reproductions/``: one page per reproduction spec (``experiments/reproductions/*.yaml``,
  read by the project's loader), with its committed report (``docs/results/<name>/``);
* ``cli.md``: the ``goodhart`` command's reference, rendered from the click objects of its
  typer app;
* ``api.md`` and ``api/``: autodoc pages of the public packages, one section per module.

The principle: the env is the only place that knows the env. Nothing here names an env class or
id; what a page says comes from the registry and the declared attributes.
"""

from __future__ import annotations

import inspect
import os
import pkgutil
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
RESULTS = DOCS / "results"
NAMESPACE = "goodhart/"

# What the generator owns in docs/: these folders and files are rewritten on every build (and
# ignored by git). A file in the folders that the build no longer makes is removed.
GENERATED_DIRS = ("environments", "reproductions", "api")
GENERATED_FILES = ("cli.md", "api.md")
GENERATED = (*GENERATED_DIRS, *GENERATED_FILES)

# Docstring sections every env page must have (a section matches when its title, lower-cased,
# contains one of the words): tests/test_docs.py holds every registered env to them.
REQUIRED_SECTIONS = {
    "description": ("description",),
    "rewards / true objective": ("reward", "true objective"),
    "distributions": ("distribution",),
    "knobs": ("knob",),
    "outcomes": ("outcome",),
}

# The public packages of the API reference; each page documents the package and its modules.
API_PACKAGES = (
    "goodhart.envs",
    "goodhart.envs.core",
    "goodhart.agents",
    "goodhart.experiments",
    "goodhart.experiments.engine",
    "goodhart.experiments.reward_learning",
    "goodhart.experiments.teaching",
    "goodhart.experiments.bench",
)


# ------------------------------------------------------------------------------ markup
_ROLE = re.compile(r":(?P<role>[a-z]+(?::[a-z]+)?):`(?P<target>[^`]+)`")
_LITERAL = re.compile(r"``(?P<code>[^`]+?)``")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s")


def separate_lists(lines: list[str]) -> list[str]:
    """``lines`` with a blank line before a list that follows a paragraph line and after one
    that a paragraph line follows: the docstrings write lists without them, which Markdown and
    reStructuredText both read as the paragraph's text (reStructuredText then fails on the
    items' indented continuation lines)."""
    out: list[str] = []
    list_indent = None  # the indentation of the items of the list being read, if any
    paragraph = ""  # the text since the last blank line: an item cannot start inside a code span
    for line in lines:
        stripped = line.strip()
        in_code = len(re.findall(r"`+", paragraph)) % 2 == 1
        paragraph = paragraph + " " + stripped if stripped else ""
        indent = len(line) - len(line.lstrip())
        previous = out[-1] if out else ""
        if stripped:
            if _LIST_ITEM.match(stripped) and not in_code and (list_indent is None or indent <= list_indent):
                if previous.strip() and list_indent is None and indent <= len(previous) - len(previous.lstrip()):
                    out.append("")
                list_indent = indent
            elif list_indent is not None and indent <= list_indent:
                if previous.strip():
                    out.append("")
                list_indent = None
        out.append(line)
    return out


def escape(text: str) -> str:
    """Plain text (help strings) as Markdown: code spans kept, the rest escaped where Markdown
    would read it as markup (emphasis, HTML, links, roles)."""
    parts = re.split(r"(`[^`]+`)", text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\\*_<>\[\]{}|$#])", r"\\\1", parts[i])
    return "".join(parts)


def markdown(text: str) -> str:
    """A docstring passage (reStructuredText as the project writes it) as MyST Markdown."""
    text = _ROLE.sub(lambda m: "{py:" + m["role"].split(":")[-1] + "}`" + m["target"] + "`" if ":" not in m["role"] else "{" + m["role"] + "}`" + m["target"] + "`", text)
    text = _LITERAL.sub(lambda m: f"`{m['code']}`", text)
    lines: list[str] = []
    source = text.splitlines()
    i = 0
    while i < len(source):  # literal blocks (``::`` then an indented block) as code fences
        line = source[i]
        lines.append(line[:-1] if line.rstrip().endswith("::") else line)
        i += 1
        if line.rstrip().endswith("::"):
            block: list[str] = []
            while i < len(source) and (not source[i].strip() or source[i].startswith(" ")):
                block.append(source[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            body = inspect.cleandoc("\n".join(block))
            lines += ["", "```text", *body.splitlines(), "```", ""]
    return "\n".join(separate_lists(lines)).strip()


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table; cells are Markdown (``|`` escaped, lines joined)."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(c).replace("\n", " ").replace("|", "\\|") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def code(value: Any) -> str:
    """``value`` as an inline code span."""
    text = value if isinstance(value, str) else repr(value)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if text else "(empty)"


def relative(path: Path, page: Path) -> str:
    """``path`` relative to the folder of ``page`` (both under docs/), POSIX style."""
    return Path(os.path.relpath(path, page.parent)).as_posix()


# ------------------------------------------------------------------------------ envs
_SECTION = re.compile(r"^\*\*(?P<title>[A-Z][^*\n]*?)\.?\*\*(?P<rest>.*)$")


def registered_envs() -> dict[str, type]:
    """Env id -> its core class, for every env registered with Gymnasium under the
    ``goodhart/`` namespace (importing the package registers them)."""
    import gymnasium as gym

    import_module("goodhart")
    return {
        env_id: spec.kwargs["core"]
        for env_id, spec in sorted(gym.registry.items())
        if env_id.startswith(NAMESPACE) and "core" in (spec.kwargs or {})
    }


def docstring_sections(cls: type) -> tuple[str, dict[str, str]]:
    """The class docstring's summary (the text before its first section) and its
    ``**Section.**`` paragraphs, title -> text (as written: reStructuredText), in order. A
    section runs from its bold title at the start of a line to the next one."""
    summary: list[str] = []
    sections: dict[str, list[str]] = {}
    current = summary
    for line in (inspect.getdoc(cls) or "").splitlines():
        found = _SECTION.match(line)
        if found:
            current = sections.setdefault(found["title"].strip(), [])
            rest = found["rest"].strip()
            if rest:
                current.append(rest)
        else:
            current.append(line)
    return "\n".join(summary).strip(), {title: "\n".join(lines).strip() for title, lines in sections.items()}


def required_sections(sections: Mapping[str, str]) -> dict[str, str]:
    """Each of :data:`REQUIRED_SECTIONS` -> the text of the sections that make it (joined),
    empty where the docstring has none."""
    found = {}
    for name, words in REQUIRED_SECTIONS.items():
        texts = [text for title, text in sections.items() if any(w in title.lower() for w in words)]
        found[name] = "\n\n".join(t for t in texts if t.strip())
    return found


@dataclass
class Knob:
    name: str
    default: Any
    annotation: str
    declared_by: str


def knobs(cls: type) -> list[Knob]:
    """The constructor's keyword arguments (the class's own, then those it passes on to its
    bases through ``**common``), with their defaults as the class sets them."""
    found: dict[str, Knob] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.name in found:
                continue
            annotation = param.annotation if isinstance(param.annotation, str) else inspect.formatannotation(param.annotation)
            found[param.name] = Knob(param.name, param.default, "" if annotation == "_empty" else annotation, klass.__name__)
    return list(found.values())


def demos_of(env_id: str) -> list[Any]:
    """The demos of the registry (``agents/pretrained/demos.yaml``) that play ``env_id``."""
    from goodhart.agents import pretrained

    return [demo for demo in pretrained.DEMOS.values() if demo.env == env_id]


def demo_gif(demo: Any) -> Path:
    """Where the README's GIF of ``demo`` is (``goodhart record NAME --out docs/demo_NAME.gif``)."""
    return DOCS / f"demo_{demo.name}.gif"


def env_picture(env_id: str) -> Path:
    """The env's picture, one level of each distribution side by side, as
    ``scripts/render_envs.py`` names it."""
    from goodhart.envs import file_stem

    return DOCS / f"{file_stem(env_id)}.png"


def env_slug(env_id: str) -> str:
    """The env page's document name in ``environments/``."""
    return env_id.split("/", 1)[1].lower()


@dataclass
class EnvPage:
    env_id: str
    core: type
    summary: str
    sections: dict[str, str]
    required: dict[str, str]
    knobs: list[Knob]
    picture: Path
    demo_gifs: list[Path]
    reproductions: list[str]
    path: Path = field(init=False)
    text: str = ""

    def __post_init__(self) -> None:
        self.path = DOCS / "environments" / f"{env_slug(self.env_id)}.md"


def _declared(core: type, env_id: str) -> list[tuple[str, str]]:
    """The attributes the class declares, as (what, Markdown) rows."""
    import gymnasium as gym

    spec = gym.registry[env_id]
    rows = [("registered id", code(env_id)), ("core class", f"{{py:class}}`~{core.__module__}.{core.__qualname__}`")]
    rows.append(("episode limit", f"{code('max_steps')}, default {code(core.DEFAULT_MAX_STEPS)} (the env ends its episodes itself)"))
    try:
        env = gym.make(env_id)
        rows.append(("observation space", code(str(env.observation_space))))
        rows.append(("action space", code(str(env.action_space))))
        env.close()
    except Exception as err:  # noqa: BLE001  (a page, not a test: say what failed)
        rows.append(("observation space", f"(gym.make failed: {escape(str(err))})"))
    rows.append(("actions", ", ".join(f"{i} {code(a)}" for i, a in enumerate(core.ACTIONS))))
    rows.append(("channels", ", ".join(code(c) for c in core.CHANNELS)))
    for name in ("INTENDED_NAME", "PROXY_NAME", "CAPABILITY", "PREFERENCE", "PROXY_RETURN", "SALIENT_EVENT"):
        value = getattr(core, name, None)
        rows.append((name, code(value) if value is not None else "(none)"))
    rows.append(("HEADLINE", ", ".join(code(h) for h in getattr(core, "HEADLINE", ()))))
    rows.append(("ORACLES", ", ".join(code(o) for o in core.ORACLES) or "(none)"))
    regions = getattr(core, "OVERSIGHT_REGIONS", {})
    rows.append(("OVERSIGHT_REGIONS", "; ".join(f"{code(k)}: {escape(v)}" for k, v in regions.items()) or "(none)"))
    return rows


def _outcome_rows(core: type) -> list[tuple[str, str]]:
    units = getattr(core, "UNITS", {})
    roles = {getattr(core, "CAPABILITY", None): "capability", getattr(core, "PREFERENCE", None): "preference", getattr(core, "PROXY_RETURN", None): "the proxy's return"}
    headline = list(getattr(core, "HEADLINE", ()))
    rows = []
    for name in (*core.OUTCOMES, "steps", "return", "true_return"):
        notes = [roles[name]] if name in roles else []
        if name in headline:
            notes.append(f"headline #{headline.index(name) + 1}")
        rows.append((code(name), units.get(name, ""), ", ".join(notes)))
    return rows


def env_page(env_id: str, core: type, reproductions: Mapping[str, set[str]]) -> EnvPage:
    """The page of one registered env (its text in ``.text``)."""
    summary, sections = docstring_sections(core)
    using = sorted(name for name, envs in reproductions.items() if env_id in envs)
    demos = demos_of(env_id)
    page = EnvPage(env_id, core, summary, sections, required_sections(sections), knobs(core), env_picture(env_id), [demo_gif(d) for d in demos], using)
    title = env_id.split("/", 1)[1]
    out = [f"# {title}", "", f"{markdown(summary)}", ""]
    out += [f"![{escape(title)}: a level of each distribution ({', '.join(core.DISTRIBUTIONS)}), seed 0]({relative(page.picture, page.path)})", ""]
    out += [f"*A level of each distribution, left to right: {', '.join(code(d) for d in core.DISTRIBUTIONS)} (`python scripts/render_envs.py`).*", ""]
    out += ["```python", "import gymnasium as gym", "import goodhart  # registers the environments", "", f'env = gym.make("{env_id}", distribution="{next(iter(core.DISTRIBUTIONS))}")', "obs, info = env.reset(seed=0)", "```", ""]
    for demo, gif in zip(demos, page.demo_gifs):
        out += [f"![demo {demo.name}: {escape(demo.about)}]({relative(gif, page.path)})", ""]
        out += [f"*{escape(demo.about)}.* Watch it live with `goodhart demo {demo.name}`; the GIF is `goodhart record {demo.name} --out {gif.relative_to(ROOT).as_posix()}`.", ""]
    for title_, text in sections.items():
        out += [f"## {title_}", "", markdown(text), ""]
        lowered = title_.lower()
        if "distribution" in lowered:
            out += ["Declared (`DISTRIBUTIONS`):", "", table(["distribution", "levels"], [(code(k), escape(v)) for k, v in core.DISTRIBUTIONS.items()]), ""]
        elif "knob" in lowered:
            rows = [(code(k.name), code(k.default), code(k.annotation) if k.annotation else "", "every env" if k.declared_by == _base_of(core) else k.declared_by) for k in page.knobs]
            out += ["From the constructor's signature (keyword arguments of `gym.make`):", "", table(["knob", "default", "type", "declared by"], rows), ""]
        elif "outcome" in lowered:
            out += ["Declared (`OUTCOMES`, then the ones every env has):", "", table(["outcome", "unit", "role"], _outcome_rows(core)), ""]
    out += ["## Declared attributes", "", table(["attribute", "value"], _declared(core, env_id)), ""]
    out += ["## Reproductions", ""]
    if using:
        out += [f"The reproductions that train on `{env_id}`:", ""]
        out += [f"- {{doc}}`/reproductions/{name}`" for name in using]
    else:
        out += ["No reproduction trains on this environment yet."]
    page.text = "\n".join(out).rstrip() + "\n"
    return page


def _base_of(core: type) -> str:
    """The name of the class every env derives from (the last class in the MRO with an
    ``__init__`` before ``object``)."""
    bases = [k for k in core.__mro__ if "__init__" in k.__dict__ and k is not object]
    return bases[-1].__name__


def env_pages() -> list[EnvPage]:
    """Every registered env's page."""
    reproductions = {name: reproduction_envs(spec) for name, spec in load_reproductions().items()}
    return [env_page(env_id, core, reproductions) for env_id, core in registered_envs().items()]


def env_index(pages: list[EnvPage]) -> str:
    out = ["# Environments", "", "Every environment registered with Gymnasium under the `goodhart/` namespace, one page each,"]
    out += ["generated from the environment's own docstring, declared attributes and constructor.", ""]
    out += [table(["environment", "distributions", "in a line"], [(f"{{doc}}`{env_slug(p.env_id)}`", ", ".join(code(d) for d in p.core.DISTRIBUTIONS), escape(p.summary.splitlines()[0] if p.summary else "")) for p in pages]), ""]
    out += ["```{toctree}", ":hidden:", "", *[env_slug(p.env_id) for p in pages], "```", ""]
    return "\n".join(out)


def env_grid(pages: list[EnvPage], columns: int = 2) -> str:
    """The front page's grid of env pictures, each linked to its page (an include fragment;
    its image paths are relative to this folder: include it with ``:relative-images:``)."""
    fragment = DOCS / "environments" / "grid.inc.md"
    width = 100 // columns
    out = ["```{list-table}", f":widths: {' '.join([str(width)] * columns)}", ":header-rows: 0", ""]
    for start in range(0, len(pages), columns):
        chunk = pages[start : start + columns]
        out.append("* - " + "\n  - ".join(f"{{doc}}`/environments/{env_slug(p.env_id)}`<br>![{p.env_id}]({relative(p.picture, fragment)})" for p in chunk))
    return "\n".join([*out, "```", ""])


# ------------------------------------------------------------------------------ reproductions
def reproduction_names() -> list[str]:
    from goodhart.experiments.sweep import reproduction_names as names

    return names()


def load_reproductions() -> dict[str, Any]:
    """Every reproduction's spec, read by the project's loader (of the kind its file names)."""
    from goodhart.experiments.reproduce import load_reproduction

    return {name: load_reproduction(name)[0] for name in reproduction_names()}


def reproduction_envs(spec: Any) -> set[str]:
    """The env ids a reproduction trains on: its base config's ``env`` after its fixed
    overrides, and any env its conditions set."""
    import json

    from goodhart.experiments.config import CONFIG_DIR, apply_override, read_yaml

    if hasattr(spec, "source_reproductions"):  # a study of other reproductions' runs: their envs
        from goodhart.experiments.reproduce import load_reproduction

        return set().union(*(reproduction_envs(load_reproduction(name)[0]) for name in spec.source_reproductions()))
    base_path = Path(spec.config) if Path(spec.config).is_absolute() else CONFIG_DIR / spec.config
    data = read_yaml(base_path)
    for key, value in (spec.set or {}).items():
        apply_override(data, f"{key}={json.dumps(value)}", "docs")
    envs = {data["env"]} if "env" in data else set()
    for values in (getattr(spec, "grid", None) or {}).values():
        envs |= {v for v in values if isinstance(v, str) and v.startswith(NAMESPACE)}
    for condition in getattr(spec, "conditions", None) or []:
        if "env" in condition:
            envs.add(condition["env"])
    return envs


def results_of(name: str) -> dict[str, Path]:
    """The committed result files of reproduction ``name`` that exist: ``report`` and
    ``results`` (``docs/results/<name>/report.md``, ``results.json``)."""
    folder = RESULTS / name
    files = {"report": folder / "report.md", "results": folder / "results.json"}
    return {key: path for key, path in files.items() if path.is_file()}


_HEADING = re.compile(r"^(#{1,6})(\s.*)$")
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def embedded_report(name: str, page: Path, levels: int = 1) -> str:
    """The committed report of ``name`` to embed in ``page``: its title (the first heading, if a
    top-level one) dropped, its headings moved down ``levels`` below the page's, and its
    relative links and pictures pointing to the files beside it."""
    folder = RESULTS / name
    lines = (folder / "report.md").read_text(encoding="utf-8").splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and re.match(r"^#\s", lines[0]):
        lines.pop(0)
    out, fence = [], None
    for line in lines:
        opening = re.match(r"^\s*(`{3,}|~{3,})", line)
        if opening:
            fence = None if fence and opening[1].startswith(fence) else (fence or opening[1])
        elif fence is None:
            heading = _HEADING.match(line)
            if heading:
                line = "#" * min(6, len(heading[1]) + levels) + heading[2]

            def link(m: re.Match) -> str:
                target = m[2]
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
                    return m[0]
                return m[1] + relative(folder / target, page) + m[3]

            line = _LINK.sub(link, line)
        out.append(line)
    return "\n".join(out).strip()


def _value(value: Any) -> str:
    if hasattr(type(value), "model_fields"):  # a spec model inside a list: its fields
        value = value.model_dump(exclude_defaults=False)
    if isinstance(value, Mapping):
        return ", ".join(f"{code(k)}: {_value(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "(none)"
    return code(value)


def _settings(model: Any, skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """A spec model's fields as (key, Markdown) rows, nested models flattened (``a.b``)."""
    rows = []
    for key in type(model).model_fields:
        if key in skip:
            continue
        value = getattr(model, key)
        if hasattr(type(value), "model_fields"):
            rows += [(f"{key}.{k}", v) for k, v in _settings(value)]
        else:
            rows.append((key, _value(value)))
    return rows


def _study_check_rows(spec: Any) -> list[tuple[str, ...]]:
    """An RLHF study's declared checks: a condition's value above another's beyond both intervals."""
    rows = []
    for check in getattr(spec, "checks", None) or []:
        if not hasattr(check, "condition"):
            continue  # an expected effect of an evaluation (_check_rows)
        names = [check.condition] if isinstance(check.condition, str) else list(check.condition)
        rows.append((escape(check.text), " or ".join(escape(n) for n in names), code(check.value),
                     f"{escape(check.than)}'s {code(check.than_value or check.value)}"))
    return rows


def _check_rows(spec: Any) -> list[tuple[str, ...]]:
    rows = []
    for check in getattr(spec, "checks", None) or []:
        if not hasattr(check, "relative"):
            continue  # an RLHF study's declared check (_study_check_rows)
        policies = ", ".join(check.policies)
        if check.relative:
            than = check.than or policies
            where = f" on `{check.than_distribution}`" if check.than_distribution else ""
            factor = f"{check.factor:g} x " if check.factor != 1 else ""
            beyond = " (95 % intervals apart)" if check.beyond_ci else ""
            threshold = f"{check.op} {factor}{escape(than)}'s mean{where}{beyond}"
        elif isinstance(check.value, list):
            threshold = ", ".join(f"{check.op} {v:g}" for v in check.value) + " (each)"
        else:
            threshold = f"{check.op} {check.value:g}" if check.value is not None else "(none)"
            if check.quick_value is not None:
                threshold += f" (quick: {check.op} {check.quick_value:g})"
        rows.append((escape(check.text), escape(policies), code(check.distribution), code(check.metric), escape(threshold)))
    for check in getattr(spec, "recovery_checks", None) or []:
        threshold = f"recovers at <= {check.factor:g} x {escape(check.than)}'s knob value"
        rows.append((escape(check.text), escape(", ".join(check.series)), "(knob)", "recovery", threshold))
    return rows


@dataclass
class ReproductionPage:
    name: str
    spec: Any
    envs: set[str]
    results: dict[str, Path]
    path: Path = field(init=False)
    text: str = ""

    def __post_init__(self) -> None:
        self.path = DOCS / "reproductions" / f"{self.name}.md"


def reproduction_page(name: str, spec: Any) -> ReproductionPage:
    from goodhart.experiments.sweep import (
        SweepSpec,
        assignments,
        condition_name,
        seed_list,
    )

    page = ReproductionPage(name, spec, reproduction_envs(spec), results_of(name))
    out = [f"# {name}", "", escape(spec.description) or "(no description)", ""]
    env_links = ", ".join(f"{{doc}}`/environments/{env_slug(e)}`" for e in sorted(page.envs)) or "(none)"
    rows = [("kind", code(spec.kind)), ("environment", env_links)]
    if hasattr(spec, "source_reproductions"):
        rows.append(("runs studied", ", ".join(f"{{doc}}`{source}`" for source in spec.source_reproductions()) + " (their seeds)"))
    else:
        seeds = seed_list(spec.seeds)
        quick_seeds = seed_list(spec.quick.seeds) if getattr(spec.quick, "seeds", None) is not None else []
        rows += [("base config", f"`agents/configs/{spec.config}`"),
                 ("seeds", f"{len(seeds)} ({', '.join(map(str, seeds))})" + (f"; quick: {len(quick_seeds)}" if quick_seeds else ""))]
    rows.append(("spec", f"`experiments/reproductions/{name}.yaml`"))
    if getattr(spec, "set", None):
        rows.append(("fixed overrides", _value(spec.set)))
    out += [table(["", ""], rows), ""]
    out += ["## Run it", "", "```console", f"$ goodhart reproduce {name}            # the full reproduction: results/{name}/",
            f"$ goodhart reproduce {name} --quick    # fewer seeds and steps: results/{name}-quick/", "```", ""]
    out += ["Re-running resumes: finished runs are skipped. See {doc}`/cli` for the options.", ""]
    if isinstance(spec, SweepSpec):
        conditions = [(escape(spec.labels.get(condition_name(a), condition_name(a))), _value(a) if a else "(the base config)") for a in assignments(spec)]
        out += ["## Conditions", "", table(["condition", "config values"], conditions), ""]
        if spec.knob:
            out += [f"Knob: {code(spec.knob)}" + (f" (plotted as: {escape(spec.knob_label)})" if spec.knob_label else ""), ""]
        out += ["## Evaluation", "", table(["", ""], _settings(spec.evaluate)), ""]
    else:
        skip = {"name", "kind", "description", "config", "set", "seeds", "quick", "checks", "headline"}
        out += ["## Settings", "", table(["setting", "value"], _settings(spec, skip)), ""]
    out += ["## Checks", ""]
    checks, study = _check_rows(spec), _study_check_rows(spec)
    if checks:
        out += ["The expected effects, each reported PASS or FAIL with what was measured:", ""]
        out += [table(["check", "policy", "distribution", "metric", "threshold"], checks), ""]
    elif study:
        out += ["Declared checks, each PASS where the lower end of the condition's interval over seeds is above the upper end of the "
                "other's, besides the checks of its `best_of_n` section; the report lists them with what was measured:", ""]
        out += [table(["check", "condition", "value", "above"], study), ""]
    else:
        out += [f"The checks of a `{spec.kind}` experiment are its kind's own; the report lists them with what was measured.", ""]
    if getattr(spec, "quick", None) is not None:
        out += ["## Quick mode", "", table(["setting", "value"], _settings(spec.quick)), ""]
    out += ["## Committed result", ""]
    if "report" in page.results:
        out += [f"The report in `docs/results/{name}/report.md`, as committed:", "", embedded_report(name, page.path, levels=1), ""]
    else:
        out += ["```{note}", f"No committed result exists yet for `{name}`: `docs/results/{name}/report.md` is missing.",
                f"Run `goodhart reproduce {name}` and copy its folder's report, results and figures there.", "```", ""]
    page.text = "\n".join(out).rstrip() + "\n"
    return page


def reproduction_pages() -> list[ReproductionPage]:
    return [reproduction_page(name, spec) for name, spec in load_reproductions().items()]


def reproduction_index(pages: list[ReproductionPage]) -> str:
    out = ["# Reproductions", "", "Each reproduction is a YAML spec in `experiments/reproductions/`, run by `goodhart reproduce NAME`;"]
    out += ["its committed result is in `docs/results/NAME/`. One page each, generated from the spec and the result.", ""]
    rows = []
    for p in pages:
        envs = ", ".join(f"{{doc}}`/environments/{env_slug(e)}`" for e in sorted(p.envs))
        rows.append((f"{{doc}}`{p.name}`", code(p.spec.kind), envs, "yes" if "report" in p.results else "**not yet**"))
    out += [table(["reproduction", "kind", "environment", "committed result"], rows), ""]
    out += ["```{toctree}", ":hidden:", "", *[p.name for p in pages], "```", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------ CLI
def _help_paragraphs(text: str | None) -> str:
    """A command's help (typer: rich markup escapes, paragraphs of wrapped lines) as Markdown."""
    if not text:
        return ""
    text = inspect.cleandoc(text).replace("\\[", "[").split("\f")[0]
    paragraphs = [" ".join(line.strip() for line in p.splitlines()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(escape(p) for p in paragraphs if p)


def _param_entry(param: Any, ctx: Any) -> list[str]:
    record = param.get_help_record(ctx)
    if record is None:
        return []
    names, text = record
    extras = ""
    found = re.search(r"\s\s\[(.*)\]$", text, re.DOTALL)
    if found:
        text, extras = text[: found.start()], found[1]
    lines = [f"`{names}`", f": {escape(' '.join(text.split())) or '(no help)'}"]
    if extras:
        lines[-1] += f" *[{escape(extras)}]*"
    return lines + [""]


def cli_command(command: Any, ctx: Any, path: list[str], level: int) -> list[str]:
    """The reference of ``command`` (and its subcommands, one level down)."""
    from typer import _click as click

    name = " ".join(path)
    anchor = "cli-" + "-".join(path)
    out = [f"({anchor})=", f"{'#' * level} `{name}`", ""]
    out += ["```text", command.get_usage(ctx), "```", ""]
    help_text = _help_paragraphs(command.help)
    if help_text:
        out += [help_text, ""]
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name != "argument"]
    for title, group in (("Arguments", arguments), ("Options", options)):
        entries = [line for p in group for line in _param_entry(p, ctx)]
        if entries:
            out += [f"**{title}**", "", *entries]
    subcommands = getattr(command, "commands", None)
    if subcommands:
        names = command.list_commands(ctx)
        out += ["**Commands**", "", table(["command", "what it does"], [(f"{{ref}}`{' '.join(path[1:] + [n])} <cli-{'-'.join(path + [n])}>`", escape(subcommands[n].get_short_help_str(limit=120))) for n in names]), ""]
        for sub in names:
            child = subcommands[sub]
            out += cli_command(child, click.Context(child, info_name=sub, parent=ctx), path + [sub], min(level + 1, 4))
    return out


def cli_page() -> str:
    import typer
    from goodhart.cli import app
    from typer import _click as click

    command = typer.main.get_command(app)
    ctx = click.Context(command, info_name="goodhart")
    out = ["# Command line", "", "The `goodhart` command, from its own `--help` (every command and option; `goodhart COMMAND --help` prints the same)."]
    out += ["Options marked *required* must be given; the others show their default.", ""]
    return "\n".join(out + cli_command(command, ctx, ["goodhart"], 2)).rstrip() + "\n"


# ------------------------------------------------------------------------------ API
def api_modules(package: str) -> list[str]:
    """The public modules of ``package`` (not its subpackages, which have pages of their own
    when listed in :data:`API_PACKAGES`)."""
    module = import_module(package)
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__) if not info.name.startswith("_") and not info.ispkg]


def api_pages() -> dict[str, str]:
    """``api/<package>.md`` -> its text: the package's docstring and each module's members."""
    pages = {}
    for package in API_PACKAGES:
        # autodoc writes reStructuredText: its directives go in eval-rst blocks, not MyST ones
        out = [f"# `{package}`", "", "```{eval-rst}", f".. automodule:: {package}", "   :members:", "   :undoc-members:", "   :ignore-module-all:", "```", ""]
        for module in api_modules(package):
            out += [f"## `{module}`", "", "```{eval-rst}", f".. automodule:: {module}", "   :members:", "   :undoc-members:", "```", ""]
        pages[f"api/{package}.md"] = "\n".join(out)
    return pages


def api_index() -> str:
    out = ["# Python API", "", "The public packages, from their docstrings (`sphinx.ext.autodoc`). The environments are"]
    out += ["also described one page each in {doc}`/environments/index`.", ""]
    out += [table(["package", "in a line"], [(f"{{doc}}`{p} <api/{p}>`", escape((inspect.getdoc(import_module(p)) or "").split("\n\n")[0].replace("\n", " "))) for p in API_PACKAGES]), ""]
    out += ["```{toctree}", ":hidden:", "", *[f"api/{p}" for p in API_PACKAGES], "```", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------ writing
def all_pages() -> dict[str, str]:
    """Every generated file: path relative to docs/ -> text."""
    envs = env_pages()
    reproductions = reproduction_pages()
    files = {p.path.relative_to(DOCS).as_posix(): p.text for p in envs}
    files["environments/index.md"] = env_index(envs)
    files["environments/grid.inc.md"] = env_grid(envs)
    files.update({p.path.relative_to(DOCS).as_posix(): p.text for p in reproductions})
    files["reproductions/index.md"] = reproduction_index(reproductions)
    files["cli.md"] = cli_page()
    files["api.md"] = api_index()
    files.update(api_pages())
    return files


def write_pages(docs: Path = DOCS) -> list[Path]:
    """Write every generated file under ``docs`` (only those whose text changed, so that Sphinx
    rebuilds only what did), remove the generated folders' files it no longer makes, and return
    the files written."""
    files = all_pages()
    written = []
    for relpath, text in files.items():
        path = docs / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for folder in GENERATED_DIRS:
        for path in (docs / folder).rglob("*.md"):
            if path.relative_to(docs).as_posix() not in files:
                path.unlink()
    return written


def _on_builder_inited(app: Any) -> None:
    from sphinx.util import logging

    written = write_pages(Path(app.srcdir))
    logging.getLogger(__name__).info(f"goodhart_pages: {len(written)} generated page(s) updated")


_COLUMNS = re.compile(r"^(\s*)\S(?:.*?\S)?\s{3,}\S")


def literal_columns(lines: list[str]) -> list[str]:
    """``lines`` with each block laid out in columns (a short name, three or more spaces, its
    text, continuation lines aligned under the text: how some module docstrings list files
    and statistics) made a literal block, which is how it reads in plain text too; in
    reStructuredText the layout is otherwise an indentation error."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        start = i
        while i < len(lines) and lines[i].strip():
            i += 1
        block = lines[start:i]
        previous = next((line for line in reversed(out) if line.strip()), "")
        if len(block) >= 2 and _COLUMNS.match(block[0]) and not previous.rstrip().endswith("::"):
            if out and out[-1].strip():
                out.append("")
            out += ["::", "", *("    " + line for line in block)]
        else:
            out += block
        if i < len(lines):
            out.append(lines[i])
            i += 1
    return out


_FIELD = re.compile(r"^(?P<indent>\s*)(?P<name>:[a-z:]+:`[^`]+`|``[^`]+``|\w[\w.]*(?:, \w[\w.]*)*): (?P<text>\S.*)$")


def field_blocks(lines: list[str]) -> list[str]:
    """``lines`` with each indented block of ``NAME: text`` items (continuation lines indented
    further) that follows a line without a blank one made a definition list (NAME, then its
    text indented below it), as reStructuredText needs; written as it is, it is an indentation
    error."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not line.strip() or line.rstrip().endswith("::") or i >= len(lines):
            continue
        base = len(line) - len(line.lstrip())
        first = _FIELD.match(lines[i])
        if not first or len(first["indent"]) <= base:
            continue
        item = len(first["indent"])
        block: list[str] = []
        while i < len(lines) and lines[i].strip():
            found = _FIELD.match(lines[i])
            indent = len(lines[i]) - len(lines[i].lstrip())
            if found and indent == item:
                block += [" " * item + found["name"], " " * (item + 4) + found["text"]]
            elif indent > item:
                block.append(" " * (item + 4) + lines[i].strip())
            else:
                break
            i += 1
        out += ["", *block, ""]
    return out


def stray_stars(lines: list[str]) -> list[str]:
    """``lines`` with each ``*`` that opens no emphasis (``(B, *obs_shape)``: no closing star in
    its paragraph) escaped."""
    out = list(lines)
    star = re.compile(r"(?<=[\s(\[,])\*(?=[A-Za-z_])")
    for n, line in enumerate(out):
        end = next((k for k in range(n + 1, len(out)) if not out[k].strip()), len(out))
        parts = re.split(r"(``[^`]+``|`[^`]+`)", line)  # code spans are left as they are
        for i in range(0, len(parts), 2):
            after_part = re.sub(r"``[^`]+``|`[^`]+`", " ", " ".join([*parts[i + 1 :], *out[n + 1 : end]]))
            pieces = star.split(parts[i])
            kept = pieces[0]
            for k, piece in enumerate(pieces[1:], 1):
                after = " ".join([*pieces[k:], after_part])
                closes = re.search(r"[^\s*]\*(?!\*)", after)
                kept += ("*" if closes else "\\*") + piece
            parts[i] = kept
        out[n] = "".join(parts)
    return out


_ATTRIBUTES = {"attribute", "data", "property"}


def _on_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """The project's docstrings, read as written: Google-style sections (``Args:``,
    ``Attributes:``, ``Returns:``) by napoleon (except in attribute and property docstrings,
    whose first line napoleon would read as a type), and the layouts above made valid."""
    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import GoogleDocstring

    result = separate_lists(lines)
    if what not in _ATTRIBUTES:
        # ivar fields, not attribute entries: autodoc documents the attributes themselves
        config = Config(napoleon_custom_sections=[("Class attributes", "Attributes")], napoleon_use_rtype=False, napoleon_use_ivar=True)
        result = GoogleDocstring(result, config, app, what, name, obj, options).lines()
    lines[:] = stray_stars(literal_columns(field_blocks(result)))


def _project_name(target: str, module: str | None) -> bool:
    """Whether ``target`` names something of the project that autodoc makes no entry for (a
    module constant, a type alias, a type variable): a full name under ``goodhart.``, or a name
    that the referring module defines or imports. Such a reference stays plain text."""
    import sys

    candidates = [target] if target.startswith("goodhart.") else [f"{module}.{target}"] if module else []
    for full in candidates:
        owner, _, attr = full.rpartition(".")
        head = attr.partition(".")[0]
        found = sys.modules.get(owner)
        if found is not None and hasattr(found, head):
            return True
    return False


def _on_missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a docstring's short Python reference (``:class:`GridVecEnv```, written in a
    module that does not import the name) to the one documented object it can mean: the name
    as the end of a documented object's full name. Ambiguous or unknown names stay missing."""
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip("~.")
    matches = [(name, obj) for name, obj in domain.objects.items() if name == target or name.endswith("." + target)]
    if len(matches) != 1:
        return contnode if _project_name(target, node.get("py:module")) else None
    name, obj = matches[0]
    from sphinx.util.nodes import make_refnode

    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, name)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _on_docstring)
    app.connect("missing-reference", _on_missing_reference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
