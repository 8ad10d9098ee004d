"""Work the emulator repeats for nothing, done once.

Profiled on an elicitation round trip (py-spy, `lighthouse up` at one pair), moto's Step Functions
engine spent 12% of the process: 9% re-lexing and re-parsing the state machine's definition with
ANTLR for every execution, 3% building a new boto3 client for every Task state's Lambda invoke, 3%
re-building JSONPath parsers (PLY tables) for every path it evaluates. Each is a pure function of
its input:

- the ANTLR parse tree of a definition is kept (the preprocessor still builds fresh evaluation
  components from it for every execution, so no state is shared between executions);
- JSONPath expressions are immutable once parsed;
- boto3 clients are thread-safe, and the engine's are all alike (fake keys, no retries).

Two more that every request repeated (py-spy at 50 agent pairs):

- moto finds a service's backend through `BackendDict._create_account_specific_backend`, which
  takes a process-wide lock and then checks that the dictionary is registered with a list
  membership test calling a Python `__eq__` on every registered service before it (23 % of the
  process). Once an account's backend exists and the dictionary is registered, neither changes
  until a reset clears the registry, so later lookups skip both.
- moto's HTTP dispatcher matches a request's host against every service's URL patterns (hundreds
  of regular expressions), under one lock, for every request (14 %). A host's backend never
  changes, so it is looked up once.

And one that grows with the data: moto answers a Query on a table (not an index) by listing and
sorting every item of the table, then keeping the partition's (`Table.all_items`), so a query of a
few items in a table of 150,000 took 20-30 ms. Such a query now lists its own partition only; what it
returns is the same (moto still sorts, pages and filters those items as before).

Idempotent; installed with the other emulator hooks for the life of the process.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_installed = False
_lock = threading.Lock()


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _parse_each_definition_once()
        _parse_each_json_path_once()
        _one_client_per_service()
        _resolve_each_host_once()
        _find_each_backend_once()
        _query_reads_its_partition()
        _installed = True


def _parse_each_definition_once() -> None:
    from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    @functools.lru_cache(maxsize=256)
    def tree_of(definition: str) -> Any:
        listener = asl_parser.SyntaxErrorListener()  # type: ignore[no-untyped-call]
        parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
        parser.removeErrorListeners()
        parser.addErrorListener(listener)
        tree = parser.state_machine()  # type: ignore[no-untyped-call]
        if listener.errors:
            raise asl_parser.ASLParserException(errors=listener.errors)
        return tree

    def parse(definition: str) -> tuple[Any, Any]:
        tree = tree_of(definition)
        return Preprocessor().visit(tree), tree

    asl_parser.AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _parse_each_json_path_once() -> None:
    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    ext_parse, plain_parse = getattr(jsonpath_ng.ext, "parse"), getattr(jsonpath_ng, "parse")  # noqa: B009
    setattr(json_path, "parse", functools.lru_cache(maxsize=4096)(ext_parse))  # noqa: B010
    setattr(result_path, "parse", functools.lru_cache(maxsize=4096)(plain_parse))  # noqa: B010


def _one_client_per_service() -> None:
    import importlib

    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[str, str, bool], Any] = {}
    creating = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # The engine's own clients use fixed fake keys whatever the state's credentials say.
        key = (region, service, bool(getattr(boto_client, "botocore_stubber").enabled))  # noqa: B009
        with creating:
            if key not in clients:
                clients[key] = original(region, service)
            return clients[key]

    boto_client.boto_client_for = boto_client_for
    for name in ("moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",):
        module = importlib.import_module(name)
        module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def _resolve_each_host_once() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    resolved: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in resolved:
            resolved[host] = original(self, host)
        return resolved[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _find_each_backend_once() -> None:
    from moto.core.base_backend import BackendDict

    original = BackendDict._create_account_specific_backend
    registered: set[int] = set()
    seen = {"registry_size": 0}

    def create_account_specific_backend(self: Any, account_id: str) -> None:
        registry = BackendDict._instances  # type: ignore[misc]
        if len(registry) < seen["registry_size"]:  # a reset cleared it: start over
            registered.clear()
        seen["registry_size"] = len(registry)
        if id(self) in registered and dict.__contains__(self, account_id):
            return
        original(self, account_id)
        registered.add(id(self))

    BackendDict._create_account_specific_backend = create_account_specific_backend  # type: ignore[method-assign]


def _query_reads_its_partition() -> None:
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    querying = threading.local()

    def all_items(self: Any) -> list[Any]:
        partition = getattr(querying, "partition", None)
        if partition is None or partition[0] is not self:
            return list(original_all_items(self))
        found = self.items.get(partition[1])  # .get: the items dict is a defaultdict
        if found is None:
            return []
        return list(found.values()) if self.range_key_attr else [found]

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # The eighth positional argument, or the keyword: queries of an index read the whole table.
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        querying.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            querying.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
