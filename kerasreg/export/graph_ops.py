"""Which TensorFlow ops an export's SavedModel may hold before kerasreg runs it.

A SavedModel is a program: its graph may read and write files, open
sockets or start processes, and a checksum only proves the files are the
ones the manifest lists, not that whoever wrote them is trusted
(TensorFlow's SECURITY.md: "TensorFlow models are programs"). So before
`tf.saved_model.load` runs anything, every op in the graph and in every
function of its library is checked against `INFERENCE_OPS`, an allow-list
of pure tensor ops (what kerasreg's registry exports, plus the common
layers of users' own models). The saving and restoring functions that
`tf.saved_model.save` adds for TensorFlow 1 loaders are the one place
where checkpoint I/O ops (`CHECKPOINT_OPS`) are allowed: a TensorFlow 2
loader never runs them, and a SavedModel without the TensorFlow 2 object
graph (which a TensorFlow 1 loader would restore by running them) is
refused.
"""

from __future__ import annotations

import pathlib

from kerasreg.export.layout import ExportIntegrityError

INFERENCE_OPS = frozenset({
    # graph plumbing and variables
    "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PlaceholderWithDefault", "StopGradient",
    "StatefulPartitionedCall", "PartitionedCall", "ReadVariableOp", "VarHandleOp", "VarIsInitializedOp",
    "AssignVariableOp", "DisableCopyOnRead", "If", "StatelessIf", "While", "StatelessWhile", "Switch", "Merge",
    # arithmetic
    "Abs", "Add", "AddN", "AddV2", "Sub", "Mul", "MulNoNan", "Div", "DivNoNan", "RealDiv", "FloorDiv", "FloorMod",
    "Neg", "Reciprocal", "Square", "SquaredDifference", "Sqrt", "Rsqrt", "Pow", "Exp", "Log", "Log1p", "Expm1",
    "Maximum", "Minimum", "Sign", "Floor", "Ceil", "Round", "ClipByValue", "Erf", "Tanh", "Sigmoid", "Cast",
    "Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "LogicalAnd", "LogicalOr", "LogicalNot",
    "Select", "SelectV2", "IsFinite", "IsNan",
    # reductions and linear algebra
    "Sum", "Mean", "Max", "Min", "Prod", "ArgMax", "ArgMin", "All", "Any", "MatMul", "BatchMatMulV2", "Einsum",
    # neural-network layers
    "BiasAdd", "Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "MaxPool", "MaxPoolV2",
    "MaxPool3D", "AvgPool", "AvgPool3D", "Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign",
    "Softmax", "LogSoftmax", "FusedBatchNormV3", "ResizeBilinear", "ResizeNearestNeighbor",
    # shapes and indexing
    "Shape", "ShapeN", "Size", "Rank", "Reshape", "ExpandDims", "Squeeze", "Transpose", "ConcatV2", "Pack",
    "Unpack", "Split", "SplitV", "Slice", "StridedSlice", "Tile", "Fill", "ZerosLike", "OnesLike", "Range",
    "Pad", "PadV2", "MirrorPad", "GatherV2", "BroadcastTo", "BroadcastArgs", "Cumsum", "OneHot",
})

CHECKPOINT_OPS = frozenset({
    "SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin", "StaticRegexFullMatch",
})


class UnsafeSavedModelError(ExportIntegrityError):
    """An export's SavedModel holds an op outside the inference allow-list (a file, network or process op, say)."""


def _called_functions(node_defs):
    """Names of the library functions `node_defs` call (through `f`, `then_branch`, list attributes...)."""
    for node in node_defs:
        for value in node.attr.values():
            if value.func.name:
                yield value.func.name
            yield from (func.name for func in value.list.func)


def _reachable(roots, functions):
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        todo += _called_functions(functions[name].node_def)
    return seen


def _saver_functions(meta_graph, functions):
    """Functions reached only through the nodes that `saver_def` names (TensorFlow 1 save and restore)."""
    saver = meta_graph.saver_def
    names = {saver.save_tensor_name.split(":")[0], saver.restore_op_name.split(":")[0]} - {""}
    saver_nodes = [n for n in meta_graph.graph_def.node if n.name in names]
    other_nodes = [n for n in meta_graph.graph_def.node if n.name not in names]
    saver_only = _reachable(_called_functions(saver_nodes), functions)
    other_roots = [*_called_functions(other_nodes), *(f for f in functions if f not in saver_only)]
    return saver_only - _reachable(other_roots, functions), other_nodes


def saved_model_problems(meta_graph) -> list[str]:
    """Ops of a SavedModel's `MetaGraphDef` outside the allow-lists, as `"Op (in function f)"`; `[]` when safe.

    Example:

    >>> from tensorflow.core.protobuf import meta_graph_pb2
    >>> graph = meta_graph_pb2.MetaGraphDef()
    >>> _ = graph.object_graph_def.nodes.add(), graph.graph_def.node.add(name="w", op="WriteFile")
    >>> saved_model_problems(graph)
    ['WriteFile (in the graph)']
    """
    if not meta_graph.object_graph_def.nodes:
        return ["no TensorFlow 2 object graph (a TensorFlow 1 SavedModel restores itself by running its own ops)"]
    functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    saver_only, graph_nodes = _saver_functions(meta_graph, functions)
    problems = sorted({f"{n.op} (in the graph)" for n in graph_nodes if n.op not in INFERENCE_OPS})
    for name in sorted(functions):
        allowed = INFERENCE_OPS | CHECKPOINT_OPS if name in saver_only else INFERENCE_OPS
        problems += sorted({f"{n.op} (in function {name})" for n in functions[name].node_def if n.op not in allowed})
    return problems


def check_saved_model(directory: str | pathlib.Path) -> None:
    """Refuse a SavedModel folder whose graph holds an op outside the inference allow-list.

    Nothing is loaded or run: only `saved_model.pb` is parsed.

    Args:
        directory: str or path. A SavedModel folder (holding `saved_model.pb`).

    Raises:
        UnsafeSavedModelError: an op is outside `INFERENCE_OPS` (or, in the
            TensorFlow 1 save and restore functions, `CHECKPOINT_OPS`), the
            SavedModel has no TensorFlow 2 object graph, or `saved_model.pb`
            cannot be parsed; the message names every such op and function.

    Example:

    >>> check_saved_model("saved_models/mlp-bn_act_drop-standard0.2-seed0/saved_model")  # doctest: +SKIP
    """
    from tensorflow.core.protobuf import saved_model_pb2  # TensorFlow loads only when an export is read

    directory = pathlib.Path(directory)
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((directory / "saved_model.pb").read_bytes())
    except Exception as exc:  # the protobuf runtime raises its own DecodeError, not a ValueError
        raise UnsafeSavedModelError(f"{directory / 'saved_model.pb'} is not a readable SavedModel: {exc}") from None
    problems = [p for graph in saved.meta_graphs for p in saved_model_problems(graph)] or (
        [] if saved.meta_graphs else ["no graph at all"])
    if problems:
        raise UnsafeSavedModelError(
            f"{directory} holds ops that kerasreg does not run, since a SavedModel is a program and these could "
            f"read or write files, use the network or start processes: {'; '.join(problems[:10])}"
            f"{f' (+{len(problems) - 10} more)' if len(problems) > 10 else ''}. kerasreg runs only the inference "
            "ops of kerasreg.export.graph_ops.INFERENCE_OPS. If you trust who made this export, load it yourself "
            "with `tf.saved_model.load`."
        )
