"""`ticketml <command> --help` and `--cfg job`: a command's settings, their defaults and meanings.

The meanings are the comments beside each key in configs/*.yaml (one place for them)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

KEY = re.compile(r"^(\s*)([\w.\-]+):(.*)$")


def key_comments(path: Path) -> dict[str, str]:
    """`dotted.key -> comment` from a YAML file's trailing comments (continued on the lines below
    when they hold a comment alone, indented past the key)."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last, last_indent = None, 0
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#"):
            if last and indent > last_indent:
                out[last] = (out[last] + " " + stripped.lstrip("# ")).strip()
            continue
        match = KEY.match(line)
        if not match:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        last, last_indent = ".".join(k for _, k in stack), indent
        _, _, comment = match.group(3).partition(" #")
        out[last] = comment.strip().lstrip("#").strip()
    return out


def meanings(cfg: DictConfig, config_dir: Path) -> dict[str, str]:
    """Comments of every config file the composed config came from."""
    files = [config_dir / "config.yaml", *sorted(config_dir.glob("*.yaml"))]
    files += [  # the defaults' files explain the keys every data / model file shares
        config_dir / "data" / "synthetic.yaml",
        config_dir / "model" / "minilm.yaml",
        config_dir / "data" / f"{cfg.data.name}.yaml",
        config_dir / "model" / f"{cfg.model.name}.yaml",
    ]
    out: dict[str, str] = {}
    for path in files:
        if not path.is_file():
            continue
        prefix = f"{path.parent.name}." if path.parent != config_dir else ""
        for key, text in key_comments(path).items():
            if text:
                out[prefix + key] = text
    return out


def meaning_of(key: str, notes: dict[str, str]) -> str:
    """A key's own comment, else its nearest parent's (`tune.search_space.train.batch_size.type`
    is explained where `search_space` is)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        if note := notes.get(".".join(parts[:end])):
            return note if end == len(parts) else f"({'.'.join(parts[:end])}) {note}"
    return ""


def picked(cfg: DictConfig, groups: Sequence[str]) -> dict:
    """A command's config groups (and `seed`), interpolations resolved against the whole config."""
    if not groups:
        return {}
    whole = OmegaConf.to_container(cfg, resolve=True)
    return {"seed": whole["seed"], **{g: whole[g] for g in groups}}


def settings(cfg: DictConfig, groups: Sequence[str]) -> dict[str, object]:
    from ticketml.config import flatten

    return flatten(picked(cfg, groups))


def run_options(target: str) -> list[str]:
    """The `--option`s of a command: its run function's parameters besides `cfg`, read from the
    module's source (`ast`) so that `--help` never imports the stage (train's: lightning, 4 s)."""
    import ast
    import importlib.util

    module, func = target.split(":")
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == func:
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            return [a.arg for a in args if a.arg != "cfg"]
    raise LookupError(f"{target}: no such function")


def command_help(name: str, command, cfg: DictConfig, config_dir: Path) -> str:
    """`ticketml <name> --help` for a cli.Command: usage, its settings with their meanings."""
    params = run_options(command.target)
    lines = [
        f"usage: ticketml {name} " + " ".join(f"[--{p}=...]" for p in params) + " [key=value ...]",
        f"  {command.summary}",
        "",
        "options: --help, --cfg job (print the resolved settings), --verbose (tracebacks), "
        "--overrides='[\"key=value\"]'",
    ]
    values = settings(cfg, command.groups)
    groups = [g for g in ("data", "model") if g in command.groups]
    if groups:  # the config groups' choices, as the files in configs/<group>/ are now
        lines += ["", "config groups (group=choice):"]
        for group in groups:
            choices = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
            lines.append(f"  {group}=" + " | ".join(choices) + f"  (now: {cfg[group].name})")
    if values:
        notes = meanings(cfg, config_dir)
        lines += ["", "settings (key = default  # meaning); override as key=value:"]
        for key, value in values.items():
            note = meaning_of(key, notes)
            if isinstance(value, str) and (not value.strip() or "\n" in value):
                value = repr(value)  # "\n", "" and " " visible on one line
            lines.append(f"  {key} = {value}" + (f"  # {note}" if note else ""))
    return "\n".join(lines)


def resolved(cfg: DictConfig, groups: Sequence[str]) -> str:
    """`--cfg job`: the settings a command would run with, interpolations resolved."""
    return OmegaConf.to_yaml(OmegaConf.create(picked(cfg, groups)))
