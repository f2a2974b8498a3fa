"""Rewrites of a .tflite flatbuffer that make it quantizable, used by quantize_models.py.

The shipped .tflite files predate the quantizer's expectations:
- MobileFaceNet was written by an old converter: its operator codes sit in the deprecated field
  (the new one reads 0, ADD), and it has no signature, which calibration needs;
- its PReLU is spelled out as relu(x) + c * (x - |x|) in five elementwise ops, which int8 handles
  badly and XNNPACK cannot fuse; one PRELU op with slope 2c computes the same (LFW identical);
- BlazeFace keeps float16 weights behind DEQUANTIZE ops and a separate RELU after each
  convolution or add; the quantizer needs the float32 constants, and int8 kernels want the RELU
  fused into the op before it.
Each rewrite is exact in float (up to rounding); the float model the quantizer sees is never
shipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

OP = schema.BuiltinOperator


def read(data: bytes) -> Any:
    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def write(model: Any) -> bytes:
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _codes(model: Any) -> list[int]:
    return [int(code.builtinCode) for code in model.operatorCodes]


def upgrade_operator_codes(model: Any) -> None:
    """Old converters wrote the operator in ``deprecated_builtin_code`` only."""
    for code in model.operatorCodes:
        code.builtinCode = max(code.builtinCode, code.deprecatedBuiltinCode)


def add_signature(model: Any) -> None:
    """A 'serving_default' signature over the graph's inputs and outputs (calibration runs the
    model through its signature)."""
    if model.signatureDefs:
        return
    graph = model.subgraphs[0]

    def tensor_map(index: int) -> Any:
        entry = schema.TensorMapT()
        entry.name = graph.tensors[index].name.decode()
        entry.tensorIndex = int(index)
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map(i) for i in graph.inputs]
    signature.outputs = [tensor_map(i) for i in graph.outputs]
    model.signatureDefs = [signature]


def fold_float16_weights(model: Any) -> int:
    """DEQUANTIZE(float16 constant) -> a float32 constant; returns how many were folded."""
    graph = model.subgraphs[0]
    codes = _codes(model)
    kept, folded = [], 0
    for op in graph.operators:
        source = graph.tensors[op.inputs[0]]
        data = model.buffers[source.buffer].data
        if codes[op.opcodeIndex] == OP.DEQUANTIZE and source.type == schema.TensorType.FLOAT16:
            assert data is not None and len(data), "DEQUANTIZE of a non-constant"
            values = np.frombuffer(bytes(data), np.float16).astype("<f4")
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(values.tobytes(), np.uint8)
            model.buffers.append(buffer)
            graph.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
            folded += 1
        else:
            kept.append(op)
    graph.operators = kept
    return folded


def _consumers(graph: Any) -> dict[int, list[Any]]:
    users: dict[int, list[Any]] = {}
    for op in graph.operators:
        for index in op.inputs:
            users.setdefault(int(index), []).append(op)
    return users


def _operator_index(model: Any, builtin: int) -> int:
    codes = _codes(model)
    if builtin not in codes:
        code = schema.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = builtin
        code.version = 1
        model.operatorCodes.append(code)
        codes.append(builtin)
    return codes.index(builtin)


def fuse_prelu(model: Any) -> int:
    """relu(x) + c * (x - |x|) -> PRELU(x, 2c); returns how many were fused."""
    graph = model.subgraphs[0]
    codes = _codes(model)
    users = _consumers(graph)
    prelu = _operator_index(model, OP.PRELU)
    dropped: set[int] = set()
    fused = 0
    for position, op in enumerate(graph.operators):
        if codes[op.opcodeIndex] != OP.RELU:
            continue
        x = int(op.inputs[0])
        readers = {codes[u.opcodeIndex]: u for u in users.get(x, [])}
        if sorted(readers) != sorted([OP.RELU, OP.ABS, OP.SUB]) or len(users[x]) != 3:
            continue
        (mul,) = users[int(readers[OP.SUB].outputs[0])]
        (add,) = users[int(mul.outputs[0])]
        if codes[mul.opcodeIndex] != OP.MUL or codes[add.opcodeIndex] != OP.ADD:
            continue
        (slope,) = (int(t) for t in mul.inputs if int(t) != int(readers[OP.SUB].outputs[0]))
        buffer = model.buffers[graph.tensors[slope].buffer]
        alpha = np.frombuffer(bytes(buffer.data), "<f4") * 2
        buffer.data = np.frombuffer(alpha.astype("<f4").tobytes(), np.uint8)
        graph.tensors[slope].shape = np.array([1, 1, len(alpha)], np.int32)
        fused_op = schema.OperatorT()
        fused_op.opcodeIndex = prelu
        fused_op.inputs = np.array([x, slope], np.int32)
        fused_op.outputs = np.array(add.outputs, np.int32)
        graph.operators[position] = fused_op
        dropped |= {id(readers[OP.ABS]), id(readers[OP.SUB]), id(mul), id(add)}
        fused += 1
    graph.operators = [op for op in graph.operators if id(op) not in dropped]
    return fused


def fuse_relu(model: Any) -> int:
    """A RELU that alone reads the output of an op with a fused-activation slot goes into it."""
    graph = model.subgraphs[0]
    codes = _codes(model)
    users = _consumers(graph)
    producers = {int(t): op for op in graph.operators for t in op.outputs}
    outputs = {int(t) for t in graph.outputs}
    dropped: set[int] = set()
    for op in graph.operators:
        x = int(op.inputs[0])
        producer = producers.get(x)
        if codes[op.opcodeIndex] != OP.RELU or producer is None:
            continue
        options = producer.builtinOptions
        if len(users[x]) != 1 or x in outputs or options is None:
            continue
        if getattr(options, "fusedActivationFunction", None) != schema.ActivationFunctionType.NONE:
            continue
        options.fusedActivationFunction = schema.ActivationFunctionType.RELU
        producer.outputs = np.array(op.outputs, np.int32)
        dropped.add(id(op))
    graph.operators = [op for op in graph.operators if id(op) not in dropped]
    return len(dropped)


def drop_unused(model: Any) -> None:
    """Remove tensors no op reads or writes, and buffers no tensor uses, renumbering the rest."""
    graph = model.subgraphs[0]
    io = [int(t) for t in graph.inputs] + [int(t) for t in graph.outputs]
    touched = {int(t) for op in graph.operators for t in [*op.inputs, *op.outputs] if t >= 0}
    used = sorted(touched | set(io))
    renumber = {old: new for new, old in enumerate(used)}
    graph.tensors = [graph.tensors[i] for i in used]
    for op in graph.operators:
        op.inputs = np.array([renumber[int(t)] if t >= 0 else t for t in op.inputs], np.int32)
        op.outputs = np.array([renumber[int(t)] for t in op.outputs], np.int32)
    graph.inputs = np.array([renumber[int(t)] for t in graph.inputs], np.int32)
    graph.outputs = np.array([renumber[int(t)] for t in graph.outputs], np.int32)
    for signature in model.signatureDefs or []:
        for entry in [*signature.inputs, *signature.outputs]:
            entry.tensorIndex = renumber[entry.tensorIndex]
    buffers = sorted({0} | {int(t.buffer) for t in graph.tensors})
    rebuffer = {old: new for new, old in enumerate(buffers)}
    model.buffers = [model.buffers[i] for i in buffers]
    for tensor in graph.tensors:
        tensor.buffer = rebuffer[int(tensor.buffer)]


def quantizable(data: bytes) -> bytes:
    """The float model in the form the quantizer works on (see the module docstring)."""
    model = read(data)
    upgrade_operator_codes(model)
    add_signature(model)
    fold_float16_weights(model)
    fuse_prelu(model)
    fuse_relu(model)
    drop_unused(model)
    return write(model)
