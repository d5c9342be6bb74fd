"""Options defined once, as dataclass fields: each field's metadata (help, flag, choices) makes its
command-line flag, its line in ``command_line`` and its row in the model card.

    @dataclass
    class Config:
        epochs: int = option(40, "passes over the training set")

    parser = argparse.ArgumentParser(); add_arguments(parser, Config)
    config = from_args(Config, parser.parse_args())

Nested dataclass fields (``augment: AugmentConfig``) contribute their own fields' flags. A bool field
that defaults to True is switched off with ``--no-NAME``; one that defaults to False on with ``--NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None,
           choices: tuple | None = None, none: str | None = None,
           default_factory: Callable[[], Any] | None = None):
    """A dataclass field that is also a command-line option.

    ``flag`` overrides ``--field-name``; ``none`` is the word that stands for None on the command line
    (``--weights none``).
    """
    metadata = {"help": help, "flag": flag, "choices": choices, "none": none}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Option:
    """One command-line option: where its value lives in the config (``path``) and how it is spelt."""

    path: tuple[str, ...]
    flag: str
    type: type
    default: Any
    help: str
    choices: tuple | None
    none: str | None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def get(self, config) -> Any:
        for key in self.path:
            config = getattr(config, key)
        return config

    def render(self, value) -> list[str]:
        """The command-line words that set this option to ``value`` ([] for the default)."""
        if value == self.default:
            return []
        if self.type is bool:
            return [self.flag]
        return [self.flag, self.none if value is None else str(value)]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2), like every other error here."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _base_type(hint) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def options(cls, prefix: tuple[str, ...] = ()) -> Iterator[Option]:
    """Every option of dataclass ``cls``, nested dataclasses' fields included, in field order."""
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        hint = _base_type(hints[f.name])
        default = getattr(instance, f.name)
        if dataclasses.is_dataclass(hint):
            yield from options(hint, (*prefix, f.name))
            continue
        if "help" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with option(): give it a help text.")
        flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
        if hint is bool:
            flag = f"--no-{f.name.replace('_', '-')}" if default else flag
        yield Option((*prefix, f.name), flag, hint, default, f.metadata["help"], f.metadata["choices"],
                     f.metadata["none"])


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One argument per option of ``cls``; values land in the namespace under ``Option.name``."""
    for opt in options(cls):
        kwargs: dict[str, Any] = {"dest": opt.name, "help": opt.help}
        if opt.type is bool:
            kwargs.update(action="store_false" if opt.default else "store_true", default=opt.default)
            kwargs["help"] = f"switch off: {opt.help}" if opt.default else opt.help
        else:
            choices, none = opt.choices, opt.none
            kwargs.update(default=opt.default, type=lambda s, t=opt.type, none=none: None if s == none else t(s),
                          metavar=opt.path[-1].upper())
            if choices:
                kwargs["choices"] = [*choices, *([None] if none else [])]
                kwargs["metavar"] = "{" + ",".join([*map(str, choices), *([none] if none else [])]) + "}"
            if opt.default is not None:
                kwargs["help"] += f" (default: {opt.default})"
        parser.add_argument(opt.flag, **kwargs)


def from_args(cls, namespace: argparse.Namespace, prefix: tuple[str, ...] = ()):
    """The ``cls`` instance an ``add_arguments`` parser's namespace describes."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        hint = _base_type(hints[f.name])
        path = (*prefix, f.name)
        values[f.name] = from_args(hint, namespace, path) if dataclasses.is_dataclass(hint) \
            else getattr(namespace, ".".join(path))
    return cls(**values)


def command_args(config, keep: Callable[[str], bool] = lambda name: True) -> list[str]:
    """The flags that set every option of ``config`` that differs from its default (of those whose dotted name
    ``keep`` accepts)."""
    return [word for opt in options(type(config)) if keep(opt.name) for word in opt.render(opt.get(config))]


def command(program: str, config) -> str:
    return shlex.join([*shlex.split(program), *command_args(config)])
