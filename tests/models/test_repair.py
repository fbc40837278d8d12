"""repair_model: dangling inputs dropped, quantized weights folded to fp32, values unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facetrust.models.catalog import CATALOG, ModelSpec
from facetrust.models.files import source_path
from facetrust.models.repair import repair_model

SPECS = [CATALOG["yunet-2023mar"], CATALOG["sface-2021dec"]]


@pytest.fixture(scope="module", params=SPECS, ids=lambda spec: spec.name)
def shipped(request: pytest.FixtureRequest) -> tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto]:
    spec: ModelSpec = request.param
    original = onnx.load(str(source_path(spec)))
    return spec, original, repair_model(original, spec.keep_inputs, dynamic_batch=spec.dynamic_batch)


def op_types(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}


def test_repaired_model_has_only_its_kept_inputs(shipped: tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto]) -> None:
    spec, _, repaired = shipped
    assert [i.name for i in repaired.graph.input] == list(spec.keep_inputs)


def test_repaired_model_has_no_dequantize_linear(shipped: tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto]) -> None:
    _, original, repaired = shipped
    assert "DequantizeLinear" in op_types(original)  # the shipped file is quantized
    assert "DequantizeLinear" not in op_types(repaired)


def test_repaired_model_passes_the_onnx_checker(shipped: tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto]) -> None:
    _, _, repaired = shipped
    onnx.checker.check_model(repaired, full_check=True)


def test_repaired_model_keeps_its_outputs(shipped: tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto]) -> None:
    _, original, repaired = shipped
    assert [o.name for o in repaired.graph.output] == [o.name for o in original.graph.output]


def test_repaired_model_weights_are_fp32_and_all_used(
    shipped: tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto],
) -> None:
    _, _, repaired = shipped
    consumed = {name for node in repaired.graph.node for name in node.input}
    for init in repaired.graph.initializer:
        assert init.name in consumed
        assert init.data_type != TensorProto.INT8


def test_repair_does_not_modify_the_model_it_is_given(
    shipped: tuple[ModelSpec, onnx.ModelProto, onnx.ModelProto],
) -> None:
    spec, original, _ = shipped
    assert original.SerializeToString() == onnx.load(str(source_path(spec))).SerializeToString()


def test_repaired_sface_takes_a_batch_and_yunet_does_not() -> None:
    for spec in SPECS:
        repaired = repair_model(onnx.load(str(source_path(spec))), spec.keep_inputs, dynamic_batch=spec.dynamic_batch)
        first = [v.type.tensor_type.shape.dim[0] for v in [*repaired.graph.input, *repaired.graph.output]]
        if spec.dynamic_batch:
            assert all(d.dim_param == "N" for d in first)
        else:
            assert all(d.dim_value == 1 for d in first)


def test_repaired_sface_computes_what_the_shipped_graph_computes(tmp_path: Path) -> None:
    import cv2

    spec = CATALOG["sface-2021dec"]
    original = onnx.load(str(source_path(spec)))
    inputs_only = onnx.ModelProto()
    inputs_only.CopyFrom(original)
    kept = [i for i in inputs_only.graph.input if i.name in spec.keep_inputs]
    del inputs_only.graph.input[:]
    inputs_only.graph.input.extend(kept)  # the minimal change a runtime needs to run it at all
    repaired = repair_model(original, spec.keep_inputs, dynamic_batch=True)
    onnx.save(inputs_only, str(tmp_path / "shipped.onnx"))
    onnx.save(repaired, str(tmp_path / "folded.onnx"))

    crops = np.random.default_rng(0).uniform(0, 255, (2, 3, 112, 112)).astype(np.float32)
    reference = cv2.dnn.readNetFromONNX(str(tmp_path / "shipped.onnx"))
    folded = cv2.dnn.readNetFromONNX(str(tmp_path / "folded.onnx"))
    expected = []
    for i in range(2):
        reference.setInput(crops[i : i + 1])
        expected.append(np.array(reference.forward()).reshape(1, 128))
    folded.setInput(crops)  # the whole batch in one run
    actual = np.array(folded.forward()).reshape(-1, 128)
    assert actual.shape == (2, 128)
    np.testing.assert_allclose(actual, np.concatenate(expected), rtol=1e-3, atol=1e-3 * float(np.abs(expected).max()))


# -- generated graphs: each kind of DequantizeLinear ---------------------------------------------


def quantized_matmul(scale: np.ndarray, zero: np.ndarray | None, attrs: dict[str, int]) -> onnx.ModelProto:
    """x (1, 4) @ dequantize(w) (4, 6), with w int8 constants; plus one unused graph input."""
    weights = np.arange(-12, 12, dtype=np.int8).reshape(4, 6)
    inits = [numpy_helper.from_array(weights, "w_q"), numpy_helper.from_array(scale, "w_scale")]
    dq_inputs = ["w_q", "w_scale"]
    if zero is not None:
        inits.append(numpy_helper.from_array(zero, "w_zero"))
        dq_inputs.append("w_zero")
    nodes = [
        helper.make_node("DequantizeLinear", dq_inputs, ["w"], **attrs),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "quantized",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("unused", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    session = ReferenceEvaluator(model)  # onnx's own reference implementation: exact semantics
    feeds = {"x": x}
    if any(i.name == "unused" for i in model.graph.input):
        feeds["unused"] = np.zeros(3, dtype=np.float32)
    return np.asarray(session.run(None, feeds)[0])


WEIGHTS = np.arange(-12, 12, dtype=np.float32).reshape(4, 6)


@pytest.mark.parametrize(
    ("scale", "zero", "attrs", "dequantized"),
    [
        (np.array(0.5, np.float32), np.array(2, np.int8), {}, (WEIGHTS - 2) * 0.5),
        (np.array(0.25, np.float32), None, {}, WEIGHTS * 0.25),
        (
            np.array([1.0, 2.0, 0.5, 0.1, 3.0, 1.0], np.float32),
            np.array([0, 1, 0, 0, -1, 0], np.int8),
            {"axis": 1},
            (WEIGHTS - [0, 1, 0, 0, -1, 0]) * [1.0, 2.0, 0.5, 0.1, 3.0, 1.0],
        ),
        (
            np.array([[0.5] * 6, [2.0] * 6], np.float32),
            np.array([[1] * 6, [0] * 6], np.int8),
            {"axis": 0, "block_size": 2},
            (WEIGHTS - np.repeat([[1] * 6, [0] * 6], 2, axis=0)) * np.repeat([[0.5] * 6, [2.0] * 6], 2, axis=0),
        ),
    ],
    ids=["per-tensor", "per-tensor-no-zero", "per-axis", "blocked"],
)
def test_repair_folds_each_kind_of_dequantize_linear_exactly(
    scale: np.ndarray, zero: np.ndarray | None, attrs: dict[str, int], dequantized: np.ndarray
) -> None:
    model = quantized_matmul(scale, zero, attrs)
    repaired = repair_model(model, ("x",))
    assert [i.name for i in repaired.graph.input] == ["x"]
    assert "DequantizeLinear" not in op_types(repaired)
    (folded,) = [numpy_helper.to_array(i) for i in repaired.graph.initializer if i.name == "w"]
    assert folded.dtype == np.float32
    np.testing.assert_allclose(folded, dequantized, rtol=1e-6)
    x = np.array([[1.0, -2.0, 0.5, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(run(repaired, x), run(model, x), rtol=1e-5)


def test_repair_folds_a_reshape_of_a_dequantized_constant() -> None:
    weights = np.arange(24, dtype=np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w_flat"]),
        helper.make_node("Reshape", ["w_flat", "shape"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "reshaped",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [
            numpy_helper.from_array(weights, "w_q"),
            numpy_helper.from_array(np.array(0.5, np.float32), "w_scale"),
            numpy_helper.from_array(np.array([4, 6], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    repaired = repair_model(model, ("x",))
    assert op_types(repaired) == {"MatMul"}
    assert {i.name for i in repaired.graph.initializer} == {"w"}
    x = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    np.testing.assert_allclose(run(repaired, x), run(model, x), rtol=1e-6)


def test_repair_keeps_a_dequantize_linear_of_a_runtime_input() -> None:
    nodes = [helper.make_node("DequantizeLinear", ["q", "s"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "dynamic",
        [helper.make_tensor_value_info("q", TensorProto.INT8, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    repaired = repair_model(model, ("q",))
    assert op_types(repaired) == {"DequantizeLinear"}
    assert [i.name for i in repaired.graph.initializer] == ["s"]
