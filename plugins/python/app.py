"""The `code` and legacy `function` VisualFlow nodes, and pin expressions (the `pin-eval` export): user
Python run inside this WebAssembly component (WIT world `python-runtime`).

The component is the sandbox: the host grants it no files, network, environment or clock beyond what WASI
needs, and caps its memory, CPU time and output. The Python-level rules below (no dunder attributes, no
exec/eval, a deny-list of modules, a small set of builtins) reproduce the seed's code-node policy so flows
behave as they did there, and give clear errors instead of the sandbox's low-level refusals.
"""

import ast
import json
import keyword
import re
import shlex
import textwrap
import time

import wit_world
from componentize_py_types import Err
from wit_world.exports import node, pin_eval
from wit_world.imports import types

PERMISSIONS_PIN = "permissions"
DEFAULT_FUNCTION = "transform"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Modules user code may not import (the seed's deny-list, plus what reaches the process or the host).
DENIED_MODULES = frozenset(
    """os posix nt posixpath ntpath subprocess io _io pathlib socket _socket ssl select selectors http urllib
    ftplib smtplib poplib imaplib telnetlib socketserver xmlrpc webbrowser sys importlib pickle _pickle marshal
    shelve dbm operator typing functools threading _thread multiprocessing concurrent asyncio ctypes builtins gc
    inspect code codeop signal shutil tempfile glob fnmatch fcntl resource pty tty platform sysconfig site runpy
    zipimport pkgutil mmap faulthandler tracemalloc sqlite3 zipfile tarfile gzip bz2 lzma wit_world
    componentize_py_types componentize_py_runtime poll_loop""".split()
)


class CodeExecutionError(Exception):
    """A code node's failure, with the seed's message."""


def parse_json(value):
    """JSON text to a value; anything else is returned unchanged."""
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def to_json(value):
    """A value as compact JSON text."""
    return json.dumps(value, ensure_ascii=False)


def shq(value):
    """A value quoted for a POSIX shell."""
    return shlex.quote(value if isinstance(value, str) else str(value))


def text_of(value):
    """The text a value carries: strings as they are, `text`/`content` of an object, JSON otherwise."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "content", "response", "output", "result"):
            if isinstance(value.get(key), str):
                return value[key]
    if isinstance(value, list):
        return "\n".join(text_of(v) for v in value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level != 0:
        raise ImportError("Relative imports are not allowed")
    root = name.split(".", 1)[0]
    if root in DENIED_MODULES or root.startswith("_"):
        raise ImportError(f"Import of '{name}' is not allowed in the code sandbox")
    return __import__(name, globals, locals, fromlist, level)


def _silent_print(*_args, **_kwargs):
    return None


_SAFE_BUILTIN_NAMES = """len str int float bool list dict tuple set frozenset range enumerate zip map filter sorted
reversed min max sum abs round isinstance issubclass type any all divmod pow chr ord hex oct bin repr hash callable
slice iter next format bytes bytearray complex
Exception BaseException ArithmeticError AssertionError AttributeError IndexError KeyError LookupError NameError
NotImplementedError OverflowError RuntimeError StopIteration TypeError UnboundLocalError UnicodeError
UnicodeDecodeError UnicodeEncodeError ValueError ZeroDivisionError ImportError""".split()


def _sandbox_builtins():
    import builtins

    table = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table.update(
        {
            "True": True,
            "False": False,
            "None": None,
            "print": _silent_print,
            "parse_json": parse_json,
            "to_json": to_json,
            "shq": shq,
            "text_of": text_of,
            "__import__": _guarded_import,
        }
    )
    return table


def normalize_permissions(permissions):
    """The canonical permission mode (`sandbox` or `full_access`), as the seed spells them."""
    raw = str(permissions or "sandbox").strip().lower().replace("-", "_")
    if raw in {"", "safe", "protected", "restricted", "sandboxed", "sandbox"}:
        return "sandbox"
    if raw in {"full_access", "full", "unrestricted"}:
        return "full_access"
    raise CodeExecutionError(f"Unsupported code execution permissions: {permissions!r}")


def ensure_permissions_allowed(mode):
    # This host never turns full access on: the component is the only place user code runs.
    if mode == "full_access":
        raise CodeExecutionError(
            "full_access code execution is disabled by host policy. "
            "Set ABSTRACTRUNTIME_CODE_FULL_ACCESS=1 only for trusted local deployments."
        )


def validate_code(code):
    """Rejects syntax errors and the constructs the sandbox forbids."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise CodeExecutionError(f"Syntax error: {e}") from e
    check_tree(tree)
    return tree


def check_tree(tree):
    """Rejects the constructs the sandbox forbids (the one policy of code nodes, expressions and functions)."""
    for item in ast.walk(tree):
        if isinstance(item, ast.Call) and isinstance(item.func, ast.Name):
            if item.func.id in ("exec", "eval", "compile", "__import__", "open", "globals", "locals", "vars"):
                raise CodeExecutionError(f"'{item.func.id}' is not allowed")
        if isinstance(item, ast.Attribute) and item.attr.startswith("__") and item.attr.endswith("__"):
            raise CodeExecutionError(f"Access to dunder attributes ('{item.attr}') is not allowed")
        if isinstance(item, ast.Name) and item.id.startswith("__") and item.id.endswith("__"):
            raise CodeExecutionError(f"Access to dunder names ('{item.id}') is not allowed")


def call_user_function(code, function_name, payload):
    """Defines the user's code in a fresh namespace and calls `function_name(payload)`."""
    validate_code(code)
    try:
        byte_code = compile(code, filename="<user_code>", mode="exec")
    except SyntaxError as e:
        raise CodeExecutionError(f"Syntax error: {e}") from e
    namespace = {"__builtins__": _sandbox_builtins(), "__name__": "user_code"}
    try:
        exec(byte_code, namespace)
    except Exception as e:
        raise CodeExecutionError(f"Execution error: {e}") from e
    func = namespace.get(function_name)
    if func is None:
        raise CodeExecutionError(f"Function '{function_name}' not defined in code")
    if not callable(func):
        raise CodeExecutionError(f"'{function_name}' is not a callable function")
    try:
        return func(payload)
    except Exception as e:
        raise CodeExecutionError(f"Runtime error: {e}") from e


def sanitize_identifier(raw):
    """A pin id turned into a Python identifier (the seed's rule)."""
    name = str(raw or "").strip()
    if not name:
        return "param"
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "param"
    if not re.match(r"^[A-Za-z_]", out):
        out = f"p_{out}"
    if keyword.iskeyword(out):
        out = f"{out}_"
    return out


def code_from_body(config, function_name):
    """`def <fn>(_input):` + one local per input pin + the node's `codeBody`, as the seed generates it."""
    body = textwrap.dedent(str(config.get("codeBody") or "")).strip()
    lines = [f"def {function_name}(_input):"]
    pins = config.get("inputs")
    for pin in pins if isinstance(pins, list) else []:
        if not isinstance(pin, dict):
            continue
        pin_id = pin.get("id")
        if not isinstance(pin_id, str) or not pin_id:
            continue
        if pin_id == PERMISSIONS_PIN or pin.get("type") == "execution":
            continue
        lines.append(f"    {sanitize_identifier(pin_id)} = _input.get({json.dumps(pin_id)})")
    if not body:
        lines.append("    return _input")
    else:
        lines.extend(f"    {line}" for line in body.replace("\r\n", "\n").split("\n"))
    lines.append("")
    return "\n".join(lines)


def function_name_of(config):
    name = config.get("functionName", DEFAULT_FUNCTION)
    if not isinstance(name, str) or not IDENTIFIER.match(name) or keyword.iskeyword(name):
        return DEFAULT_FUNCTION
    return name


def check_json(value):
    """Raises when the result cannot travel as JSON (the seed requires JSON-serializable results)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CodeExecutionError(f"Result is not JSON-serializable: {e}") from e


def run_code(config, inputs):
    """The `code` node: the seed's output record `{**result, success, output, result, [error], execution}`."""
    function_name = function_name_of(config)
    if isinstance(config.get("codeBody"), str):
        code = code_from_body(config, function_name)
    else:
        code = config.get("code", "def transform(_input):\n    return _input")
    defaults = config.get("pinDefaults") if isinstance(config.get("pinDefaults"), dict) else {}
    permissions = defaults.get(PERMISSIONS_PIN) or "sandbox"
    payload = inputs
    if isinstance(inputs, dict):
        if inputs.get(PERMISSIONS_PIN) is not None:
            permissions = inputs[PERMISSIONS_PIN]
        payload = {k: v for k, v in inputs.items() if k != PERMISSIONS_PIN}

    started = time.perf_counter()
    mode = None
    result, error = None, None
    try:
        mode = normalize_permissions(permissions)
        ensure_permissions_allowed(mode)
        if not isinstance(code, str):
            raise CodeExecutionError("Node code must be a string")
        result = call_user_function(code, function_name, payload)
        check_json(result)
    except CodeExecutionError as e:
        result, error = None, str(e)
    except RecursionError as e:
        result, error = None, f"Runtime error: {e}"
    duration_ms = max(0.0, (time.perf_counter() - started) * 1000.0)
    execution = {"duration_ms": round(duration_ms, 3), "cpu_time_ms": round(duration_ms, 3)}
    if duration_ms > 0:
        execution["cpu_percent"] = 100.0
    if mode:
        execution["permissions"] = mode

    record = dict(result) if isinstance(result, dict) else {}
    record["success"] = error is None
    record["output"] = result
    record["result"] = result
    if error is not None:
        record["error"] = error
    record["execution"] = execution
    return record


def eval_expression(expression, payload):
    """The legacy `function` node's `expression`: evaluated with no builtins; errors become `{error}`."""
    namespace = {"x": payload, "input": payload}
    if isinstance(payload, dict):
        namespace.update(payload)
    try:
        validate_code(expression)
        return eval(expression, {"__builtins__": {}}, namespace)
    except Exception as e:
        return {"error": str(e)}


def run_function(config, inputs):
    """The legacy `function` node: `code` + `functionName`, or `expression`, or the input unchanged."""
    if "code" in config:
        code = config.get("code")
        if not isinstance(code, str):
            raise CodeExecutionError("Node code must be a string")
        result = call_user_function(code, function_name_of(config), inputs)
    elif "expression" in config:
        result = eval_expression(str(config.get("expression") or ""), inputs)
    else:
        result = inputs
    check_json(result)
    # A dict result is the node's pins; `result`/`output` name the whole value when it has no such key.
    pins = dict(result) if isinstance(result, dict) else {}
    pins.setdefault("result", result)
    pins.setdefault("output", result)
    return pins


# ---- pin expressions and the flow `functions` library (§3.6) -------------------------------------------

PREVIEW_CHARS = 120


class PinExpressionError(CodeExecutionError):
    """A pin expression or a flow function that does not compile or evaluate, with the seed's message."""


class ReadOnlyVars:
    """`vars` inside an expression: run vars by attribute or subscript; adding or replacing one is refused."""

    __slots__ = ("_vars",)

    def __init__(self, run_vars):
        object.__setattr__(self, "_vars", run_vars if isinstance(run_vars, dict) else {})

    def __getattr__(self, name):
        run_vars = object.__getattribute__(self, "_vars")
        try:
            return run_vars[name]
        except KeyError:
            known = ", ".join(sorted(k for k in run_vars if not k.startswith("_")))[:200] or "none yet"
            raise KeyError(f"unknown run var '{name}' (known: {known})") from None

    def __getitem__(self, name):
        return self.__getattr__(str(name))

    def get(self, name, default=None):
        return object.__getattribute__(self, "_vars").get(name, default)

    def __contains__(self, name):
        return name in object.__getattribute__(self, "_vars")

    def __setattr__(self, name, _value):
        raise PinExpressionError("vars is read-only inside a pin expression — use a Set Variable node to write state")

    def __setitem__(self, name, _value):
        raise PinExpressionError("vars is read-only inside a pin expression — use a Set Variable node to write state")

    def __delattr__(self, name):
        raise PinExpressionError("vars is read-only inside a pin expression — use a Set Variable node to write state")

    def __repr__(self):
        return f"<vars: {', '.join(sorted(object.__getattribute__(self, '_vars')))}>"


def _expression_builtins():
    """The code-node builtins without `__import__`: expressions and flow functions import nothing."""
    table = _sandbox_builtins()
    table.pop("__import__", None)
    return table


def _reserved_function_names():
    return {"vars", "value"} | set(_expression_builtins())


MUTABLE_DEFAULTS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _check_function_purity(name, code):
    """Refuses what would keep state between calls or runs: imports, top-level statements other than `def`,
    `global`/`nonlocal`, mutable default arguments (the seed's rules for flow functions)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise PinExpressionError(f"flow function {name!r} does not parse: {e}") from e
    try:
        check_tree(tree)
    except CodeExecutionError as e:
        raise PinExpressionError(f"flow function {name!r}: {e}") from e
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue
        raise PinExpressionError(
            f"flow function {name!r}: only `def` statements are allowed at the top level "
            f"(got {type(stmt).__name__}) — flow functions must be pure; put constants inside a function"
        )
    for item in ast.walk(tree):
        if isinstance(item, (ast.Import, ast.ImportFrom)):
            raise PinExpressionError(f"flow function {name!r}: imports are not allowed")
        if isinstance(item, (ast.Global, ast.Nonlocal)):
            raise PinExpressionError(
                f"flow function {name!r}: `global`/`nonlocal` is not allowed — a flow function must not "
                "write persistent state"
            )
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            defaults = list(item.args.defaults) + [d for d in item.args.kw_defaults if d is not None]
            for d in defaults:
                if isinstance(d, MUTABLE_DEFAULTS):
                    raise PinExpressionError(
                        f"flow function {name!r}: a mutable default argument ({type(d).__name__}) is not "
                        "allowed — use None and build the value inside"
                    )


def compile_functions(functions):
    """The flow's `functions` as `{declared name: callable}`, all defined in one shared namespace."""
    entries = []
    for entry in functions if isinstance(functions, list) else []:
        if not isinstance(entry, dict):
            continue
        name, code = entry.get("name"), entry.get("code")
        if isinstance(name, str) and name.strip() and isinstance(code, str) and code.strip():
            entries.append((name.strip(), code))
    if not entries:
        return {}
    reserved = _reserved_function_names()
    shared = {"__builtins__": _expression_builtins(), "__name__": "flow_functions"}
    baseline = set(shared)
    owner_of = {}
    declared = []
    for name, code in entries:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise PinExpressionError(f"flow function name {name!r} is not a plain identifier")
        if name in reserved:
            raise PinExpressionError(f"flow function name {name!r} shadows a sandbox builtin/helper — pick another name")
        if name in owner_of:
            raise PinExpressionError(
                f"duplicate flow function name {name!r} (already defined by entry {owner_of[name]!r})"
            )
        _check_function_purity(name, code)
        try:
            byte_code = compile(code, filename=f"<flowfn:{name}>", mode="exec")
        except (SyntaxError, ValueError, RecursionError) as e:
            raise PinExpressionError(f"flow function {name!r} does not parse: {e}") from e
        before = {k: id(v) for k, v in shared.items()}
        try:
            exec(byte_code, shared)
        except Exception as e:
            raise PinExpressionError(
                f"flow function {name!r} failed at definition time: {type(e).__name__}: {e}"
            ) from e
        for key, value in shared.items():
            if before.get(key) == id(value) or (key.startswith("__") and key.endswith("__")):
                continue
            if key in baseline or key in reserved:
                raise PinExpressionError(
                    f"flow function entry {name!r} redefines {key!r}, which shadows a sandbox builtin/helper"
                )
            if owner_of.get(key, name) != name:
                raise PinExpressionError(
                    f"flow function entry {name!r} redefines {key!r}, already owned by entry {owner_of[key]!r}"
                )
            owner_of[key] = name
        if not callable(shared.get(name)):
            raise PinExpressionError(
                f"flow function entry {name!r} must define a callable named {name!r} "
                "(the code's `def` name must match the declared name)"
            )
        declared.append(name)
    return {name: shared[name] for name in declared}


def compile_expression(where, expression):
    """One pin expression as eval-mode bytecode, refused as the sandbox refuses code."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise PinExpressionError(f"pin expression on {where} does not parse: {e}") from e
    except (ValueError, RecursionError, MemoryError) as e:
        raise PinExpressionError(
            f"pin expression on {where} could not be compiled ({type(e).__name__}: {e}) — "
            "it may be too large or deeply nested"
        ) from e
    try:
        check_tree(tree)
    except CodeExecutionError as e:
        raise PinExpressionError(f"pin expression on {where} refused: {e}") from e
    try:
        return compile(tree, filename=f"<fx:{where}>", mode="eval")
    except (SyntaxError, ValueError, RecursionError) as e:
        raise PinExpressionError(f"pin expression on {where} could not be compiled ({type(e).__name__}: {e})") from e


def _plain(value):
    """json.dumps' fallback: the `vars` view leaves an expression as a plain dict, nothing else unknown does."""
    if isinstance(value, ReadOnlyVars):
        return dict(object.__getattribute__(value, "_vars"))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def evaluate_expression(library, where, expression, value, run_vars):
    """The expression's value over `value`, `vars`, the helpers and the flow functions, as JSON text."""
    byte_code = compile_expression(where, expression)
    env = {"__builtins__": _expression_builtins()}
    env.update(library)
    env["value"] = value
    env["vars"] = ReadOnlyVars(run_vars)
    text = expression.strip()
    preview = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."
    try:
        result = eval(byte_code, env)
    except PinExpressionError:
        raise
    except Exception as e:
        raise PinExpressionError(
            f"pin expression on {where} failed: {type(e).__name__}: {e} — expression: {preview}"
        ) from e
    try:
        return json.dumps(result, default=_plain, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise PinExpressionError(f"pin expression on {where} returned a value that is not JSON: {e}") from e


def _json_arg(what, text):
    """A JSON argument of `pin-eval` as a value (an empty text is None); refused as a pin failure."""
    if not text or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise PinExpressionError(f"{what} is not JSON: {e}") from e


def _pin_failure(index, e):
    """A `pin-eval` failure: the expression at `index` (None: the flow functions) and the seed's message."""
    if isinstance(e, RecursionError):
        message = f"pin expression failed: RecursionError: {e}"
    else:
        message = str(e)
    return Err(pin_eval.PinFailure(index=index, message=message))


def check_pin_expressions(functions, expressions):
    """Compiles the flow's `functions` (JSON text: `[{name, code}]`) and every expression, running none."""
    index = None
    try:
        compile_functions(_json_arg("the flow functions", functions))
        for index, item in enumerate(expressions):
            compile_expression(item.site or "?", item.source or "")
    except (CodeExecutionError, RecursionError) as e:
        raise _pin_failure(index, e)


def evaluate_pin_expressions(functions, expressions, run_vars):
    """Evaluates one node's expressions in order, each over its pin's `value` and the shared `vars`, stopping
    at the first failure; their values as JSON texts."""
    index = None
    try:
        library = compile_functions(_json_arg("the flow functions", functions))
        shared_vars = _json_arg("vars", run_vars)
        texts = []
        for index, item in enumerate(expressions):
            site = item.site or "?"
            value = _json_arg(f"the value on {site}", item.value)
            texts.append(evaluate_expression(library, site, item.source or "", value, shared_vars))
        return texts
    except (CodeExecutionError, RecursionError) as e:
        raise _pin_failure(index, e)


def fail(code, message):
    return Err(types.Error(code=code, message=message, retryable=False))


class WitWorld(wit_world.WitWorld):
    pass


# What the seed's function-like code nodes declare: nothing read besides the inputs, an input failure
# reported as the node's output, and a failure that completes the run with the node's error record.
FUNCTION_LIKE = {
    "effect": None,
    "reads": node.Reads(0),
    "on_input_failure": node.InputFailure.REPORT,
    "on_failure": node.NodeFailure.COMPLETE_RUN,
}


class Node(wit_world.exports.Node):
    def describe(self):
        pin = node.Pin
        return [
            node.NodeType(
                name="code",
                label="Python Code",
                description="Runs the node's Python `transform(_input)` in a sandbox; "
                "returns {success, output, result, execution} (+ the keys of a dict result).",
                inputs=[pin("input", "input", "any"), pin("permissions", "permissions", "string")],
                outputs=[
                    pin("output", "output", "any"),
                    pin("success", "success", "boolean"),
                    pin("result", "result", "any"),
                    pin("execution", "execution", "object"),
                ],
                **FUNCTION_LIKE,
            ),
            node.NodeType(
                name="function",
                label="Function",
                description="Legacy Python function node: `code` + `functionName`, or an `expression`.",
                inputs=[pin("input", "input", "any")],
                outputs=[pin("result", "result", "any")],
                **FUNCTION_LIKE,
            ),
        ]

    def run(self, inv):
        try:
            config = json.loads(inv.config) if inv.config else {}
            inputs = json.loads(inv.inputs) if inv.inputs else {}
        except ValueError as e:
            raise fail(types.ErrorCode.INVALID_INPUT, f"invalid invocation JSON: {e}")
        if not isinstance(config, dict):
            config = {}
        if inv.node_type == "code":
            out = run_code(config, inputs)
        elif inv.node_type == "function":
            try:
                out = run_function(config, inputs)
            except CodeExecutionError as e:
                # The host ends the run with this record, as the seed does when a function node raises.
                out = {"success": False, "error": str(e)}
        else:
            raise fail(types.ErrorCode.UNSUPPORTED, f"unknown node type {inv.node_type!r}")
        return node.NodeResult(
            outputs=json.dumps(out, ensure_ascii=False, allow_nan=False),
            ambient=None,
            complete_output=None,
            effect_payload=None,
            context_edit=None,
        )


class PinEval(wit_world.exports.PinEval):
    def check(self, functions, expressions):
        check_pin_expressions(functions, expressions)

    def evaluate(self, functions, expressions, vars):
        return evaluate_pin_expressions(functions, expressions, vars)
