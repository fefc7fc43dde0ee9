"""The `{{snake}}` node type: an abstractgateway node plugin written in Python.

`abstractgateway plugin build .` compiles this module, with CPython, into one WebAssembly component
(`{{name}}.wasm`) for the WIT world `{{world}}` (the package is in `wit/`). The gateway runs each node in a
fresh sandboxed instance of it: no files, sockets, environment or real clock; the outside world is reachable
only through the host imports of `wit_world.imports`, and only as far as `{{name}}.grants.json` (or the
bundle manifest) grants it. An import that is not granted raises `Err(types.Error)` with code
`ACCESS_DENIED`.

Types: `wit_world` and `componentize_py_types` are generated from the WIT when the component is built.
For your editor or type checker, write them into `bindings/` with `abstractgateway plugin bindings .`
(`pyproject.toml` points pyright and mypy there).
"""

import json
from typing import Any

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import node
from wit_world.imports import log, types

# The VisualFlow `type` a flow's node uses to name this node type.
NODE_TYPE = "{{snake}}"


def fail(code: types.ErrorCode, message: str) -> Err[types.Error]:
    """A node failure: `raise fail(...)` and the host records it as the node's error."""
    return Err(types.Error(code=code, message=message, retryable=False))


def json_object(text: str, what: str) -> dict[str, Any]:
    """An invocation's `config` or `inputs` (JSON text) as a dict."""
    try:
        value = json.loads(text) if text else {}
    except ValueError as e:
        raise fail(types.ErrorCode.INVALID_INPUT, f"{what} is not JSON: {e}")
    if not isinstance(value, dict):
        raise fail(types.ErrorCode.INVALID_INPUT, f"{what} is not a JSON object")
    return value


def outputs(pins: dict[str, Any]) -> node.NodeResult:
    """What `run` returns: the node's output pins (JSON text of an object), and nothing else of what a
    `NodeResult` may carry (an ambient payload, a completion, an effect payload, a context edit)."""
    return node.NodeResult(
        outputs=json.dumps(pins, ensure_ascii=False, allow_nan=False),
        ambient=None,
        complete_output=None,
        effect_payload=None,
        context_edit=None,
    )


class Node(exports.Node):
    """The world's `node` export: the node types this plugin provides and how to run one node."""

    def describe(self) -> list[node.NodeType]:
        """Called once when the gateway loads the component."""
        return [
            node.NodeType(
                name=NODE_TYPE,
                label="{{label}}",
                description="Upper-cases a text and counts its words.",
                inputs=[node.Pin(id="text", label="text", pin_type="string")],
                outputs=[
                    node.Pin(id="text", label="text", pin_type="string"),
                    node.Pin(id="words", label="words", pin_type="number"),
                ],
                # None: a function-like node (its output also becomes the run's ambient payload).
                effect=None,
                # What it reads of its run besides its inputs: nothing (else node.Reads.RUN_CONTEXT, VARS).
                reads=node.Reads(0),
                # If its inputs cannot be resolved, the node reports the error as its output.
                on_input_failure=node.InputFailure.REPORT,
                # If it fails, the run fails.
                on_failure=node.NodeFailure.FAIL_RUN,
            )
        ]

    def run(self, inv: node.Invocation) -> node.NodeResult:
        """Runs one node: `inv.inputs` holds its resolved input pins, `inv.config` its `data` object."""
        if inv.node_type != NODE_TYPE:
            raise fail(types.ErrorCode.UNSUPPORTED, f"unknown node type {inv.node_type!r}")
        text = json_object(inv.inputs, "inputs").get("text")
        if not isinstance(text, str):
            raise fail(types.ErrorCode.INVALID_INPUT, "input 'text' is required (a string)")
        # A host import: the message is kept in the run's ledger with this node (log needs no grant).
        log.log(log.Level.INFO, f"node {inv.node_id} got {len(text)} characters")
        return outputs({"text": text.upper(), "words": len(text.split())})
