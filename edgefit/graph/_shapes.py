"""Input shapes: parse ``--input-shape`` and fix a model's dynamic input dimensions with it.

Counting MACs and bytes needs every dimension. A dynamic batch alone is assumed to be 1 (and
noted); any other dynamic dimension must be given, and a given size must match the model's fixed
ones.
"""

from __future__ import annotations

import re

from edgefit.errors import EdgefitError

InputShape = str | tuple[int, ...] | list[int] | dict[str, tuple[int, ...]] | None


def parse_input_shape(spec: InputShape) -> dict[str, tuple[int, ...]] | tuple[int, ...] | None:
    """``"1x3x224x224"``, ``"1,3,224,224"``, ``"x:1x3x224x224;y:1x10"`` or a tuple/dict → shapes.

    >>> parse_input_shape("input:1x3x32x32")
    {'input': (1, 3, 32, 32)}
    >>> parse_input_shape("1,3,32,32")
    (1, 3, 32, 32)
    """
    if spec is None or isinstance(spec, dict):
        return spec
    if isinstance(spec, (tuple, list)):
        return tuple(int(d) for d in spec)
    named: dict[str, tuple[int, ...]] = {}
    plain: tuple[int, ...] | None = None
    for part in filter(None, (p.strip() for p in re.split(r"[;\s]+", str(spec)))):
        name, _, dims = part.rpartition(":")
        try:
            shape = tuple(int(d) for d in re.split(r"[x,×]", dims) if d)
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise EdgefitError(
                f"cannot read input shape '{part}'",
                where="--input-shape",
                fix="write it like 1x3x224x224, or name:1x3x224x224 for several inputs",
            )
        if name:
            named[name] = shape
        else:
            plain = shape
    return named or plain


def fix_input_shapes(model, input_shape: InputShape, notes: list[str]):
    """Set ``model``'s input dimensions from ``input_shape`` (in place; returns ``model``), noting
    what was assumed in ``notes``."""
    shapes = parse_input_shape(input_shape)
    initializers = {i.name for i in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    if isinstance(shapes, tuple):
        if len(real_inputs) != 1:
            names = ", ".join(i.name for i in real_inputs)
            raise EdgefitError(
                f"the model has {len(real_inputs)} inputs ({names}); a plain shape is ambiguous",
                where="--input-shape",
                fix="name each input: name:1x3x224x224;other:1x10",
            )
        shapes = {real_inputs[0].name: shapes}
    shapes = shapes or {}
    unknown = set(shapes) - {i.name for i in real_inputs}
    if unknown:
        raise EdgefitError(
            f"the model has no input named {sorted(unknown)}",
            where="--input-shape",
            fix=f"inputs are: {', '.join(i.name for i in real_inputs)}",
        )
    for vi in real_inputs:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in shapes:
            wanted = shapes[vi.name]
            if len(wanted) != len(dims):
                raise EdgefitError(
                    f"input '{vi.name}' has rank {len(dims)}, the shape given has {len(wanted)}",
                    where="--input-shape",
                    fix="give one size per dimension",
                )
            for d, size in zip(dims, wanted):
                if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != size:
                    raise EdgefitError(
                        f"input '{vi.name}' has fixed size {d.dim_value}, not {size}",
                        where="--input-shape",
                        fix="match the model's fixed dimensions",
                    )
                d.Clear()
                d.dim_value = size
            continue
        dynamic = [
            i for i, d in enumerate(dims) if not (d.HasField("dim_value") and d.dim_value >= 0)
        ]
        if dynamic == [0]:
            dims[0].Clear()
            dims[0].dim_value = 1
            notes.append(f"input '{vi.name}': dynamic batch dimension assumed to be 1")
        elif dynamic:
            shape = "x".join(
                str(d.dim_value) if d.HasField("dim_value") and d.dim_value >= 0 else "?"
                for d in dims
            )
            raise EdgefitError(
                f"input '{vi.name}' has dynamic dimensions ({shape})",
                where="MODEL",
                fix=f"pass --input-shape {vi.name}:{shape.replace('?', 'N')} with sizes",
            )
    del model.graph.value_info[:]
    return model
