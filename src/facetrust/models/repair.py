"""Repairs of shipped ONNX files: drop dangling graph inputs, fold quantized weights to fp32."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import onnx

__all__ = ["repair_model"]


def _dequantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """Numpy DequantizeLinear: per-tensor, per-axis or blocked (opset 21)."""
    import numpy as np

    xf = x.astype(np.float32)
    zf = np.zeros_like(scale, dtype=np.float32) if zero is None else zero.astype(np.float32)
    if scale.ndim == 0 or (scale.size == 1 and x.ndim <= 1 and block == 0):
        return (xf - zf.reshape(())) * scale.astype(np.float32).reshape(())
    axis = axis % x.ndim
    if block > 0:
        scale_full = np.repeat(scale.astype(np.float32), block, axis=axis)
        zero_full = np.repeat(zf, block, axis=axis)
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(0, x.shape[axis])
        return (xf - zero_full[tuple(sl)]) * scale_full[tuple(sl)]
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return (xf - zf.reshape(shape)) * scale.astype(np.float32).reshape(shape)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def repair_model(
    model: onnx.ModelProto, keep_inputs: tuple[str, ...], *, dynamic_batch: bool = False
) -> onnx.ModelProto:
    """Return a copy of ``model`` that onnxruntime runs fast and OpenCV 5 accepts.

    1. Every graph input not named in ``keep_inputs`` is removed (the int8bq SFace file
       lists unused weight names as inputs, which onnxruntime then demands).
    2. Every ``DequantizeLinear`` whose operands are constants, and any ``Reshape`` of such a
       result by a constant shape, is evaluated once and replaced by an fp32 initializer, so
       the weights are not dequantized again on every run. The values are unchanged.
    3. With ``dynamic_batch``, the first dimension of the inputs and outputs becomes symbolic
       (``N``) so one run can embed a batch of faces.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = _attrs(node).get("value")
            if value is not None:
                consts[node.output[0]] = numpy_helper.to_array(value)

    kept_nodes = []
    folded: dict[str, np.ndarray] = {}
    for node in graph.node:
        ins = [i for i in node.input if i]
        if node.op_type == "DequantizeLinear" and all(i in consts for i in ins):
            a = _attrs(node)
            zero = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            value = _dequantize(
                consts[node.input[0]], consts[node.input[1]], zero, int(a.get("axis", 1)), int(a.get("block_size", 0))
            )
        elif node.op_type == "Reshape" and all(i in consts for i in ins) and node.input[0] in folded:
            value = consts[node.input[0]].reshape(consts[node.input[1]].astype(np.int64))
        else:
            kept_nodes.append(node)
            continue
        consts[node.output[0]] = value
        folded[node.output[0]] = value

    used = {i for n in kept_nodes for i in n.input} | {o.name for o in graph.output}
    new_inits = [i for i in graph.initializer if i.name in used and i.name not in folded]
    new_inits += [numpy_helper.from_array(v.astype(np.float32), name) for name, v in folded.items() if name in used]
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    kept_inputs = [i for i in graph.input if i.name in keep_inputs]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    if dynamic_batch:
        for value in list(graph.input) + list(graph.output):
            dims = value.type.tensor_type.shape.dim
            if dims:
                dims[0].dim_param = "N"
    onnx.checker.check_model(out)
    return out
