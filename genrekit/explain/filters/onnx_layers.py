"""Convolution layers of an ONNX graph, and the graph cut down to one layer's feature maps.

What :class:`genrekit.explain.filters.probe.LayerProbe` runs: :func:`conv_layers` lists a graph's
``Conv`` nodes with the tensor to explain for each (the ReLU after it, through a batch norm in
between, if any); :func:`probe_graph` restores the map as trained where the graph runs a conv
on sign-flipped filters (the backbone's faster export, :mod:`genrekit.models.musicnn_architecture`);
:func:`cut_graph` keeps only the nodes that compute the chosen tensor, so later layers never run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genrekit.errors import ExplainError

@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer of an ONNX graph.

    Attributes
    ----------
    number : int
        1-based position among the graph's ``Conv`` nodes, in graph order.
    node : str
        The ``Conv`` node's name (may be empty in hand-made graphs).
    output : str
        The tensor whose values are explained: the following ReLU's output, or the
        Conv output when none follows.
    activation : str or None
        ``"Relu"`` when :attr:`output` is a ReLU output.
    n_filters : int or None
        Output channels, from the weight's shape (``None`` when the weight is computed).
    unsigned : tuple of str or None
        For a conv the graph runs on sign-flipped filters (the backbone's export takes the max
        over frequency before its ReLU and norm, negating the filters whose norm scale is
        negative; :mod:`genrekit.models.musicnn_architecture`): the original weight and bias.
        :func:`probe_graph` then computes ``ReLU(conv)`` with them, the map as trained.
    """

    number: int
    node: str
    output: str
    activation: str | None
    n_filters: int | None
    unsigned: tuple[str, str] | None = None


def conv_layers(model) -> list[ConvLayer]:
    """The ``Conv`` nodes of an ONNX model in graph order, with the tensor to explain for each.

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    list of ConvLayer
    """
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {t.name: list(t.dims) for t in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}

    def only_next(tensor: str, op: str):
        after = consumers.get(tensor, [])
        return after[0] if len(after) == 1 and after[0].op_type == op else None

    layers = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        unsigned = _unsigned_parameters(node, producer, weights)
        if unsigned is not None:
            dims = weights[unsigned[0]]
            layers.append(ConvLayer(len(layers) + 1, node.name, f"{node.output[0]}/unsigned/Relu", "Relu",
                                    int(dims[0]), unsigned))
            continue
        out, act = node.output[0], None
        step = only_next(out, "BatchNormalization")  # unfused conv -> BN -> ReLU
        relu = only_next(step.output[0] if step else out, "Relu")
        if relu is not None:
            out, act = relu.output[0], "Relu"
        dims = weights.get(node.input[1]) if len(node.input) > 1 else None
        layers.append(ConvLayer(len(layers) + 1, node.name, out, act, int(dims[0]) if dims else None))
    return layers


def _unsigned_parameters(node, producer: dict, weights: dict) -> tuple[str, str] | None:
    """The initializers ``(W, b)`` of a Conv whose weight and bias are ``Mul(W, sign)``, ``Mul(b, sign)``."""
    if len(node.input) < 3:
        return None
    made = [producer.get(name) for name in node.input[1:3]]
    if all(m is not None and m.op_type == "Mul" and m.input[0] in weights for m in made):
        return made[0].input[0], made[1].input[0]
    return None


def probe_graph(model, layer: ConvLayer):
    """``model`` with the nodes that compute ``layer.output``; for a conv on sign-flipped filters
    (:attr:`ConvLayer.unsigned`) a copy of it on the original weights, and its ReLU, are added."""
    import onnx

    if layer.unsigned is None:
        return model
    conv = next(node for node in model.graph.node if node.op_type == "Conv" and f"{node.output[0]}/unsigned/Relu"
                == layer.output)
    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    plain = onnx.NodeProto()
    plain.CopyFrom(conv)
    del plain.input[1:]
    plain.input.extend(layer.unsigned)
    del plain.output[:]
    plain.output.append(f"{conv.output[0]}/unsigned")
    plain.name = f"{conv.name}/unsigned"
    relu = onnx.helper.make_node("Relu", [plain.output[0]], [layer.output], name=f"{conv.name}/unsigned/Relu")
    probed.graph.node.extend([plain, relu])
    return probed


def pick_layer(layers: Sequence[ConvLayer], layer: int | None) -> ConvLayer:
    """Layer number ``layer`` (1-based; ``None``: the last), or an :class:`ExplainError` that lists them."""
    if not layers:
        raise ExplainError("the model has no convolution (Conv) layers to explain")
    if layer is None:
        return layers[-1]
    if not 1 <= layer <= len(layers):
        raise ExplainError(
            f"--layer {layer} is out of range: the model has {len(layers)} convolution layers "
            f"(1..{len(layers)}; default the last)"
        )
    return layers[layer - 1]


def cut_graph(model, output: str):
    """``model`` reduced to the nodes that compute tensor ``output``, its only output (onnx.ModelProto).

    Later layers are never run: the first backbone layer costs half of the whole graph alone.
    """
    import onnx

    need, keep = {output}, []
    for node in reversed(model.graph.node):
        if any(name in need for name in node.output):
            keep.append(node)
            need.update(node.input)
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    graph = cut.graph
    del graph.node[:]
    graph.node.extend(reversed(keep))
    kept = [t for t in model.graph.initializer if t.name in need]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [i for i in model.graph.input if i.name in need]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.output[:]
    # unknown shape: onnxruntime infers it; elem type float as every Conv here outputs
    graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    return cut
