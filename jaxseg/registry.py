"""One registry pattern for models, losses, datasets and metrics: a name → factory table.

    MODELS = Registry("model")

    @MODELS.register("unet")
    class UNet(nn.Module): ...

    MODELS.build("unet", features=8)      # checked keyword arguments, then UNet(features=8)

``register`` works as a decorator or a call (``register(name, factory)``);
``names()`` lists what is registered; ``get(name)`` returns the factory, and an
unknown name raises ``ValueError`` listing the available ones. ``parameters(name)``
are the factory's keyword options: a dataclass's fields (flax modules), else its
signature's parameters, minus the ``inputs`` the caller always supplies (e.g.
``logits, labels`` of a loss). ``check(name, params)`` raises ``ValueError``
naming the unknown keys and the accepted ones; a factory taking ``**kwargs``
checks its own.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

F = TypeVar("F", bound=Callable)

_DATACLASS_INTERNAL = ("parent", "name")  # flax.linen module fields that are not options


class Registry(Generic[F]):
    def __init__(self, kind: str, inputs: Iterable[str] = (), option_word: str = "parameter"):
        self.kind = kind
        self.inputs = tuple(inputs)
        self.option_word = option_word  # how errors call the options: "parameter", "option"
        self._factories: dict[str, Callable] = {}

    def register(self, name: str, factory: F | None = None):
        """``@registry.register(name)`` or ``registry.register(name, factory)``; returns the factory."""
        def add(f: F) -> F:
            if name in self._factories and self._factories[name] is not f:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = f
            return f

        return add if factory is None else add(factory)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str) -> F:
        if name not in self._factories:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._factories[name]

    def _takes_any_keyword(self, name: str) -> bool:
        f = self.get(name)
        if dataclasses.is_dataclass(f):
            return False
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(f).parameters.values())

    def parameters(self, name: str) -> list[str]:
        """The keyword options of ``name``'s factory (``inputs`` and ``**kwargs`` excluded)."""
        f = self.get(name)
        if dataclasses.is_dataclass(f):
            names = [fl.name for fl in dataclasses.fields(f) if fl.name not in _DATACLASS_INTERNAL]
        else:
            names = [p.name for p in inspect.signature(f).parameters.values()
                     if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        return [n for n in names if n not in self.inputs]

    def check(self, name: str, params: Mapping[str, Any]) -> None:
        """``ValueError`` naming the keys of ``params`` that ``name`` does not accept (inputs are not params)."""
        if self._takes_any_keyword(name):
            return
        accepted = self.parameters(name)
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            w = self.option_word
            raise ValueError(f"{self.kind} {name!r} has no {w}(s) {unknown}; {w}s: {accepted}")

    def build(self, name: str, *inputs, **kwargs):
        """``factory(*inputs, **kwargs)`` after checking the keywords that are not ``inputs``."""
        self.check(name, {k: v for k, v in kwargs.items() if k not in self.inputs})
        return self.get(name)(*inputs, **kwargs)
